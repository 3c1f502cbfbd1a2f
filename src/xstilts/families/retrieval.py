"""Retrieval families, scored straight from an encoder (:mod:`xstilts.retrieval`): no head, no features.

* bitext (Tatoeba-style): a sentence and its English translation; main metric top-1 ``accuracy``;
* mining (BUCC-style): unaligned sentences of two corpora, gold pairs linked by id; main metric ``f1``;
* ranking (LAReQA / Mewsli-X): queries, a candidate pool, the relevant candidates per query; main metric ``map``.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from xstilts.families.base import Family, FamilySpec, all_true, non_empty


class _Retrieval(FamilySpec):
    trainable = False


class Bitext(_Retrieval):
    family = Family.BITEXT
    # text: the sentence in `language`; en_text: its English translation (the retrieval target)
    columns = [("text", pa.string()), ("en_text", pa.string())]
    metric = "accuracy"

    def add_helpers(self, df: Any, task: Any) -> None:
        df["text_differs_from_en_text"] = [
            not isinstance(a, str) or not isinstance(b, str) or a.strip() != b.strip()
            for a, b in zip(df["text"].tolist(), df["en_text"].tolist(), strict=True)
        ]

    def expectations(self, gx: Any, task: Any) -> list:
        return [
            *non_empty(gx, "text", "the sentence in its language"),
            *non_empty(gx, "en_text", "its English translation"),
            all_true(gx, "text_differs_from_en_text", "text must differ from en_text (not an untranslated copy)"),
        ]


class Mining(_Retrieval):
    family = Family.MINING
    # One row per sentence of a corpus pair: `corpus` names the pair (e.g. "de-en"), so each language pair has its
    # own English side; gold_id: on a non-English row, the id of its English translation in the same corpus.
    columns = [("corpus", pa.string()), ("text", pa.string()), ("gold_id", pa.string())]
    metric = "f1"


class Ranking(_Retrieval):
    family = Family.RANKING
    # kind: "query" or "candidate". A query lists the ids of its relevant candidates; a candidate's list is empty.
    # text_start: character offset of text inside context (the answer sentence in its paragraph, the mention in
    # its article), null when text stands alone (a candidate with no context).
    columns = [
        ("kind", pa.string()),
        ("text", pa.string()),
        ("context", pa.string()),
        ("text_start", pa.int64()),
        ("relevant_ids", pa.list_(pa.string())),
    ]
    metric = "map"
