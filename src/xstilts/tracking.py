"""MLflow set-up: a sqlite store at the repository root, artifacts under ``mlruns/`` (or wherever a shared
tracking server keeps them), runs that fail say why, and every run tagged with the machine it ran on
(:func:`xstilts.hardware.describe`)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from xstilts import hardware, timing
from xstilts.atomic import write_text_atomic
from xstilts.params import Params
from xstilts.paths import main_root

EXPERIMENT = "xstilts"  # the phase runs: tune (and its trials), intermediate, target, retrieve, promote, report
DATA_EXPERIMENT = "xstilts-data"  # the data stages' runs, apart so that the training experiment holds phases only
DATA_PHASES = frozenset({"fetch", "extract", "encoder", "prepare", "validate"})
# The experiment's kind as the MLflow UI (server/js) records it, "custom_model_development": classic model training.
# MLflow 3.17's UI opens a page by its "GenAI | Model training" switch, not by this tag (docs/pipeline.md;
# scripts/ui_check.py).
KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


class Tag:
    """The MLflow tag names of xstilts runs, one place for the phases, the registry, the report and the UI."""

    PHASE = "phase"  # fetch, extract, encoder, prepare, validate, intermediate, target, retrieve
    TASK = "task"  # the task a run prepares, trains (an intermediate spec, a target) or scores (retrieval)
    INTERMEDIATE = "intermediate_tasks"  # what the run's encoder was trained on ("none": the pretrained one)
    MODEL = "model"
    DATA_SOURCE = "data_source"
    SEED = "seed"
    PROFILE = "profile"  # the params.yaml profile the run's settings came from
    MODEL_DIR = "model_dir"  # the model folder the run wrote (relative to the checkout)
    FINGERPRINT = "model_fingerprint"  # sha256 of that folder's files when the run ended
    FAILURE = "failure_reason"
    RESUMED = "resumed_from_step"
    STUDY = "tuning_study"  # the Optuna study: on its parent and trial runs, and on phase-2 runs using its result
    ATTEMPT = "fanout_attempt"  # xstilts fanout: session/stage/attempt number
    NODE = "fanout_node"  # xstilts fanout: the Ray node id the run ran on


ATTEMPT_ENV, NODE_ENV = "XSTILTS_FANOUT_ATTEMPT", "XSTILTS_FANOUT_NODE"  # set by a fan-out worker (xstilts.fanout)


def fanout_tags() -> dict[str, str]:
    """Under ``xstilts fanout``: the attempt (session/stage/n) and the Ray node, so that the coordinator can end the
    runs of an attempt whose node was lost."""
    tags = {Tag.ATTEMPT: os.environ.get(ATTEMPT_ENV), Tag.NODE: os.environ.get(NODE_ENV)}
    return {k: v for k, v in tags.items() if v}


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<checkout>/mlflow.db`` (absolute, so temp DVC workspaces share it)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{main_root() / 'mlflow.db'}"


def local_store(uri: str) -> bool:
    """A tracking store on this machine's disk (a sqlite file, a folder), not one that other machines share."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def configure(experiment: str = EXPERIMENT) -> str:
    """Point MLflow (and child processes) at the project's store; return the id of ``experiment`` (the training
    one: ``$MLFLOW_EXPERIMENT_ID`` when set, as under ``mlflow run``), created or tagged as model training."""
    uri = tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    training = experiment == EXPERIMENT
    if training and (exp_id := os.environ.get("MLFLOW_EXPERIMENT_ID")):
        found = mlflow.get_experiment(exp_id)
    else:
        found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        # a local store keeps artifacts under mlruns/; a shared server (several machines) decides where they go
        artifacts = (main_root() / "mlruns").as_uri() if local_store(uri) else None
        try:
            exp_id = mlflow.create_experiment(experiment, artifact_location=artifacts, tags={KIND_TAG: MODEL_TRAINING})
        except mlflow.exceptions.MlflowException as exc:  # made meanwhile by another process (a fan-out node)
            found = mlflow.get_experiment_by_name(experiment) if exc.error_code == "RESOURCE_ALREADY_EXISTS" else None
            if found is None:
                raise
            exp_id = found.experiment_id
    else:
        exp_id = found.experiment_id
        if KIND_TAG not in found.tags:  # made by an older xstilts, or by `mlflow run --experiment-name`
            mlflow.MlflowClient().set_experiment_tag(exp_id, KIND_TAG, MODEL_TRAINING)
    if training:
        os.environ["MLFLOW_EXPERIMENT_ID"] = exp_id
    return exp_id


