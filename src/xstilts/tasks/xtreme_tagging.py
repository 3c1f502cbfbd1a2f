"""UD-POS and WikiANN (PAN-X) from the Hugging Face Hub (XTREME-R structured prediction targets)."""

from __future__ import annotations

from typing import Any

from xstilts.tasks import xtreme_convert as conv
from xstilts.tasks.base import Family, Role, register
from xstilts.tasks.xtreme_hub import XTREME, Part, Pin, XtremeHubTask, label_names

UPOS17 = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
# google/xtreme names its udpos configs by language; these are the XTREME-R UD-POS languages it holds. XTREME-R
# (google-research/xtreme scripts/train_udpos.sh, LANGS) adds lt, pl, uk and ro, which google/xtreme lacks.
UDPOS_CONFIGS = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip
# XTREME's UD-POS gives Kazakh only train and test, and Tagalog, Thai and Yoruba only test: no dev in them (XTREME
# evaluates them on test only).
UDPOS_TEST_ONLY = frozenset({"kk", "tl", "th", "yo"})
NER_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
# The 48 XTREME-R WikiANN languages: google-research/xtreme scripts/train_panx.sh, LANGS.
WIKIANN_LANGUAGES = (
    "af", "ar", "az", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "gu", "he", "hi", "hu",
    "id", "it", "ja", "jv", "ka", "kk", "ko", "lt", "ml", "mr", "ms", "my", "nl", "pa", "pl", "pt", "qu", "ro",
    "ru", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "yo", "zh",
)  # fmt: skip
EVAL = (("dev", "validation"), ("test", "test"))


@register
class UdposTask(XtremeHubTask):
    """Universal Dependencies v2.5 POS tags as XTREME prepared them (google/xtreme, configs 'udpos.<Language>'): tokens
    and 17 UPOS tags (ClassLabel pos_tags). Trains on its own English train split; test in every language, dev in all
    but Kazakh, Tagalog, Thai and Yoruba (XTREME's copy has no validation split for them, so they are evaluated on test
    only, as XTREME does). Ids 'udpos-<lang>-<split>-<position>'."""

    name, display, family, role = "udpos", "UD-POS", Family.TAGGING, Role.TARGET
    stand_in, stand_in_kind = "pos_tr", "POS tagging (12 universal tags; every pos_<language> task)"
    labels = UPOS17
    languages = tuple(UDPOS_CONFIGS)
    domain = "treebank"
    pin = XTREME
    license = "Universal Dependencies v2.5: per treebank (mostly CC BY-SA 4.0 / CC BY-NC-SA)"

    def parts(self) -> list[Part]:
        cfg = {lang: f"udpos.{UDPOS_CONFIGS[lang]}" for lang in self.languages}
        evaluated = [(s, cfg[lang], h, lang) for s, h in EVAL for lang in cfg]
        return [("train", cfg["en"], "train", "en")] + [
            p for p in evaluated if not (p[2] == "validation" and p[3] in UDPOS_TEST_ONLY)
        ]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        names = label_names(dataset, "pos_tags")
        return conv.tagged_tokens(
            dataset,
            tag_field="pos_tags",
            tag_names=names,
            prefix="udpos",
            language=language,
            domain=self.domain,
            source=source,
            split=split,
        )


@register
class WikiannTask(XtremeHubTask):
    """WikiANN named entities with the Rahimi et al. (2019) splits (unimelb-nlp/wikiann, one config per language):
    tokens and IOB2 tags O/B-/I- PER, ORG, LOC (ClassLabel ner_tags). Trains on its own English train split. Offline,
    `ner` (English tweets -> Japanese, the same three types) stands in. Ids 'wikiann-<lang>-<split>-<position>'."""

    name, display, family, role = "wikiann", "WikiANN (PAN-X)", Family.TAGGING, Role.TARGET
    stand_in, stand_in_kind = "ner", "NER (PER/LOC/ORG)"
    labels = NER_TAGS
    languages = WIKIANN_LANGUAGES
    domain = "wikipedia"
    pin = Pin("unimelb-nlp/wikiann", "f0a3be6dc5564c0cc4150bb660144800a1f539d4", "a Parquet commit")
    stands_for = "WikiANN / PAN-X NER (XTREME-R)"
    license = "WikiANN: ODC-By (dataset card)"

    def parts(self) -> list[Part]:
        return [("train", "en", "train", "en")] + [(s, lang, h, lang) for s, h in EVAL for lang in self.languages]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        return conv.tagged_tokens(
            dataset,
            tag_field="ner_tags",
            tag_names=label_names(dataset, "ner_tags"),
            prefix="wikiann",
            language=language,
            domain=self.domain,
            source=source,
            split=split,
        )
