"""The entry points behind ``MLproject``: each one is a function that tests call directly.

``run_intermediate`` (phase 2) and ``run_target`` (phase 3); ``run_retrieve`` (retrieval straight from an
encoder) is in :mod:`xstilts.pipeline.retrieve` and ``run_promote`` (registry) in
:mod:`xstilts.pipeline.promote`. Every run records params,
per-language metrics, tags (phase, tasks, model, data source, seed, the model folder and its fingerprint) and
artifacts, and ends FAILED with the reason on error. Models stay in DVC's cache, not in MLflow's store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from xstilts.atomic import write_text_atomic
from xstilts.data.reports import require_validated
from xstilts.encoder.loading import load_encoder, resolve_model
from xstilts.errors import XstiltsError
from xstilts.lineage import EVALUATION, TRAINING, log_prepared_inputs, prepared_inputs
from xstilts.logged_models import record_trained_model
from xstilts.params import Params, load_params
from xstilts.paths import prepared_dir, repo_root
from xstilts.pipeline.run_names import (
    NO_INIT,
    encoder_revision,
    intermediate_tasks,
    pretrained,
    resolve_init,
    seeded,
    target_tasks,
)
from xstilts.pipeline.run_plan import RunPlan
from xstilts.pipeline.train_and_evaluate import train_and_evaluate_tasks, training_source
from xstilts.tasks import Role, Task, get_task
from xstilts.tracking import (
    Tag,
    configure,
    log_settings,
    phase_run,
    recorded_on,
    run_name,
    temporary_environ,
    write_metrics_json,
)
from xstilts.training import checkpoint
from xstilts.training.loop import process_state
from xstilts.training.precision import resolve as resolve_precision
from xstilts.training.sampling import SamplingConfig


def _checkpoint_key(phase: str, out_name: str, tasks: list[Task], encoder: str, cfg, params: Params) -> str:
    """The run's checkpoint key: settings, seed, number of processes, and the data and encoder files."""
    resolved = Path(resolve_model(encoder))
    folders = {prepared_dir(t.name) for t in tasks} | {prepared_dir(t.train_from) for t in tasks if t.train_from}
    config = {
        "phase": phase,
        "name": out_name,
        "tasks": [t.name for t in tasks],
        "encoder": str(resolved),
        "seed": params.seed,
        "processes": process_state().num_processes,
        "cfg": cfg.model_dump(),
        "precision": resolve_precision(cfg.precision, process_state().device).name,
    }
    return checkpoint.config_hash(config, [*folders, *([resolved] if resolved.exists() else [])])


def _previous_run(folder: Path) -> str | None:
    """The MLflow run that a killed attempt of this run logged to, when it is in the store and was killed."""
    run_id = checkpoint.read_run_id(folder)
    if run_id is None or os.environ.get("MLFLOW_RUN_ID"):
        return None  # nothing to resume into, or `mlflow run` already chose the run
    configure()
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return None  # another tracking store: log to a fresh run
    return run_id if run.info.status in ("RUNNING", "KILLED") else None  # a FAILED run keeps its reason


@contextmanager
def _run_context(
    phase: str, run_params: dict[str, Any], tags: dict[str, str], run_id: str | None, name: str
) -> Iterator[None]:
    """``phase_run`` on the main process (into ``run_id`` when given); other DDP processes log nothing."""
    if not process_state().is_main_process:
        yield
        return
    with temporary_environ({"MLFLOW_RUN_ID": run_id} if run_id else {}), phase_run(phase, run_params, tags, name):
        yield


