"""What a task family is: one :class:`FamilySpec` per family holds everything that differs between families.

Its schema (canonical Parquet columns), its main metric, its validation rules (helper columns and Great
Expectations), its data-card counts and, for trainable families, its features, batches, head, loss and
decoding. Tasks name their family; every other module asks the family's spec instead of comparing names.

Importing this package is cheap (pyarrow only): torch, transformers, pandas and Great Expectations are imported
inside the methods that need them, so that data stages stay light.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

from xstilts.errors import XstiltsError

if TYPE_CHECKING:
    import datasets
    import torch

KEEP = ("id", "language", "domain")  # columns every feature builder keeps
IGNORE = -100  # label of sub-tokens that carry no prediction (cross-entropy's ignore_index)
MASKED_SCORE = -1e4  # score of padding (a choice, a token): below any real one, finite under bf16 and fp16


class Family(StrEnum):
    CLASSIFICATION = "classification"  # single sentence or sentence pair -> one label
    MULTIPLE_CHOICE = "multiple_choice"  # context + question -> index of the right choice
    EXTRACTIVE_QA = "extractive_qa"  # context + question -> answer span(s) by character offset
    TAGGING = "tagging"  # one tag per word (POS, NER)
    BITEXT = "bitext"  # aligned sentence pairs for retrieval (non-English -> English)
    MINING = "mining"  # BUCC-style: unaligned sentences of two corpora, gold translation pairs linked by id
    RANKING = "ranking"  # LAReQA / Mewsli-X: queries, a candidate pool, the relevant candidates per query


COMMON = [
    ("id", pa.string()),  # stable example id; rows that are translations of each other share the suffix
    ("language", pa.string()),  # ISO 639-1 where one exists
    ("domain", pa.string()),
    ("source", pa.string()),  # registry package and version, e.g. "bigbench==1.0.0"
    ("split", pa.string()),
]


# ----------------------------------------------------------------------------------- shared helpers


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def label_ids(found: set[str], labels: Sequence[str]) -> dict[str, int]:
    """Index of each label; an error naming the labels that are not in the task's label set."""
    ids = {label: i for i, label in enumerate(labels)}
    unknown = found - set(ids)
    if unknown:
        raise XstiltsError(f"Labels {sorted(unknown)} are not in the task's label set {list(labels)}.")
    return ids


def dropped(ds: datasets.Dataset) -> list[str]:
    """The columns a feature builder removes (all but :data:`KEEP`)."""
    return [c for c in ds.column_names if c not in KEEP]


def cut(tokenizer: Any, texts: list[str], budgets: list[int]) -> list[str]:
    """Each text cut at the end of its ``budget``-th token (unchanged when it has no more tokens than that)."""
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for text, offsets, budget in zip(texts, enc["offset_mapping"], budgets, strict=True):
        budget = max(budget, 0)
        out.append(text if len(offsets) <= budget else text[: offsets[budget - 1][1]] if budget else "")
    return out


def blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def as_list(value: Any) -> list | None:
    return list(value) if value is not None else None


def non_empty(gx: Any, column: str, why: str) -> list:
    """Expectations that ``column`` is given and not blank."""
    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=column, description=f"{column} must be given ({why})"),
        gx.expectations.ExpectColumnValuesToMatchRegex(
            column=column, regex=r"\S", description=f"{column} must not be empty or blank ({why})"
        ),
    ]


def all_true(gx: Any, column: str, why: str) -> Any:
    """The expectation that a boolean helper column holds on every row."""
    return gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=[True], description=why)


def sort_key(value: Any) -> tuple[int, str]:
    return (0, f"{value:012d}") if isinstance(value, int) else (1, str(value))


def mean_of_scored(values: np.ndarray) -> float:
    """Mean over the examples a per-example score applies to (NaN: not scored, e.g. ``no_ans_f1`` of an answerable
    question); NaN when none is scored."""
    scored = values[~np.isnan(values)]
    return float(scored.mean()) if scored.size else float("nan")


# ----------------------------------------------------------------------------------------- results


