"""Sentence vectors: mean-pooled hidden states of one encoder layer, L2-normalised (cosine = inner product)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xstilts.errors import XstiltsError
from xstilts.modeling import mean_pool


@torch.no_grad()
def embed(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int = -1,
    max_length: int = 256,
    batch_size: int = 32,
    second: Sequence[str] | None = None,
) -> np.ndarray:
    """L2-normalised mean-pooled vectors from hidden layer ``layer`` (-1 = last), float32 ``[n, hidden]``.

    ``second`` (one per text) encodes each text as a pair with it, truncating only the second segment.
    """
    if second is not None and len(second) != len(texts):
        raise XstiltsError(f"embed got {len(texts)} texts but {len(second)} second segments; give one per text.")
    encoder.eval()
    sizes = [len(t) + (len(second[i]) if second is not None else 0) for i, t in enumerate(texts)]
    order = np.argsort(sizes, kind="stable")
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        pair = [second[i] for i in idx] if second is not None else None
        enc = tokenizer(
            [texts[i] for i in idx],
            pair,
            padding=True,
            truncation="only_second" if pair is not None else True,
            max_length=max_length,
            return_tensors="pt",
        )
        hidden = encoder(**enc, output_hidden_states=True, return_dict=True).hidden_states[layer]
        out[idx] = mean_pool(hidden, enc["attention_mask"]).float().numpy()
    faiss.normalize_L2(out)
    return out


@dataclass(frozen=True)
class Embedder:
    """An encoder with the settings it embeds with: ``embedder(texts, second)`` is :func:`embed`."""

    tokenizer: PreTrainedTokenizerBase
    encoder: PreTrainedModel
    layer: int = -1
    max_length: int = 256
    batch_size: int = 32

    def __call__(self, texts: Sequence[str], second: Sequence[str] | None = None) -> np.ndarray:
        return embed(texts, self.tokenizer, self.encoder, self.layer, self.max_length, self.batch_size, second)
