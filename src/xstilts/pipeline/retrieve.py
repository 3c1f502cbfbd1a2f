"""The ``retrieve`` entry point: zero-shot retrieval straight from an encoder, no fine-tuning.

Apart from :mod:`xstilts.pipeline.phases` so that a retrieval stage imports neither the training loop nor its
metrics (scikit-learn alone takes about a second to import).
"""

from __future__ import annotations

import time

import mlflow

from xstilts.data.loading import load_split
from xstilts.data.reports import require_validated
from xstilts.encoder.loading import load_encoder
from xstilts.params import Params, load_params
from xstilts.paths import metrics_dir, prepared_dir, repo_root
from xstilts.pipeline.runs import NO_INIT, resolve_init
from xstilts.retrieval import Embedder, retrieve, write_retrieval_predictions
from xstilts.tasks import Role, get_task
from xstilts.tracking import Tag, log_settings, phase_run, write_metrics_json


def run_retrieve(task: str, encoder: str = NO_INIT, params: Params | None = None) -> dict[str, float]:
    """Score retrieval ``task`` with an encoder: the pretrained one (``none``) or an intermediate model's
    (``params`` defaults to ``params.yaml``)."""
    with phase_run("retrieve", {"task": task, "encoder": encoder}, {Tag.TASK: task}):
        params = params or load_params()
        cfg = params.retrieve
        retrieval_task = get_task(task, Role.RETRIEVAL, source=params.data.source)
        require_validated(retrieval_task.name, prepared_dir(retrieval_task.name))
        encoder_name, intermediate_tasks = resolve_init(encoder, params)
        log_settings(params, cfg.model_dump(exclude={"tasks", "encoders"}), {Tag.INTERMEDIATE: intermediate_tasks})
        tokenizer, model = load_encoder(encoder_name)
        started = time.time()
        dev, test = (load_split(retrieval_task.name, split) for split in ("dev", "test"))
        embedder = Embedder(tokenizer, model, cfg.layer, cfg.max_length, cfg.batch_size)
        result = retrieve(retrieval_task.family, dev, test, embedder)
        metrics = dict(result.metrics)
        metrics["wall_seconds"] = time.time() - started
        mlflow.log_metrics(metrics)
        write_metrics_json(metrics_dir() / "retrieve" / f"{task}-{encoder}.json", metrics)
        written = write_retrieval_predictions(
            retrieval_task.name, result, repo_root() / "predictions" / "xtreme" / encoder
        )
        if written:
            from xstilts.xtreme_format import log_xtreme_artifacts

            log_xtreme_artifacts(written)
        return metrics
