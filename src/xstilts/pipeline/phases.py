"""The entry points behind ``MLproject``: each one is a function that tests call directly.

``run_intermediate`` (phase 2) and ``run_target`` (phase 3); ``run_retrieve`` (retrieval straight from an
encoder) is in :mod:`xstilts.pipeline.retrieve` and ``run_promote`` (registry) in
:mod:`xstilts.pipeline.promotion`. Every run records params,
per-language metrics, tags (phase, tasks, model, data source, seed, the model folder and its fingerprint) and
artifacts, and ends FAILED with the reason on error. Models stay in DVC's cache, not in MLflow's store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from xstilts.encoder.loading import load_encoder, resolve_model
from xstilts.errors import XstiltsError
from xstilts.modeling import fingerprint
from xstilts.params import Params, TrainParams, load_params
from xstilts.paths import metrics_dir, models_dir, prepared_dir, repo_root
from xstilts.pipeline.runs import NO_INIT, intermediate_tasks, resolve_init
from xstilts.pipeline.training import train_and_evaluate_tasks
from xstilts.tasks import Role, Task, get_task
from xstilts.tracking import configure, log_settings, phase_run, write_metrics_json
from xstilts.training import checkpoint
from xstilts.training.loop import process_state
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
def _run_context(phase: str, run_params: dict[str, Any], tags: dict[str, str], run_id: str | None) -> Iterator[None]:
    """``phase_run`` on the main process (into ``run_id`` when given); other DDP processes log nothing."""
    if not process_state().is_main_process:
        yield
        return
    previous = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        os.environ["MLFLOW_RUN_ID"] = run_id
    try:
        with phase_run(phase, run_params, tags):
            yield
    finally:
        if run_id:
            os.environ.pop("MLFLOW_RUN_ID", None)
            if previous is not None:
                os.environ["MLFLOW_RUN_ID"] = previous


def _plan(phase: str, task_spec: str, role: Role, init: str, params: Params, out_name: str | None):
    """(tasks, folder name, encoder to load, intermediate tasks tag) of a training phase."""
    if role == Role.INTERMEDIATE:
        out_name, names = intermediate_tasks(task_spec, params)
        tasks = [get_task(n, role, source=params.data.source) for n in names]
        return tasks, out_name, params.model.name, ",".join(names)
    encoder_name, tag = resolve_init(init, params)
    return [get_task(task_spec, role, source=params.data.source)], out_name, encoder_name, tag


def _quiet_plan(phase: str, task_spec: str, role: Role, init: str, cfg_of, out_name: str | None) -> Path | None:
    """The checkpoint folder of this run when its settings load (else the run itself reports the error)."""
    try:
        params = load_params()
        tasks, out_name, encoder_name, _ = _plan(phase, task_spec, role, init, params, out_name)
        key = _checkpoint_key(phase, out_name, tasks, encoder_name, cfg_of(params), params)
    except XstiltsError:
        return None
    return checkpoint.checkpoint_dir(phase, out_name, key)


def _train_phase(phase: str, task_spec: str, role: Role, init: str, cfg_of, out_name: str | None) -> dict[str, float]:
    folder = _quiet_plan(phase, task_spec, role, init, cfg_of, out_name)
    run_id = _previous_run(folder) if folder is not None and process_state().is_main_process else None
    tag_key = "target_task" if role == Role.TARGET else "task"
    with _run_context(phase, {"task": task_spec, "init": init}, {tag_key: task_spec}, run_id):
        params = load_params()
        cfg: TrainParams = cfg_of(params)
        tasks, out_name, encoder_name, tag = _plan(phase, task_spec, role, init, params, out_name)
        main = process_state().is_main_process
        folder = checkpoint.checkpoint_dir(
            phase, out_name, _checkpoint_key(phase, out_name, tasks, encoder_name, cfg, params)
        )
        if main:
            log_settings(params, cfg.model_dump(exclude={"tasks", "inits", "groups"}), {"intermediate_tasks": tag})
            checkpoint.write_run_id(folder, mlflow.active_run().info.run_id)
        tokenizer, encoder = load_encoder(encoder_name)
        model_dir = models_dir() / phase / out_name
        sampling = None
        if role == Role.INTERMEDIATE:
            sampling = SamplingConfig(cfg.sampling, cfg.temperature, cfg.examples_cap)
        outcome = train_and_evaluate_tasks(
            tasks,
            tokenizer,
            encoder,
            cfg,
            params.seed,
            model_dir,
            repo_root() / "predictions" / phase / f"{out_name}.csv",
            {"intermediate_tasks": tag, "base_model": params.model.name, "seed": params.seed},
            sampling=sampling,
            checkpoint_dir=folder,
            base=local if (local := Path(resolve_model(encoder_name))).is_dir() else None,
        )
        if not outcome.is_main:
            return {}
        if outcome.resumed_from:
            mlflow.set_tag("resumed_from_step", str(outcome.resumed_from))
        mlflow.log_metrics(outcome.metrics)
        write_metrics_json(metrics_dir() / phase / f"{out_name}.json", outcome.metrics)
        if role == Role.TARGET:
            _write_xtreme(tasks[0].name, repo_root() / "predictions" / phase / f"{out_name}.csv", init)
        # the model stays in DVC's cache; MLflow gets a copy only when the registry promotes it (registry.promote)
        saved = {"model_dir": str(model_dir.relative_to(repo_root())), "model_fingerprint": fingerprint(model_dir)}
        mlflow.set_tags(saved)
        checkpoint.remove(folder)
        return outcome.metrics


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


def run_intermediate(task: str) -> dict[str, float]:
    """Phase 2: train ``task`` (English; ``a,b,c`` or a group of ``intermediate.groups`` trains several together)
    from the pretrained encoder; writes models/intermediate/<task, group name, or a+b+c>."""

    def settings(params: Params) -> TrainParams:  # per_task by folder name: task=a,b and task=a+b read a+b
        return params.intermediate.for_task(intermediate_tasks(task, params)[0])

    return _train_phase("intermediate", task, Role.INTERMEDIATE, NO_INIT, settings, None)


def run_target(task: str, init: str = NO_INIT) -> dict[str, float]:
    """Phase 3: fine-tune ``task`` on English from ``init``'s encoder, evaluate zero-shot in every language."""
    return _train_phase("target", task, Role.TARGET, init, lambda p: p.target.for_task(task), f"{task}-{init}")
