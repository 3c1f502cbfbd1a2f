"""Phases 2 and 3 for every trainable family: train on English, evaluate every language, save and log.

A task trains on its own English training rows, or, when it sets ``train_from``, on that task's (same family,
e.g. ``brown_pos`` for the POS targets, ``squadshifts`` for the QA targets). The English dev rows of the task
it trains on pick the checkpoint; the task's own dev and test splits (all languages) are reported as
``<split>_<metric>_<lang>`` plus ``_zeroshot`` (mean over non-English languages) and, for tasks with human
originals among translations, ``_translated``. Metric names per family: see :mod:`xstilts.training.evaluation`.
A target also logs ``test_baseline_<main metric>_<lang>``: its family's trivial baseline (chosen on the rows it
trained on) on its test split, so its English score shows whether it is learnable here at all.

Several tasks train together on one shared encoder (one head each, batches drawn by the multi-task sampler);
their final metrics are then prefixed by the task (``<task>_dev_<metric>_<lang>``) and the predictions table
gains a ``task`` column. Under DDP only the main process evaluates, writes files and logs to MLflow.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import mlflow
import pandas as pd
import pyarrow.parquet as pq
from accelerate.utils import set_seed

from xstilts.atomic import write_text_atomic
from xstilts.data.loading import load_split
from xstilts.errors import XstiltsError
from xstilts.families.extractive_qa import qa_stride
from xstilts.modeling import HeadSpec, MultiTaskModel, save_model
from xstilts.params import TrainParams
from xstilts.paths import prepared_dir
from xstilts.tasks import Role, Task, get_task
from xstilts.training.evaluation import evaluate
from xstilts.training.features import Collator
from xstilts.training.loop import TaskData, process_state, train_tasks
from xstilts.training.precision import resolve as resolve_precision
from xstilts.training.sampling import SamplingConfig
from xstilts.training.trim import trimmed, used_token_ids


@dataclass
class Outcome:
    metrics: dict[str, float]  # empty on processes other than the main one
    model_dir: Path
    resumed_from: int = 0  # the step a checkpoint restarted training at (0: a fresh start)
    is_main: bool = True
    curve: list[dict[str, float | None]] = field(default_factory=list)  # each evaluation (a DVC plots file)
    compile_tags: dict[str, str] = field(default_factory=dict)  # whether training was compiled, and why
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)  # a target family: each target's metrics


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
    source = get_task(task.train_from, source=task.source)  # a hub target trains from a hub task
    if source.family != task.family:
        raise XstiltsError(
            f"{task.name} trains from {source.name}, a {source.family.value} task, but is itself "
            f"{task.family.value}; train_from must name a task of the same family."
        )
    return source


def check_max_length(encoder, max_length: int, what: str) -> None:
    """Fail clearly when ``max_length`` tokens do not fit the encoder's position embeddings."""
    positions = getattr(encoder.config, "max_position_embeddings", None)
    if positions is None:
        return
    if getattr(encoder.config, "model_type", "") in ("xlm-roberta", "roberta"):
        positions -= 2  # RoBERTa-style position ids start after the padding index
    if max_length > positions:
        raise XstiltsError(
            f"max_length {max_length} for {what} exceeds the encoder's {positions} positions; "
            "lower max_length (or its per_task override) in params.yaml."
        )


@dataclass
class _Prepared:
    task: Task
    source: Task
    train_rows: datasets.Dataset
    data: TaskData


def _subset(rows: datasets.Dataset | None, n: int | None, seed: int) -> datasets.Dataset | None:
    """A seeded random ``n`` of ``rows`` (all of them when ``n`` is None or not smaller)."""
    if rows is None or n is None or n >= len(rows):
        return rows
    return rows.shuffle(seed=seed).select(range(n))


