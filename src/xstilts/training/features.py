"""Turn canonical classification rows into model inputs (tokenised once, cached by ``datasets``)."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from xstilts.errors import XstiltsError


def tokenize_classification(
    ds: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, labels: Sequence[str], max_length: int
) -> datasets.Dataset:
    """Add ``input_ids``, ``attention_mask`` and integer ``labels``; keep ``language`` and ``id``."""
    label_ids = {label: i for i, label in enumerate(labels)}
    unknown = set(ds.unique("label")) - set(label_ids)
    if unknown:
        raise XstiltsError(f"Labels {sorted(unknown)} are not in the task's label set {list(labels)}.")
    pair = any(b is not None for b in ds["text_b"])

    def encode(batch: dict) -> dict:
        args = (batch["text_a"], batch["text_b"]) if pair else (batch["text_a"],)
        enc = tokenizer(*args, truncation=True, max_length=max_length)
        enc["labels"] = [label_ids[x] for x in batch["label"]]
        return enc

    keep = {"id", "language", "domain"}
    return ds.map(encode, batched=True, remove_columns=[c for c in ds.column_names if c not in keep])


class Collator:
    """Dynamic padding of the model columns; other columns are dropped."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        model_rows = [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in rows]
        return self.pad(model_rows)
