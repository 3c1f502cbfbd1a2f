"""What the XTREME-R hub tasks share: a pinned dataset per task, one Hub split per (split, language), sizes.

Each task lists its parts (canonical split, Hub config, Hub split, language) and converts one loaded
``datasets.Dataset`` with a function of :mod:`xstilts.tasks.xtreme_convert`. Loading goes through
:func:`xstilts.data.hub.load_hub_split`, so offline the task stops at once with the sentence naming its
stand-in. A dataset whose commit was not looked up yet has ``revision=None`` and stops with a sentence
saying so: nothing is loaded from an unpinned branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from xstilts.data import splits
from xstilts.data.hub import HubSource, load_hub_split
from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks.base import HubTask

Part = tuple[str, str | None, str, str]  # (canonical split, Hub config, Hub split, language)


@dataclass(frozen=True)
class Pin:
    """A Hub dataset id and the commit it is pinned to (None: not found yet).

    ``seen`` says where the commit was found, or for an unpinned dataset why no commit found so far is usable.
    """

    path: str
    revision: str | None
    seen: str = ""

    def source(self, config: str | None, display: str) -> HubSource:
        if self.revision is None:
            why = f" ({self.seen})" if self.seen else ""
            raise XstiltsError(
                f"{display}: no commit of {self.path} is pinned yet{why}; look it up on the dataset's "
                "'Files and versions' page (its refs/convert/parquet branch) and set it in the task module."
            )
        return HubSource(self.path, self.revision, config)


# google/xtreme (udpos, tatoeba, bucc18 configs): the only commit found in a public source is 34615c6abbc4 (its
# README served raw by the Hub), whose card is the script-era one (download sizes of the loading script), so it
# is not pinned: datasets 5 runs no loading scripts.
XTREME = Pin("google/xtreme", None, "the only commit found, 34615c6abbc4, looks like a loading-script commit")


class XtremeHubTask(HubTask):
    """A hub task read part by part; subclasses set ``pin`` and define :meth:`parts` and :meth:`convert`."""

    pin: ClassVar[Pin]
    domain: ClassVar[str] = ""
    sized: ClassVar[bool] = True  # <split>_size keeps that many ids per language (translations stay aligned)
    defaults: ClassVar[dict[str, Any]] = {"seed": splits.DEFAULT_SEED, **splits.SIZES}

    @classmethod
    def paper_task(cls) -> str:
        return f"{cls.display} (XTREME-R)"

    def parts(self) -> list[Part]:
        raise NotImplementedError

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def pin_for(self, language: str) -> Pin:
        """The dataset a part reads (one per task unless a task mixes datasets)."""
        return self.pin

    def hub_reads(self) -> list[tuple[HubSource, str]]:
        """Every (source, Hub split) that ``prepare`` loads, in order (an unpinned dataset raises its sentence)."""
        return [(self.pin_for(lang).source(config, self.display), split) for _, config, split, lang in self.parts()]

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        sizes = s.sizes if self.sized else {}
        rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        for (split, _, hub_split, language), (source, _) in zip(self.parts(), self.hub_reads(), strict=True):
            dataset = load_hub_split(source, hub_split, self.needs_hub())
            for row in self.convert(dataset, language, split, source.spec):
                rows[row["split"]].append(row)  # a converter may move a row (TyDi QA's English dev)
        for split, size in sizes.items():
            if size is not None:
                rows[split] = subsample(rows[split], size, s.seed)
        return splits.write_splits(Path(out_dir), self.schema, rows)


def subsample(rows: list[dict[str, Any]], size: int, seed: int) -> list[dict[str, Any]]:
    """Keep ``size`` ids per language, chosen by seeded hash of the id (so translations are kept together)."""
    keep: set[tuple[str, str]] = set()
    for language in {r["language"] for r in rows}:
        ids = [r["id"] for r in rows if r["language"] == language]
        keep |= {(language, i) for i in splits.take(ids, size, seed)}
    return [r for r in rows if (r["language"], r["id"]) in keep]


def label_names(dataset: Any, field: str) -> list[str]:
    """The ClassLabel names of ``field`` (of the sequence's feature for a list of labels)."""
    feature = dataset.features[field]
    feature = getattr(feature, "feature", feature)
    names = getattr(feature, "names", None)
    if not names:
        raise XstiltsError(f"The Hub feature {field!r} is not a ClassLabel any more; the dataset's schema changed.")
    return list(names)
