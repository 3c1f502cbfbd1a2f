"""One training loop on ``accelerate`` for one task or several sharing an encoder (the jiant / STILTs design).

Each optimizer step is ``grad_accum`` micro-batches (``accelerator.accumulate``); each micro-batch comes from
one task, drawn by :class:`~xstilts.training.sampling.MultiTaskSampler` (global batches of ``batch_size`` x
processes rows, each process training on its own contiguous slice). Every ``eval_every`` optimizer steps (and
at the last) the main process scores every task's English dev set with the family's main metric
(its spec's ``main_metric``, :mod:`xstilts.families`); the mean over tasks picks the best weights and drives
early stopping. With a checkpoint folder, every evaluation also writes a resumable checkpoint
(:mod:`xstilts.training.checkpoint`), and a restarted run continues from the newest one. The same code runs
under ``accelerate launch`` on several processes (DDP): autocast to the precision :mod:`~xstilts.training.precision`
resolves (the step compiled where :mod:`~xstilts.training.compilation` says it pays), gradients averaged across
processes, train losses gathered, only the main process evaluates, writes files and calls ``on_eval`` /
``on_step``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import (
    DistributedDataParallelKwargs,
    GradientAccumulationPlugin,
    broadcast_object_list,
    gather_object,
    set_seed,
)
from transformers import get_linear_schedule_with_warmup

from xstilts.errors import XstiltsError
from xstilts.families import spec
from xstilts.modeling import MultiTaskModel
from xstilts.params import TrainParams
from xstilts.progress import process_state as process_state  # re-exported: callers import it from here
from xstilts.progress import progress
from xstilts.training import checkpoint, compilation
from xstilts.training.compilation import Compilation
from xstilts.training.evaluation import evaluate
from xstilts.training.fast_dropout import cpu_dropout
from xstilts.training.features import Collator
from xstilts.training.precision import resolve as resolve_precision
from xstilts.training.sampling import MultiTaskSampler, SamplingConfig, shard


@dataclass
class TrainResult:
    best_dev_score: float  # the family's main metric (accuracy, or F1 for QA) on the English dev set; nan without one
    best_step: int
    steps: int
    train_tokens: int
    stopped_early: bool
    dev_metric: str = "accuracy"


@dataclass
class TaskData:
    """One task's training features, and its English dev features (``dev_examples``: the rows behind them)."""

    task: str
    train: datasets.Dataset
    dev: datasets.Dataset | None
    collator: Collator
    dev_examples: datasets.Dataset | None = None
    allow_no_answer: bool = False  # extractive QA with unanswerable questions (SQuAD 2.0)


@dataclass
class MultiTaskResult:
    best_score: float  # mean of the tasks' dev main metrics at the best step; nan when no task has dev rows
    best_step: int
    steps: int
    train_tokens: int
    stopped_early: bool
    dev_scores: dict[str, float] = field(default_factory=dict)  # per task, at the best step
    dev_metrics: dict[str, str] = field(default_factory=dict)  # per task: the main metric's name
    resumed_from: int = 0  # the step a checkpoint restarted the run at (0: a fresh start)
    curve: list[dict[str, float]] = field(default_factory=list)  # every evaluation: step, train losses, dev scores
    compilation: Compilation | None = None  # whether the training step was compiled, and why


def freeze_embeddings(model: MultiTaskModel) -> None:
    model.encoder.get_input_embeddings().weight.requires_grad_(False)


def _check(model: MultiTaskModel, data: Sequence[TaskData]) -> None:
    names = [d.task for d in data]
    if not data or len(set(names)) != len(names):
        raise XstiltsError(f"Train each task once; got tasks {names}.")
    for d in data:
        if d.task not in model.specs:
            raise XstiltsError(f"The model has no head for {d.task!r}; give it one HeadSpec per trained task.")
        family = spec(model.specs[d.task].family)
        if len(d.train) == 0:
            raise XstiltsError(f"No training rows for {d.task}.")
        if d.dev is not None and len(d.dev) and family.needs_examples and d.dev_examples is None:
            raise XstiltsError(
                f"{family.family.value} dev evaluation needs dev_examples (the rows the dev features came from)."
            )


def _rows(features: datasets.Dataset, indices: list[int]) -> list[dict]:
    columns = features[indices]
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


