"""What a training run decides before it starts (:class:`RunPlan`), made by :func:`xstilts.pipeline.phases.plan_run`.

Apart from the phases so that what reads a plan (the tuning study's key, its trials) need not import them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xstilts.params import Params, TrainParams
from xstilts.paths import curve_path, metrics_dir, models_dir, repo_root
from xstilts.pipeline.run_names import seeded
from xstilts.tasks import Role, Task


@dataclass(frozen=True)
class RunPlan:
    """Everything a training run decides before it starts, computed once: what it trains, from which encoder,
    with which settings (``per_task`` applied to the output folder's name), and where everything goes."""

    phase: str
    role: Role
    init: str
    tasks: list[Task]
    out_name: str  # the folder name: a task, a group, a+b+c, or <family>-<init> (a target family: what it trains on)
    encoder: str  # what load_encoder reads: the pretrained model's name or an intermediate model's encoder/
    intermediate: str  # the Tag.INTERMEDIATE value: the tasks the encoder was trained on, "none" for none
    cfg: TrainParams
    params: Params
    checkpoint_dir: Path
    study: str | None = None  # the Optuna study whose lr and epochs cfg holds (tune.tasks)
    family: str | None = None  # a target run: the head's name, the English task its targets train on
    run_seed: int | None = None  # one of study.seeds (names carry ``-s<seed>``), None: params.seed, unnamed

    def target_run(self, task: str) -> str:
        """A target's own run name, ``<target>-<init>[-s<seed>]``: its metrics and predictions files."""
        return seeded(f"{task}-{self.init}", self.run_seed)

    @property
    def model_dir(self) -> Path:
        return models_dir() / self.phase / self.out_name

    def predictions_csv(self, task: str | None = None) -> Path:
        """The run's predictions (a target run: ``task``'s)."""
        name = self.out_name if task is None else self.target_run(task)
        return repo_root() / "predictions" / self.phase / f"{name}.csv"

    def metrics_json(self, task: str | None = None) -> Path:
        """The run's metrics file (a target run: ``task``'s)."""
        name = self.out_name if task is None else self.target_run(task)
        return metrics_dir() / self.phase / f"{name}.json"

    @property
    def curve_json(self) -> Path:
        return curve_path(self.phase, self.out_name)
