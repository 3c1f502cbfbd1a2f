"""One training loop on ``accelerate``: bf16 autocast, dev evaluation every N steps, early stopping, best kept.

The family of the trained head decides the loss (:func:`family_loss`) and the dev metric
(:data:`~xstilts.training.evaluation.MAIN_METRIC`).
"""

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
from xstilts.modeling import MASKED_SCORE, MultiTaskModel
from xstilts.params import TrainParams
from xstilts.training.evaluation import MAIN_METRIC, evaluate
from xstilts.training.features import IGNORE, Collator, lengths


@dataclass
class TrainResult:
    best_dev_score: float  # the family's main metric (accuracy, or F1 for QA) on the English dev set; nan without one
    best_step: int
    steps: int
    train_tokens: int
    stopped_early: bool
    dev_metric: str = "accuracy"

    @property
    def best_dev_accuracy(self) -> float:
        return self.best_dev_score


def family_loss(family: str, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the head's logits against ``batch["labels"]`` in the family's shape.

    classification ``[B, L]`` / multiple choice ``[B, C]`` vs ``[B]``; tagging ``[B, T, L]`` vs ``[B, T]``
    (-100 ignored); extractive QA ``[B, T, 2]`` vs ``[B, 2]``: mean of the start and end losses over the
    real tokens.
    """
    logits = logits.float()
    labels = batch["labels"]
    if family == "tagging":
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    if family == "extractive_qa":
        logits = logits.masked_fill((batch["attention_mask"] == 0).unsqueeze(-1), MASKED_SCORE)
        start = torch.nn.functional.cross_entropy(logits[..., 0], labels[:, 0])
        end = torch.nn.functional.cross_entropy(logits[..., 1], labels[:, 1])
        return (start + end) / 2
    return torch.nn.functional.cross_entropy(logits, labels)


def bf16_available() -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return True  # CPU autocast supports bfloat16 on every torch build we pin


def freeze_embeddings(model: MultiTaskModel) -> None:
    model.encoder.get_input_embeddings().weight.requires_grad_(False)


def train_task(
    model: MultiTaskModel,
    task: str,
    train: datasets.Dataset,
    dev: datasets.Dataset | None,
    collator: Collator,
    cfg: TrainParams,
    seed: int,
    on_eval: Callable[[int, dict[str, float]], None] = lambda step, metrics: None,
    dev_examples: datasets.Dataset | None = None,
    on_step: Callable[[int, float], None] = lambda step, loss: None,
) -> TrainResult:
    """Train ``model``'s ``task`` head and encoder; leaves the best dev checkpoint's weights in ``model``.

    ``dev`` holds features of the English dev set (``dev_examples`` the rows they were built from, which
    tagging and QA need to score words and answer texts). Without dev rows there is no checkpoint choice and
    no early stopping: the last weights stay and the score is nan. ``on_step`` sees every step's loss.
    """
    family = model.specs[task].family
    metric = MAIN_METRIC[family]
    has_dev = dev is not None and len(dev) > 0
    if has_dev and family in ("tagging", "extractive_qa") and dev_examples is None:
        raise XstiltsError(f"{family} dev evaluation needs dev_examples (the rows the dev features came from).")
    if len(train) == 0:
        raise XstiltsError(f"No training rows for {task}.")
    set_seed(seed)
    bf16 = cfg.bf16 and bf16_available()
    accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no")
    if accelerator.num_processes > 1:
        raise XstiltsError("Multi-process (DDP) training is not supported yet; launch one process per run.")
    if cfg.freeze_embeddings:
        freeze_embeddings(model)
    generator = torch.Generator().manual_seed(seed)
    # Length-grouped batches (shuffled mega-batches sorted by length) cut padding; dynamic padding does the rest.
    sampler = LengthGroupedSampler(cfg.batch_size, lengths=lengths(family, train), generator=generator)
    loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collator)
    total_steps = max(1, math.ceil(len(loader) * cfg.epochs))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    best = (-math.inf, 0, None)
    step, tokens, since_best, losses = 0, 0, 0, []
    stopped_early = False

    def dev_score() -> float:
        unwrapped = accelerator.unwrap_model(model)
        result = evaluate(unwrapped, task, dev_examples, dev, collator, 2 * cfg.batch_size, bf16)
        value = result.score()[metric]
        return -math.inf if math.isnan(value) else value

    while step < total_steps and not stopped_early:
        for batch in loader:
            model.train()
            logits = model(task, batch["input_ids"], batch["attention_mask"])
            loss = family_loss(family, logits, batch)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            tokens += int(batch["attention_mask"].sum())
            losses.append(loss.item())
            on_step(step, losses[-1])
            if step % cfg.eval_every == 0 or step == total_steps:
                values = {"train_loss": float(np.mean(losses))}
                if has_dev:
                    score = dev_score()
                    values[f"dev_{metric}_train_language"] = score
                on_eval(step, values)
                losses = []
                if not has_dev:
                    pass  # nothing to choose a checkpoint by: the last weights stay
                elif score > best[0]:
                    state = copy.deepcopy(
                        {k: v.detach().cpu() for k, v in accelerator.unwrap_model(model).state_dict().items()}
                    )
                    best, since_best = (score, step, state), 0
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
    if not has_dev:
        return TrainResult(math.nan, step, step, tokens, False, metric)
    return TrainResult(best[0], best[1], step, tokens, stopped_early, metric)


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
    """The classification-era name of :func:`train_task` (kept for callers that still use it)."""
    return train_task(model, task, train, dev, collator, cfg, seed, on_eval)
