"""Resumable training checkpoints, written atomically: a temp folder renamed into place, never half a file.

A run's checkpoint folder (``<repo>/checkpoints/<phase>/<name>/<config hash>/``, see :func:`checkpoint_dir`;
outside every DVC out, which DVC deletes before re-running a stage) holds ``step-<n>/`` folders, the newest
complete one being the one to resume from, and ``run.json`` (the MLflow run id). A ``step-<n>`` folder holds
``model.pt``, ``optimizer.pt``, ``scheduler.pt``, ``best.pt`` (the best dev weights so far, when any),
``state.pt`` (step, best score, patience, sampler position) and ``rng.pt`` (every process's python, numpy
and torch RNG states). Only the main process writes; every process reads (multi-node: a shared filesystem).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xstilts.atomic import write_text_atomic
from xstilts.errors import XstiltsError
from xstilts.paths import repo_root

STEP_PREFIX = "step-"
TMP_PREFIX = ".tmp-"
RUN_FILE = "run.json"


def config_hash(config: Mapping[str, Any], files: Iterable[Path] = ()) -> str:
    """A short hash of the run's settings and of the inputs' files (path, size, modification time)."""
    stats = []
    for path in sorted({Path(p) for p in files}):
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                st = f.stat()
                stats.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"config": config, "files": stats}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_dir(phase: str, name: str, key: str) -> Path:
    return repo_root() / "checkpoints" / phase / name / key


def step_dirs(folder: Path) -> list[Path]:
    """The complete checkpoints in ``folder``, oldest first."""
    if not folder.exists():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def latest(folder: Path | None) -> Path | None:
    if folder is None:
        return None
    found = step_dirs(folder)
    return found[-1] if found else None


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _save(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def write(folder: Path, step: int, files: Mapping[str, Any]) -> Path:
    """Write ``files`` (name -> object, saved with ``torch.save``) as ``folder/step-<step>``; drop older ones."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{TMP_PREFIX}{STEP_PREFIX}{step:08d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, obj in files.items():
        _save(obj, tmp / name)
    final = folder / f"{STEP_PREFIX}{step:08d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in step_dirs(folder)[:-1]:
        shutil.rmtree(old)
    return final


def read(step_dir: Path, name: str) -> Any:
    """One object of a checkpoint (our own files: full unpickling, not only tensors)."""
    try:
        return torch.load(step_dir / name, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise XstiltsError(
            f"Checkpoint {step_dir} cannot be read ({type(exc).__name__}); delete {step_dir.parent} to start over."
        ) from exc


def has(step_dir: Path, name: str) -> bool:
    return (step_dir / name).exists()


def clean_temporary(folder: Path) -> None:
    """Remove the temp folders of checkpoints that a killed process left half-written."""
    if folder.exists():
        for p in folder.iterdir():
            if p.name.startswith(TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True)


def write_run_id(folder: Path, run_id: str) -> None:
    write_text_atomic(folder / RUN_FILE, json.dumps({"run_id": run_id}))


def read_run_id(folder: Path) -> str | None:
    path = folder / RUN_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("run_id")


def remove(folder: Path) -> None:
    """Delete a finished run's checkpoints, and the folders above it up to ``checkpoints/`` that are left empty."""
    shutil.rmtree(folder, ignore_errors=True)
    top = repo_root() / "checkpoints"
    for parent in folder.parents:
        if not parent.is_relative_to(top) or not parent.exists() or any(parent.iterdir()):
            break
        parent.rmdir()
