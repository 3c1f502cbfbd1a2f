"""The entry points behind ``MLproject``: each one is a function that tests call directly.

``run_intermediate`` (phase 2), ``run_target`` (phase 3), ``run_retrieve`` (retrieval straight
from an encoder) and ``run_promote`` (registry). Every run records params, per-language metrics,
tags (phase, tasks, model, data source, seed) and artifacts, and ends FAILED with the reason on error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import mlflow

from xstilts.data.loading import load_split
from xstilts.encoder.loading import load_encoder
from xstilts.errors import XstiltsError
from xstilts.modeling import read_meta
from xstilts.params import Params, TrainParams, load_params
from xstilts.paths import metrics_dir, models_dir, repo_root
from xstilts.pipeline.training import train_and_evaluate
from xstilts.retrieval import tatoeba_accuracy
from xstilts.tasks import Family, Role, get_task
from xstilts.tracking import phase_run, write_metrics_json

NO_INIT = "none"


def _checked_params(params: Params | None) -> Params:
    params = params or load_params()
    if params.data.source != "offline":
        raise XstiltsError(
            "data.source=hub needs the Hugging Face Hub loaders, which this version does not have yet; "
            "set data.source: offline."
        )
    return params


def _log_settings(params: Params, section: dict[str, Any], tags: dict[str, str]) -> None:
    mlflow.log_params({"seed": params.seed, "model": params.model.name, "data_source": params.data.source})
    mlflow.log_params({k: json.dumps(v) if isinstance(v, list) else v for k, v in section.items()})
    mlflow.set_tags({"model": params.model.name, "data_source": params.data.source, "seed": str(params.seed), **tags})


def intermediate_model_dir(task: str) -> Path:
    return models_dir() / "intermediate" / task


def resolve_init(init: str, params: Params) -> tuple[str, str]:
    """Map ``init`` ("none", an intermediate task, or a model folder) to (encoder to load, intermediate tasks)."""
    if init == NO_INIT:
        return params.model.name, NO_INIT
    candidate = intermediate_model_dir(init)
    if not candidate.exists() and Path(init).exists():
        candidate = Path(init)
    if candidate.exists():
        meta = read_meta(candidate)
        return str(candidate / "encoder"), meta.get("intermediate_tasks", init)
    get_task(init, Role.INTERMEDIATE)  # an unknown name fails here with the list of tasks
    raise XstiltsError(
        f"No intermediate model for {init!r} at {candidate}; "
        f"run `mlflow run . -e intermediate -P task={init}` (or `dvc repro`) first."
    )


def _train_phase(phase: str, task_name: str, role: Role, init: str, cfg_of, out_name: str) -> dict[str, float]:
    with phase_run(
        phase, {"task": task_name, "init": init}, {"target_task" if role == Role.TARGET else "task": task_name}
    ):
        params = _checked_params(None)
        cfg: TrainParams = cfg_of(params)
        task = get_task(task_name, role)
        encoder_name, intermediate_tasks = (
            (params.model.name, task_name) if role == Role.INTERMEDIATE else resolve_init(init, params)
        )
        _log_settings(params, cfg.model_dump(exclude={"tasks", "inits"}), {"intermediate_tasks": intermediate_tasks})
        tokenizer, encoder = load_encoder(encoder_name)
        model_dir = models_dir() / phase / out_name
        outcome = train_and_evaluate(
            task,
            tokenizer,
            encoder,
            cfg,
            params.seed,
            model_dir,
            repo_root() / "predictions" / phase / f"{out_name}.csv",
            {"intermediate_tasks": intermediate_tasks, "base_model": params.model.name, "seed": params.seed},
        )
        mlflow.log_metrics(outcome.metrics)
        write_metrics_json(metrics_dir() / phase / f"{out_name}.json", outcome.metrics)
        if role == Role.TARGET and task.family == Family.CLASSIFICATION:
            from xstilts.serving import log_classifier

            mlflow.set_tag("model_uri", log_classifier(model_dir, task.name))
        else:
            mlflow.log_artifacts(str(model_dir), artifact_path="model")
        return outcome.metrics


def run_intermediate(task: str) -> dict[str, float]:
    """Phase 2: train ``task`` (English) from the pretrained encoder; writes models/intermediate/<task>."""
    return _train_phase("intermediate", task, Role.INTERMEDIATE, NO_INIT, lambda p: p.intermediate, task)


def run_target(task: str, init: str = NO_INIT) -> dict[str, float]:
    """Phase 3: fine-tune ``task`` on English from ``init``'s encoder, evaluate zero-shot in every language."""
    return _train_phase("target", task, Role.TARGET, init, lambda p: p.target, f"{task}-{init}")


def run_retrieve(task: str, encoder: str = NO_INIT) -> dict[str, float]:
    """Retrieval straight from an encoder (the pretrained one, or an intermediate model's)."""
    with phase_run("retrieve", {"task": task, "encoder": encoder}, {"target_task": task}):
        params = _checked_params(None)
        cfg = params.retrieve
        retrieval_task = get_task(task, Role.RETRIEVAL)
        encoder_name, intermediate_tasks = resolve_init(encoder, params)
        _log_settings(params, cfg.model_dump(exclude={"tasks", "encoders"}), {"intermediate_tasks": intermediate_tasks})
        tokenizer, model = load_encoder(encoder_name)
        started = time.time()
        metrics: dict[str, float] = {}
        for split in ("dev", "test"):
            ds = load_split(retrieval_task.name, split)
            metrics.update(tatoeba_accuracy(ds, tokenizer, model, split, cfg.layer, cfg.max_length, cfg.batch_size))
        metrics["wall_seconds"] = time.time() - started
        mlflow.log_metrics(metrics)
        write_metrics_json(metrics_dir() / "retrieve" / f"{task}-{encoder}.json", metrics)
        return metrics


def run_promote(tasks: list[str] | None = None) -> list:
    """Register, per target task, the best run's model as ``xstilts-<task>@champion`` if it beats the champion."""
    from xstilts.registry import champions, promote

    with phase_run("promote", {"tasks": ",".join(tasks or ["all"])}, {}):
        params = load_params()
        targets = tasks or params.target.tasks
        mlflow.log_param("metric", params.promote.metric)
        results = []
        for task in targets:
            if get_task(task, Role.TARGET).family != Family.CLASSIFICATION:
                # the pyfunc model (xstilts.serving) serves classifiers only; other families stay unregistered
                print(f"{task}: not registered (registry models exist for classification targets only)")
                continue
            result = promote(task, params.promote.metric)
            mlflow.log_metric(f"{task}_promoted", float(result.promoted))
            results.append(result)
        board = {
            row["target"]: {"version": int(row["version"]), str(row["metric"]): float(row["metric_value"])}
            for row in champions()
            if row["target"] in targets
        }
        write_metrics_json(metrics_dir() / "champions.json", board)
        return results