class _Loop:
    """The state of one training run; :func:`train_tasks` is its public face."""

    def __init__(self, model, data, cfg, seed, sampling, checkpoint_dir, evaluations=None) -> None:
        self.data = {d.task: d for d in data}
        self.tasks = [d.task for d in data]
        self.cfg = cfg
        self.families = {t: spec(model.specs[t].family) for t in self.tasks}
        self.metrics = {t: f.main_metric(model.specs[t].labels) for t, f in self.families.items()}
        self.with_dev = [d.task for d in data if d.dev is not None and len(d.dev) > 0]
        set_seed(seed)
        self.precision = resolve_precision(cfg.precision, process_state().device)
        handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if len(data) > 1 else []
        self.accelerator = Accelerator(
            mixed_precision=self.precision.mixed_precision,
            gradient_accumulation_plugin=GradientAccumulationPlugin(
                num_steps=cfg.grad_accum, sync_with_dataloader=False
            ),
            kwargs_handlers=handlers,
        )
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        if cfg.freeze_embeddings:
            freeze_embeddings(model)
        task_lengths = {t: self.families[t].lengths(self.data[t].train) for t in self.tasks}
        self.sampler = MultiTaskSampler(task_lengths, cfg.batch_size * self.world, seed, sampling)
        self.total_steps = max(1, math.ceil(self.sampler.batches_per_epoch() * cfg.epochs / cfg.grad_accum))
        # evaluations: that many, evenly over the schedule (tuning trials compare at equal fractions of it)
        self.eval_every = cfg.eval_every if evaluations is None else max(1, math.ceil(self.total_steps / evaluations))
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.01)
        self.scheduler = get_linear_schedule_with_warmup(
            optimizer, int(cfg.warmup_ratio * self.total_steps), self.total_steps
        )
        # the scheduler stays unprepared: it steps once per optimizer step, whatever the number of processes
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        with process_state().main_process_first():  # one process probes, the others read its cached result
            self.compilation = compilation.resolve(
                cfg.compile, model.encoder.config, self.precision, self.accelerator.device, self.total_steps
            )
        self.forward = torch.compile(self.model, dynamic=True) if self.compilation.enabled else self.model
        self.checkpoint_dir = checkpoint_dir
        self.step, self.tokens, self.since_best, self.stopped_early = 0, 0, 0, False
        self.best_score, self.best_step, self.best_scores = -math.inf, 0, {}
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.resumed_from = 0
        self.curve: list[dict[str, float]] = []
        self._reset_losses()

    @property
    def unwrapped(self) -> MultiTaskModel:
        return self.accelerator.unwrap_model(self.model)

    def _reset_losses(self) -> None:
        self.loss_sum = torch.zeros(len(self.tasks), dtype=torch.float64)
        self.loss_count = torch.zeros(len(self.tasks), dtype=torch.float64)

    def micro_batch(self) -> float:
        task, indices = self.sampler.next()
        d = self.data[task]
        batch = d.collator(_rows(d.train, shard(indices, self.rank, self.world)))
        batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
        with self.accelerator.accumulate(self.model):
            self.model.train()
            logits = self.forward(task, batch["input_ids"], batch["attention_mask"])
            loss = self.families[task].loss(logits, batch)
            self.accelerator.backward(loss)
            self.optimizer.step()
            self.optimizer.zero_grad()
        value = loss.item()
        i = self.tasks.index(task)
        self.loss_sum[i] += value
        self.loss_count[i] += 1
        self.tokens += int(batch["attention_mask"].sum())
        return value

    def train_losses(self) -> dict[str, float]:
        """Each task's mean micro-batch loss since the last evaluation, over all processes."""
        both = torch.stack([self.loss_sum, self.loss_count]).to(self.accelerator.device)
        both = self.accelerator.reduce(both, "sum").cpu() if self.world > 1 else both.cpu()
        return {f"{t}_train_loss": float(both[0, i] / both[1, i]) for i, t in enumerate(self.tasks) if both[1, i] > 0}

    def dev_scores(self) -> dict[str, float]:
        """Each task's dev main metric, computed by the main process and sent to the others.

        Evaluation leaves the RNG as it found it (a DataLoader draws its base seed from it), so the training
        that follows does not depend on how often it evaluates (``eval_every``, ``evaluations``)."""
        scores: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            if self.accelerator.is_main_process:
                scores = self._main_dev_scores()
        if self.world > 1:
            scores = broadcast_object_list([scores])[0]
        return scores

    def _main_dev_scores(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        for t in self.with_dev:
            d = self.data[t]
            result = evaluate(
                self.unwrapped,
                t,
                d.dev_examples,
                d.dev,
                d.collator,
                2 * self.cfg.batch_size,
                self.precision,
                allow_no_answer=d.allow_no_answer,
            )
            value = result.score()[self.metrics[t]]
            scores[t] = -math.inf if math.isnan(value) else value
        return scores

    def evaluate_and_choose(self, on_eval: Callable[[int, dict[str, float]], None]) -> None:
        values = self.train_losses()
        self._reset_losses()
        scores = self.dev_scores()
        values.update({f"{t}_dev_{self.metrics[t]}_train_language": s for t, s in scores.items()})
        if not scores:
            selection = None  # nothing to choose a checkpoint by: the last weights stay
        else:
            selection = float(np.mean(list(scores.values())))
            if len(self.tasks) > 1:
                values["dev_main_metric_mean"] = selection
        self.curve.append({"step": self.step, **values})
        if self.accelerator.is_main_process:
            on_eval(self.step, values)
        if selection is None:
            return
        if selection > self.best_score:
            self.best_score, self.best_step, self.best_scores, self.since_best = selection, self.step, scores, 0
            if self.accelerator.is_main_process:
                self.best_weights = copy.deepcopy({k: v.detach().cpu() for k, v in self.unwrapped.state_dict().items()})
        else:
            self.since_best += 1
            self.stopped_early = self.since_best >= self.cfg.patience

    # ---- checkpoints -------------------------------------------------------------------------------------------

    def _state(self) -> dict:
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "world": self.world,
            "since_best": self.since_best,
            "stopped_early": self.stopped_early,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "best_scores": self.best_scores,
            "curve": self.curve,
            "sampler": self.sampler.state_dict(),
        }

    def save(self) -> None:
        per_process = gather_object([{"rng": checkpoint.rng_state(), "tokens": self.tokens}])
        if self.accelerator.is_main_process:
            files = {
                "state.pt": self._state(),
                "rng.pt": per_process,
                "model.pt": {k: v.detach().cpu() for k, v in self.unwrapped.state_dict().items()},
                "optimizer.pt": self.optimizer.state_dict(),
                "scheduler.pt": self.scheduler.state_dict(),
            }
            if self.best_weights is not None:
                files["best.pt"] = self.best_weights
            checkpoint.write(self.checkpoint_dir, self.step, files)
        self.accelerator.wait_for_everyone()

    def resume(self) -> None:
        found = checkpoint.latest(self.checkpoint_dir)
        if found is None:
            return
        state = checkpoint.read(found, "state.pt")
        if state["world"] != self.world or state["total_steps"] != self.total_steps:
            raise XstiltsError(
                f"Checkpoint {found} was written by {state['world']} process(es) for {state['total_steps']} steps, "
                f"not {self.world} for {self.total_steps}; delete {self.checkpoint_dir} to start over."
            )
        self.unwrapped.load_state_dict(checkpoint.read(found, "model.pt"))
        self.optimizer.load_state_dict(checkpoint.read(found, "optimizer.pt"))
        self.scheduler.load_state_dict(checkpoint.read(found, "scheduler.pt"))
        self.sampler.load_state_dict(state["sampler"])
        for key in ("step", "since_best", "stopped_early", "best_score", "best_step", "best_scores", "curve"):
            setattr(self, key, state[key])
        if self.accelerator.is_main_process and checkpoint.has(found, "best.pt"):
            self.best_weights = checkpoint.read(found, "best.pt")
        mine = checkpoint.read(found, "rng.pt")[self.rank]
        checkpoint.set_rng_state(mine["rng"])
        self.tokens = int(mine["tokens"])
        self.resumed_from = self.step
        if self.accelerator.is_main_process:
            print(f"resuming from the checkpoint of step {self.step} ({found})", flush=True)

    # ---- the loop ----------------------------------------------------------------------------------------------

    def run(self, on_eval, on_step) -> MultiTaskResult:
        if self.checkpoint_dir is not None:
            if self.accelerator.is_main_process:
                checkpoint.clean_temporary(self.checkpoint_dir)
            self.accelerator.wait_for_everyone()
            self.resume()
        with progress(
            total=self.total_steps, initial=self.step, desc=f"train {','.join(self.tasks)}", unit="step"
        ) as bar:
            while self.step < self.total_steps and not self.stopped_early:
                loss = float(np.mean([self.micro_batch() for _ in range(self.cfg.grad_accum)]))
                bar.set_postfix(loss=loss, lr=self.scheduler.get_last_lr()[0], refresh=False)
                self.scheduler.step()
                self.step += 1
                bar.update()
                if self.accelerator.is_main_process:
                    on_step(self.step, loss)
                if self.step % self.eval_every == 0 or self.step == self.total_steps:
                    self.evaluate_and_choose(on_eval)
                    if self.checkpoint_dir is not None:
                        self.save()
        if self.best_weights is not None:
            self.unwrapped.load_state_dict(self.best_weights)
        tokens = torch.tensor([self.tokens], dtype=torch.float64, device=self.accelerator.device)
        total_tokens = int(self.accelerator.reduce(tokens, "sum").item()) if self.world > 1 else self.tokens
        chosen = bool(self.best_scores)  # without dev rows: the last weights, no score, no early stopping
        return MultiTaskResult(
            self.best_score if chosen else math.nan,
            self.best_step if chosen else self.step,
            self.step,
            total_tokens,
            self.stopped_early and chosen,
            dict(self.best_scores),
            self.metrics,
            self.resumed_from,
            self.curve,
            self.compilation,
        )


