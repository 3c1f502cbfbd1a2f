"""What a task is: a family, a label set, a metric, languages, a source, and how to prepare it.

Each task lives in its own module and registers itself with :func:`register`. Prepared
data is one Parquet file per split under ``data/prepared/<task>/`` in the canonical
schema of the task's family (see :data:`SCHEMAS`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa


class Family(StrEnum):
    CLASSIFICATION = "classification"  # single sentence or sentence pair -> one label
    MULTIPLE_CHOICE = "multiple_choice"  # context + question -> index of the right choice
    EXTRACTIVE_QA = "extractive_qa"  # context + question -> answer span(s) by character offset
    TAGGING = "tagging"  # one tag per word (POS, NER)
    BITEXT = "bitext"  # aligned sentence pairs for retrieval (non-English -> English)
    MINING = "mining"  # BUCC-style: unaligned sentences of two corpora, gold translation pairs linked by id
    RANKING = "ranking"  # LAReQA / Mewsli-X: queries, a candidate pool, the relevant candidates per query


class Role(StrEnum):
    INTERMEDIATE = "intermediate"  # English task trained in phase 2
    TARGET = "target"  # fine-tuned on English, evaluated zero-shot in other languages
    RETRIEVAL = "retrieval"  # evaluated straight from an encoder, no fine-tuning


_COMMON = [
    ("id", pa.string()),  # stable example id; rows that are translations of each other share the suffix
    ("language", pa.string()),  # ISO 639-1 where one exists
    ("domain", pa.string()),
    ("source", pa.string()),  # registry package and version, e.g. "bigbench==1.0.0"
    ("split", pa.string()),
]

SCHEMAS: dict[Family, pa.Schema] = {
    Family.CLASSIFICATION: pa.schema(
        _COMMON + [("text_a", pa.string()), ("text_b", pa.string()), ("label", pa.string())]
    ),
    # label: index into choices
    Family.MULTIPLE_CHOICE: pa.schema(
        _COMMON
        + [
            ("context", pa.string()),
            ("question", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("label", pa.int64()),
        ]
    ),
    # answers_start[i]: character offset of answers_text[i] in context (context[s:s+len(t)] == t)
    Family.EXTRACTIVE_QA: pa.schema(
        _COMMON
        + [
            ("context", pa.string()),
            ("question", pa.string()),
            ("answers_text", pa.list_(pa.string())),
            ("answers_start", pa.list_(pa.int64())),
        ]
    ),
    # tags[i] labels tokens[i] (words, not sub-words); tag sets are the task's labels
    Family.TAGGING: pa.schema(_COMMON + [("tokens", pa.list_(pa.string())), ("tags", pa.list_(pa.string()))]),
    # text: the sentence in `language`; en_text: its English translation (the retrieval target)
    Family.BITEXT: pa.schema(_COMMON + [("text", pa.string()), ("en_text", pa.string())]),
}


# One row per sentence of a corpus pair: `corpus` names the pair (e.g. "de-en"), so each language pair has its own
# English side; gold_id: on a non-English row, the id of its English translation in the same corpus (null: none).
SCHEMAS[Family.MINING] = pa.schema(_COMMON + [("corpus", pa.string()), ("text", pa.string()), ("gold_id", pa.string())])
# kind: "query" or "candidate". A query lists the ids of its relevant candidates; a candidate's list is empty.
# text_start: character offset of text inside context (the answer sentence in its paragraph, the mention in its
# article), null when text stands alone (a candidate with no context).
SCHEMAS[Family.RANKING] = pa.schema(
    _COMMON
    + [
        ("kind", pa.string()),
        ("text", pa.string()),
        ("context", pa.string()),
        ("text_start", pa.int64()),
        ("relevant_ids", pa.list_(pa.string())),
    ]
)


class Task:
    """A task declared once: everything the pipeline needs to know about it."""

    name: ClassVar[str]
    family: ClassVar[Family]
    role: ClassVar[Role]
    metric: ClassVar[str]
    labels: ClassVar[tuple[str, ...]] = ()
    languages: ClassVar[tuple[str, ...]] = ("en",)
    train_language: ClassVar[str] = "en"
    original_languages: ClassVar[tuple[str, ...]] = ()  # human originals among translations, reported apart
    train_from: ClassVar[str | None] = None  # train on this task's train split (same family), evaluate on mine
    source: ClassVar[str] = "offline"  # "offline" (registry packages) or "hub"
    packages: ClassVar[tuple[str, ...]] = ()  # keys of xstilts.data.sources.PACKAGES this task reads
    stands_for: ClassVar[str] = ""  # the paper / XTREME-R task this one stands in for
    license: ClassVar[str] = ""
    description: ClassVar[str] = ""
    unanswerable: ClassVar[bool] = False  # extractive QA: rows may have no answer (SQuAD 2.0)

    @property
    def schema(self) -> pa.Schema:
        return SCHEMAS[self.family]

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        """Read the fetched packages under ``raw_dir`` and write ``out_dir/<split>.parquet``.

        Returns the number of rows written per split.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define prepare()")


class HubTask(Task):
    """A task read from the Hugging Face Hub (or another source this machine may lack); offline it names its stand-in.

    A name may have an offline task and a hub task at once (``sst2``): ``data.source`` picks which one runs.
    """

    source = "hub"
    packages = ()  # nothing from the registries: fetch/extract skip hub tasks
    display: ClassVar[str] = ""  # the paper's name, e.g. "MNLI"
    stand_in: ClassVar[str] = ""  # the offline task to use instead (the same name when both sources exist)
    stand_in_kind: ClassVar[str] = ""  # what the stand-in is, e.g. "3-way NLI"

    @classmethod
    def needs_hub(cls) -> str:
        """The sentence (without its full stop) every failure to reach this task's source starts with."""
        shared = " with data.source: offline" if cls.stand_in == cls.name else ""
        kind = cls.stand_in_kind
        return f"{cls.display} needs the Hugging Face Hub; the offline {kind} task is `{cls.stand_in}`{shared}"


SOURCES = ("offline", "hub")
_REGISTRY: dict[str, dict[str, type[Task]]] = {source: {} for source in SOURCES}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task to the registry of its source under ``cls.name``."""
    if cls.source not in _REGISTRY:
        raise ValueError(f"task {cls.name!r} has unknown source {cls.source!r}")
    if cls.name in _REGISTRY[cls.source]:
        raise ValueError(f"task {cls.name!r} registered twice for source {cls.source!r}")
    _REGISTRY[cls.source][cls.name] = cls
    return cls


def registered(source: str = "offline") -> dict[str, type[Task]]:
    """The tasks of one source by name (a copy)."""
    return dict(_REGISTRY[source])