def plan_run(
    phase: str, task_spec: str, init: str, params: Params, tuned: bool = True, seed: int | None = None
) -> RunPlan:
    """The plan of an ``intermediate`` run of ``task_spec`` or a ``target`` run of ``task_spec`` from ``init``.

    An intermediate task in ``tune.tasks`` trains with its study's lr and epochs (``tuning/<task>.yaml``, which
    must be the result for these settings); ``tuned=False``: with ``params.yaml``'s (the study's trial 0).
    ``seed`` (one of ``study.seeds``): the run trains with it, from the intermediate model of the same seed, and
    its folders are named ``<run>-s<seed>``; tuning and data stay those of ``params.seed``."""
    if phase == "intermediate":
        role = Role.INTERMEDIATE
        out_name, names = intermediate_tasks(task_spec, params)
        tasks = [get_task(n, role, source=params.data.source) for n in names]
        encoder, intermediate, cfg = pretrained(params), ",".join(names), params.intermediate.for_task(out_name)
    else:
        family, names = target_tasks(task_spec, params)
        role, out_name = Role.TARGET, f"{family}-{init}"
        tasks = [get_task(n, role, source=params.data.source) for n in names]
        (encoder, intermediate), cfg = resolve_init(init, params, seed), target_settings(params, family, names)
    for name in dict.fromkeys(n for t in tasks for n in (t.name, t.train_from) if n):
        require_validated(name, prepared_dir(name))  # no training on data that failed (or missed) validation
    study = None
    if tuned and phase == "intermediate" and out_name in _tuned_names(params):
        from xstilts.tuning.key import read_result, study_key

        untuned = RunPlan(phase, role, init, tasks, out_name, encoder, intermediate, cfg, params, Path())
        result = read_result(out_name, study_key(untuned, params.tune))
        try:
            cfg = type(cfg).model_validate({**cfg.model_dump(), "lr": result["lr"], "epochs": result["epochs"]})
        except ValueError as exc:
            raise XstiltsError(f"tuning/{out_name}.yaml holds an lr or epochs phase 2 cannot use ({exc}).") from exc
        study = result["study"]
    if seed is not None:
        out_name, params = seeded(out_name, seed), params.model_copy(update={"seed": seed})
    key = _checkpoint_key(phase, out_name, tasks, encoder, cfg, params)
    folder = checkpoint.checkpoint_dir(phase, out_name, key)
    family = family if phase == "target" else None
    return RunPlan(phase, role, init, tasks, out_name, encoder, intermediate, cfg, params, folder, study, family, seed)


def target_settings(params: Params, family: str, names: list[str]):
    """``target`` with ``per_task`` applied for a family's one training: the family's entry, then its targets'
    (which must agree with each other, since they share the training)."""
    per_task = params.target.per_task
    merged: dict = dict(per_task.get(family, {}))
    own: dict = {}
    for name in (n for n in names if n != family):
        for key, value in per_task.get(name, {}).items():
            if own.get(key, value) != value:
                raise XstiltsError(
                    f"params.yaml: target.per_task sets {key} differently for targets that train together "
                    f"({', '.join(names)} on {family}); set it once, under per_task.{family}."
                )
            own[key] = value
    merged.update(own)
    if not merged:
        return params.target
    return params.target.model_copy(update={"per_task": {family: merged}}).for_task(family)


def _tuned_names(params: Params) -> set[str]:
    return {intermediate_tasks(spec, params)[0] for spec in params.tune.tasks}


def _train_phase(phase: str, task_spec: str, init: str, params: Params | None, seed: int | None) -> dict[str, float]:
    main = process_state().is_main_process
    try:  # a plan that cannot be made still gets its MLflow run, which ends FAILED with the reason
        plan, failure = plan_run(phase, task_spec, init, params or load_params(), seed=seed), None
    except XstiltsError as exc:
        plan, failure = None, exc
    run_id = _previous_run(plan.checkpoint_dir) if plan is not None and main else None
    logged = {"task": task_spec, "init": init, **({} if seed is None else {"run_seed": seed})}
    name = run_name(phase, task_spec, init if phase == "target" else None, seed)
    with _run_context(phase, logged, {Tag.TASK: task_spec}, run_id, name):
        if plan is None:
            raise failure
        return _train(plan, main)


def training_reads(tasks: list[Task], evaluated: bool = True) -> list[tuple[str, str, str]]:
    """What training ``tasks`` reads, as (task, split, context): English train and dev of the task each trains on,
    then (``evaluated``) each one's dev and test, all languages."""
    sources = list(dict.fromkeys(training_source(t).name for t in tasks))
    fitted = [(name, "train", TRAINING) for name in sources] + [(name, "dev", EVALUATION) for name in sources]
    return fitted + [(t.name, split, EVALUATION) for t in tasks for split in ("dev", "test") if evaluated]


