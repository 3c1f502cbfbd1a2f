"""One training loop on ``accelerate``: bf16 autocast, dev evaluation every N steps, early stopping, best kept."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from xstilts.errors import XstiltsError
from xstilts.modeling import MultiTaskModel
from xstilts.params import TrainParams
from xstilts.training.evaluation import predict
from xstilts.training.features import Collator


@dataclass
class TrainResult:
    best_dev_accuracy: float
    best_step: int
    steps: int
    train_tokens: int
    stopped_early: bool


def bf16_available() -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return True  # CPU autocast supports bfloat16 on every torch build we pin


def freeze_embeddings(model: MultiTaskModel) -> None:
    model.encoder.get_input_embeddings().weight.requires_grad_(False)


def train_classifier(
    model: MultiTaskModel,
    task: str,
    train: datasets.Dataset,
    dev: datasets.Dataset,
    collator: Collator,
    cfg: TrainParams,
    seed: int,
    on_eval: Callable[[int, dict[str, float]], None] = lambda step, metrics: None,
) -> TrainResult:
    """Train ``model``'s ``task`` head and encoder; leaves the best dev checkpoint's weights in ``model``."""
    set_seed(seed)
    bf16 = cfg.bf16 and bf16_available()
    accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no")
    if accelerator.num_processes > 1:
        raise XstiltsError("Multi-process (DDP) training is not supported yet; launch one process per run.")
    if cfg.freeze_embeddings:
        freeze_embeddings(model)
    generator = torch.Generator().manual_seed(seed)
    # Length-grouped batches (shuffled mega-batches sorted by length) cut padding; dynamic padding does the rest.
    sampler = LengthGroupedSampler(cfg.batch_size, lengths=[len(x) for x in train["input_ids"]], generator=generator)
    loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collator)
    total_steps = max(1, math.ceil(len(loader) * cfg.epochs))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    gold_dev = np.asarray(dev["labels"])

    best = (-1.0, 0, None)
    step, tokens, since_best, losses = 0, 0, 0, []
    stopped_early = False

    def evaluate() -> float:
        probs = predict(accelerator.unwrap_model(model), task, dev, collator, 2 * cfg.batch_size, bf16)
        return float((probs.argmax(-1) == gold_dev).mean())

    while step < total_steps and not stopped_early:
        for batch in loader:
            model.train()
            logits = model(task, batch["input_ids"], batch["attention_mask"])
            loss = torch.nn.functional.cross_entropy(logits.float(), batch["labels"])
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            tokens += int(batch["attention_mask"].sum())
            losses.append(loss.item())
            if step % cfg.eval_every == 0 or step == total_steps:
                accuracy = evaluate()
                on_eval(step, {"train_loss": float(np.mean(losses)), "dev_accuracy_train_language": accuracy})
                losses = []
                if accuracy > best[0]:
                    state = copy.deepcopy(
                        {k: v.detach().cpu() for k, v in accelerator.unwrap_model(model).state_dict().items()}
                    )
                    best, since_best = (accuracy, step, state), 0
                else:
                    since_best += 1
                    if since_best >= cfg.patience:
                        stopped_early = True
                        break
            if step >= total_steps:
                break
    unwrapped = accelerator.unwrap_model(model)
    if best[2] is not None:
        unwrapped.load_state_dict(best[2])
    return TrainResult(best[0], best[1], step, tokens, stopped_early)
