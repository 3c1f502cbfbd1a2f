"""Predictions and per-language metrics for classification."""

from __future__ import annotations

from collections.abc import Iterable

import datasets
import numpy as np
import torch
from sklearn.metrics import accuracy_score
from torch.utils.data import DataLoader

from xstilts.modeling import MultiTaskModel
from xstilts.training.features import Collator


@torch.no_grad()
def predict(
    model: MultiTaskModel, task: str, features: datasets.Dataset, collator: Collator, batch_size: int, bf16: bool
) -> np.ndarray:
    """Class probabilities ``[n, n_labels]`` in the order of ``features`` (batched by length for speed)."""
    model.eval()
    order = np.argsort([len(x) for x in features["input_ids"]], kind="stable")
    loader = DataLoader(features.select(order), batch_size=batch_size, collate_fn=collator)
    device = next(model.parameters()).device
    chunks = []
    for batch in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(task, batch["input_ids"].to(device), batch["attention_mask"].to(device))
        chunks.append(torch.softmax(logits.float(), dim=-1).cpu())
    probs = torch.cat(chunks).numpy() if chunks else np.zeros((0, len(model.specs[task].labels)))
    out = np.empty_like(probs)
    out[order] = probs
    return out


def per_language_accuracy(
    languages: Iterable[str],
    gold: np.ndarray,
    pred: np.ndarray,
    prefix: str,
    train_language: str = "en",
    original_languages: tuple[str, ...] = (),
) -> dict[str, float]:
    """``<prefix>_accuracy_<lang>`` for each language, plus averages.

    ``_zeroshot``: mean over languages other than the training language; ``_translated``: the same
    without languages whose data are human originals (e.g. Polish in MultiEmo), when there are any.
    """
    languages = np.asarray(list(languages))
    metrics: dict[str, float] = {}
    for lang in sorted(set(languages)):
        mask = languages == lang
        metrics[f"{prefix}_accuracy_{lang}"] = float(accuracy_score(gold[mask], pred[mask]))
    zero_shot = [v for k, v in metrics.items() if not k.endswith(f"_{train_language}")]
    if zero_shot:
        metrics[f"{prefix}_accuracy_zeroshot"] = float(np.mean(zero_shot))
    translated = [
        v
        for k, v in metrics.items()
        if k.rsplit("_", 1)[-1] not in (train_language, *original_languages) and not k.endswith("_zeroshot")
    ]
    if original_languages and translated:
        metrics[f"{prefix}_accuracy_translated"] = float(np.mean(translated))
    return metrics
