"""Resolve the ``model.name`` parameter to a folder or hub id and load tokenizer + encoder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers takes seconds to import: only the loaders need it
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xstilts.errors import XstiltsError
from xstilts.paths import models_dir

OFFLINE_PREFIX = "offline:"
OFFLINE_MODELS = {"multilingual-e5-small"}


def resolve_model(name: str) -> str:
    """Return a local folder for offline/local models, or the hub id unchanged."""
    if name.startswith(OFFLINE_PREFIX):
        key = name[len(OFFLINE_PREFIX) :]
        if key not in OFFLINE_MODELS:
            raise XstiltsError(
                f"Unknown offline model {key!r}; the offline default is `offline:multilingual-e5-small`."
            )
        folder = models_dir() / key
        if not (folder / "config.json").exists():
            raise XstiltsError(
                f"The offline encoder is not built at {folder}; run `dvc repro encoder` (or `make run`)."
            )
        return str(folder)
    path = Path(name)
    if path.exists():
        if not (path / "config.json").exists():
            raise XstiltsError(
                f"Model folder {path} has no config.json; point model.name at a Hugging Face model folder."
            )
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise XstiltsError(f"Model folder {name} does not exist.")
    return name


def load_bare_encoder(where: str | Path) -> PreTrainedModel:
    """``AutoModel`` without the pooler, which xstilts never uses (mean pooling instead)."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(where, add_pooling_layer=False)
    except TypeError:  # architectures without a pooler option
        return AutoModel.from_pretrained(where)


def load_encoder(name: str) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Load the tokenizer and the bare encoder (no pooler) named by ``name``."""
    from transformers import AutoTokenizer

    where = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        encoder = load_bare_encoder(where)
    except Exception as exc:  # transformers raises OSError, ValueError, safetensors errors...
        hint = (
            "it is a hub id: you need internet, or a warm Hugging Face cache with HF_HUB_OFFLINE=1"
            if where == name and not Path(name).exists()
            else "the folder is missing files or is corrupt; rebuild it (`dvc repro encoder` for the offline model)"
        )
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XstiltsError(f"Could not load model {name!r} ({first_line}); {hint}.") from exc
    return tokenizer, encoder


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