@dataclass
class Evaluation:
    """Predictions of one split, one entry per example, and the metrics over any subset of its examples."""

    family: str
    labels: list[str]
    ids: list[str]
    languages: list[str]
    domains: list[str]
    gold: list[str]  # shown in the predictions table
    prediction: list[str]
    confidence: list[float]
    correct: dict[str, np.ndarray] = field(default_factory=dict)  # per-example scores (accuracy, em, f1)
    gold_tags: list[list[str]] = field(default_factory=list)  # tagging only
    pred_tags: list[list[str | None]] = field(default_factory=list)

    @classmethod
    def of(cls, family: Family, labels: list[str], rows: Any, **fields: Any) -> Evaluation:
        """An evaluation whose ids, languages and domains are those of ``rows`` (examples or features)."""
        keys = {"ids": rows["id"], "languages": rows["language"], "domains": rows["domain"]}
        return cls(family=family.value, labels=labels, **keys, **fields)

    def score(self, mask: np.ndarray | None = None) -> dict[str, float]:
        mask = np.ones(len(self.ids), dtype=bool) if mask is None else np.asarray(mask)
        return spec(self.family).score(self, np.flatnonzero(mask))

    def per_language(self, prefix: str, train_language: str = "en", original_languages: tuple[str, ...] = ()) -> dict:
        return per_language_metrics(self.languages, self.score, prefix, train_language, original_languages)

    def table(self, split: str) -> Any:
        """One row per example: gold, prediction, confidence, and the main metric's ``score`` / ``weight`` (the
        metric over any rows is ``sum(score) / sum(weight)``, what :mod:`xstilts.study` resamples)."""
        import pandas as pd

        family = spec(self.family)
        score, weight = family.parts(self, family.main_metric(self.labels))
        columns = {"id": self.ids, "language": self.languages, "domain": self.domains}
        shown = {"gold": self.gold, "prediction": self.prediction, "confidence": self.confidence}
        return pd.DataFrame({"split": split, **columns, **shown, "score": score, "weight": weight})


@dataclass(frozen=True)
class Baseline:
    """A trivial predictor's evaluation on a split, and what it predicts (e.g. "majority class 'SUPPORTS'")."""

    evaluation: Evaluation
    what: str


def constant_evaluation(
    family: Family, labels: list[str], rows: Any, gold: list[str], guess: str | list[str], **fields: Any
) -> Evaluation:
    """An :class:`Evaluation` of a trivial guess (one for every row, or one per row) for the frame ``rows``
    (``fields``: its scores)."""
    keys = {"ids": rows["id"].tolist(), "languages": rows["language"].tolist(), "domains": rows["domain"].tolist()}
    prediction = guess if isinstance(guess, list) else [guess] * len(rows)
    return Evaluation(
        family.value, labels, **keys, gold=gold, prediction=prediction, confidence=[1.0] * len(rows), **fields
    )


def per_language_metrics(
    languages: Sequence[str],
    score: Callable[[np.ndarray], dict[str, float]],
    prefix: str,
    train_language: str = "en",
    original_languages: tuple[str, ...] = (),
) -> dict[str, float]:
    """``<prefix>_<metric>_<lang>`` for each language and each metric ``score(mask)`` returns, plus averages.

    ``_zeroshot``: mean over languages other than the training language; ``_translated``: the same without
    languages whose data are human originals (e.g. Polish in MultiEmo), when there are any.
    """
    languages = np.asarray(list(languages))
    by_lang = {lang: score(languages == lang) for lang in sorted(set(languages.tolist()))}
    metrics: dict[str, float] = {}
    names = list(dict.fromkeys(name for values in by_lang.values() for name in values))
    for name in names:
        for lang, values in by_lang.items():
            metrics[f"{prefix}_{name}_{lang}"] = float(values[name])
        zero_shot = [values[name] for lang, values in by_lang.items() if lang != train_language]
        if zero_shot:
            metrics[f"{prefix}_{name}_zeroshot"] = float(np.mean(zero_shot))
        translated = [
            values[name] for lang, values in by_lang.items() if lang not in (train_language, *original_languages)
        ]
        if original_languages and translated:
            metrics[f"{prefix}_{name}_translated"] = float(np.mean(translated))
    return metrics


# -------------------------------------------------------------------------------------------- spec


_SPECS: dict[Family, FamilySpec] = {}  # one instance per concrete family, registered as its class is defined


def spec(family: str | Family) -> FamilySpec:
    """The spec of ``family`` (a :class:`Family` or its name). Importing this module runs :mod:`xstilts.families`
    first, which imports every family module, so every spec is registered before anything asks."""
    try:
        return _SPECS[Family(family)]
    except (ValueError, KeyError) as exc:
        raise XstiltsError(f"Unknown task family {family!r}; families are {', '.join(_SPECS)}.") from exc


