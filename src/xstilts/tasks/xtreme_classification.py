"""XNLI and PAWS-X from the Hugging Face Hub (XTREME-R sentence-pair classification targets)."""

from __future__ import annotations

from typing import Any

from xstilts.tasks import xtreme_convert as conv
from xstilts.tasks.base import Family, Role, register
from xstilts.tasks.xtreme_hub import Part, Pin, XtremeHubTask, label_names

# XNLI (15) and PAWS-X (7) languages: unchanged from XTREME in XTREME-R (arXiv 2104.07412, Table 1).
XNLI_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX_LANGUAGES = ("de", "en", "es", "fr", "ja", "ko", "zh")
PAWSX_LABELS = {"0": "not_paraphrase", "1": "paraphrase"}


@register
class XnliTask(XtremeHubTask):
    name, display, family, role = "xnli", "XNLI", Family.CLASSIFICATION, Role.TARGET
    stand_in, stand_in_kind = "multiemo", "multilingual classification"
    labels = ("entailment", "neutral", "contradiction")
    languages = XNLI_LANGUAGES
    train_from = "mnli"  # XTREME-R trains XNLI on MNLI
    domain = "mixed"
    pin = Pin("facebook/xnli", "4846bbb2cb0061ee797774ec263147d504166488", "README.md at that commit (parquet)")
    stands_for = "XNLI (XTREME-R)"
    license = "XNLI: CC BY-NC 4.0 (dataset card); MNLI training data: see mnli"
    description = (
        "XNLI dev/test in 15 languages (facebook/xnli, one config per language): premise -> text_a, hypothesis "
        "-> text_b, ClassLabel entailment/neutral/contradiction. Trains on English MNLI (train_from mnli). Ids "
        "'xnli-<lang>-<split>-<position>': positions align across languages."
    )

    def parts(self) -> list[Part]:
        return [(s, lang, h, lang) for s, h in (("dev", "validation"), ("test", "test")) for lang in self.languages]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        return conv.sentence_pairs(
            dataset,
            first="premise",
            second="hypothesis",
            label_names=label_names(dataset, "label"),
            prefix=f"xnli-{split}",
            id_field=None,
            language=language,
            domain=self.domain,
            source=source,
            split=split,
        )


@register
class PawsxTask(XtremeHubTask):
    name, display, family, role = "pawsx", "PAWS-X", Family.CLASSIFICATION, Role.TARGET
    stand_in, stand_in_kind = "multiemo", "multilingual classification"
    labels = tuple(PAWSX_LABELS.values())
    languages = PAWSX_LANGUAGES
    domain = "wikipedia"
    pin = Pin(
        "google-research-datasets/paws-x",
        None,
        "mteb pins 8a04d940a42c, a commit with a loading script datasets 5 cannot run",
    )
    stands_for = "PAWS-X (XTREME)"
    license = "PAWS-X: free to use for any purpose, with attribution to Google (dataset card: other)"
    description = (
        "PAWS-X paraphrase identification (google-research-datasets/paws-x, one config per language): "
        "sentence1/sentence2 -> text_a/text_b, ClassLabel '0'/'1' -> not_paraphrase/paraphrase. Trains on its "
        "own English train split (machine-free originals); dev/test in 7 languages. Ids 'pawsx-<split>-<id>': "
        "the PAWS id, shared by translations."
    )

    def parts(self) -> list[Part]:
        evaluation = [
            (s, lang, h, lang) for s, h in (("dev", "validation"), ("test", "test")) for lang in self.languages
        ]
        return [("train", "en", "train", "en"), *evaluation]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        return conv.sentence_pairs(
            dataset,
            first="sentence1",
            second="sentence2",
            label_names=label_names(dataset, "label"),
            rename=PAWSX_LABELS,
            prefix=f"pawsx-{split}",
            id_field="id",
            language=language,
            domain=self.domain,
            source=source,
            split=split,
        )
