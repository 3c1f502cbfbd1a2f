"""A model's predictions on one split, decoded and scored by the task's family (:mod:`xstilts.families`).

Metric names are ``<split>_<metric>_<language>``, plus ``_zeroshot`` and ``_translated`` averages (see
:func:`~xstilts.families.base.per_language_metrics`); which metrics each family scores, and its main metric
(the one that picks the best checkpoint on the English dev set), are documented on its spec.
"""

from __future__ import annotations

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader

from xstilts.families import Evaluation, spec
from xstilts.modeling import MultiTaskModel
from xstilts.progress import progress
from xstilts.training.features import Collator
from xstilts.training.precision import FP32, Precision


@torch.no_grad()
def model_outputs(
    model: MultiTaskModel,
    task: str,
    features: datasets.Dataset,
    collator: Collator,
    batch_size: int,
    precision: Precision = FP32,
) -> list[np.ndarray]:
    """The head's float32 logits per row of ``features`` (batched by length), padding cut off.

    Rows are ``[n_labels]`` (classification), ``[n_choices]`` (multiple choice), ``[tokens, n_labels]``
    (tagging) or ``[tokens, 2]`` (extractive QA: start, end).
    """
    model.eval()
    family = spec(model.specs[task].family)
    order = np.argsort(family.lengths(features), kind="stable") if len(features) else np.zeros(0, dtype=int)
    loader = DataLoader(features.select(order), batch_size=batch_size, collate_fn=collator)
    device = next(model.parameters()).device
    rows: list[np.ndarray] = []
    for batch in progress(loader, desc=f"evaluate {task}", unit="batch", leave=False):
        mask = batch["attention_mask"]
        with precision.autocast(device.type):
            logits = model(task, batch["input_ids"].to(device), mask.to(device))
        logits = logits.float().cpu().numpy()
        rows.extend(row if n is None else row[:n] for row, n in zip(logits, family.kept(mask), strict=True))
    out: list[np.ndarray] = [np.empty(0)] * len(rows)
    for position, row in zip(order, rows, strict=True):
        out[position] = row
    return out


def evaluate(
    model: MultiTaskModel,
    task: str,
    examples: datasets.Dataset,
    features: datasets.Dataset,
    collator: Collator,
    batch_size: int,
    precision: Precision = FP32,
    allow_no_answer: bool = False,
    null_threshold: float = 0.0,
) -> Evaluation:
    """Predict ``features`` (built from ``examples`` by the family's builder) and score them per example.

    Extractive QA only: ``allow_no_answer`` (the task's ``unanswerable``) decodes and scores SQuAD 2.0 style, with
    ``null_threshold`` as in :func:`~xstilts.families.extractive_qa.decode_qa`.
    """
    head = model.specs[task]
    outputs = model_outputs(model, task, features, collator, batch_size, precision)
    return spec(head.family).evaluate(outputs, examples, features, list(head.labels), allow_no_answer, null_threshold)
