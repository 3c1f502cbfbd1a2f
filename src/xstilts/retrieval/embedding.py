"""Sentence vectors: mean-pooled hidden states of one encoder layer, L2-normalised (cosine = inner product)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import faiss
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xstilts.errors import XstiltsError
from xstilts.modeling import mean_pool
from xstilts.progress import progress


@torch.no_grad()
def embed_layers(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layers: Sequence[int] = (-1,),
    max_length: int = 256,
    batch_size: int = 32,
    second: Sequence[str] | None = None,
) -> dict[int, np.ndarray]:
    """L2-normalised mean-pooled vectors of each hidden layer in ``layers`` (-1 = last), float32 ``[n, hidden]``,
    from one forward pass per batch.

    ``second`` (one per text) encodes each text as a pair with it, truncating only the second segment.
    """
    if second is not None and len(second) != len(texts):
        raise XstiltsError(f"embed got {len(texts)} texts but {len(second)} second segments; give one per text.")
    encoder.eval()
    sizes = [len(t) + (len(second[i]) if second is not None else 0) for i, t in enumerate(texts)]
    order = np.argsort(sizes, kind="stable")
    out = {layer: np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32) for layer in layers}
    for start in progress(range(0, len(texts), batch_size), desc="embed", unit="batch", leave=False):
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
        hidden = encoder(**enc, output_hidden_states=True, return_dict=True).hidden_states
        for layer, vectors in out.items():
            vectors[idx] = mean_pool(hidden[layer], enc["attention_mask"]).float().numpy()
    for vectors in out.values():
        faiss.normalize_L2(vectors)
    return out


@dataclass(frozen=True)
class Embedder:
    """An encoder with the settings it embeds with: ``embedder(texts, second)`` is :func:`embed_layers` at ``layer``.

    ``also``: more layers computed in the same forward passes and kept, so that :meth:`at` scores them without
    running the encoder again.
    """

    tokenizer: PreTrainedTokenizerBase
    encoder: PreTrainedModel
    layer: int = -1
    max_length: int = 256
    batch_size: int = 32
    also: tuple[int, ...] = ()
    _kept: dict = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, texts: Sequence[str], second: Sequence[str] | None = None) -> np.ndarray:
        key = (tuple(texts), None if second is None else tuple(second))
        if key not in self._kept:
            layers = tuple(dict.fromkeys((self.layer, *self.also)))
            args = (self.max_length, self.batch_size, second)
            self._kept[key] = embed_layers(texts, self.tokenizer, self.encoder, layers, *args)
        return self._kept[key][self.layer]

    def at(self, layer: int) -> Embedder:
        """The same encoder and kept vectors, embedding with ``layer`` (one of ``layer`` and ``also``)."""
        if layer not in (self.layer, *self.also):
            raise XstiltsError(f"Layer {layer} is not among the layers this embedder keeps; add it to `also`.")
        return replace(self, layer=layer)
