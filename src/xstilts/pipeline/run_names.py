"""Run names: the tasks an intermediate spec trains, the folder it writes, the encoder an ``init`` names.

No heavy imports at module level: ``xstilts pipeline`` (dvc.yaml) uses it.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.params import Params
from xstilts.paths import models_dir
from xstilts.tasks import Role, get_task

NO_INIT = "none"  # a target's init / a retrieval's encoder: the pretrained encoder, no intermediate model


def intermediate_tasks(spec: str, params: Params) -> tuple[str, list[str]]:
    """``spec`` (a task, ``a,b,c``, or a group of ``intermediate.groups``) as (model folder name, task list).

    The folder name is the group's name, else the tasks joined by "+" (``a+b+c``); a "+"-joined name is read
    like a comma list, so a target's ``init`` may name the folder either way.
    """
    groups = params.intermediate.groups
    if spec in groups:
        names, out_name = list(groups[spec]), spec
    else:
        names = [n.strip() for n in spec.replace("+", ",").split(",")]
        out_name = "+".join(names)
    if not names or any(not n for n in names):
        raise XstiltsError(f"Intermediate task list {spec!r} has an empty name; write tasks as a,b,c.")
    if len(set(names)) != len(names):
        raise XstiltsError(f"Intermediate task list {spec!r} names a task twice; list each task once.")
    for name in names:
        if name in groups:
            raise XstiltsError(f"{name!r} in {spec!r} is a group; a group cannot be part of a task list.")
        try:
            get_task(name, Role.INTERMEDIATE, source=params.data.source)
        except XstiltsError as exc:
            if len(names) == 1 and not groups:
                raise
            known = f" or a group ({', '.join(sorted(groups))})" if groups else ""
            raise XstiltsError(f"In {spec!r}: {exc} Name intermediate tasks{known}.") from exc
    return out_name, names


def target_families(names: list[str], params: Params) -> dict[str, list[str]]:
    """Targets grouped by the English data they train on (``train_from``, else the target itself), in order: each
    family trains once per init and seed, evaluated on each of its targets (``{"brown_pos": ["pos_tr", ...]}``)."""
    families: dict[str, list[str]] = {}
    for name in names:
        task = get_task(name, Role.TARGET, source=params.data.source)
        families.setdefault(task.train_from or name, []).append(name)
    return families


def target_tasks(spec: str, params: Params) -> tuple[str, list[str]]:
    """``spec`` (a target, or a comma list of targets that train on the same English data) as (family, targets)."""
    names = [n.strip() for n in spec.split(",")]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise XstiltsError(f"Target list {spec!r} has an empty or repeated name; write targets as a,b,c.")
    families = target_families(names, params)
    if len(families) > 1:
        shown = "; ".join(f"{', '.join(v)} on {k}" for k, v in families.items())
        raise XstiltsError(f"Targets {spec!r} train on different English data ({shown}); run each family on its own.")
    return next(iter(families.items()))


def seeded(name: str, seed: int | None) -> str:
    """A run's name with its seed when a study trains several (``all-s14``); with ``seed`` None, the name."""
    return name if seed is None else f"{name}-s{seed}"


def run_seeds(params: Params) -> list[int | None]:
    """The seeds each training run is repeated with (``study.seeds``); ``[None]``: once, with ``seed``."""
    return list(params.study.seeds) or [None]


def intermediate_model_dir(name: str) -> Path:
    return models_dir() / "intermediate" / name


def pretrained(params: Params) -> str:
    """Where the pretrained encoder ``model.name`` is read from: its name, or its folder in ``data.hub_mirror``."""
    from xstilts.encoder.loading import pretrained_encoder
    from xstilts.params import hub_mirror

    return pretrained_encoder(params.model.name, params.model.revision, hub_mirror(params))[0]


def encoder_revision(encoder: str, params: Params) -> str | None:
    """``model.revision`` when ``encoder`` is the Hub model ``model.name`` itself, else None (folders)."""
    return params.model.revision if encoder == params.model.name else None


def resolve_init(init: str, params: Params, seed: int | None = None) -> tuple[str, str]:
    """Map ``init`` ("none", intermediate task(s) or group, or a model folder) to (encoder, intermediate tasks);
    with ``seed``, an intermediate model of that seed (``models/intermediate/<name>-s<seed>``)."""
    from xstilts.modeling import read_meta  # imports torch: only runs that load a model get here

    if init == NO_INIT:
        return pretrained(params), NO_INIT
    candidate = intermediate_model_dir(seeded(init, seed))
    if not candidate.exists() and seed is None and Path(init).exists():
        candidate = Path(init)
    if not candidate.exists():
        out_name, _ = intermediate_tasks(init, params)  # an unknown name fails here with the list of tasks
        candidate = intermediate_model_dir(seeded(out_name, seed))
    if candidate.exists():
        meta = read_meta(candidate)
        return str(candidate / "encoder"), meta.get("intermediate_tasks", init)
    raise XstiltsError(
        f"No intermediate model for {init!r} at {candidate}; "
        f"run `mlflow run . -e intermediate -P task={init}{'' if seed is None else f' -P run_seed={seed}'}` "
        "(or `dvc repro`) first."
    )
