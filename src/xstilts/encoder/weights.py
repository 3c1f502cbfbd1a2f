"""Encoder weights on disk: the word-embedding matrix in a safetensors shard of its own.

``from_pretrained`` reads the two shards through ``model.safetensors.index.json`` like any sharded checkpoint.
With ``freeze_embeddings`` the matrix (250k x 384 floats, 384 MB of a 470 MB model) never changes, so every
model's embedding shard is byte-identical to the pretrained encoder's and DVC's content-addressed cache
(hardlinked into the workspace) keeps one copy for all of them; the per-model rest is about 90 MB.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

EMBEDDINGS_FILE = "model-embeddings.safetensors"
BODY_FILE = "model-body.safetensors"
INDEX_FILE = "model.safetensors.index.json"
METADATA = {"format": "pt"}


def embedding_key(state: dict[str, torch.Tensor], matrix: torch.Tensor) -> str | None:
    """The state-dict key holding ``matrix`` (the input embeddings), None when none does."""
    return next((k for k, v in state.items() if v.data_ptr() == matrix.data_ptr() and v.shape == matrix.shape), None)


def _holds(shard: Path, key: str, tensor: torch.Tensor) -> bool:
    """``shard`` is an embeddings shard written by :func:`write_weights` holding exactly ``tensor``."""
    if not shard.is_file():
        return False
    with safe_open(str(shard), framework="pt") as fh:
        if list(fh.keys()) != [key] or fh.metadata() != METADATA:
            return False
        stored = fh.get_tensor(key)
    return stored.dtype == tensor.dtype and stored.shape == tensor.shape and torch.equal(stored, tensor)


def write_weights(
    state: dict[str, torch.Tensor], folder: Path, embeddings: str | None, base: Path | None = None
) -> None:
    """Write ``state`` as two shards (``embeddings`` alone, the rest) and their index into ``folder``.

    ``base``: the encoder folder the weights were loaded from. When its embeddings shard holds the same matrix
    (frozen embeddings), the new shard is a hard link to it: nothing is written and DVC, which knows that file,
    need not hash it again.
    """
    state = {k: v.detach().contiguous() for k, v in state.items()}
    shards = {BODY_FILE: {k: v for k, v in state.items() if k != embeddings}}
    if embeddings is not None:
        shards[EMBEDDINGS_FILE] = {embeddings: state[embeddings]}
    weight_map = {}
    for filename, tensors in shards.items():
        weight_map.update(dict.fromkeys(tensors, filename))
        source = base / filename if base is not None and filename == EMBEDDINGS_FILE else None
        if source is not None and _holds(source, embeddings, state[embeddings]):
            try:
                os.link(source, folder / filename)
                continue
            except OSError:  # another filesystem: write it
                pass
        save_file(tensors, str(folder / filename), metadata=METADATA)
    total = sum(v.numel() * v.element_size() for v in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")


def save_encoder(encoder, folder: Path, base: Path | None = None) -> None:
    """``save_pretrained`` for the config; the weights through :func:`write_weights` (``base``: see there)."""
    folder.mkdir(parents=True, exist_ok=True)
    encoder.config.save_pretrained(folder)
    state = encoder.state_dict()
    write_weights(state, folder, embedding_key(state, encoder.get_input_embeddings().weight), base)
