"""A shared encoder with one small head per task (the jiant / STILTs design).

The head's kind follows the task's family (:data:`HEAD_FAMILIES`):

* ``classification``: mean-pooled sequence -> ``[batch, n_labels]`` logits;
* ``multiple_choice``: inputs ``[batch, n_choices, seq]``, each (context + question, choice) pair mean-pooled
  -> one score, giving ``[batch, n_choices]`` logits; all-padding choices (attention mask all zero) are not
  encoded and score :data:`MASKED_SCORE`, so examples with fewer choices can share a batch;
* ``tagging``: every token -> ``[batch, seq, n_labels]`` logits;
* ``extractive_qa``: every token -> ``[batch, seq, 2]`` (start, end) logits.

A saved model is a folder: ``encoder/`` (a Hugging Face folder of encoder and tokenizer whose
embedding matrix is a shard of its own, see :mod:`xstilts.encoder.weights`), ``heads.safetensors``
and ``xstilts.json`` (the heads' tasks, labels and settings).
Target training loads only ``encoder/`` from an intermediate model and starts a fresh head.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from xstilts.encoder.loading import load_bare_encoder
from xstilts.encoder.weights import save_encoder
from xstilts.errors import XstiltsError

META_FILE = "xstilts.json"
HEAD_FAMILIES = ("classification", "multiple_choice", "tagging", "extractive_qa")
MASKED_SCORE = -1e4  # score of a padding choice: below any real one, finite under bf16 and fp16


@dataclass
class HeadSpec:
    task: str
    family: str
    labels: list[str]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors that the attention mask keeps."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def head_outputs(spec: HeadSpec) -> int:
    """Width of the head's linear layer for ``spec``'s family."""
    if spec.family not in HEAD_FAMILIES:
        raise XstiltsError(
            f"Task {spec.task!r} is of family {spec.family!r}, which has no trainable head "
            f"(heads exist for {', '.join(HEAD_FAMILIES)})."
        )
    if spec.family in ("classification", "tagging"):
        if not spec.labels:
            raise XstiltsError(f"Task {spec.task!r} ({spec.family}) declares no labels; its head needs them.")
        return len(spec.labels)
    return 1 if spec.family == "multiple_choice" else 2


class MultiTaskModel(nn.Module):
    """Encoder + one small linear head per task, of the kind its family needs (see the module docstring)."""

    def __init__(self, encoder: PreTrainedModel, heads: list[HeadSpec], dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.specs = {h.task: h for h in heads}
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {h.task: nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, head_outputs(h))) for h in heads}
        )

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int = -1) -> torch.Tensor:
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=layer != -1, return_dict=True
        )
        return out.last_hidden_state if layer == -1 else out.hidden_states[layer]

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int = -1) -> torch.Tensor:
        return mean_pool(self.hidden_states(input_ids, attention_mask, layer), attention_mask)

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of ``task``'s head; shapes per family as in the module docstring."""
        family = self.specs[task].family
        head = self.heads[task]
        if family == "multiple_choice":
            return self._choice_scores(head, input_ids, attention_mask)
        if family in ("tagging", "extractive_qa"):
            return head(self.hidden_states(input_ids, attention_mask))
        return head(self.embed(input_ids, attention_mask))

    def _choice_scores(self, head: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch, n_choices, length = input_ids.shape
        flat_ids, flat_mask = input_ids.reshape(-1, length), attention_mask.reshape(-1, length)
        real = flat_mask.sum(-1) > 0  # padding choices are skipped, not encoded
        scores = self.embed(flat_ids[real], flat_mask[real])
        scores = head(scores).squeeze(-1)
        out = torch.full((batch * n_choices,), MASKED_SCORE, dtype=scores.dtype, device=scores.device)
        out[real] = scores
        return out.view(batch, n_choices)


def save_model(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    extra: dict | None = None,
    base: Path | None = None,
) -> Path:
    """Write the model folder atomically (a temp folder renamed into place).

    ``base``: the encoder folder training started from; an unchanged embedding matrix is linked from it.
    """
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_encoder(model.encoder, tmp / "encoder", base)  # the embedding matrix in a shard of its own
    save_tokenizer(tokenizer, tmp / "encoder")
    save_file({k: v.contiguous() for k, v in model.heads.state_dict().items()}, str(tmp / "heads.safetensors"))
    meta = {"heads": [asdict(h) for h in model.specs.values()], **(extra or {})}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """``save_pretrained`` without the truncation and padding that the tokenizer's last call left switched on.

    A fast tokenizer writes them into ``tokenizer.json``, so a run that tokenized afresh and one that read its
    features from the ``datasets`` cache would save different bytes. Every call sets its own again.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    tokenizer.save_pretrained(folder)


def fingerprint(model_dir: Path) -> str:
    """sha256 over a model folder's file names and contents: which trained model a run left behind."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


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
