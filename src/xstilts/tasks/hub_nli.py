"""English sentence-pair and single-sentence classification from the Hub: MNLI, ANLI+ (the paper's ANLI), QQP, SST-2.

Revisions are Hub commits (``nyu-mll/glue``, ``stanfordnlp/snli`` and ``facebook/anli`` hold Parquet files at
them). Rows whose label is -1 (no gold label: GLUE test splits, SNLI pairs without annotator agreement) are
left out and counted in the log.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xstilts.data.hub import HubSource
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, register
from xstilts.tasks.hub import HubDatasetTask, Part, class_name, train_dev

# the GLUE commit public code pins (Parquet files per config)
GLUE_REVISION = "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"
MNLI = HubSource("nyu-mll/glue", GLUE_REVISION, "mnli")
QQP = HubSource("nyu-mll/glue", GLUE_REVISION, "qqp")
SST2 = HubSource("nyu-mll/glue", GLUE_REVISION, "sst2")
SNLI = HubSource("stanfordnlp/snli", "cdb5c3d5eed6ead6e5a341c8e56e669bb666725b", "plain_text")
ANLI = HubSource("facebook/anli", "8e4813d81f46d313dac7892e1c28076917cfcdf9", "plain_text")
NLI_LABELS = ("entailment", "neutral", "contradiction")
ROUNDS = ("r1", "r2", "r3")


class _HubClassification(HubDatasetTask):
    family = Family.CLASSIFICATION
    role = Role.INTERMEDIATE
    text_a: ClassVar[str]
    text_b: ClassVar[str | None] = None

    def convert(self, row: dict[str, Any], features: Any, part: Part) -> dict[str, Any] | None:
        where = f"{part.source.spec} {part.split}"
        label = class_name(features, "label", row.get("label"), where)
        if label is None:
            return None
        if label not in self.labels:
            raise XstiltsError(f"{where} has label {label!r}, not one of {list(self.labels)}; the pinned data changed.")
        text_b = str(row[self.text_b]).strip() if self.text_b else None
        return {"text_a": str(row[self.text_a]).strip(), "text_b": text_b, "label": label}


class _HubNli(_HubClassification):
    """3-way NLI: premise and hypothesis; offline, RTE (2-way) stands in: no 3-way NLI is served by the registries."""

    stand_in, stand_in_kind = "rte", "NLI (2-way; no 3-way NLI is served)"
    text_a, text_b = "premise", "hypothesis"
    labels = NLI_LABELS


@register
class MnliTask(_HubNli):
    """MultiNLI (Williams et al., 2018) from nyu-mll/glue (config mnli) on the Hugging Face Hub: premise (text_a) and
    hypothesis (text_b), labels entailment/neutral/contradiction. train is the Hub's train, dev the matched validation
    set, test the mismatched validation set (the GLUE test labels are private)."""

    name, display = "mnli", "MNLI"
    domain = "multi_genre"
    license = "OANC (mostly free), CC BY-SA 3.0 and other terms for some genres (see the MultiNLI paper)"
    parts = {
        "train": (Part(MNLI, "train"),),
        "dev": (Part(MNLI, "validation_matched"),),
        "test": (Part(MNLI, "validation_mismatched"),),
    }


@register
class AnliTask(_HubNli):
    """The paper's ANLI+ (Phang et al., 2020, after Nie et al., 2020): training on the union of SNLI (stanfordnlp/snli
    train), MNLI (nyu-mll/glue mnli train) and the Adversarial NLI rounds 1-3 (facebook/anli train_r1-r3); dev and test
    are ANLI's dev_r1-r3 and test_r1-r3, so the task is evaluated on adversarial rows only. Labels
    entailment/neutral/contradiction; SNLI pairs without a gold label (-1) are left out. Ids name the source:
    anli-snli-..., anli-mnli-..., anli-anli_r2-<uid>."""

    name, display, stands_for = "anli", "ANLI", "ANLI+ (SNLI + MNLI + ANLI rounds 1-3)"
    domain = "nli"
    license = "CC BY-NC 4.0 (ANLI), CC BY-SA 4.0 (SNLI), MultiNLI's terms (MNLI)"
    parts = {
        "train": (
            Part(SNLI, "train", tag="snli"),
            Part(MNLI, "train", tag="mnli"),
            *(Part(ANLI, f"train_{r}", tag=f"anli_{r}") for r in ROUNDS),
        ),
        "dev": tuple(Part(ANLI, f"dev_{r}", tag=f"anli_{r}") for r in ROUNDS),
        "test": tuple(Part(ANLI, f"test_{r}", tag=f"anli_{r}") for r in ROUNDS),
    }


@register
class QqpTask(_HubClassification):
    """Quora Question Pairs (GLUE) from nyu-mll/glue (config qqp): are two questions duplicates (text_a, text_b; labels
    not_duplicate/duplicate). train and dev are the Hub's train and validation; test is empty (the GLUE test labels are
    private)."""

    name, display = "qqp", "QQP"
    stand_in, stand_in_kind = "mrpc", "paraphrase"
    domain = "quora"
    text_a, text_b = "question1", "question2"
    labels = ("not_duplicate", "duplicate")
    license = "Quora's terms of service (non-commercial research use)"
    parts = train_dev(QQP)


@register
class Sst2HubTask(_HubClassification):
    """SST-2 (Socher et al., 2013; GLUE) from nyu-mll/glue (config sst2): binary sentiment of movie-review sentences and
    phrases (text_a), labels negative/positive. train and dev are the Hub's train and validation; test is empty (private
    GLUE labels). data.source: offline gives the offline sst2 instead."""

    name, display = "sst2", "SST-2"
    stand_in, stand_in_kind = "sst2", "sentiment"
    domain = "movie_reviews"
    text_a = "sentence"
    labels = ("negative", "positive")  # as the offline sst2 task
    license = "not stated on the Hub (SST: see Socher et al., 2013)"
    parts = train_dev(SST2)
