"""Zero-shot retrieval from mean-pooled sentence embeddings with faiss inner-product search.

* Tatoeba-style: each non-English sentence finds its English translation among all English sentences of the
  split; top-1 accuracy.
* BUCC-style mining: per language, a share of the non-English sentences is dropped (their English partners stay as
  unaligned distractors), pairs are mined with the ratio margin of Artetxe & Schwenk (2019), a score threshold is
  tuned for F1 on dev and applied to test.
* mAP@k for tasks with several relevant candidates per query (LAReQA, Mewsli-X in XTREME-R).

:func:`evaluate_retrieval` picks the evaluation by task family: bitext (Tatoeba-style rows), mining (BUCC rows
linked by ``gold_id``) or ranking (queries and a candidate pool linked by ``relevant_ids``). :func:`retrieve`
also returns the test split's predictions, which :func:`write_retrieval_predictions` writes in XTREME's layout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import faiss
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xstilts.errors import XstiltsError
from xstilts.modeling import mean_pool
from xstilts.xtreme_format import (
    KIND,
    XTREME_FOLDER,
    write_bucc_predictions,
    write_ranking_predictions,
    write_tatoeba_predictions,
)

BITEXT_COLUMNS = ("id", "language", "text", "en_text")


@torch.no_grad()
def embed(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int = -1,
    max_length: int = 256,
    batch_size: int = 32,
    second: Sequence[str] | None = None,
) -> np.ndarray:
    """L2-normalised mean-pooled vectors from hidden layer ``layer`` (-1 = last), float32 ``[n, hidden]``.

    ``second`` (one per text) encodes each text as a pair with it, truncating only the second segment.
    """
    if second is not None and len(second) != len(texts):
        raise XstiltsError(f"embed got {len(texts)} texts but {len(second)} second segments; give one per text.")
    encoder.eval()
    sizes = [len(t) + (len(second[i]) if second is not None else 0) for i, t in enumerate(texts)]
    order = np.argsort(sizes, kind="stable")
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        pair = [second[i] for i in idx] if second is not None else None
        enc = tokenizer(
            [texts[i] for i in idx],
            pair,
            padding=True,
            truncation="only_second" if pair is not None else True,
            max_length=max_length,
            return_tensors="pt",
        )
        hidden = encoder(**enc, output_hidden_states=True, return_dict=True).hidden_states[layer]
        out[idx] = mean_pool(hidden, enc["attention_mask"]).float().numpy()
    faiss.normalize_L2(out)
    return out


def _search(queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner products and indices of each query's ``min(k, len(candidates))`` best candidates, best first."""
    if len(candidates) == 0 or len(queries) == 0:
        raise XstiltsError("Retrieval needs at least one query and one candidate; check that the split is not empty.")
    index = faiss.IndexFlatIP(candidates.shape[1])
    index.add(np.ascontiguousarray(candidates, dtype=np.float32))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(candidates)))


def top1_accuracy(queries: np.ndarray, candidates: np.ndarray, gold: np.ndarray) -> float:
    """Share of queries whose inner-product nearest candidate is their gold index."""
    _, nearest = _search(queries, candidates, 1)
    return float((nearest[:, 0] == gold).mean())


