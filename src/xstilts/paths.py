"""Where things live: the repository root and the folders under it."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The project root: ``$XSTILTS_ROOT``, else the nearest folder upwards holding ``params.yaml``."""
    if env := os.environ.get("XSTILTS_ROOT"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").exists():
            return folder
    return here


def main_root() -> Path:
    """The user's checkout, also from inside a ``dvc exp run --temp`` workspace (``<root>/.dvc/tmp/exps/...``)."""
    root = repo_root()
    parts = root.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return root


def raw_dir() -> Path:
    return repo_root() / "data" / "raw"


def prepared_dir(task: str) -> Path:
    return repo_root() / "data" / "prepared" / task


def models_dir() -> Path:
    return repo_root() / "models"


def metrics_dir() -> Path:
    return repo_root() / "metrics"


def curve_path(phase: str, name: str) -> Path:
    """A training run's evaluations (step, train losses, dev scores): a DVC plots file."""
    return repo_root() / "plots" / phase / f"{name}.json"