def prepare_task(
    task: Task,
    tokenizer,
    cfg: TrainParams,
    stride: int,
    train_size: int | None = None,
    dev_size: int | None = None,
    seed: int = 0,
    head: str | None = None,
) -> _Prepared:
    """Tokenized English train and dev rows of ``task`` (of its ``train_from`` task when set); ``train_size`` /
    ``dev_size``: a seeded subset of that many rows (tuning trials); ``head``: the head they train (the task's)."""
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
    train_rows = _subset(train_rows, train_size, seed)
    dev_rows = _subset(load_rows(source.name, "dev", lang), dev_size, seed)
    labels = list(task.labels)
    train = task.spec.tokenize(train_rows, tokenizer, labels, cfg.max_length, stride)
    dev = task.spec.tokenize(dev_rows, tokenizer, labels, cfg.max_length, stride) if dev_rows is not None else None
    collator = Collator(tokenizer, task.family)
    data = TaskData(head or task.name, train, dev, collator, dev_rows, allow_no_answer=source.unanswerable)
    return _Prepared(task, source, train_rows, data)


def baseline_metrics(task: Task, p: _Prepared, test: datasets.Dataset) -> dict[str, float]:
    """``test_baseline_<main metric>_<lang>`` (and ``_zeroshot``): ``task``'s trivial baseline, fitted on the rows
    ``p`` trained on, on ``test``, per language."""
    baseline = task.spec.baseline(p.train_rows.to_pandas(), test.to_pandas(), list(task.labels), p.source.unanswerable)
    scores = baseline.evaluation.per_language("test_baseline", task.train_language, task.original_languages)
    return {k: v for k, v in scores.items() if k.startswith(f"test_baseline_{task.metric}_")}


