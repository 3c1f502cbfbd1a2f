"""XQuAD, MLQA and TyDi QA-GoldP from the Hugging Face Hub (XTREME-R extractive QA targets)."""

from __future__ import annotations

import logging
from typing import Any

from xstilts.tasks import xtreme_convert as conv
from xstilts.tasks.base import Family, Role, register
from xstilts.tasks.xtreme_hub import Part, Pin, XtremeHubTask

log = logging.getLogger(__name__)

# Languages: XTREME-R (arXiv 2104.07412, Table 1) keeps XTREME's QA sets unchanged: XQuAD 11, MLQA 7, TyDi QA 9.
XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA_LANGUAGES = ("ar", "de", "en", "es", "hi", "vi", "zh")
TYDIQA_LANGUAGES = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")


class _QaTask(XtremeHubTask):
    family, role = Family.EXTRACTIVE_QA, Role.TARGET
    stand_in, stand_in_kind = "", "extractive QA"
    domain = "wikipedia"

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        rows, dropped = conv.squad_style(
            dataset, prefix=self.name, language=language or None, domain=self.domain, source=source, split=split
        )
        if dropped:
            log.warning(
                "%s %s %s: dropped %d questions whose answer is not at its offset", self.name, language, split, dropped
            )
        return rows


@register
class XquadTask(_QaTask):
    """XQuAD: 1,190 SQuAD v1.1 dev questions professionally translated into 10 languages (google/xquad, configs
    'xquad.<lang>', one validation split -> test). Trains on SQuAD v1.1 (train_from squad). Ids 'xquad-<SQuAD id>',
    shared by translations."""

    name, display = "xquad", "XQuAD"
    languages = XQUAD_LANGUAGES
    train_from = "squad"
    # the revision mteb's XQuADRetrieval task pins (without trust_remote_code, so no loading script)
    pin = Pin("google/xquad", "51adfef1c1287aab1d2d91b5bead9bcfb9c68583", "mteb XQuADRetrieval")
    license = "XQuAD: CC BY-SA 4.0"

    def parts(self) -> list[Part]:
        return [("test", f"xquad.{lang}", "validation", lang) for lang in self.languages]


@register
class MlqaTask(_QaTask):
    """MLQA in 7 languages, question and context in the same language (facebook/mlqa, configs 'mlqa.<lang>.<lang>'):
    validation -> dev, test -> test. Trains on SQuAD v1.1 (train_from squad). Ids 'mlqa-<id>'."""

    name, display = "mlqa", "MLQA"
    languages = MLQA_LANGUAGES
    train_from = "squad"
    pin = Pin("facebook/mlqa", None, "mteb pins 397ed406c1a7, a commit with a loading script datasets 5 cannot run")
    license = "MLQA: CC BY-SA 3.0"

    def parts(self) -> list[Part]:
        pairs = (("dev", "validation"), ("test", "test"))
        return [(s, f"mlqa.{lang}.{lang}", h, lang) for s, h in pairs for lang in self.languages]


@register
class TydiqaTask(_QaTask):
    """TyDi QA gold-passage task (google-research-datasets/tydiqa, config secondary_task), language read from the id
    prefix ('finnish-...'). English rows of train -> train, English rows of validation -> dev, the other 8 languages'
    validation rows -> test (XTREME-R evaluates on the dev set). Ids 'tydiqa-<id>'."""

    name, display = "tydiqa", "TyDi QA-GoldP"
    languages = TYDIQA_LANGUAGES
    pin = Pin("google-research-datasets/tydiqa", None, "no commit of it was found in a public source")
    license = "TyDi QA: Apache 2.0"

    def parts(self) -> list[Part]:
        return [("train", "secondary_task", "train", ""), ("test", "secondary_task", "validation", "")]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        rows = super().convert(dataset, language, split, source)
        if split == "train":
            return [r for r in rows if r["language"] == "en"]
        for r in rows:  # English validation questions are the English dev set
            if r["language"] == "en":
                r["split"] = "dev"
        return rows
