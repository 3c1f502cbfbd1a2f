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


def resolve_model(name: str, revision: str | None = None) -> str:
    """Return a local folder for offline/local models, or the hub id unchanged (``revision`` is for hub ids only)."""
    if revision is not None and (name.startswith(OFFLINE_PREFIX) or Path(name).exists()):
        raise XstiltsError(f"model.revision pins a Hub model, but {name} is a local one; set model.revision: null.")
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


def is_hub_id(name: str) -> bool:
    """True when ``model.name`` names a Hub model (not ``offline:...``, not a folder)."""
    local = name.startswith((OFFLINE_PREFIX, ".", "/", "~")) or name.count("/") > 1 or Path(name).exists()
    return not local


def pretrained_encoder(name: str, revision: str | None, mirror: Path | None) -> tuple[str, str | None]:
    """Where the pretrained encoder ``name`` is read from, and at which revision: a Hub model from the mirror's
    folder when ``data.hub_mirror`` is set (its revision checked there), else the name and ``revision``."""
    if mirror is not None and is_hub_id(name):
        from xstilts.data.hub import mirrored_repo

        return str(mirrored_repo(mirror, "models", name, revision)), None
    return name, revision


def load_bare_encoder(where: str | Path, revision: str | None = None) -> PreTrainedModel:
    """``AutoModel`` without the pooler, which xstilts never uses (mean pooling instead)."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(where, add_pooling_layer=False, revision=revision)
    except TypeError:  # architectures without a pooler option
        return AutoModel.from_pretrained(where, revision=revision)


def load_encoder(name: str, revision: str | None = None) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Load the tokenizer and the bare encoder (no pooler) named by ``name``, a Hub model at ``revision``."""
    from transformers import AutoTokenizer

    where = resolve_model(name, revision)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, revision=revision)
        encoder = load_bare_encoder(where, revision)
    except Exception as exc:  # transformers raises OSError, ValueError, safetensors errors...
        hint = (
            "it is a hub id: you need internet, or a warm Hugging Face cache with HF_HUB_OFFLINE=1"
            if where == name and not Path(name).exists()
            else "the folder is missing files or is corrupt; rebuild it (`dvc repro encoder` for the offline model)"
        )
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        at = f" at revision {revision}" if revision else ""
        raise XstiltsError(f"Could not load model {name!r}{at} ({first_line}); {hint}.") from exc
    return tokenizer, encoder


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
