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


class _SentencePairTask(XtremeHubTask):
    """Sentence-pair classification with one Hub config per language, read by :func:`conv.sentence_pairs`."""

    family, role = Family.CLASSIFICATION, Role.TARGET
    stand_in, stand_in_kind = "polarity", "multilingual classification"

    def parts(self) -> list[Part]:
        """Dev and test in every language: each language's validation and test splits."""
        return [(s, lang, h, lang) for s, h in (("dev", "validation"), ("test", "test")) for lang in self.languages]

    def pairs(self, dataset: Any, language: str, split: str, source: str, **columns: Any) -> list[dict[str, Any]]:
        """The rows of one part, ids prefixed ``<task>-<split>``; ``columns`` say which fields hold what."""
        prefix, names = f"{self.name}-{split}", label_names(dataset, "label")
        where = {"language": language, "domain": self.domain, "source": source, "split": split}
        return conv.sentence_pairs(dataset, label_names=names, prefix=prefix, **where, **columns)


@register
class XnliTask(_SentencePairTask):
    """XNLI dev/test in 15 languages (facebook/xnli, one config per language): premise -> text_a, hypothesis -> text_b,
    ClassLabel entailment/neutral/contradiction. Trains on English MNLI (train_from mnli). Ids
    'xnli-<lang>-<split>-<position>': positions align across languages."""

    name, display = "xnli", "XNLI"
    labels = ("entailment", "neutral", "contradiction")
    languages = XNLI_LANGUAGES
    train_from = "mnli"  # XTREME-R trains XNLI on MNLI
    domain = "mixed"
    pin = Pin("facebook/xnli", "b8dd5d7af51114dbda02c0e3f6133f332186418e", "the Parquet commit public code pins")
    license = "XNLI: CC BY-NC 4.0 (dataset card); MNLI training data: see mnli"

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        return self.pairs(dataset, language, split, source, first="premise", second="hypothesis", id_field=None)


@register
class PawsxTask(_SentencePairTask):
    """PAWS-X paraphrase identification (google-research-datasets/paws-x, one config per language): sentence1/sentence2
    -> text_a/text_b, ClassLabel '0'/'1' -> not_paraphrase/paraphrase. Trains on its own English train split
    (machine-free originals); dev/test in 7 languages. Ids 'pawsx-<split>-<id>': the PAWS id, shared by translations."""

    name, display = "pawsx", "PAWS-X"
    labels = tuple(PAWSX_LABELS.values())
    languages = PAWSX_LANGUAGES
    domain = "wikipedia"
    pin = Pin("google-research-datasets/paws-x", "4cd8187c404bda33cb1f62b49b001115862acf37", "a Parquet commit")
    stands_for = "PAWS-X (XTREME)"
    license = "PAWS-X: free to use for any purpose, with attribution to Google (dataset card: other)"

    def parts(self) -> list[Part]:
        return [("train", "en", "train", "en"), *super().parts()]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        columns = {"first": "sentence1", "second": "sentence2", "rename": PAWSX_LABELS, "id_field": "id"}
        return self.pairs(dataset, language, split, source, **columns)
