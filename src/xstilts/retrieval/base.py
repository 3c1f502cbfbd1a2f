"""What every retrieval family shares: its result (metrics and test predictions) and the columns it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import datasets

from xstilts.errors import XstiltsError


@dataclass(frozen=True)
class RetrievalResult:
    """Metrics of both splits, and the test split's predictions per language.

    ``predictions[lang]``: bitext, each sentence's predicted English as a 0-based row of the language's English side
    (file order); mining, the (source id, English id) pairs scoring at least the tuned threshold; ranking,
    ``{query id: candidate ids, best first}`` (the top
    :data:`~xstilts.retrieval.ranking.RANKING_K`). Ids are xstilts ids.
    """

    family: str
    metrics: dict[str, float]
    predictions: dict[str, Any] = field(default_factory=dict)
    # bitext: one row per query of each split (columns split, id, language, score = top-1 correct, weight = 1),
    # the per-example parts of the accuracy that :mod:`xstilts.study` resamples
    examples: dict[str, list] = field(default_factory=dict)


def split_columns(ds: datasets.Dataset, needed: tuple[str, ...], what: str, split: str) -> dict[str, list]:
    """The needed columns of a split as lists; a missing column or an empty split raises one sentence."""
    missing = [c for c in needed if c not in ds.column_names]
    if missing or len(ds) == 0:
        raise XstiltsError(
            f"The {split} split needs {what} rows with columns {', '.join(needed)} (missing: {missing or 'none'}, "
            f"rows: {len(ds)}); re-run the task's prepare stage."
        )
    return {c: list(ds[c]) for c in needed}
