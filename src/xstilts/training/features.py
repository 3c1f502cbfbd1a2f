"""Canonical rows -> model inputs and batches, by the task's family (:mod:`xstilts.families` holds each builder).

Every builder keeps ``id``, ``language`` and ``domain`` and adds ``input_ids``, ``attention_mask`` and ``labels``
(tokenised once, cached by ``datasets``); what each family adds is documented on its spec.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from xstilts.families import spec


class Collator:
    """Dynamic padding of the model columns in the family's shape (see its spec's ``collate``); other columns
    are dropped."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, family: str = "classification") -> None:
        self.spec = spec(family)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        return self.spec.collate(rows, self.pad_id, self.pad)


def tokenize(
    family: str,
    ds: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    labels: Sequence[str],
    max_length: int,
    stride: int | None = None,
) -> datasets.Dataset:
    """The features of ``ds`` built by ``family``'s spec (``stride``: QA window overlap; others ignore it)."""
    return spec(family).tokenize(ds, tokenizer, labels, max_length, stride)
