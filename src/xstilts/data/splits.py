"""Helpers the task modules share: seeded hash splits, parameter checks, atomic Parquet writes, and the one reader
of a prepared split (:func:`read_split`).

Splits are decided by hashing a stable key (an example id, a group key or a position) together
with the seed, never by the order of a random generator, so adding or dropping other rows
never moves a row to another split.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from xstilts.errors import XstiltsError

DEFAULT_SEED = 13

SPLITS = ("train", "dev", "test")  # every prepared task has these three, in this order
SIZES: dict[str, int | None] = {f"{s}_size": None for s in SPLITS}  # <split>_size parameters: None keeps all rows
FRACTIONS: dict[str, float] = {"dev_fraction": 0.1, "test_fraction": 0.1}  # hash-split shares of dev and test
SPLIT_DEFAULTS: dict[str, Any] = {"seed": DEFAULT_SEED, **FRACTIONS, **SIZES}  # a task that hash-splits its rows


def unit_hash(key: str, seed: int) -> float:
    """A number in [0, 1) that depends only on ``key`` and ``seed``."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(key: str, seed: int, dev_fraction: float, test_fraction: float) -> str:
    """``dev`` for the first ``dev_fraction`` of hash space, then ``test``, the rest ``train``."""
    u = unit_hash(key, seed)
    if u < dev_fraction:
        return "dev"
    if u < dev_fraction + test_fraction:
        return "test"
    return "train"


def take(keys: Iterable[str], size: int | None, seed: int) -> list[str]:
    """A deterministic subsample of ``size`` keys (all when ``size`` is None), in hash order."""
    ordered = sorted(set(keys), key=lambda k: (unit_hash("take\x1f" + k, seed), k))
    return ordered if size is None else ordered[:size]


def resolve_params(task: str, params: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``params``; an unknown key (a typo, or a setting of another task) is an error."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise XstiltsError(
            f"Unknown data parameter(s) for task {task}: {', '.join(unknown)} (params.yaml data.{task}); "
            f"it takes {', '.join(sorted(defaults)) or 'none'}."
        )
    merged = {**defaults, **{k: v for k, v in params.items() if k in defaults}}
    if not isinstance(merged.get("seed", DEFAULT_SEED), int) or isinstance(merged.get("seed"), bool):
        raise XstiltsError(f"Data parameter seed for task {task} must be an integer, got {merged.get('seed')!r}.")
    return merged


def check_size(task: str, key: str, value: Any) -> int | None:
    """A size parameter: a non-negative integer, or None (null) for all rows."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise XstiltsError(
            f"Data parameter {key} for task {task} must be a non-negative integer or null, got {value!r}."
        )
    return value


def check_fraction(task: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise XstiltsError(f"Data parameter {key} for task {task} must be a number in [0, 1), got {value!r}.")
    return float(value)


def check_sizes(task: str, params: Mapping[str, Any], names: Iterable[str] = ("train", "dev", "test")) -> dict:
    """``<split>_size`` for each split: a positive int, or None for all rows."""
    return {s: check_size(task, f"{s}_size", params[f"{s}_size"]) for s in names}


def check_fractions(task: str, params: Mapping[str, Any]) -> tuple[float, float]:
    """``dev_fraction`` and ``test_fraction``, which must leave room for training rows."""
    dev = check_fraction(task, "dev_fraction", params["dev_fraction"])
    test = check_fraction(task, "test_fraction", params["test_fraction"])
    if dev + test >= 1:
        raise XstiltsError(f"Data parameters dev_fraction + test_fraction for task {task} must be below 1.")
    return dev, test


@dataclass(frozen=True)
class SplitSettings:
    """A task's data parameters (defaults filled in) and the split settings among them, checked."""

    params: dict[str, Any]
    seed: int
    sizes: dict[str, int | None]  # for each split that has a ``<split>_size`` parameter
    dev_fraction: float  # 0.0 where the task takes no such parameter (test_fraction likewise)
    test_fraction: float

    @classmethod
    def check(cls, task: str, params: dict[str, Any]) -> SplitSettings:
        """Check the sizes, then the fractions, of parameters already resolved (:func:`resolve_params`)."""
        sizes = check_sizes(task, params, [s for s in SPLITS if f"{s}_size" in params])
        if "test_fraction" in params:
            dev, test = check_fractions(task, params)
        elif "dev_fraction" in params:
            dev, test = check_fraction(task, "dev_fraction", params["dev_fraction"]), 0.0
        else:
            dev, test = 0.0, 0.0
        return cls(params, params["seed"], sizes, dev, test)


def resolve_splits(task: str, params: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> SplitSettings:
    """:func:`resolve_params`, then :meth:`SplitSettings.check`: the prologue of every task's ``prepare``."""
    return SplitSettings.check(task, resolve_params(task, params, defaults))


class UnionFind:
    """Groups of keys that must share a split (e.g. claims linked by shared evidence)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def write_splits(out_dir: Path, schema: pa.Schema, rows: Mapping[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Write ``out_dir/<split>.parquet`` for every split in :data:`SPLITS`, all or nothing.

    Each split is written to a temporary file in ``out_dir`` first; the files are renamed into
    place only once all of them were written. Missing splits are written empty (with the schema).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: dict[str, str] = {}
    try:
        for split in SPLITS:
            table = pa.Table.from_pylist(list(rows.get(split, [])), schema=schema)
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{split}.", suffix=".parquet.tmp")
            os.close(fd)
            temps[split] = tmp
            pq.write_table(table, tmp)
        for split, tmp in temps.items():
            os.replace(tmp, out_dir / f"{split}.parquet")
        temps.clear()
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
    return {split: len(rows.get(split, [])) for split in SPLITS}


def read_split(prepared: Path, split: str) -> pa.Table:
    """``<prepared>/<split>.parquet`` as an Arrow table; a missing or unreadable file fails with one sentence."""
    path = Path(prepared) / f"{split}.parquet"
    stage = f"dvc repro prepare-{Path(prepared).name}"
    if not path.is_file():
        raise XstiltsError(f"Prepared data {path} is missing; run `{stage}` first.")
    try:
        return pq.read_table(path)
    except Exception as exc:
        raise XstiltsError(f"Prepared data {path} cannot be read ({type(exc).__name__}); run `{stage}`.") from exc
