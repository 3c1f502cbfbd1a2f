"""Phases 2 and 3 for classification tasks: train on English, evaluate every language, save and log."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from accelerate.utils import set_seed

from xstilts.data.loading import load_split
from xstilts.modeling import HeadSpec, MultiTaskModel, save_model
from xstilts.params import TrainParams
from xstilts.tasks import Task
from xstilts.training.evaluation import per_language_accuracy, predict
from xstilts.training.features import Collator, tokenize_classification
from xstilts.training.loop import bf16_available, train_classifier


@dataclass
class Outcome:
    metrics: dict[str, float]
    model_dir: Path


def train_and_evaluate(
    task: Task,
    tokenizer,
    encoder,
    cfg: TrainParams,
    seed: int,
    model_dir: Path,
    predictions_path: Path,
    extra_meta: dict,
) -> Outcome:
    """Train ``task`` on its English training split, pick the best English-dev checkpoint, evaluate dev and test."""
    started = time.time()
    labels = list(task.labels)
    set_seed(seed)  # the fresh head's initialisation is part of the run's randomness
    model = MultiTaskModel(encoder, [HeadSpec(task.name, task.family.value, labels)])
    collator = Collator(tokenizer)

    def features(split: str):
        return tokenize_classification(load_split(task.name, split), tokenizer, labels, cfg.max_length)

    train = features("train").filter(lambda row: row["language"] == task.train_language)
    dev, test = features("dev"), features("test")
    dev_train_language = dev.filter(lambda row: row["language"] == task.train_language)

    def log_eval(step: int, values: dict[str, float]) -> None:
        mlflow.log_metrics({f"{task.name}_{k}": v for k, v in values.items()}, step=step)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
        print(f"[{task.name}] step {step}: {shown} ({time.time() - started:.0f} s)", flush=True)

    result = train_classifier(model, task.name, train, dev_train_language, collator, cfg, seed, on_eval=log_eval)
    metrics: dict[str, float] = {
        "train_examples": float(len(train)),
        "train_steps": float(result.steps),
        "best_step": float(result.best_step),
        "train_tokens_per_second": result.train_tokens / max(time.time() - started, 1e-9),
    }
    bf16 = cfg.bf16 and bf16_available()
    predictions = []
    for split, feats in (("dev", dev), ("test", test)):
        probs = predict(model, task.name, feats, collator, 2 * cfg.batch_size, bf16)
        gold, pred = np.asarray(feats["labels"]), probs.argmax(-1)
        metrics.update(
            per_language_accuracy(feats["language"], gold, pred, split, task.train_language, task.original_languages)
        )
        predictions.append(
            pd.DataFrame(
                {
                    "split": split,
                    "id": feats["id"],
                    "language": feats["language"],
                    "domain": feats["domain"],
                    "gold": [labels[i] for i in gold],
                    "prediction": [labels[i] for i in pred],
                    "confidence": probs.max(-1),
                }
            )
        )
    save_model(model, tokenizer, model_dir, extra={"max_length": cfg.max_length, **extra_meta})
    table = pd.concat(predictions, ignore_index=True)
    predictions_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(predictions_path, index=False)
    mlflow.log_artifact(str(predictions_path), artifact_path="predictions")
    metrics["wall_seconds"] = time.time() - started
    return Outcome(metrics, model_dir)
