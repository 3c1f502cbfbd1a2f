"""Zero-shot retrieval from mean-pooled sentence embeddings with faiss inner-product search.

:func:`retrieve` evaluates a task by its family: ``bitext`` (Tatoeba-style rows) and ``mining`` (BUCC rows
linked by ``gold_id``) in :mod:`~xstilts.retrieval.bitext`, ``ranking`` (queries and a candidate pool linked by
``relevant_ids``) in :mod:`~xstilts.retrieval.ranking`; the vectors come from :mod:`~xstilts.retrieval.embedding`
and the neighbour maths from :mod:`~xstilts.retrieval.search`. It returns the metrics of both splits and the test
split's predictions, which :func:`~xstilts.retrieval.predictions.write_retrieval_predictions` writes in XTREME's
layout.
"""

from __future__ import annotations

import datasets

from xstilts.errors import XstiltsError
from xstilts.retrieval.base import RetrievalResult
from xstilts.retrieval.bitext import bitext_retrieval, mining_retrieval
from xstilts.retrieval.embedding import Embedder
from xstilts.retrieval.predictions import write_retrieval_predictions
from xstilts.retrieval.ranking import ranking_retrieval

__all__ = ["Embedder", "RetrievalResult", "retrieve", "write_retrieval_predictions"]


def retrieve(
    family: str,
    dev: datasets.Dataset,
    test: datasets.Dataset,
    embedder: Embedder,
) -> RetrievalResult:
    """The retrieval evaluation of a task family ("bitext", "mining" or "ranking") with its test predictions."""
    evaluations = {"bitext": bitext_retrieval, "mining": mining_retrieval, "ranking": ranking_retrieval}
    if str(family) not in evaluations:
        raise XstiltsError(
            f"Retrieval evaluates bitext, mining and ranking tasks, not {family!r}; give a retrieval task."
        )
    return evaluations[str(family)](dev, test, embedder)
