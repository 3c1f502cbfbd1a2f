"""The ``retrieve`` entry point: zero-shot retrieval straight from an encoder, no fine-tuning.

Apart from :mod:`xstilts.pipeline.phases` so that a retrieval stage imports neither the training loop nor its
metrics (scikit-learn alone takes about a second to import).
"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd

from xstilts.atomic import write_text_atomic
from xstilts.data.loading import load_split
from xstilts.data.reports import require_validated
from xstilts.digest import fingerprint
from xstilts.encoder.loading import load_encoder, resolve_model
from xstilts.errors import XstiltsError
from xstilts.lineage import EVALUATION, log_prepared_inputs, prepared_inputs
from xstilts.logged_models import model_dir_tag
from xstilts.params import Params, load_params
from xstilts.paths import metrics_dir, prepared_dir, repo_root
from xstilts.pipeline.run_names import NO_INIT, encoder_revision, resolve_init, seeded
from xstilts.retrieval import Embedder, RetrievalResult, retrieve, write_retrieval_predictions
from xstilts.tasks import Role, get_task
from xstilts.tracking import Tag, log_settings, phase_run, recorded_on, run_name, write_metrics_json
from xstilts.training.precision import Precision

# the encoder embeds in fp32: retrieval is a few forward passes, and its vectors stay comparable across machines
RETRIEVAL_PRECISION = Precision("fp32", "fp32", "retrieval embeds in fp32 on every machine")


def retrieval_predictions_csv(task: str, encoder: str) -> Path:
    return repo_root() / "predictions" / "retrieve" / f"{task}-{encoder}.csv"


def _examples(result: RetrievalResult, layer: int) -> pd.DataFrame:
    """Each query's hit at ``layer`` (the table :mod:`xstilts.study` reads), empty where the family keeps none."""
    table = pd.DataFrame(result.examples)
    table.insert(0, "layer", layer)
    return table


def run_retrieve(
    task: str, encoder: str = NO_INIT, params: Params | None = None, seed: int | None = None
) -> dict[str, float]:
    """Score retrieval ``task`` with an encoder: the pretrained one (``none``) or an intermediate model's, of
    ``seed`` in a several-seed study (``params`` defaults to ``params.yaml``)."""
    logged = {"task": task, "encoder": encoder, **({} if seed is None else {"run_seed": seed})}
    with phase_run("retrieve", logged, {Tag.TASK: task}, run_name("retrieve", task, encoder, seed)):
        params = params or load_params()
        if seed is not None and encoder == NO_INIT:
            raise XstiltsError("Encoder none is the pretrained encoder, the same for every seed; drop the seed.")
        cfg = params.retrieve
        retrieval_task = get_task(task, Role.RETRIEVAL, source=params.data.source)
        require_validated(retrieval_task.name, prepared_dir(retrieval_task.name))
        encoder_name, intermediate_tasks = resolve_init(encoder, params, seed)
        encoder = seeded(encoder, seed)  # the name of its outputs
        tags = {Tag.INTERMEDIATE: intermediate_tasks, **RETRIEVAL_PRECISION.tags()}
        log_settings(params, cfg.model_dump(exclude={"tasks", "encoders"}), tags)
        log_prepared_inputs(prepared_inputs((retrieval_task.name, split, EVALUATION) for split in ("dev", "test")))
        tokenizer, model = load_encoder(encoder_name, encoder_revision(encoder_name, params))
        if (folder := Path(resolve_model(encoder_name))).is_dir():  # what promotion serves (a hub id has no folder)
            mlflow.set_tags({Tag.MODEL_DIR: model_dir_tag(folder), Tag.FINGERPRINT: fingerprint(folder)})
        started = time.time()
        dev, test = (load_split(retrieval_task.name, split) for split in ("dev", "test"))
        also = tuple(layer for layer in cfg.layers if layer != cfg.layer)
        embedder = Embedder(tokenizer, model, cfg.layer, cfg.max_length, cfg.batch_size, also)
        result = retrieve(retrieval_task.family, dev, test, embedder)
        metrics = dict(result.metrics)
        tables = [_examples(result, cfg.layer)]
        for layer in also:  # the vectors are kept: no second forward pass
            swept = retrieve(retrieval_task.family, dev, test, embedder.at(layer))
            metrics.update({f"layer{layer}_{k}": v for k, v in swept.metrics.items()})
            tables.append(_examples(swept, layer))
        metrics["wall_seconds"] = time.time() - started
        mlflow.log_metrics(metrics)
        metrics_json = metrics_dir() / "retrieve" / f"{task}-{encoder}.json"
        write_metrics_json(metrics_json, {**metrics, **recorded_on(RETRIEVAL_PRECISION.name)})
        if result.examples:
            path = retrieval_predictions_csv(task, encoder)
            write_text_atomic(path, pd.concat(tables, ignore_index=True).to_csv(index=False))
            mlflow.log_artifact(str(path), artifact_path="predictions")
        written = write_retrieval_predictions(
            retrieval_task.name, result, repo_root() / "predictions" / "xtreme" / encoder
        )
        if written:
            from xstilts.xtreme_format import log_xtreme_artifacts

            log_xtreme_artifacts(written)
        return metrics
