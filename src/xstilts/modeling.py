"""A shared encoder with one small head per task (the jiant / STILTs design).

A saved model is a folder: ``encoder/`` (Hugging Face ``save_pretrained`` of encoder and
tokenizer), ``heads.safetensors`` and ``xstilts.json`` (the heads' tasks, labels and settings).
Target training loads only ``encoder/`` from an intermediate model and starts a fresh head.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from xstilts.encoder.loading import load_bare_encoder
from xstilts.errors import XstiltsError

META_FILE = "xstilts.json"


@dataclass
class HeadSpec:
    task: str
    family: str
    labels: list[str]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors that the attention mask keeps."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class MultiTaskModel(nn.Module):
    """Encoder + mean pooling + one linear classification head per task."""

    def __init__(self, encoder: PreTrainedModel, heads: list[HeadSpec], dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.specs = {h.task: h for h in heads}
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {h.task: nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, len(h.labels))) for h in heads}
        )

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int = -1) -> torch.Tensor:
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=layer != -1, return_dict=True
        )
        hidden = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
        return mean_pool(hidden, attention_mask)

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.heads[task](self.embed(input_ids, attention_mask))


def save_model(
    model: MultiTaskModel, tokenizer: PreTrainedTokenizerBase, out_dir: Path, extra: dict | None = None
) -> Path:
    """Write the model folder atomically (a temp folder renamed into place)."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.encoder.save_pretrained(tmp / "encoder")
    tokenizer.save_pretrained(tmp / "encoder")
    save_file({k: v.contiguous() for k, v in model.heads.state_dict().items()}, str(tmp / "heads.safetensors"))
    meta = {"heads": [asdict(h) for h in model.specs.values()], **(extra or {})}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def read_meta(model_dir: Path) -> dict:
    path = model_dir / META_FILE
    if not path.exists():
        raise XstiltsError(f"{model_dir} is not an xstilts model folder (no {META_FILE}); train it first.")
    return json.loads(path.read_text())


def load_model(model_dir: Path) -> tuple[PreTrainedTokenizerBase, MultiTaskModel, dict]:
    """Load a saved model folder with all its heads."""
    meta = read_meta(model_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir / "encoder")
        encoder = load_bare_encoder(model_dir / "encoder")
        heads_state = load_file(str(model_dir / "heads.safetensors"))
    except Exception as exc:
        raise XstiltsError(
            f"Model folder {model_dir} is incomplete or corrupt ({type(exc).__name__}); retrain it."
        ) from exc
    model = MultiTaskModel(encoder, [HeadSpec(**h) for h in meta["heads"]])
    model.heads.load_state_dict(heads_state)
    model.eval()
    return tokenizer, model, meta
