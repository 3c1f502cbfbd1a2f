"""Ranking retrieval (LAReQA, Mewsli-X): every query ranks the split's whole candidate pool; mAP@k per language."""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np

from xstilts.errors import XstiltsError
from xstilts.retrieval import embedding
from xstilts.retrieval.base import RetrievalResult, split_columns
from xstilts.retrieval.search import map_of_ranked, search

RANKING_COLUMNS = ("id", "language", "kind", "text", "context", "text_start", "relevant_ids")
RANKING_K = 20  # XTREME-R reports mAP@20 for LAReQA and Mewsli-X
MENTION_WINDOW_CHARS = 150  # context kept on each side of a marked mention (Mewsli-X queries)


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
    cols = split_columns(ds, RANKING_COLUMNS, "ranking", split)
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
        _, ranked = search(q_vectors[rows], c_vectors, k)
        metrics[f"{split}_map{k}_{lang}"] = map_of_ranked(ranked, [relevant[r] for r in rows], k)
        rankings[lang] = {
            q: [cols["id"][candidates[c]] for c in row.tolist()] for q, row in zip(query_ids, ranked, strict=True)
        }
    others = [v for name, v in metrics.items() if not name.endswith("_en")]
    if others:
        metrics[f"{split}_map{k}_zeroshot"] = float(np.mean(others))
    return metrics, rankings


def ranking_retrieval(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    embedder: embedding.Embedder,
    k: int = RANKING_K,
) -> RetrievalResult:
    """mAP@k per query language (``<split>_map<k>_<lang>``, ``_zeroshot``: mean over non-English languages), and
    the test queries' top ``k`` candidate ids per language.

    Every query of a split ranks the split's whole candidate pool, all languages together: LAReQA's X-X setting,
    which XTREME-R reports (a question's answer sentence in every language is relevant). A query with context and
    an offset (a Mewsli-X mention) is embedded as the braced mention in its context; a candidate with context (a
    LAReQA sentence) as the pair (sentence, paragraph). An empty dev split is skipped (LAReQA has only a test split).
    """

    metrics = {} if len(dev) == 0 else _ranking_split(dev, "dev", embedder, k)[0]
    test_metrics, rankings = _ranking_split(test, "test", embedder, k)
    return RetrievalResult("ranking", {**metrics, **test_metrics}, rankings)
