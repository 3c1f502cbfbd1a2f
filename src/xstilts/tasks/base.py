"""What a task is: a family, a label set, languages, a source, and how to prepare it.

Each task lives in its own module and registers itself with :func:`register`. Prepared
data is one Parquet file per split under ``data/prepared/<task>/`` in the canonical
schema of the task's family; the family (:mod:`xstilts.families`) also fixes the task's main metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from xstilts.data.packages import PACKAGES
from xstilts.families import SCHEMAS, Family, FamilySpec  # noqa: F401  (SCHEMAS, Family: re-exported)
from xstilts.families import spec as family_spec


class Role(StrEnum):
    INTERMEDIATE = "intermediate"  # English task trained in phase 2
    TARGET = "target"  # fine-tuned on English, evaluated zero-shot in other languages
    RETRIEVAL = "retrieval"  # evaluated straight from an encoder, no fine-tuning


class Task:
    """A task declared once: everything the pipeline needs to know about it."""

    name: ClassVar[str]
    family: ClassVar[Family]
    role: ClassVar[Role]
    labels: ClassVar[tuple[str, ...]] = ()
    languages: ClassVar[tuple[str, ...]] = ("en",)
    train_language: ClassVar[str] = "en"
    original_languages: ClassVar[tuple[str, ...]] = ()  # human originals among translations, reported apart
    train_from: ClassVar[str | None] = None  # train on this task's train split (same family), evaluate on mine
    source: ClassVar[str] = "offline"  # "offline" (registry packages) or "hub"
    packages: ClassVar[tuple[str, ...]] = ()  # keys of xstilts.data.sources.PACKAGES this task reads
    stands_for: ClassVar[str] = ""  # the paper / XTREME-R task this one stands in for
    license: ClassVar[str] = ""
    cleaned: ClassVar[str] = ""  # what prepare changed in the source's rows (BOMs, duplicates, markup), for the card
    description: ClassVar[str] = ""
    unanswerable: ClassVar[bool] = False  # extractive QA: rows may have no answer (SQuAD 2.0)
    # the domains its rows cover, named as the targets name theirs: for the study, a target domain that an
    # intermediate task covers is not unseen for the runs trained on it (a task with one ``domain`` declares it)
    domains: ClassVar[tuple[str, ...]] = ()
    # rows each expected language must have over all splits (validation); fewer make its score noise
    min_rows: ClassVar[int] = 20
    max_rows: ClassVar[int | None] = None  # at most this many (None: open), e.g. the source's whole size

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.domains and isinstance(one := getattr(cls, "domain", None), str) and one:
            cls.domains = (one,)

    @classmethod
    def served(cls) -> bool:
        """Whether the registries still serve every package the task reads (a fresh clone can fetch it)."""
        return all(PACKAGES[key].served for key in cls.packages)

    @property
    def spec(self) -> FamilySpec:
        return family_spec(self.family)

    @property
    def schema(self) -> pa.Schema:
        return self.spec.schema

    @property
    def metric(self) -> str:
        """The family's main metric for this task's labels (NER tag sets: entity F1)."""
        return self.spec.main_metric(self.labels)

    def expected_languages(self, settings: Mapping[str, Any]) -> tuple[str, ...]:
        """The languages its prepared data must hold: ``settings["languages"]`` (``data.<task>.languages``) for a
        task that takes that setting, else the declared :attr:`languages`."""
        return tuple(dict.fromkeys(settings.get("languages") or self.languages))

    def count_bounds(self, settings: Mapping[str, Any]) -> dict[str, tuple[int, int | None]]:
        """(min, max) rows per expected language, over all splits, for validation."""
        return {lang: (self.min_rows, self.max_rows) for lang in self.expected_languages(settings)}

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
    stand_in: ClassVar[str] = ""  # the served offline task to use instead (same name: both sources); "": none
    stand_in_kind: ClassVar[str] = ""  # what the stand-in is, e.g. "3-way NLI"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in vars(cls) and not cls.stands_for:
            cls.stands_for = cls.paper_task()

    @classmethod
    def paper_task(cls) -> str:
        """What a task that sets no ``stands_for`` stands for: the paper's task itself, its :attr:`display`."""
        return cls.display

    @classmethod
    def needs_hub(cls) -> str:
        """The sentence (without its full stop) every failure to reach this task's source starts with: it names the
        served offline task of the same family, or says that none is served."""
        if not cls.stand_in:
            return f"{cls.display} needs the Hugging Face Hub; no offline {cls.stand_in_kind} task is served"
        shared = " with data.source: offline" if cls.stand_in == cls.name else ""
        kind = cls.stand_in_kind
        return f"{cls.display} needs the Hugging Face Hub; the offline {kind} task is `{cls.stand_in}`{shared}"


SOURCES = ("offline", "hub")
_REGISTRY: dict[str, dict[str, type[Task]]] = {source: {} for source in SOURCES}


def prose(doc: str | None, *more: str) -> str:
    """A docstring as one line, its white space folded to single spaces, with ``more`` text after it."""
    return " ".join([*(doc or "").split(), *more])


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task to the registry of its source under ``cls.name``.

    A task that sets no ``description`` of its own is described by its class docstring (:func:`prose`).
    """
    if "description" not in vars(cls) and cls.__doc__:
        cls.description = prose(cls.__doc__)
    if cls.source not in _REGISTRY:
        raise ValueError(f"task {cls.name!r} has unknown source {cls.source!r}")
    if cls.name in _REGISTRY[cls.source]:
        raise ValueError(f"task {cls.name!r} registered twice for source {cls.source!r}")
    _REGISTRY[cls.source][cls.name] = cls
    return cls


def registered(source: str = "offline") -> dict[str, type[Task]]:
    """The tasks of one source by name (a copy)."""
    return dict(_REGISTRY[source])