def run_name(
    phase: str, task: str | None = None, source: str | None = None, seed: int | None = None, trial: int | None = None
) -> str:
    """What a run is, as the MLflow UI lists it: ``intermediate vitaminc``, ``target multiemo <- all s14``
    (``source``: the init or encoder, ``seed``: one of several), ``tune vitaminc #3`` (a trial), ``report``."""
    parts = [
        phase,
        task and "+".join(t.strip() for t in task.split(",")),  # a task list reads like its folder: a+b
        source and f"<- {source}",
        None if seed is None else f"s{seed}",
        None if trial is None else f"#{trial}",
    ]
    return " ".join(p for p in parts if p)


@contextmanager
def temporary_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block, and put back what was there afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def phase_run(
    phase: str, params: dict[str, Any], tags: dict[str, str], name: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Start (or, under ``mlflow run``, continue) a run named ``name`` (default: the phase and ``tags``' task), in
    the data experiment for a data stage; on any error tag the reason and end it FAILED."""
    started = time.time()
    exp_id = configure(DATA_EXPERIMENT if phase in DATA_PHASES else EXPERIMENT)
    name = name or run_name(phase, tags.get(Tag.TASK))
    if os.environ.get("MLFLOW_RUN_ID"):  # the run exists (`mlflow run`, a resumed or tuning run): name it
        run = mlflow.start_run(run_name=name)
    else:
        run = mlflow.start_run(experiment_id=exp_id, run_name=name)
    try:
        machine = {}
        if phase not in DATA_PHASES:  # the machine a computing run depended on, with torch on every usable core
            hardware.use_all_cores()
            machine = hardware.describe()
        mlflow.set_tags({Tag.PHASE: phase, "python": platform.python_version(), **machine, **fanout_tags(), **tags})
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        yield run
    except BaseException as exc:
        reason = str(exc).strip() or type(exc).__name__
        mlflow.set_tag(Tag.FAILURE, reason[:5000])
        mlflow.end_run(status="FAILED" if not isinstance(exc, KeyboardInterrupt) else "KILLED")
        timing.record("work", time.time() - started, ok=False)
        raise
    else:
        mlflow.end_run(status="FINISHED")
        timing.record("work", time.time() - started, ok=True)


def log_settings(params: Params, section: dict[str, Any], tags: dict[str, str]) -> None:
    """Log a run's settings (seed, model, data source and its params.yaml section) as params and tags."""
    mlflow.log_params({"seed": params.seed, "model": params.model.name, "data_source": params.data.source})
    if params.model.revision:  # the Hub commit the pretrained encoder was read at
        mlflow.log_param("model_revision", params.model.revision)
    mlflow.log_params({k: _param(v) for k, v in section.items()})
    mlflow.set_tags({**setting(params), Tag.SEED: str(params.seed), **tags})


def setting(params: Params) -> dict[str, str]:
    """The tags that say which runs are comparable: the same base model, data source and profile."""
    return {Tag.MODEL: params.model.name, Tag.DATA_SOURCE: params.data.source, Tag.PROFILE: params.profile}


def _param(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def recorded_on(precision: str) -> dict[str, str]:
    """What a metrics file records of where its numbers came from: the machine and the precision the run used (the
    study never pools runs of different settings)."""
    from xstilts.hardware import machine

    return {"machine": machine(), "precision": precision}


TIMING_METRICS = ("wall_seconds", "train_tokens_per_second")  # logged to MLflow, never in a DVC out


def write_metrics_json(path: Path, metrics: dict[str, Any]) -> None:
    """Write a DVC metrics file atomically and log it as a run artifact.

    Timings stay out of the file (they are in the MLflow run): the same inputs give a byte-identical file.
    """
    kept = {k: v for k, v in metrics.items() if k not in TIMING_METRICS}
    write_text_atomic(path, json.dumps(kept, indent=2, sort_keys=True))
    mlflow.log_artifact(str(path))