def train_and_evaluate_tasks(
    tasks: list[Task],
    tokenizer,
    encoder,
    cfg: TrainParams,
    seed: int,
    model_dir: Path,
    predictions_path: Path | dict[str, Path],
    extra_meta: dict,
    stride: int | None = None,
    sampling: SamplingConfig | None = None,
    checkpoint_dir: Path | None = None,
    base: Path | None = None,
    family: str | None = None,
) -> Outcome:
    """Train ``tasks`` together (one head each), keep the weights with the best mean dev metric, evaluate each.

    ``family`` (a target family): ``tasks`` are targets that share their English training data; one head, named
    ``family``, trains once on it and is evaluated on each target (``predictions_path``: one file per target, and
    :attr:`Outcome.per_task` holds each target's metrics with the training's).
    ``base``: the encoder folder that ``encoder`` was loaded from (its unchanged embedding shard is linked).
    ``stride``: overlap of QA context windows (default ``cfg.max_length // 4``); other families ignore it.
    ``checkpoint_dir``: resumable checkpoints (see :func:`xstilts.training.loop.train_tasks`).

    One task gives unprefixed metric names (``test_accuracy_de``); several trained together prefix them with the
    task name and add ``dev_main_metric_mean`` (the mean of the tasks' English dev main metrics that picked the
    weights).
    """
    started = time.time()
    check_max_length(encoder, cfg.max_length, ",".join(t.name for t in tasks))
    state = process_state()
    set_seed(seed)  # the fresh heads' initialisation is part of the run's randomness
    trained = tasks[:1] if family else tasks
    if family and len({(t.family, tuple(t.labels)) for t in tasks}) > 1:
        raise XstiltsError(f"The targets {', '.join(t.name for t in tasks)} of {family} differ in family or labels.")
    heads = {t.name: family or t.name for t in tasks}  # each evaluated task -> the head that predicts it
    model = MultiTaskModel(encoder, [HeadSpec(heads[t.name], t.family.value, list(t.labels)) for t in trained])
    stride = qa_stride(cfg.max_length, stride)
    with state.main_process_first():  # the main process fills the datasets cache, the others read it
        prepared = [prepare_task(t, tokenizer, cfg, stride, head=heads[t.name]) for t in trained]
    several = len(trained) > 1
    names = ",".join(t.name for t in tasks)

    def log_eval(step: int, values: dict[str, float]) -> None:
        mlflow.log_metrics(values, step=step)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
        print(f"[{names}] step {step}: {shown} ({time.time() - started:.0f} s)", flush=True)

    trim = nullcontext()
    if cfg.trim_embeddings:  # train only the embedding rows the train/dev features use; exact (xstilts.training.trim)
        seen = [f for p in prepared for f in (p.data.train, p.data.dev) if f is not None]
        trim = trimmed(encoder, used_token_ids(*seen), tokenizer)
    with trim:  # leaves the full matrix back in place (trained rows included) before evaluation and saving
        result = train_tasks(
            model,
            [p.data for p in prepared],
            cfg,
            seed,
            sampling=sampling,
            on_eval=log_eval,
            checkpoint_dir=checkpoint_dir,
        )
    if not state.is_main_process:
        return Outcome({}, model_dir, result.resumed_from, is_main=False)
    metrics: dict[str, float] = {
        "train_steps": float(result.steps),
        "best_step": float(result.best_step),
        "train_tokens_per_second": result.train_tokens / max(time.time() - started, 1e-9),
    }
    if several:
        metrics["dev_main_metric_mean"] = result.best_score
    elif not math.isnan(result.best_score):  # the kept model's main metric on the English dev set
        metrics["best_dev_score"] = result.best_score
    precision = resolve_precision(cfg.precision, state.device)
    for p in prepared:
        prefix = f"{p.task.name}_" if several else ""
        metrics[f"{prefix}train_examples"] = float(len(p.train_rows))
        metrics[f"{prefix}train_features"] = float(len(p.data.train))
    per_task, tables = {}, {}
    for task in tasks:
        fitted = prepared[0] if family else next(p for p in prepared if p.task is task)
        per_task[task.name], tables[task.name] = _evaluate_task(
            model, heads[task.name], task, fitted, tokenizer, cfg, stride, precision
        )
    meta = {
        "max_length": cfg.max_length,
        "family": ",".join(dict.fromkeys(t.family.value for t in tasks)),
        **extra_meta,
    }
    if any(t.spec.windowed for t in tasks):
        meta["doc_stride"] = stride
    sources = {p.task.name: p.source.name for p in prepared if p.source is not p.task}
    if family:
        meta["evaluated_on"] = [t.name for t in tasks]
    if sources:
        meta["train_from"] = ",".join(sources.values()) if not several else sources
    save_model(model, tokenizer, model_dir, extra=meta, base=base)
    if family:
        for task in tasks:
            _write_predictions(predictions_path[task.name], tables[task.name])
    else:
        for task in tasks:
            prefix = f"{task.name}_" if several else ""
            metrics.update({f"{prefix}{k}": v for k, v in per_task[task.name].items()})
            if several:
                for table in tables[task.name]:
                    table.insert(0, "task", task.name)
        _write_predictions(predictions_path, [t for task in tasks for t in tables[task.name]])
    metrics["wall_seconds"] = time.time() - started
    curve = [{k: v if math.isfinite(v) else None for k, v in point.items()} for point in result.curve]
    compiled = result.compilation.tags() if result.compilation else {}
    per_task = {t: {**metrics, **scores} for t, scores in per_task.items()} if family else {}
    return Outcome(metrics, model_dir, result.resumed_from, curve=curve, compile_tags=compiled, per_task=per_task)


def _evaluate_task(model, head: str, task: Task, trained: _Prepared, tokenizer, cfg, stride, precision):
    """``task``'s dev and test scores (all languages; a target's test also its trivial baseline, fitted on the rows
    ``trained`` trained on) by ``head``, and the predictions tables."""
    scores, tables = {}, []
    for split in ("dev", "test"):
        rows = load_rows(task.name, split)
        if rows is None:
            continue
        features = task.spec.tokenize(rows, tokenizer, list(task.labels), cfg.max_length, stride)
        evaluation = evaluate(
            model,
            head,
            rows,
            features,
            trained.data.collator,
            2 * cfg.batch_size,
            precision,
            allow_no_answer=task.unanswerable,
        )
        scores.update(evaluation.per_language(split, task.train_language, task.original_languages))
        if split == "test" and task.role is Role.TARGET:
            scores.update(baseline_metrics(task, trained, rows))
        tables.append(evaluation.table(split))
    return scores, tables


def _write_predictions(path: Path, tables: list[pd.DataFrame]) -> None:
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    write_text_atomic(path, table.to_csv(index=False))  # a new file: never through a DVC hardlink
    mlflow.log_artifact(str(path), artifact_path="predictions")
