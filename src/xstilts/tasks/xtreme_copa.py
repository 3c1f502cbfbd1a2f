"""XCOPA from the Hub, and its English training data as XTREME-R defines it: COPA plus Social IQa."""

from __future__ import annotations

from typing import Any

from xstilts.tasks import xtreme_convert as conv
from xstilts.tasks.base import Family, Role, register
from xstilts.tasks.xtreme_hub import Part, Pin, XtremeHubTask

# XCOPA languages as google-research/xtreme scripts/train_xcopa.sh predicts them (langs=...).
XCOPA_LANGUAGES = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
# config "copa"; the commit public code reads Parquet files at ("multirc/train-00000-of-00001.parquet")
COPA = Pin("aps/super_glue", "3de24cf8022e94f4ee4b9d55a6f539891524d646", "Parquet commit pinned in public code")
# the refs/convert/parquet commit xstilts.tasks.hub_mc pins for SocialIQA (main still holds a loading script)
SOCIAL_IQA = Pin("allenai/social_i_qa", "537a2ec8ec565adc0b70b70752893e59e024df26", "refs/convert/parquet")


@register
class CopaSiqaTask(XtremeHubTask):
    """English training data for XCOPA: COPA train (aps/super_glue, config copa; premise -> context, cause/effect -> a
    question, choice1/choice2) plus Social IQa train (allenai/social_i_qa; answerA-C, label '1'-'3' -> 0-2); dev is COPA
    validation. Ids 'copa-<split>-<idx>' and 'siqa-<split>-<position>'."""

    name, display, family, role = "copa_siqa", "COPA + Social IQa", Family.MULTIPLE_CHOICE, Role.INTERMEDIATE
    stand_in, stand_in_kind = "socialiqa", "English commonsense multiple-choice"
    domain = "commonsense"
    pin = COPA
    stands_for = "XCOPA's English training data (COPA + SIQa, XTREME-R)"
    license = "COPA: BSD 2-Clause; Social IQa: CC BY 4.0"

    def parts(self) -> list[Part]:
        return [
            ("train", "copa", "train", "copa"),
            ("train", "default", "train", "siqa"),  # the parquet branch names its one config "default"
            ("dev", "copa", "validation", "copa"),
        ]

    def pin_for(self, language: str) -> Pin:
        return SOCIAL_IQA if language == "siqa" else COPA

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        if language == "siqa":
            return conv.social_iqa(dataset, prefix=f"siqa-{split}", source=source, split=split)
        return conv.copa(dataset, prefix=f"copa-{split}", language="en", domain=self.domain, source=source, split=split)


@register
class XcopaTask(XtremeHubTask):
    """XCOPA causal commonsense reasoning in 11 languages (cambridgeltl/xcopa): validation -> dev, test -> test; premise
    -> context, cause/effect -> an English question, [choice1, choice2], label 0/1. Trains on COPA + Social IQa
    (train_from copa_siqa). Ids 'xcopa-<split>-<idx>', shared by translations."""

    name, display, family, role = "xcopa", "XCOPA", Family.MULTIPLE_CHOICE, Role.TARGET
    stand_in, stand_in_kind = "exams", "multilingual multiple-choice"
    languages = XCOPA_LANGUAGES
    train_from = "copa_siqa"
    domain = "commonsense"
    pin = Pin("cambridgeltl/xcopa", "042f78955ba48e6404616762fa6e05e839c3907a", "'Convert dataset to Parquet (#3)'")
    license = "XCOPA: CC BY 4.0"

    def parts(self) -> list[Part]:
        return [(s, lang, h, lang) for s, h in (("dev", "validation"), ("test", "test")) for lang in self.languages]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        return conv.copa(
            dataset, prefix=f"xcopa-{split}", language=language, domain=self.domain, source=source, split=split
        )
