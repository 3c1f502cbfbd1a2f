"""Exact vocabulary trimming: train on the embedding rows the data uses, then write them back.

The offline encoder's 250k x 384 word-embedding matrix is most of its parameters, but one task's data uses a
few thousand pieces. :func:`trim_embeddings` swaps the encoder's input embedding for a
:class:`TrimmedEmbedding` holding only the rows of the used ids (plus the tokenizer's special tokens) and a
lookup ``old id -> new row``; the tokenizer, the ids fed to the model and the position / token-type
embeddings are untouched (RoBERTa-style position ids, computed from the input ids, stay the same).

Exact: on any text whose ids are all in the used set the model's outputs are bit-for-bit those of the full
model. **Ids outside the used set are read as the tokenizer's ``<unk>``** (they get unk's vector), so trim with
the ids of every split the model sees while trimmed (train and dev), and evaluate other data after
:func:`untrim`. :func:`untrim` scatters the (trained) rows back into the full matrix and puts it back, so the
saved model is an ordinary Hugging Face model; rows outside the used set keep their original values (full
training with AdamW weight decay would have shrunk them slightly; their gradient is zero either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xstilts.errors import XstiltsError


def used_token_ids(*features: datasets.Dataset) -> list[int]:
    """Sorted distinct ids in the ``input_ids`` column of tokenized features (nested lists for multiple choice)."""
    if not features:
        raise XstiltsError("used_token_ids needs at least one tokenized dataset; pass the train (and dev) features.")
    found: set[int] = set()
    for ds in features:
        if "input_ids" not in ds.column_names:
            raise XstiltsError(
                f"Features with columns {ds.column_names} have no input_ids; tokenize them first (training.features)."
            )
        ids: pa.ChunkedArray = ds.with_format("arrow")["input_ids"]  # respects select/filter indices
        while pa.types.is_list(ids.type) or pa.types.is_large_list(ids.type):
            ids = pc.list_flatten(ids)
        found.update(int(i) for i in np.asarray(pc.unique(ids).to_numpy(zero_copy_only=False)))
    return sorted(found)


class TrimmedEmbedding(nn.Embedding):
    """An ``nn.Embedding`` over the kept rows, indexed by the full vocabulary's ids through ``remap``."""

    def __init__(self, full: nn.Embedding, kept: list[int], unk_id: int) -> None:
        position = {old: new for new, old in enumerate(kept)}
        padding = position.get(full.padding_idx) if full.padding_idx is not None else None
        weight = full.weight.detach()[kept].clone()
        super().__init__(len(kept), full.embedding_dim, padding_idx=padding, _weight=weight)
        self.weight.requires_grad_(full.weight.requires_grad)
        kept_ids = torch.tensor(kept, dtype=torch.long, device=weight.device)
        remap = torch.full((full.num_embeddings,), position[unk_id], dtype=torch.long, device=weight.device)
        remap[kept_ids] = torch.arange(len(kept), device=weight.device)
        self.register_buffer("remap", remap, persistent=False)
        self.register_buffer("kept_ids", kept_ids, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(self.remap[input_ids])


@dataclass
class Trim:
    """What :func:`untrim` needs: the encoder, its original embedding module and the trimmed one."""

    encoder: PreTrainedModel
    full: nn.Embedding
    trimmed: TrimmedEmbedding


def trim_embeddings(encoder: PreTrainedModel, used_ids: Iterable[int], tokenizer: PreTrainedTokenizerBase) -> Trim:
    """Replace ``encoder``'s input embedding by the rows of ``used_ids`` and the tokenizer's special tokens."""
    full = encoder.get_input_embeddings()
    if isinstance(full, TrimmedEmbedding):
        raise XstiltsError("The encoder's embeddings are already trimmed; untrim them before trimming again.")
    if not isinstance(full, nn.Embedding):
        raise XstiltsError(f"Cannot trim an input embedding of type {type(full).__name__}; only nn.Embedding.")
    unk_id = tokenizer.unk_token_id
    if unk_id is None:
        raise XstiltsError("Trimming maps unused ids to <unk>, but this tokenizer has no unk token; do not trim.")
    specials = [i for i in (*tokenizer.all_special_ids, full.padding_idx) if i is not None]
    kept = sorted({int(i) for i in used_ids} | set(specials))
    if kept[0] < 0 or kept[-1] >= full.num_embeddings:
        raise XstiltsError(
            f"Token ids must lie in [0, {full.num_embeddings}) for this encoder, got {kept[0]}..{kept[-1]}; "
            "tokenize with the encoder's own tokenizer."
        )
    trimmed = TrimmedEmbedding(full, kept, unk_id)
    encoder.set_input_embeddings(trimmed)
    return Trim(encoder, full, trimmed)


@torch.no_grad()
def untrim(trim: Trim) -> PreTrainedModel:
    """Write the trimmed rows into the full matrix and put it back in the encoder (on the trimmed rows' device)."""
    if trim.encoder.get_input_embeddings() is not trim.trimmed:
        raise XstiltsError("The encoder's input embedding changed since it was trimmed; untrim before replacing it.")
    trimmed = trim.trimmed
    full = trim.full.to(trimmed.weight.device)
    full.weight.index_copy_(0, trimmed.kept_ids, trimmed.weight.detach().to(full.weight.dtype))
    full.weight.requires_grad_(trimmed.weight.requires_grad)
    trim.encoder.set_input_embeddings(full)
    return trim.encoder


@contextmanager
def trimmed(encoder: PreTrainedModel, used_ids: Iterable[int], tokenizer: PreTrainedTokenizerBase) -> Iterator[Trim]:
    """:func:`trim_embeddings` for the ``with`` block, :func:`untrim` at its end (also when it raises)."""
    trim = trim_embeddings(encoder, used_ids, tokenizer)
    try:
        yield trim
    finally:
        untrim(trim)