def knn_mean_similarity(queries: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Mean inner product of each query with its k nearest candidates (k capped at the number of candidates)."""
    sims, _ = _search(queries, candidates, k)
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
    sims_xy, nn_xy = _search(x, y, k)
    sims_yx, nn_yx = _search(y, x, k)
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
    _, ranked = _search(query_vectors, candidate_vectors, k)
    return _map_of_ranked(ranked, relevant, k)


def _map_of_ranked(ranked: np.ndarray, relevant: list[set[int]], k: int) -> float:
    """Mean AP@k of candidate rankings (``ranked[q]``: candidate indices, best first) against relevant sets."""
    scores = []
    for row, rel in zip(ranked, relevant, strict=True):
        hit = np.fromiter((c in rel for c in row), dtype=bool, count=len(row))
        precision_at = np.cumsum(hit) / np.arange(1, len(row) + 1)
        scores.append(float(precision_at[hit].sum()) / min(len(rel), k))
    return float(np.mean(scores))


@dataclass(frozen=True)
class _Language:
    """One language of a split: embedded sentences, which are kept for mining, and each one's English index."""

    vectors: np.ndarray
    kept: np.ndarray
    english: np.ndarray  # index into the split's English vectors


@dataclass(frozen=True)
class _Split:
    english: np.ndarray
    languages: dict[str, _Language]


def _embed_split(
    ds: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
    share: float,
    seed: int,
) -> _Split:
    """Embed every sentence and every distinct English sentence of a split in one pass."""
    missing = [c for c in BITEXT_COLUMNS if c not in ds.column_names]
    if missing or len(ds) == 0:
        raise XstiltsError(
            f"A bitext split needs rows with columns {', '.join(BITEXT_COLUMNS)} (missing: {missing or 'none'}, "
            f"rows: {len(ds)}); re-run the task's prepare stage."
        )
    cols = {c: list(ds[c]) for c in BITEXT_COLUMNS}
    english = sorted(set(cols["en_text"]))
    position = {t: i for i, t in enumerate(english)}
    vectors = embed(cols["text"] + english, tokenizer, encoder, layer, max_length, batch_size)
    languages, ids = np.asarray(cols["language"]), np.asarray(cols["id"], dtype=object)
    target = np.asarray([position[t] for t in cols["en_text"]])
    per_language = {}
    for lang in sorted(set(cols["language"])):
        rows = np.flatnonzero(languages == lang)
        kept = ~distractor_mask(list(ids[rows]), share, seed)
        per_language[lang] = _Language(vectors[rows], kept, target[rows])
    return _Split(vectors[len(ds) :], per_language)


@dataclass(frozen=True)
class MinedLanguage:
    """One language's mined candidates, best score first: margin scores, which candidates are gold, the number of
    gold pairs, and (mining family) each candidate's (source id, English id)."""

    scores: np.ndarray
    correct: np.ndarray
    n_gold: int
    pairs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RetrievalResult:
    """Metrics of both splits, and the test split's predictions per language.

    ``predictions[lang]``: bitext, each sentence's predicted English as a 0-based row of the language's English side
    (file order); mining, the (source id, English id) pairs scoring at least the tuned threshold; ranking,
    ``{query id: candidate ids, best first}`` (the top :data:`RANKING_K`). Ids are xstilts ids.
    """

    family: str
    metrics: dict[str, float]
    predictions: dict[str, Any] = field(default_factory=dict)


def _mined_for(lang: _Language, english: np.ndarray, k: int) -> MinedLanguage:
    """Mine one language against its own English partners; return scores, which are gold, and the gold count."""
    pool = np.unique(lang.english)  # partners of kept and dropped sentences alike
    src_rows = np.flatnonzero(lang.kept)
    found = mine(lang.vectors[src_rows], english[pool], k)
    gold = {(int(s), int(t)) for s, t in zip(src_rows, lang.english[src_rows], strict=True)}
    correct = np.asarray(
        [(int(src_rows[s]), int(pool[t])) in gold for s, t in zip(found.source, found.target, strict=True)], dtype=bool
    )
    return MinedLanguage(found.score, correct, len(gold))


def _top1(split: _Split, prefix: str) -> dict[str, float]:
    metrics = {
        f"{prefix}_accuracy_{lang}": top1_accuracy(data.vectors, split.english, data.english)
        for lang, data in split.languages.items()
    }
    metrics[f"{prefix}_accuracy_zeroshot"] = float(np.mean(list(metrics.values())))
    return metrics


def tatoeba_indices(lang: _Language, english: np.ndarray) -> list[int]:
    """Each sentence's nearest English among its own language's English side, as a 0-based row of that side.

    XTREME compares these with line numbers, so each language searches only its own English sentences (the
    accuracy metric searches the whole split's). A prediction whose text is the gold translation's is the gold row
    (repeated English sentences embed identically); any other is the first row holding that text.
    """
    pool = np.unique(lang.english)
    _, nearest = _search(lang.vectors, english[pool], 1)
    first_row: dict[int, int] = {}
    for row, target in enumerate(lang.english.tolist()):
        first_row.setdefault(target, row)
    predicted = pool[nearest[:, 0]].tolist()
    gold = lang.english.tolist()
    return [row if p == gold[row] else first_row[p] for row, p in enumerate(predicted)]


def tatoeba_accuracy(
    ds: datasets.Dataset, tokenizer, encoder, prefix: str, layer: int, max_length: int, batch_size: int
) -> dict[str, float]:
    """For each language, find each sentence's English translation among all English sentences of the split."""
    return _top1(_embed_split(ds, tokenizer, encoder, layer, max_length, batch_size, 0.0, 0), prefix)


def bitext_retrieval(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
    distractor_share: float = 0.2,
    k: int = 4,
    seed: int = 0,
) -> RetrievalResult:
    """:func:`evaluate_bitext`'s metrics and the test split's Tatoeba predictions (:func:`tatoeba_indices`)."""
    named = (("dev", dev), ("test", test)) if len(dev) else (("test", test),)
    splits = {
        name: _embed_split(ds, tokenizer, encoder, layer, max_length, batch_size, distractor_share, seed)
        for name, ds in named
    }
    metrics: dict[str, float] = {}
    for name, split in splits.items():
        metrics.update(_top1(split, name))
    if "dev" in splits:
        mined = {n: {lang: _mined_for(d, s.english, k) for lang, d in s.languages.items()} for n, s in splits.items()}
        metrics.update(mining_metrics(mined))
    test_split = splits["test"]
    predictions = {lang: tatoeba_indices(data, test_split.english) for lang, data in test_split.languages.items()}
    return RetrievalResult("bitext", metrics, predictions)


def evaluate_bitext(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
    distractor_share: float = 0.2,
    k: int = 4,
    seed: int = 0,
) -> dict[str, float]:
    """Tatoeba top-1 accuracy and BUCC-style mining F1 per language, on dev and test.

    Each split is embedded once. Mining drops ``distractor_share`` of each language's non-English sentences (seeded
    hash of the id), leaving their English partners as distractors; the margin threshold is tuned for F1 per language
    on dev (so dev F1 is optimistic) and applied to test. A test language missing from dev uses the threshold tuned
    on all dev languages pooled (``bucc_threshold_pooled``). Metrics: ``<split>_accuracy_<lang|zeroshot>``,
    ``<split>_bucc_{f1,precision,recall}_<lang>``, ``<split>_bucc_f1_zeroshot`` and ``bucc_threshold_<lang>``.
    An empty dev split (Tatoeba has only a test split) gives test accuracy only: mining needs dev to tune on.
    """
    opts = {"distractor_share": distractor_share, "k": k, "seed": seed}
    return bitext_retrieval(dev, test, tokenizer, encoder, layer, max_length, batch_size, **opts).metrics


def mining_thresholds(mined: dict[str, dict[str, MinedLanguage]]) -> dict[str, float]:
    """Thresholds tuned per language on ``mined["dev"]``, ``pooled`` over its languages, and the pooled one for
    every language of another split that dev lacks."""
    dev = mined["dev"]
    thresholds = {lang: tune_threshold(m.scores, m.correct, m.n_gold) for lang, m in dev.items()}
    pooled = [np.concatenate([getattr(m, name) for m in dev.values()]) for name in ("scores", "correct")]
    thresholds["pooled"] = tune_threshold(*pooled, sum(m.n_gold for m in dev.values()))
    for languages in mined.values():
        for lang in languages:
            thresholds.setdefault(lang, thresholds["pooled"])
    return thresholds


def mining_metrics(mined: dict[str, dict[str, MinedLanguage]]) -> dict[str, float]:
    """Thresholds tuned per language on ``mined["dev"]`` (pooled for languages missing there), F1 on every split.

    Metrics: ``<split>_bucc_{f1,precision,recall}_<lang>``, ``<split>_bucc_f1_zeroshot`` (mean F1 over languages)
    and ``bucc_threshold_<lang|pooled>``.
    """
    thresholds = mining_thresholds(mined)
    metrics: dict[str, float] = {}
    for name, languages in mined.items():
        f1s = []
        for lang, m in languages.items():
            p, r, f1 = precision_recall_f1(m.scores, m.correct, m.n_gold, thresholds[lang])
            metrics.update({f"{name}_bucc_precision_{lang}": p, f"{name}_bucc_recall_{lang}": r})
            metrics[f"{name}_bucc_f1_{lang}"] = f1
            f1s.append(f1)
        metrics[f"{name}_bucc_f1_zeroshot"] = float(np.mean(f1s))
    metrics.update({f"bucc_threshold_{lang}": t for lang, t in thresholds.items()})
    return metrics


MINING_COLUMNS = ("id", "language", "corpus", "text", "gold_id")
RANKING_COLUMNS = ("id", "language", "kind", "text", "context", "text_start", "relevant_ids")
RANKING_K = 20  # XTREME-R reports mAP@20 for LAReQA and Mewsli-X
MENTION_WINDOW_CHARS = 150  # context kept on each side of a marked mention (Mewsli-X queries)


def _columns(ds: datasets.Dataset, needed: tuple[str, ...], what: str, split: str) -> dict[str, list]:
    """The needed columns of a split as lists; a missing column or an empty split raises one sentence."""
    missing = [c for c in needed if c not in ds.column_names]
    if missing or len(ds) == 0:
        raise XstiltsError(
            f"The {split} split needs {what} rows with columns {', '.join(needed)} (missing: {missing or 'none'}, "
            f"rows: {len(ds)}); re-run the task's prepare stage."
        )
    return {c: list(ds[c]) for c in needed}


def _mine_corpus(rows: np.ndarray, cols: dict[str, list], vectors: np.ndarray, where: str, **opts) -> MinedLanguage:
    """Mine one corpus pair (its non-English rows against its English rows) and mark the gold pairs."""
    english = [int(i) for i in rows if cols["language"][i] == "en"]
    source = [int(i) for i in rows if cols["language"][i] != "en"]
    if not english or not source:
        raise XstiltsError(f"{where} needs English and non-English sentences; re-run the task's prepare stage.")
    english_at = {cols["id"][i]: n for n, i in enumerate(english)}
    gold = [cols["gold_id"][i] for i in source]
    if any(g is not None and g not in english_at for g in gold):
        raise XstiltsError(f"{where} has a gold_id that is no English sentence of the pair; re-run its prepare stage.")
    linked = [cols["id"][i] for i, g in zip(source, gold, strict=True) if g is not None]
    dropped = set(np.asarray(linked, dtype=object)[distractor_mask(linked, opts["share"], opts["seed"])])
    kept = [n for n, i in enumerate(source) if cols["id"][i] not in dropped]
    found = mine(vectors[[source[n] for n in kept]], vectors[english], opts["k"])
    target = [english_at[g] if g is not None else -1 for g in gold]
    found_pairs = list(zip(found.source.tolist(), found.target.tolist(), strict=True))
    correct = np.asarray([target[kept[s]] == t for s, t in found_pairs], dtype=bool)
    ids = tuple((cols["id"][source[kept[s]]], cols["id"][english[t]]) for s, t in found_pairs)
    return MinedLanguage(found.score, correct, sum(target[n] >= 0 for n in kept), ids)


def _mined_split(ds: datasets.Dataset, split: str, embed_texts, **opts) -> dict[str, MinedLanguage]:
    """Per language pair of a mining split (keyed by its non-English language): mined scores and gold marks."""
    cols = _columns(ds, MINING_COLUMNS, "mining (BUCC)", split)
    vectors = embed_texts(cols["text"])
    corpora = np.asarray(cols["corpus"], dtype=object)
    out = {}
    for corpus in sorted(set(cols["corpus"])):
        rows = np.flatnonzero(corpora == corpus)
        foreign = {cols["language"][i] for i in rows} - {"en"}
        if len(foreign) != 1:
            raise XstiltsError(f"Corpus {corpus} of the {split} split must pair one language with English.")
        out[foreign.pop()] = _mine_corpus(rows, cols, vectors, f"Corpus {corpus} of the {split} split", **opts)
    return out


def mention_in_context(context: str, start: int, mention: str, window: int = MENTION_WINDOW_CHARS) -> str:
    """The mention marked with braces in up to ``window`` characters of context on each side (Mewsli-X style).

    Braces already in the context become parentheses; a cut side ends at a whole word.
    """
    if context[start : start + len(mention)] != mention:
        raise XstiltsError(f"Mention {mention!r} is not at offset {start} of its context; re-run the prepare stage.")
    left, right = context[max(0, start - window) : start], context[start + len(mention) : start + len(mention) + window]
    if start > window and " " in left:
        left = left[left.index(" ") + 1 :]
    if start + len(mention) + window < len(context) and " " in right:
        right = right[: right.rindex(" ")]
    clean = str.maketrans("{}", "()")
    return f"{left.translate(clean)}{{{mention}}}{right.translate(clean)}"


def _ranking_split(ds: datasets.Dataset, split: str, embed_rows, k: int) -> tuple[dict[str, float], dict[str, Any]]:
    """mAP@k per query language of one ranking split, every query against the split's whole candidate pool, and
    per query language ``{query id: the top k candidate ids, best first}``."""
    cols = _columns(ds, RANKING_COLUMNS, "ranking", split)
    kinds = np.asarray(cols["kind"], dtype=object)
    queries, candidates = np.flatnonzero(kinds == "query"), np.flatnonzero(kinds == "candidate")
    if len(queries) == 0 or len(candidates) == 0 or len(queries) + len(candidates) != len(kinds):
        raise XstiltsError(
            f"The {split} split needs rows of kind 'query' and 'candidate' only ({len(queries)} queries, "
            f"{len(candidates)} candidates of {len(kinds)} rows); re-run the task's prepare stage."
        )
    position = {cols["id"][i]: n for n, i in enumerate(candidates)}
    relevant = []
    for i in queries:
        ids = cols["relevant_ids"][i] or []
        if not ids or any(r not in position for r in ids):
            raise XstiltsError(f"Query {cols['id'][i]} of the {split} split names no candidate of the split.")
        relevant.append({position[r] for r in ids})
    query_texts = [
        mention_in_context(cols["context"][i], cols["text_start"][i], cols["text"][i])
        if cols["context"][i] and cols["text_start"][i] is not None
        else cols["text"][i]
        for i in queries
    ]
    q_vectors = embed_rows(query_texts, None)
    contexts = [cols["context"][i] or "" for i in candidates]
    c_vectors = embed_rows([cols["text"][i] for i in candidates], contexts if any(contexts) else None)
    languages = np.asarray([cols["language"][i] for i in queries], dtype=object)
    metrics, rankings = {}, {}
    for lang in sorted(set(languages)):
        rows = np.flatnonzero(languages == lang)
        query_ids = [cols["id"][queries[r]] for r in rows]
        if len(set(query_ids)) != len(query_ids):
            raise XstiltsError(f"The {split} split repeats a {lang} query id; re-run the task's prepare stage.")
        _, ranked = _search(q_vectors[rows], c_vectors, k)
        metrics[f"{split}_map{k}_{lang}"] = _map_of_ranked(ranked, [relevant[r] for r in rows], k)
        rankings[lang] = {
            q: [cols["id"][candidates[c]] for c in row.tolist()] for q, row in zip(query_ids, ranked, strict=True)
        }
    others = [v for name, v in metrics.items() if not name.endswith("_en")]
    if others:
        metrics[f"{split}_map{k}_zeroshot"] = float(np.mean(others))
    return metrics, rankings


def mining_retrieval(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
    distractor_share: float = 0.2,
    k: int = 4,
    seed: int = 0,
) -> RetrievalResult:
    """:func:`evaluate_mining`'s metrics and, per language, the test pairs scoring at least its tuned threshold."""

    def embed_texts(texts: list[str]) -> np.ndarray:
        return embed(texts, tokenizer, encoder, layer, max_length, batch_size)

    opts = {"share": distractor_share, "seed": seed, "k": k}
    mined = {name: _mined_split(ds, name, embed_texts, **opts) for name, ds in (("dev", dev), ("test", test))}
    thresholds = mining_thresholds(mined)
    predictions = {
        lang: [m.pairs[i] for i in np.flatnonzero(m.scores >= thresholds[lang])] for lang, m in mined["test"].items()
    }
    return RetrievalResult("mining", mining_metrics(mined), predictions)


def evaluate_mining(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
    distractor_share: float = 0.2,
    k: int = 4,
    seed: int = 0,
) -> dict[str, float]:
    """BUCC-style mining per language pair (``corpus``): ratio-margin mining, threshold tuned on dev, F1 on test.

    Each pair's non-English sentences are mined against its English ones. Sentences linked by ``gold_id`` lose
    ``distractor_share`` of their number (seeded hash of the id) so that their English partners stay as distractors
    (the Hub's BUCC copy holds only gold pairs); unlinked sentences are always kept. Metrics as
    :func:`mining_metrics`, keyed by the non-English language.
    """
    opts = {"distractor_share": distractor_share, "k": k, "seed": seed}
    return mining_retrieval(dev, test, tokenizer, encoder, layer, max_length, batch_size, **opts).metrics


def ranking_retrieval(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
    k: int = RANKING_K,
) -> RetrievalResult:
    """:func:`evaluate_ranking`'s metrics and the test queries' top ``k`` candidate ids per language."""

    def embed_rows(texts: list[str], second: list[str] | None) -> np.ndarray:
        return embed(texts, tokenizer, encoder, layer, max_length, batch_size, second)

    metrics = {} if len(dev) == 0 else _ranking_split(dev, "dev", embed_rows, k)[0]
    test_metrics, rankings = _ranking_split(test, "test", embed_rows, k)
    return RetrievalResult("ranking", {**metrics, **test_metrics}, rankings)


def evaluate_ranking(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
    k: int = RANKING_K,
) -> dict[str, float]:
    """mAP@k per query language (``<split>_map<k>_<lang>``, ``_zeroshot``: mean over non-English languages).

    Every query of a split ranks the split's whole candidate pool, all languages together: LAReQA's X-X setting,
    which XTREME-R reports (a question's answer sentence in every language is relevant). A query with context and
    an offset (a Mewsli-X mention) is embedded as the braced mention in its context; a candidate with context (a
    LAReQA sentence) as the pair (sentence, paragraph). An empty dev split is skipped (LAReQA has only a test split).
    """
    return ranking_retrieval(dev, test, tokenizer, encoder, layer, max_length, batch_size, k).metrics


def retrieve(
    family: str,
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
) -> RetrievalResult:
    """The retrieval evaluation of a task family ("bitext", "mining" or "ranking") with its test predictions."""
    evaluations = {"bitext": bitext_retrieval, "mining": mining_retrieval, "ranking": ranking_retrieval}
    if str(family) not in evaluations:
        raise XstiltsError(
            f"Retrieval evaluates bitext, mining and ranking tasks, not {family!r}; give a retrieval task."
        )
    return evaluations[str(family)](dev, test, tokenizer, encoder, layer, max_length, batch_size)


def evaluate_retrieval(
    family: str,
    dev: datasets.Dataset,
    test: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int,
    max_length: int,
    batch_size: int,
) -> dict[str, float]:
    """The metrics of :func:`retrieve` (see each family's ``evaluate_*`` function)."""
    return retrieve(family, dev, test, tokenizer, encoder, layer, max_length, batch_size).metrics


# the XTREME folders each family writes, and the xstilts id prefixes (tasks.xtreme_convert) in front of XTREME's own
# ids: (source or query, English or candidate); ``{lang}`` is the file's language
FAMILY_FOLDERS = {"bitext": ("tatoeba",), "mining": ("bucc2018",), "ranking": ("mewslix", "lareqa")}
ID_PREFIXES = {
    "bucc2018": ("bucc-{lang}-en-", "bucc-{lang}-en-"),  # bucc-de-en-de-000000031 -> de-000000031
    "mewslix": ("mewslix-m-", "mewslix-test-e-"),  # example id; WikiData QID
    "lareqa": ("lareqa-q-", "lareqa-"),  # question id (shared by its translations); <lang>-<article>-<para>-<sent>
}


def _xtreme_id(ident: str, prefix: str) -> str:
    if not str(ident).startswith(prefix) or len(str(ident)) == len(prefix):
        raise XstiltsError(f"Id {ident!r} does not start with {prefix!r}; re-run the task's prepare stage.")
    return str(ident)[len(prefix) :]


def write_retrieval_predictions(task_name: str, result: RetrievalResult, out_dir: Path) -> list[Path]:
    """Write ``result``'s test predictions as ``out_dir/<folder>/test-<lang>.<ext>`` (XTREME's layout, XTREME ids).

    Only XTREME tasks (keys of ``XTREME_FOLDER``: tatoeba, bucc, mewslix, lareqa) have a format: any other task
    (the offline udhr, libreoffice_help) writes nothing and returns ``[]``. Returns the files written.
    """
    if task_name not in XTREME_FOLDER:
        return []
    folder = XTREME_FOLDER[task_name]
    if folder not in FAMILY_FOLDERS.get(str(result.family), ()):
        raise XstiltsError(
            f"{task_name} takes {KIND[folder][0]} predictions, not {result.family} retrieval results; "
            "pass the result of retrieving that task."
        )
    if not result.predictions:
        raise XstiltsError(f"The {task_name} result holds no test predictions; evaluate it with retrieve() first.")
    if folder == "tatoeba":
        return write_tatoeba_predictions(
            {lang: [int(i) for i in idx] for lang, idx in result.predictions.items()}, out_dir
        )
    first, second = ID_PREFIXES[folder]
    if folder == "bucc2018":
        pairs = {
            lang: [(_xtreme_id(s, first.format(lang=lang)), _xtreme_id(t, second.format(lang=lang))) for s, t in mined]
            for lang, mined in result.predictions.items()
        }
        return write_bucc_predictions(pairs, out_dir)
    rankings = {}
    for lang, ranked in result.predictions.items():
        rankings[lang] = {_xtreme_id(q, first): [_xtreme_id(c, second) for c in cands] for q, cands in ranked.items()}
        if len(rankings[lang]) != len(ranked):
            raise XstiltsError(f"Two {folder} {lang} queries share an XTREME id; re-run the task's prepare stage.")
    return write_ranking_predictions(task_name, rankings, out_dir)
