"""Nearest-neighbour maths on L2-normalised vectors (faiss inner-product search): top-1 accuracy, the ratio
margin and margin-based mining of Artetxe & Schwenk (2019), F1 and its tuned threshold, seeded distractors, and
mAP@k as XTREME-R computes it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from xstilts.errors import XstiltsError


def search(queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner products and indices of each query's ``min(k, len(candidates))`` best candidates, best first."""
    if len(candidates) == 0 or len(queries) == 0:
        raise XstiltsError("Retrieval needs at least one query and one candidate; check that the split is not empty.")
    index = faiss.IndexFlatIP(candidates.shape[1])
    index.add(np.ascontiguousarray(candidates, dtype=np.float32))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(candidates)))


def top1_correct(queries: np.ndarray, candidates: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per query: is its inner-product nearest candidate its gold index."""
    _, nearest = search(queries, candidates, 1)
    return nearest[:, 0] == gold


def knn_mean_similarity(queries: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Mean inner product of each query with its k nearest candidates (k capped at the number of candidates)."""
    sims, _ = search(queries, candidates, k)
    return sims.mean(axis=1)


def _margin(cos: np.ndarray, mean_x: np.ndarray, mean_y: np.ndarray) -> np.ndarray:
    denominator = (mean_x + mean_y) / 2
    if np.any(denominator <= 0):
        raise XstiltsError(
            "The ratio margin is undefined because some sentences have no positive neighbour similarity; "
            "the embeddings are degenerate, so check the encoder and the retrieve layer."
        )
    return cos / denominator


def pair_margins(x: np.ndarray, y: np.ndarray, src: np.ndarray, tgt: np.ndarray, k: int = 4) -> np.ndarray:
    """Ratio margin of the pairs ``(x[src[i]], y[tgt[i]])``.

    margin(x, y) = cos(x, y) / (sum_{z in NN_k(x)} cos(x, z) / 2k + sum_{z in NN_k(y)} cos(y, z) / 2k),
    with NN_k(x) among ``y`` and NN_k(y) among ``x`` (Artetxe & Schwenk 2019). Vectors must be L2-normalised.
    """
    mean_x, mean_y = knn_mean_similarity(x, y, k), knn_mean_similarity(y, x, k)
    cos = np.einsum("ij,ij->i", x[src], y[tgt])
    return _margin(cos, mean_x[src], mean_y[tgt])


@dataclass(frozen=True)
class Mined:
    """One-to-one candidate pairs (source index, target index, margin score), best score first."""

    source: np.ndarray
    target: np.ndarray
    score: np.ndarray


def mine(x: np.ndarray, y: np.ndarray, k: int = 4) -> Mined:
    """Margin-based mining, "max" strategy: each source's best target and each target's best source (by margin
    among their k nearest neighbours), united and greedily kept one-to-one from the best score down."""
    if k < 1:
        raise XstiltsError(f"The margin neighbourhood k must be at least 1, not {k}; set a positive k.")
    sims_xy, nn_xy = search(x, y, k)
    sims_yx, nn_yx = search(y, x, k)
    mean_x, mean_y = sims_xy.mean(axis=1), sims_yx.mean(axis=1)
    forward = _margin(sims_xy, mean_x[:, None], mean_y[nn_xy])
    backward = _margin(sims_yx, mean_x[nn_yx], mean_y[:, None])
    best_f, best_b = forward.argmax(axis=1), backward.argmax(axis=1)
    rows_x, rows_y = np.arange(len(x)), np.arange(len(y))
    src = np.concatenate([rows_x, nn_yx[rows_y, best_b]])
    tgt = np.concatenate([nn_xy[rows_x, best_f], rows_y])
    score = np.concatenate([forward[rows_x, best_f], backward[rows_y, best_b]])
    keep, used_src, used_tgt = [], set(), set()
    for i in np.argsort(-score, kind="stable"):
        if src[i] not in used_src and tgt[i] not in used_tgt:
            used_src.add(src[i])
            used_tgt.add(tgt[i])
            keep.append(i)
    keep = np.asarray(keep, dtype=np.int64)
    return Mined(src[keep], tgt[keep], score[keep])


def precision_recall_f1(scores: np.ndarray, correct: np.ndarray, n_gold: int, threshold: float) -> tuple[float, ...]:
    """Precision, recall and F1 of the candidates scoring at least ``threshold`` against ``n_gold`` gold pairs."""
    if n_gold < 1:
        raise XstiltsError("Bitext mining needs at least one gold pair; check that the split has sentences.")
    predicted = scores >= threshold
    hits = int(correct[predicted].sum())
    precision = hits / int(predicted.sum()) if predicted.any() else 0.0
    recall = hits / n_gold
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def tune_threshold(scores: np.ndarray, correct: np.ndarray, n_gold: int) -> float:
    """The score threshold with the best F1 (midway to the next lower score); above every score if none is right."""
    if n_gold < 1 or len(scores) == 0:
        raise XstiltsError("Threshold tuning needs mined candidates and gold pairs; check the dev split.")
    order = np.argsort(-scores, kind="stable")
    ranked, right = scores[order], correct[order].astype(np.int64)
    hits = np.cumsum(right)
    precision, recall = hits / np.arange(1, len(ranked) + 1), hits / n_gold
    f1 = np.where(hits > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    f1[np.r_[ranked[1:] == ranked[:-1], False]] = -1.0  # a cut must not split tied scores
    best = int(np.argmax(f1))
    if f1[best] <= 0:
        return float(np.nextafter(ranked[0], np.inf))
    return float((ranked[best] + ranked[best + 1]) / 2) if best + 1 < len(ranked) else float(ranked[best])


def distractor_mask(ids: Sequence[str], share: float, seed: int = 0) -> np.ndarray:
    """True for the ids to drop: a seeded hash of each id below ``share``; at least one id is always kept."""
    if not 0.0 <= share < 1.0:
        raise XstiltsError(f"The distractor share must be in [0, 1), not {share}; set e.g. 0.2.")
    draws = np.asarray(
        [int.from_bytes(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest(), "big") / 2**64 for i in ids]
    )
    drop = draws < share
    if len(ids) and drop.all():
        drop[int(np.argmax(draws))] = False
    return drop


def map_at_k(query_vectors: np.ndarray, candidate_vectors: np.ndarray, relevant: list[set[int]], k: int = 20) -> float:
    """Mean average precision at k over queries ranked by inner product (pass L2-normalised vectors for cosine).

    AP@k of a query = sum over ranks i <= k holding a relevant candidate of (relevant found up to i) / i, divided
    by min(|relevant|, k), as in XTREME-R's LAReQA and Mewsli-X evaluation.
    """
    if len(relevant) != len(query_vectors):
        n = len(query_vectors)
        raise XstiltsError(f"map_at_k got {n} queries but {len(relevant)} relevant sets; give one set per query.")
    if k < 1:
        raise XstiltsError(f"map_at_k needs k >= 1, not {k}; pass a positive k.")
    for q, rel in enumerate(relevant):
        if not rel or min(rel) < 0 or max(rel) >= len(candidate_vectors):
            raise XstiltsError(f"Query {q} needs a non-empty set of valid candidate indices; fix its labels.")
    _, ranked = search(query_vectors, candidate_vectors, k)
    return map_of_ranked(ranked, relevant, k)


def map_of_ranked(ranked: np.ndarray, relevant: list[set[int]], k: int) -> float:
    """Mean AP@k of candidate rankings (``ranked[q]``: candidate indices, best first) against relevant sets."""
    scores = []
    for row, rel in zip(ranked, relevant, strict=True):
        hit = np.fromiter((c in rel for c in row), dtype=bool, count=len(row))
        precision_at = np.cumsum(hit) / np.arange(1, len(row) + 1)
        scores.append(float(precision_at[hit].sum()) / min(len(rel), k))
    return float(np.mean(scores))