def _train(plan: RunPlan, main: bool) -> dict[str, float]:
    params, cfg = plan.params, plan.cfg
    precision = resolve_precision(cfg.precision, process_state().device)  # what `auto` is on this machine
    if main:
        tags = {Tag.INTERMEDIATE: plan.intermediate, **({Tag.STUDY: plan.study} if plan.study else {})}
        tags.update(precision.tags(), processes=str(process_state().num_processes))  # DDP processes of the run
        log_settings(params, cfg.model_dump(exclude={"tasks", "inits", "groups"}), tags)
        log_prepared_inputs(prepared_inputs(training_reads(plan.tasks)))
        checkpoint.write_run_id(plan.checkpoint_dir, mlflow.active_run().info.run_id)
    tokenizer, encoder = load_encoder(plan.encoder, encoder_revision(plan.encoder, params))
    sampling = None
    if plan.role == Role.INTERMEDIATE:
        sampling = SamplingConfig(cfg.sampling, cfg.temperature, cfg.examples_cap)
    predictions = {t.name: plan.predictions_csv(t.name) for t in plan.tasks} if plan.family else plan.predictions_csv()
    outcome = train_and_evaluate_tasks(
        plan.tasks,
        tokenizer,
        encoder,
        cfg,
        params.seed,
        plan.model_dir,
        predictions,
        {"intermediate_tasks": plan.intermediate, "base_model": params.model.name, "seed": params.seed},
        sampling=sampling,
        checkpoint_dir=plan.checkpoint_dir,
        base=local if (local := Path(resolve_model(plan.encoder))).is_dir() else None,
        family=plan.family,
    )
    if not outcome.is_main:
        return {}
    if outcome.resumed_from:
        mlflow.set_tag(Tag.RESUMED, str(outcome.resumed_from))
    mlflow.set_tags(outcome.compile_tags)
    recorded = {**recorded_on(precision.name), "compile": outcome.compile_tags.get("compile", "off")}
    # the model stays in DVC's cache: an external LoggedModel names its folder and fingerprint (also run tags) and
    # holds the run's metrics; MLflow gets a copy only when the registry promotes it (registry.promote)
    model_id = record_trained_model(plan.model_dir, plan.phase, plan.out_name)
    one = outcome.per_task[plan.tasks[0].name] if len(outcome.per_task) == 1 else outcome.metrics
    mlflow.log_metrics(one, model_id=model_id)  # a family of one target: the run is that target's, as before
    if plan.family:
        _target_results(plan, outcome.per_task, recorded)
    else:
        write_metrics_json(plan.metrics_json(), {**outcome.metrics, **recorded})
    write_text_atomic(plan.curve_json, json.dumps(outcome.curve, indent=1) + "\n")
    mlflow.log_artifact(str(plan.curve_json))
    checkpoint.remove(plan.checkpoint_dir)
    return one


def _target_results(plan: RunPlan, per_task: dict[str, dict[str, float]], recorded: dict[str, str]) -> None:
    """Each target's metrics file and XTREME predictions; with several targets, each its own nested MLflow run
    (tagged like the training run, with its task: the registry's candidates for that target)."""
    tags = mlflow.get_run(mlflow.active_run().info.run_id).data.tags
    copied = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
    for task in plan.tasks:
        run = plan.target_run(task.name)
        write_metrics_json(plan.metrics_json(task.name), {**per_task[task.name], **recorded})
        _write_xtreme(task.name, plan.predictions_csv(task.name), run.removeprefix(f"{task.name}-"))
        if len(plan.tasks) > 1:
            name = run_name("target", task.name, plan.init, plan.run_seed)
            with mlflow.start_run(run_name=name, nested=True, tags={**copied, Tag.TASK: task.name}):
                mlflow.log_metrics(per_task[task.name])


def _write_xtreme(task: str, predictions_csv: Path, init: str) -> None:
    """For an XTREME(-R) target: test predictions in XTREME's layout under predictions/xtreme/<init>/, logged."""
    from xstilts.xtreme_format import (
        XTREME_FOLDER,
        log_xtreme_artifacts,
        read_predictions_table,
        write_xtreme_predictions,
    )

    if task in XTREME_FOLDER:
        table = read_predictions_table(predictions_csv)
        log_xtreme_artifacts(write_xtreme_predictions(task, table, repo_root() / "predictions" / "xtreme" / init))


def run_intermediate(task: str, params: Params | None = None, seed: int | None = None) -> dict[str, float]:
    """Phase 2: train ``task`` (English; ``a,b,c`` or a group of ``intermediate.groups`` trains several together)
    from the pretrained encoder; writes models/intermediate/<task, group name, or a+b+c>. ``params`` defaults to
    ``params.yaml``; ``per_task`` is looked up by the folder name, so ``task=a,b`` and ``task=a+b`` read ``a+b``.
    ``seed``: one run of a several-seed study (:func:`plan_run`)."""
    return _train_phase("intermediate", task, NO_INIT, params, seed)


def run_target(task: str, init: str = NO_INIT, params: Params | None = None, seed: int | None = None) -> dict:
    """Phase 3: fine-tune ``task`` on English from ``init``'s encoder, evaluate zero-shot in every language.

    ``task`` may list targets that train on the same English data (``pos_tr,pos_de``: one training on brown_pos,
    evaluated on each, each with its own metrics file and, for several, its own nested run)."""
    return _train_phase("target", task, init, params, seed)
