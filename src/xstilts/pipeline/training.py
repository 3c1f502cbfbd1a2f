"""Phases 2 and 3 for every trainable family: train on English, evaluate every language, save and log.

A task trains on its own English training rows, or, when it sets ``train_from``, on that task's (same family,
e.g. ``brown_pos`` for the POS targets, ``squadshifts`` for the QA targets). The English dev rows of the task
it trains on pick the checkpoint; the task's own dev and test splits (all languages) are reported as
``<split>_<metric>_<lang>`` plus ``_zeroshot`` (mean over non-English languages) and, for tasks with human
originals among translations, ``_translated``. Metric names per family: see :mod:`xstilts.training.evaluation`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import mlflow
import pandas as pd
import pyarrow.parquet as pq
from accelerate.utils import set_seed

from xstilts.data.loading import load_split
from xstilts.errors import XstiltsError
from xstilts.modeling import HeadSpec, MultiTaskModel, save_model
from xstilts.params import TrainParams
from xstilts.paths import prepared_dir
from xstilts.tasks import Task, get_task
from xstilts.training.evaluation import evaluate
from xstilts.training.features import Collator, qa_stride, tokenize
from xstilts.training.loop import bf16_available, train_task


@dataclass
class Outcome:
    metrics: dict[str, float]
    model_dir: Path


def load_rows(task: str, split: str, language: str | None = None) -> datasets.Dataset | None:
    """A prepared split (only ``language``'s rows when given); None when it has no rows."""
    path = prepared_dir(task) / f"{split}.parquet"
    try:
        empty = path.exists() and pq.ParquetFile(path).metadata.num_rows == 0
    except Exception:  # unreadable: load_split says so in its own words
        empty = False
    if empty:
        return None
    ds = load_split(task, split)
    if language is not None:
        ds = ds.filter(lambda row: row["language"] == language)
    return ds if len(ds) else None


def training_source(task: Task) -> Task:
    """The task whose training data ``task`` trains on: ``task.train_from`` when set, else itself."""
    if not task.train_from:
        return task
    source = get_task(task.train_from)
    if source.family != task.family:
        raise XstiltsError(
            f"{task.name} trains from {source.name}, a {source.family.value} task, but is itself "
            f"{task.family.value}; train_from must name a task of the same family."
        )
    return source


def train_and_evaluate(
    task: Task,
    tokenizer,
    encoder,
    cfg: TrainParams,
    seed: int,
    model_dir: Path,
    predictions_path: Path,
    extra_meta: dict,
    stride: int | None = None,
) -> Outcome:
    """Train ``task`` on English, pick the best English-dev checkpoint, evaluate the task's dev and test.

    ``stride``: overlap of QA context windows (default ``cfg.max_length // 4``); other families ignore it.
    """
    started = time.time()
    family = task.family.value
    labels = list(task.labels)
    source = training_source(task)
    lang = task.train_language
    train_rows = load_rows(source.name, "train", lang)
    if train_rows is None:
        language = "English" if lang == "en" else lang
        via = f" (from {source.name})" if source is not task else ""
        raise XstiltsError(
            f"{task.name} has no {language} training data{via}; its prepared train split has no {lang} rows. "
            "Train it from an English task of the same family (train_from) or prepare the data again."
        )
    set_seed(seed)  # the fresh head's initialisation is part of the run's randomness
    model = MultiTaskModel(encoder, [HeadSpec(task.name, family, labels)])
    collator = Collator(tokenizer, family)
    stride = qa_stride(cfg.max_length, stride)

    def features(rows: datasets.Dataset) -> datasets.Dataset:
        return tokenize(family, rows, tokenizer, labels, cfg.max_length, stride)

    train = features(train_rows)
    dev_rows = load_rows(source.name, "dev", lang)
    dev_train_language = features(dev_rows) if dev_rows is not None else None

    def log_eval(step: int, values: dict[str, float]) -> None:
        mlflow.log_metrics({f"{task.name}_{k}": v for k, v in values.items()}, step=step)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
        print(f"[{task.name}] step {step}: {shown} ({time.time() - started:.0f} s)", flush=True)

    result = train_task(
        model, task.name, train, dev_train_language, collator, cfg, seed, on_eval=log_eval, dev_examples=dev_rows
    )
    metrics: dict[str, float] = {
        "train_examples": float(len(train_rows)),
        "train_features": float(len(train)),
        "train_steps": float(result.steps),
        "best_step": float(result.best_step),
        "train_tokens_per_second": result.train_tokens / max(time.time() - started, 1e-9),
    }
    bf16 = cfg.bf16 and bf16_available()
    tables = []
    for split in ("dev", "test"):
        rows = load_rows(task.name, split)
        if rows is None:
            continue
        evaluation = evaluate(model, task.name, rows, features(rows), collator, 2 * cfg.batch_size, bf16)
        metrics.update(evaluation.per_language(split, task.train_language, task.original_languages))
        tables.append(evaluation.table(split))
    meta = {"max_length": cfg.max_length, "family": family, **extra_meta}
    if family == "extractive_qa":
        meta["doc_stride"] = stride
    if source is not task:
        meta["train_from"] = source.name
    save_model(model, tokenizer, model_dir, extra=meta)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(predictions_path, index=False)
    mlflow.log_artifact(str(predictions_path), artifact_path="predictions")
    metrics["wall_seconds"] = time.time() - started
    return Outcome(metrics, model_dir)
