"""Profiles: named sets of ``params.yaml`` values (``profiles/<name>.yaml``) written into ``params.yaml``.

``params.yaml`` stays the one file that DVC and the entry points read; switching a profile rewrites
the keys the profile names (comments and every other key are kept), sets ``profile: <name>`` and writes
``dvc.yaml`` for it (:mod:`xstilts.pipeline.dvcfile`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from xstilts.errors import XstiltsError
from xstilts.params import load_params
from xstilts.paths import repo_root


def _merge(target: Any, overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def apply_profile(name: str, root: Path | None = None) -> str:
    """Write profile ``name`` into ``params.yaml``; the result is validated before it replaces the file."""
    root = root or repo_root()
    source = root / "profiles" / f"{name}.yaml"
    if not source.exists():
        known = ", ".join(sorted(p.stem for p in (root / "profiles").glob("*.yaml")))
        raise XstiltsError(f"Unknown profile {name!r}; profiles: {known}.")
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    params_path = root / "params.yaml"
    params = yaml.load(params_path.read_text())
    _merge(params, yaml.load(source.read_text()) or {})
    params["profile"] = name
    tmp = params_path.with_suffix(".yaml.tmp")
    with tmp.open("w") as fh:
        yaml.dump(params, fh)
    try:
        load_params(tmp)
    except XstiltsError:
        tmp.unlink()
        raise
    tmp.replace(params_path)
    from xstilts.pipeline.dvcfile import write_pipeline

    write_pipeline(root)
    return f"params.yaml now holds profile {name!r} and dvc.yaml its stages; run `dvc repro` (or `make run`)."
