"""The shared shape of a Hugging Face Hub task: canonical splits assembled from pinned Hub splits.

A subclass of :class:`HubDatasetTask` says, per canonical split, which Hub splits (``parts``) it is made of and
how one Hub row becomes canonical fields (:meth:`HubDatasetTask.convert`); ``prepare`` loads each part through
:func:`xstilts.data.hub.load_hub_split`, adds id/language/domain/source/split, subsamples to the ``<split>_size``
parameters with a seeded hash and writes the family's Parquet schema. See :mod:`xstilts.data.hub` for an example.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from xstilts.data import hub, splits
from xstilts.data.hub import HubSource
from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks.base import HubTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One Hub split feeding a canonical split; ``tag`` tells parts apart in ids (default: the Hub split name)."""

    source: HubSource
    split: str
    language: str = "en"
    tag: str = ""

    @property
    def label(self) -> str:
        return self.tag or self.split


def train_dev(source: HubSource) -> dict[str, tuple[Part, ...]]:
    """The ``parts`` of a task whose train and dev are the Hub's train and validation splits (test stays empty)."""
    return {"train": (Part(source, "train"),), "dev": (Part(source, "validation"),)}


class HubDatasetTask(HubTask):
    """A task built from Hub splits; subclasses set ``parts`` and ``convert`` (and may override ``row_id``)."""

    parts: ClassVar[dict[str, tuple[Part, ...]]] = {}  # canonical split -> the Hub splits it is made of
    domain: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {"seed": splits.DEFAULT_SEED, **splits.SIZES}

    def convert(self, row: dict[str, Any], features: Any, part: Part) -> dict[str, Any] | None:
        """The family's fields of one Hub row (no id/language/domain/source/split), or None for a row without
        a gold label (GLUE/SNLI's -1, unlabelled test splits); anything else malformed raises XstiltsError."""
        raise NotImplementedError(f"{type(self).__name__} does not define convert()")

    def hub_sources(self) -> list[str]:
        """Every pinned source of the task with its full commit: ``nyu-mll/glue:mnli@<40 hex>``."""
        seen = {part.source for parts in self.parts.values() for part in parts}
        return sorted(f"{s.path}{':' + s.config if s.config else ''}@{s.revision}" for s in seen)

    def hub_reads(self) -> list[tuple[HubSource, str]]:
        """Every (source, Hub split) that ``prepare`` loads, in order."""
        return [(part.source, part.split) for parts in self.parts.values() for part in parts]

    def row_id(self, row: dict[str, Any], index: int, part: Part) -> str:
        """A stable id: the task, the part, and the Hub's own id (``id``/``uid``) or the row's position."""
        own = row.get("id") if isinstance(row.get("id"), str) and row.get("id") else row.get("uid")
        return f"{self.name}-{part.label}-{own if isinstance(own, str) and own else f'{index:07d}'}"

    def load(self, part: Part) -> Any:
        """One Hub split as a ``datasets.Dataset`` (fails at once, naming the stand-in, without the Hub)."""
        return hub.load_hub_split(part.source, part.split, self.needs_hub())

    def rows_of(self, split: str, part: Part) -> list[dict[str, Any]]:
        """The canonical rows of one part, in the Hub's order; unlabelled rows are counted and logged."""
        ds = self.load(part)
        features = ds.features
        out: list[dict[str, Any]] = []
        skipped = 0
        for i, row in enumerate(ds):
            fields = self.convert(row, features, part)
            if fields is None:
                skipped += 1
                continue
            out.append(
                {
                    "id": self.row_id(row, i, part),
                    "language": part.language,
                    "domain": fields.pop("domain", None) or self.domain,
                    "source": part.source.spec,
                    "split": split,
                    **fields,
                }
            )
        if skipped:
            log.info("%s: %d of %d rows of %s/%s have no gold label; left out", self.name, skipped, len(ds),
                     part.source.spec, part.split)  # fmt: skip
        return out

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        sizes = s.sizes
        unknown = sorted(set(self.parts) - set(SPLITS))
        if unknown:  # a programming error in the task module
            raise ValueError(f"{self.name}: parts has unknown split(s) {unknown}")
        out: dict[str, list[dict[str, Any]]] = {}
        for split in SPLITS:
            rows = [row for part in self.parts.get(split, ()) for row in self.rows_of(split, part)]
            position = {row["id"]: i for i, row in enumerate(rows)}
            if len(position) != len(rows):
                raise XstiltsError(f"{self.name}: the Hub rows of {split} have duplicate ids; the pinned data changed.")
            chosen = splits.take(position, sizes[split], s.seed)
            if sizes[split] is not None and len(chosen) < sizes[split]:
                log.warning("%s: %s_size=%d but only %d rows exist", self.name, split, sizes[split], len(chosen))
            out[split] = [rows[i] for i in sorted(position[k] for k in chosen)]
        return splits.write_splits(Path(out_dir), self.schema, out)


def class_name(features: Any, column: str, value: Any, where: str) -> str | None:
    """The ClassLabel name of ``value`` in ``column`` (None for -1, "no gold label"); other values raise."""
    names = list(getattr(features.get(column), "names", None) or [])
    if value == -1:
        return None
    if not isinstance(value, int) or not 0 <= value < len(names):
        raise XstiltsError(f"{where} has {column} {value!r}, not one of the class indices of {names}.")
    return names[value]
