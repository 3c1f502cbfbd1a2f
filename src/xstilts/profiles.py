"""Profiles: named sets of ``params.yaml`` values (``profiles/<name>.yaml``) written into ``params.yaml``.

``params.yaml`` stays the one file that DVC and the entry points read. ``profiles/default.yaml`` is a
complete ``params.yaml`` (comments included); another profile names only what it changes, on top of the
default. Switching writes default + profile, whatever ``params.yaml`` held before, so switches are
reversible; a profile's ``per_task`` and ``groups`` replace the default's whole (they name runs of their
own), other mappings merge key by key. Then ``dvc.yaml`` is written for it (:mod:`xstilts.pipeline.dvcfile`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from xstilts.errors import XstiltsError
from xstilts.params import load_params
from xstilts.paths import repo_root

DEFAULT = "default"  # the complete profile the others change
REPLACED = ("per_task", "groups")  # a profile's own runs: never mixed with the default's


def _merge(target: Any, overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and key not in REPLACED:
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
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    params_path = root / "params.yaml"
    params = yaml.load((root / "profiles" / f"{DEFAULT}.yaml").read_text())
    if name != DEFAULT:
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
