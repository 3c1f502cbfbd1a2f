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


class Role(StrEnum):
    INTERMEDIATE = "intermediate"  # English task trained in phase 2
    TARGET = "target"  # fine-tuned on English, evaluated zero-shot in other languages
    RETRIEVAL = "retrieval"  # evaluated straight from an encoder, no fine-tuning


SPLITS = ("train", "dev", "test")

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

    @property
    def schema(self) -> pa.Schema:
        return SCHEMAS[self.family]

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        """Read the fetched packages under ``raw_dir`` and write ``out_dir/<split>.parquet``.

        Returns the number of rows written per split.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define prepare()")


class HubTask(Task):
    """A task whose data only the Hugging Face Hub has; offline it names its stand-in."""

    source = "hub"
    stand_in: ClassVar[str] = ""
    display: ClassVar[str] = ""


_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"task {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Task]]:
    return dict(_REGISTRY)
