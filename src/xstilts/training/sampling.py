"""Which task the next batch comes from, and which rows: a resumable multi-task batch sampler.

Task probabilities (as in jiant): ``proportional`` p_i ∝ n_i, ``temperature`` p_i ∝ n_i^(1/T), ``uniform``
p_i = 1/k, where n_i is task i's number of training rows, capped at ``examples_cap`` when set (the cap changes
the mixing weights and the length of an epoch, not the rows: a task still cycles through all its rows).
Each batch holds rows of one task; each task's rows come in length-grouped batches (shuffled mega-batches
sorted by length, :func:`transformers.trainer_pt_utils.get_length_grouped_indices`), a new order every pass.
The sampler's own generators decide everything it draws, so its :meth:`MultiTaskSampler.state_dict` (with
torch's global RNG state, see :meth:`TaskBatches.next`) is enough to continue the same sequence after a restart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.trainer_pt_utils import get_length_grouped_indices

from xstilts.errors import XstiltsError

METHODS = ("proportional", "temperature", "uniform")


@dataclass(frozen=True)
class SamplingConfig:
    method: str = "proportional"
    temperature: float = 2.0
    examples_cap: int | None = None


def task_probabilities(sizes: Mapping[str, int], cfg: SamplingConfig) -> dict[str, float]:
    """The probability of drawing each task's batch next (see the module docstring)."""
    if cfg.method not in METHODS:
        raise XstiltsError(f"Unknown sampling method {cfg.method!r}; use one of {', '.join(METHODS)}.")
    if cfg.method == "temperature" and not cfg.temperature > 0:
        raise XstiltsError(f"Sampling temperature must be positive, got {cfg.temperature}.")
    if cfg.examples_cap is not None and cfg.examples_cap < 1:
        raise XstiltsError(f"examples_cap must be a positive number of examples, got {cfg.examples_cap}.")
    empty = [name for name, n in sizes.items() if n < 1]
    if not sizes or empty:
        raise XstiltsError(f"Every task needs training rows to be sampled; none for: {', '.join(empty) or 'any'}.")
    n = np.asarray([capped(size, cfg.examples_cap) for size in sizes.values()], dtype=float)
    if cfg.method == "proportional":
        weights = n
    elif cfg.method == "temperature":
        weights = n ** (1.0 / cfg.temperature)
    else:
        weights = np.ones_like(n)
    return dict(zip(sizes, (weights / weights.sum()).tolist(), strict=True))


def capped(size: int, cap: int | None) -> int:
    return size if cap is None else min(size, cap)


class TaskBatches:
    """Endless length-grouped batches of one task's row indices, a new shuffled order at every pass."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.position = 0
        self.passes = 0

    def next(self) -> list[int]:
        if self.position >= len(self.order):
            # one draw from torch's global RNG per pass, as a DataLoader iterator makes for its base seed: keeps
            # dropout, and so single-task runs, step for step the same as the DataLoader loop this one replaced
            torch.empty((), dtype=torch.int64).random_()
            self.order = get_length_grouped_indices(self.lengths, self.batch_size, generator=self.generator)
            self.position, self.passes = 0, self.passes + 1
        batch = self.order[self.position : self.position + self.batch_size]
        self.position += len(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": list(self.order),
            "position": self.position,
            "passes": self.passes,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position, self.passes = list(state["order"]), int(state["position"]), int(state["passes"])


class MultiTaskSampler:
    """Draws (task, row indices) batches: the task by :func:`task_probabilities`, the rows from its own stream.

    Task ``i`` (in the order given) shuffles its rows with seed ``seed + i``; a single task never draws a task
    choice, so it sees exactly the batches a length-grouped sampler seeded with ``seed`` would give.
    """

    def __init__(self, lengths: Mapping[str, Sequence[int]], batch_size: int, seed: int, cfg: SamplingConfig) -> None:
        if batch_size < 1:
            raise XstiltsError(f"Batch size must be positive, got {batch_size}.")
        self.cfg = cfg
        self.batch_size = batch_size
        self.sizes = {task: len(rows) for task, rows in lengths.items()}
        self.probabilities = task_probabilities(self.sizes, cfg)
        self.tasks = list(lengths)
        self.streams = {task: TaskBatches(rows, batch_size, seed + i) for i, (task, rows) in enumerate(lengths.items())}
        self.choice = np.random.default_rng(seed)
        self.drawn = 0

    def batches_per_epoch(self) -> int:
        """Batches in one pass over every task's (capped) rows: the unit that ``epochs`` counts."""
        return sum(math.ceil(capped(n, self.cfg.examples_cap) / self.batch_size) for n in self.sizes.values())

    def next(self) -> tuple[str, list[int]]:
        if len(self.tasks) == 1:
            task = self.tasks[0]
        else:
            p = np.asarray([self.probabilities[t] for t in self.tasks])
            task = self.tasks[int(self.choice.choice(len(self.tasks), p=p))]
        self.drawn += 1
        return task, self.streams[task].next()

    def state_dict(self) -> dict[str, Any]:
        return {
            "tasks": list(self.tasks),
            "choice": self.choice.bit_generator.state,
            "drawn": self.drawn,
            "streams": {task: stream.state_dict() for task, stream in self.streams.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["tasks"]) != self.tasks:
            raise XstiltsError(
                f"The checkpoint's sampler holds tasks {state['tasks']}, not {self.tasks}; delete the checkpoint."
            )
        self.choice.bit_generator.state = state["choice"]
        self.drawn = int(state["drawn"])
        for task, stream in self.streams.items():
            stream.load_state_dict(state["streams"][task])


def shard(indices: Sequence[int], rank: int, world: int) -> list[int]:
    """Process ``rank``'s contiguous share of a global batch; rows repeat when the batch has fewer than ``world``."""
    indices = list(indices)
    if len(indices) < world:
        indices = (indices * math.ceil(world / len(indices)))[:world]
    return [int(i) for i in np.array_split(np.asarray(indices), world)[rank]]