class FamilySpec:
    """Everything one family needs, declared once; subclasses override what differs (see the module docstring)."""

    family: ClassVar[Family]
    columns: ClassVar[list[tuple[str, pa.DataType]]]  # after the common ones
    metric: ClassVar[str]  # the main metric: picks checkpoints on English dev, names the promotion metric
    trainable: ClassVar[bool] = True  # has a head, features and a loss (retrieval families do not)
    needs_examples: ClassVar[bool] = False  # decoding reads the rows behind the features (words, contexts)
    windowed: ClassVar[bool] = False  # long inputs become overlapping windows (``stride``), saved as doc_stride
    counts: ClassVar[tuple[str, str]] = ("", "")  # data card: title and first column of the label table
    per_token: ClassVar[bool] = False  # the head scores every token (tagging, QA), not the mean-pooled sequence

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in vars(cls):  # a concrete family, not a shared base such as retrieval's
            if cls.family in _SPECS:
                raise ValueError(f"family {cls.family.value!r} has two specs: {type(_SPECS[cls.family]).__name__}, "
                                 f"{cls.__name__}")  # fmt: skip
            _SPECS[cls.family] = cls()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(COMMON + self.columns)

    def main_metric(self, labels: Sequence[str] = ()) -> str:
        return self.metric

    # ---- data: validation rules and the data card --------------------------------------------------------

    def add_helpers(self, df: Any, task: Any) -> None:
        """Add boolean / count helper columns for the row-wise rules Great Expectations cannot state."""

    def expectations(self, gx: Any, task: Any) -> list:
        """The family's expectations on the frame (after the common ones)."""
        return []

    def label_counts(self, rows: list[dict[str, Any]]) -> Counter:
        """What the data card counts per split (labels, tags, answers)."""
        return Counter()

    def count_order(self, total: Counter, labels: Sequence[str]) -> list:
        """The values of the card's count table, in the order shown."""
        return sorted(total, key=sort_key)

    # ---- training: features, batches, head, loss --------------------------------------------------------

    def _untrainable(self) -> XstiltsError:
        return XstiltsError(f"Family {self.family.value!r} cannot be trained (retrieval tasks are only scored).")

    def tokenize(
        self, ds: datasets.Dataset, tokenizer: Any, labels: Sequence[str], max_length: int, stride: int | None = None
    ) -> datasets.Dataset:
        """Model inputs (``input_ids``, ``attention_mask``, ``labels``) for canonical rows; keeps :data:`KEEP`."""
        raise self._untrainable()

    def collate(self, rows: list[dict], pad_id: int, pad: Callable) -> dict[str, torch.Tensor]:
        """A batch padded to its longest row (``pad``: transformers' ``DataCollatorWithPadding``)."""
        return pad([{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in rows])

    def lengths(self, features: datasets.Dataset) -> list[int]:
        """Per-row size for length-grouped batching (tokens)."""
        return [len(x) for x in features["input_ids"]]

    def head_width(self, task: str, labels: Sequence[str]) -> int:
        """Width of the head's linear layer: one logit per label by default."""
        if not self.trainable:
            raise self._untrainable()
        if not labels:
            raise XstiltsError(f"Task {task!r} ({self.family.value}) declares no labels; its head needs them.")
        return len(labels)

    def logits(self, model: Any, head: Any, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The head's logits: ``[batch, seq, width]`` when ``per_token``, else of the mean-pooled sequence."""
        if self.per_token:
            return head(model.hidden_states(input_ids, mask))
        return head(model.embed(input_ids, mask))

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of ``[B, L]`` logits against ``[B]`` labels."""
        import torch

        return torch.nn.functional.cross_entropy(logits.float(), batch["labels"])

    def kept(self, mask: torch.Tensor) -> list[int | None]:
        """How much of each output row is real (None: all of it); padding is cut off before decoding."""
        return mask.sum(-1).tolist() if self.per_token else [None] * len(mask)  # right padding: first n are real

    def evaluate(
        self,
        outputs: list[np.ndarray],
        examples: datasets.Dataset,
        features: datasets.Dataset,
        labels: list[str],
        allow_no_answer: bool = False,
        null_threshold: float = 0.0,
    ) -> Evaluation:
        """Decode the head's outputs (one array per feature row, padding cut) and score every example."""
        raise self._untrainable()

    def baseline(self, train: Any, test: Any, labels: list[str], allow_no_answer: bool = False) -> Baseline:
        """The trivial baseline (the study's learning gate): chosen on ``train``, predicted for every row of
        ``test`` (pandas frames of canonical rows)."""
        raise self._untrainable()

    def score(self, evaluation: Evaluation, chosen: np.ndarray) -> dict[str, float]:
        """The metrics over the examples ``chosen`` (indices): means of the per-example scores by default."""
        return {name: mean_of_scored(values[chosen]) for name, values in evaluation.correct.items()}

    def parts(self, evaluation: Evaluation, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-example ``(score, weight)`` with ``metric`` over any examples = ``sum(score) / sum(weight)``: by
        default the per-example score, weight 1 (0 where it is not scored, NaN)."""
        values = np.asarray(evaluation.correct[metric], dtype=float)
        scored = ~np.isnan(values)
        return np.where(scored, values, 0.0), scored.astype(float)
