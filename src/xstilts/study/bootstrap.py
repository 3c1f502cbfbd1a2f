"""Paired bootstrap over test examples (Koehn 2004; Dror et al. 2018): each system's metric on the same resamples.

A metric over a set of examples is a ratio of sums, ``sum(score) / sum(weight)`` (accuracy: score 0/1, weight 1;
word accuracy: correct words over words; entity F1: ``2 TP`` over ``2 TP + FP + FN``), so every resample
recomputes the metric itself, not a mean of per-example metrics. Examples are resampled within each stratum (a
language), the metric is computed per stratum and averaged, as the zero-shot means are; both systems see the
same resampled examples. Where strata share translation keys (the same rows translated: MultiEmo's test languages,
UDHR's paragraphs, LibreOffice's help strings), the keys are resampled instead, each bringing its row in every
language that has it (a cluster bootstrap): translations of one row are not independent evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xstilts.errors import XstiltsError


@dataclass(frozen=True)
class Scored:
    """Per-example parts of one system's metric: ``score`` and ``weight`` (aligned), and each example's stratum."""

    score: np.ndarray
    weight: np.ndarray
    strata: np.ndarray
    clusters: np.ndarray | None = None  # each example's translation key, shared by its translations in other strata

    def metric(self) -> float:
        return float(np.mean([ratio(self.score[s], self.weight[s]) for s in stratum_rows(self.strata)]))


def ratio(score: np.ndarray, weight: np.ndarray) -> float:
    total = float(np.sum(weight))
    return float(np.sum(score)) / total if total else float("nan")


def stratum_rows(strata: np.ndarray) -> list[np.ndarray]:
    """Row indices of each stratum, strata in sorted order."""
    return [np.flatnonzero(strata == s) for s in sorted(set(strata.tolist()))]


def resampled_metrics(parts: Sequence[Scored], n_resamples: int, seed: int) -> np.ndarray:
    """``[len(parts), n_resamples]``: each system's metric on the same ``n_resamples`` resamples of its examples."""
    strata = parts[0].strata
    if any(len(p.strata) != len(strata) or not np.array_equal(p.strata, strata) for p in parts):
        raise XstiltsError("A paired bootstrap needs both systems scored on the same examples, in the same order.")
    rng = np.random.default_rng(seed)
    groups = stratum_rows(strata)
    if (shared := shared_clusters(parts[0], groups)) is not None:
        return _cluster_resamples(parts, groups, shared, n_resamples, rng)
    per_stratum = []
    for rows in groups:
        idx = rows[rng.integers(0, len(rows), size=(n_resamples, len(rows)))]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_stratum.append([p.score[idx].sum(1) / p.weight[idx].sum(1) for p in parts])
    return np.mean(np.asarray(per_stratum), axis=0)


def translation_keys(ids: Sequence[str], languages: Sequence[str]) -> np.ndarray:
    """Each id without its own language (``udhr-de-3-1`` -> ``udhr-3-1``): the key its translations share."""
    return np.array([i.replace(f"-{lang}-", "-", 1) for i, lang in zip(ids, languages, strict=True)], dtype=str)


def shared_clusters(part: Scored, groups: list[np.ndarray]) -> np.ndarray | None:
    """The cluster keys (sorted) when some key stands in two or more strata (translations), else None: then each
    stratum is resampled on its own. A key may be missing from some strata (a UDHR paragraph a translation lacks)."""
    if part.clusters is None or len(groups) < 2:
        return None
    keys, strata_per_key = np.unique(
        np.concatenate([np.unique(part.clusters[rows]) for rows in groups]), return_counts=True
    )
    return keys if (strata_per_key > 1).any() else None


def _cluster_resamples(
    parts: Sequence[Scored], groups: list[np.ndarray], keys: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Resample the keys, each drawn key bringing its rows in every stratum that has it: translations of one review
    rise and fall together, so the mean over languages is not treated as languages' worth of independent evidence.
    A stratum none of whose keys was drawn (possible only for tiny strata) is left out of that resample's mean."""
    counts = rng.multinomial(len(keys), np.full(len(keys), 1 / len(keys)), size=n).astype(float)  # [n, keys]
    per_stratum = []
    for rows in groups:
        times = counts[:, np.searchsorted(keys, parts[0].clusters[rows])]  # [n, rows]: how often each row is drawn
        with np.errstate(invalid="ignore", divide="ignore"):
            per_stratum.append([(times @ p.score[rows]) / (times @ p.weight[rows]) for p in parts])
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.asarray(per_stratum), axis=0)