def train_tasks(
    model: MultiTaskModel,
    data: Sequence[TaskData],
    cfg: TrainParams,
    seed: int,
    *,
    sampling: SamplingConfig | None = None,
    on_eval: Callable[[int, dict[str, float]], None] = lambda step, metrics: None,
    on_step: Callable[[int, float], None] = lambda step, loss: None,
    checkpoint_dir: Path | None = None,
    evaluations: int | None = None,
) -> MultiTaskResult:
    """Train ``model``'s heads for ``data``'s tasks and the shared encoder; leaves the best dev weights in ``model``.

    ``on_eval`` gets ``<task>_train_loss``, ``<task>_dev_<metric>_train_language`` and, for several tasks,
    ``dev_main_metric_mean``. Without dev rows in any task there is no checkpoint choice and no early stopping:
    the last weights stay and the score is nan. ``checkpoint_dir``: write a checkpoint at every evaluation and
    resume from the newest one found there. Under DDP the best weights are loaded on the main process only.
    ``evaluations``: evaluate that many times, evenly spaced over the schedule, instead of every ``eval_every``.
    """
    _check(model, data)
    loop = _Loop(model, list(data), cfg, seed, sampling or SamplingConfig(), checkpoint_dir, evaluations)
    fast_dropout = loop.accelerator.device.type == "cpu" and not loop.compilation.enabled  # inductor fuses its own
    with cpu_dropout(model) if fast_dropout else nullcontext(), compilation.reproducible(loop.compilation.enabled):
        return loop.run(on_eval, on_step)


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
    checkpoint_dir: Path | None = None,
) -> TrainResult:
    """Train one task (see :func:`train_tasks`); ``on_eval`` gets ``train_loss`` and ``dev_<metric>_train_language``.

    ``dev`` holds features of the English dev set (``dev_examples`` the rows they were built from, which
    tagging and QA need to score words and answer texts). ``on_step`` sees every optimizer step's loss.
    """
    prefix = f"{task}_"
    result = train_tasks(
        model,
        [TaskData(task, train, dev, collator, dev_examples)],
        cfg,
        seed,
        on_eval=lambda step, values: on_eval(step, {k.removeprefix(prefix): v for k, v in values.items()}),
        on_step=on_step,
        checkpoint_dir=checkpoint_dir,
    )
    metric = result.dev_metrics[task]
    return TrainResult(
        result.best_score, result.best_step, result.steps, result.train_tokens, result.stopped_early, metric
    )
