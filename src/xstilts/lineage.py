"""The prepared data a run read, as MLflow dataset inputs: metadata only (the rows stay in ``data/prepared``).

One dataset per split file (``vitaminc train``): its task, split, languages and rows, and as digest the DVC hash
of the task's folder that ``dvc.lock`` records (the version ``dvc checkout`` restores), when dvc.lock lists the
folder and the folder still holds those files; else xstilts' own fingerprint of it. The profile holds the whole
hash and says which it is; the digest is its first ``DIGEST_LENGTH`` characters, as git shortens a commit.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource

from xstilts.digest import fingerprint
from xstilts.errors import XstiltsError
from xstilts.paths import prepared_dir, repo_root

TRAINING, EVALUATION = "training", "evaluation"  # the contexts a run reads a split in
DIGEST_LENGTH = 10  # as MLflow advises (8-10: the UI's Dataset column shows it); the whole hash is in the profile


class PreparedSplit(MetaDataset):
    """An ``mlflow.data`` dataset that describes one prepared split file without copying it into MLflow."""

    def __init__(self, path: Path, name: str, digest: str, profile: dict[str, Any]) -> None:
        self._profile = profile
        super().__init__(LocalArtifactDatasetSource(str(path)), name=name, digest=digest)

    @property
    def profile(self) -> dict[str, Any]:
        return self._profile

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "profile": json.dumps(self._profile)}


def locked_md5(folder: Path, lock: Path) -> str | None:
    """The md5 that ``lock`` (dvc.lock) records for ``folder`` as a stage's output, None when it lists none."""
    import yaml

    if not lock.is_file():
        return None
    rel = folder.relative_to(lock.parent).as_posix()
    try:
        locked = yaml.load(lock.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise XstiltsError(f"{lock} is not valid YAML ({exc}); delete it (`dvc repro` writes it again).") from exc
    stages = (locked.get("stages") or {}) if isinstance(locked, dict) else {}
    outs = [out for stage in stages.values() for out in stage.get("outs", [])]
    return next((out.get("md5") for out in outs if out.get("path") == rel), None)


def dvc_md5(folder: Path) -> str:
    """DVC's own hash of ``folder`` (``<md5>.dir``), computed by DVC's library as ``dvc commit`` would."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem

    fs = LocalFileSystem()
    with tempfile.TemporaryDirectory() as scratch:
        _, _, obj = build(HashFileDB(fs, scratch), str(folder), fs, "md5", dry_run=True)
    return obj.hash_info.value


def folder_digest(folder: Path) -> tuple[str, str]:
    """``folder``'s digest and what it is: dvc.lock's md5 when it describes the folder now, else the fingerprint."""
    rel = folder.relative_to(repo_root()).as_posix()
    locked = locked_md5(folder, repo_root() / "dvc.lock")
    if locked is not None and locked == dvc_md5(folder):
        return locked.removesuffix(".dir"), f"DVC md5 of {rel} in dvc.lock"
    why = "dvc.lock does not list it" if locked is None else f"dvc.lock's md5 {locked} is of other files"
    return fingerprint(folder), f"xstilts fingerprint (sha256 of file names and contents) of {rel}; {why}"


def prepared_inputs(reads: Iterable[tuple[str, str, str]]) -> list[tuple[PreparedSplit, str]]:
    """The datasets of the ``(task, split, context)`` reads, each split once, in order; empty splits left out."""
    import pyarrow.parquet as pq

    digests: dict[str, tuple[str, str]] = {}
    found: dict[tuple[str, str], tuple[PreparedSplit, str]] = {}
    for task, split, context in reads:
        path = prepared_dir(task) / f"{split}.parquet"
        if (task, split) in found or not path.is_file():
            continue
        languages = pq.read_table(path, columns=["language"]).column("language")
        if not len(languages):
            continue
        if task not in digests:
            digests[task] = folder_digest(path.parent)
        digest, kind = digests[task]
        profile = {
            "task": task,
            "split": split,
            "rows": len(languages),
            "languages": sorted(set(languages.to_pylist())),
            "digest": digest,
            "digest_of": kind,
        }
        found[task, split] = (PreparedSplit(path, f"{task} {split}", digest[:DIGEST_LENGTH], profile), context)
    return list(found.values())


def log_prepared_inputs(inputs: list[tuple[PreparedSplit, str]]) -> None:
    """Log ``inputs`` (from :func:`prepared_inputs`) into the active run, each with its context."""
    if inputs:
        mlflow.log_inputs([d for d, _ in inputs], [c for _, c in inputs], [None] * len(inputs))
