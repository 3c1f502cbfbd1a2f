"""``params.yaml``, read and checked: a wrong value fails with one sentence naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from xstilts.errors import XstiltsError
from xstilts.paths import repo_root


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelParams(_Strict):
    name: str = Field(min_length=1)
    # the commit a Hub model is pinned to (passed to the tokenizer and the model); null for a local model
    revision: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")

    @model_validator(mode="after")
    def _hub_only(self) -> Self:
        if self.revision is not None and self.name.startswith("offline:"):
            raise ValueError(f"model.revision pins a Hub model; {self.name} is built here (set it to null)")
        return self


class DataParams(BaseModel):
    model_config = ConfigDict(extra="allow")  # one sub-dict per task, checked by the task itself
    source: Literal["offline", "hub"] = "offline"
    tasks: list[str] = Field(min_length=1)  # the tasks that fetch/extract/prepare/validate build
    # a folder `xstilts hub download` filled: hub tasks and the model are read from it, with no network
    hub_mirror: str | None = None

    def for_task(self, task: str) -> dict[str, Any]:
        value = (self.model_extra or {}).get(task, {})
        if not isinstance(value, dict):
            raise XstiltsError(f"params.yaml: data.{task} must be a mapping of settings, got {value!r}.")
        return dict(value)


class TrainParams(_Strict):
    tasks: list[str] = Field(min_length=1)
    lr: float = Field(gt=0, lt=1)
    epochs: float = Field(gt=0)
    batch_size: int = Field(gt=0)
    max_length: int = Field(ge=8, le=4096)
    warmup_ratio: float = Field(ge=0, le=1)
    eval_every: int = Field(gt=0)
    patience: int = Field(ge=1)
    freeze_embeddings: bool = False
    # auto: bf16 autocast where this machine runs it fast, else fp32 (fp16 on a CUDA device without bf16);
    # or force bf16 | fp16 | fp32 (xstilts.training.precision). Tuning and evaluation follow their phase.
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    # torch.compile the training step: auto where a cached probe shows it pays on this machine for this run's
    # length (xstilts.training.compilation), on, or off (the default here; the profiles set auto)
    compile: Literal["auto", "on", "off"] = "off"
    grad_accum: int = Field(default=1, ge=1)  # micro-batches per optimizer step (per process)
    trim_embeddings: bool = False  # train only the embedding rows the train/dev data uses (exact; training.trim)
    # per-task overrides of the settings above, e.g. {xnli: {epochs: 2}, xquad: {max_length: 384}} (the paper's)
    per_task: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "bf16" in data:
            raise ValueError("bf16 was replaced by precision: auto (the default), bf16, fp16 or fp32")
        return data

    def for_task(self, task: str) -> Self:
        """These settings with ``per_task[task]`` applied (and checked like the rest)."""
        override = self.per_task.get(task)
        if not override:
            return self
        bad = sorted(set(override) - (set(type(self).model_fields) - {"tasks", "inits", "groups", "per_task"}))
        if bad:
            raise XstiltsError(f"params.yaml: per_task.{task} sets unknown or fixed keys {bad}.")
        try:
            return type(self).model_validate({**self.model_dump(), **override})
        except ValidationError as exc:
            raise XstiltsError(f"{_describe(exc.errors()[0])} (in per_task.{task})") from exc


class IntermediateParams(TrainParams):
    """Phase 2 settings, with the multi-task sampler (see :mod:`xstilts.training.sampling`) and named groups."""

    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: float = Field(default=2.0, gt=0)  # p_i ∝ n_i^(1/T) when sampling: temperature
    examples_cap: int | None = Field(default=None, gt=0)  # cap on n_i (jiant's examples_cap)
    groups: dict[str, list[str]] = Field(default_factory=dict)  # name -> tasks trained together (-P task=<name>)


class TargetParams(TrainParams):
    inits: list[str] = Field(min_length=1)


class RetrieveParams(_Strict):
    tasks: list[str] = Field(min_length=1)
    encoders: list[str] = Field(min_length=1)
    layer: int = -1  # the hidden layer whose mean-pooled vectors the metrics are of (-1 = last)
    layers: list[int] = Field(default_factory=list)  # also scored, from the same forward passes (layer<k>_ metrics)
    max_length: int = Field(ge=8, le=4096)
    batch_size: int = Field(gt=0)


class LrRange(_Strict):
    """The learning rates a study draws from: log-uniform (continuous) between low and high."""

    low: float = Field(default=1e-5, gt=0, lt=1)
    high: float = Field(default=3e-4, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self


class EpochRange(_Strict):
    """The epoch counts a study draws from: integers low..high (step 1), or continuous with ``step: null``."""

    low: float = Field(default=1.0, gt=0)  # floats, like validated values (1 -> 1.0): the study key hashes them
    high: float = Field(default=4.0, gt=0)
    step: int | None = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.step is not None and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(f"integer epochs (step {self.step}) need integer low and high; or set step: null")
        return self


class Grid(_Strict):
    lr: list[float] = Field(min_length=1)
    epochs: list[float] = Field(min_length=1)


class TuneParams(_Strict):
    """Optuna's search for lr and epochs per intermediate task (see :mod:`xstilts.tuning`)."""

    tasks: list[str] = Field(default_factory=list)  # intermediate tasks, comma lists or groups tuned before phase 2
    n_trials: int = Field(default=8, ge=1)  # finished trials (complete or pruned) per study, all workers together
    lr: LrRange = Field(default_factory=LrRange)
    epochs: EpochRange = Field(default_factory=EpochRange)
    sampler: Literal["tpe", "grid"] = "tpe"  # TPE seeded with `seed`; grid walks `grid` (every combination)
    grid: Grid | None = None
    pruner: Literal["median", "halving", "none"] = "median"
    evaluations: int = Field(default=4, ge=1)  # dev evaluations per trial, evenly over its own schedule
    warmup_evaluations: int = Field(default=1, ge=0)  # evaluations a trial always gets before it may be pruned
    startup_trials: int = Field(default=2, ge=0)  # finished trials before the median pruner prunes anything
    train_rows: int | None = Field(default=None, gt=0)  # per task: a seeded subset of the train rows (null: all)
    dev_rows: int | None = Field(default=None, gt=0)  # per task: a seeded subset of the dev rows scored (null: all)
    storage: str | None = None  # null: tuning/studies/<study>.journal (Optuna's JournalFileBackend); or an RDB URL
    # RDB storage: a running trial records a heartbeat every this many seconds; one silent for twice that (its
    # worker, maybe on another machine, died) is failed and its setting retried, at most twice
    heartbeat: int = Field(default=60, ge=1)

    @model_validator(mode="after")
    def _grid_given(self) -> Self:
        if self.sampler == "grid" and self.grid is None:
            raise ValueError("sampler grid needs tune.grid (lists of lr and epochs values)")
        return self


class FanoutParams(_Strict):
    """What ``xstilts fanout`` asks of a Ray cluster for each training, tuning or retrieval stage."""

    cpus: float = Field(default=1, ge=0)  # per stage (Ray's num_cpus)
    gpus: float = Field(default=0, ge=0)  # per stage (Ray's num_gpus); 2 or more: training runs DDP, one per GPU
    retries: int = Field(default=2, ge=0)  # a stage whose node or worker was lost runs again, at most this often
    tune_workers: int = Field(default=1, ge=1)  # tasks per tune stage on one study (more than 1: tune.storage RDB)
    checkpoints: str | None = None  # a folder every node shares: a retried stage resumes from its checkpoint

    @model_validator(mode="after")
    def _whole_gpus(self) -> Self:
        """A fraction of one GPU is Ray's to share; several GPUs are several DDP processes, so a whole number."""
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"gpus above 1 must be a whole number (one DDP process per GPU), not {self.gpus}")
        return self


class StudyParams(_Strict):
    """The comparison the ``report`` stage makes (:mod:`xstilts.study`): the multi-task group ``group`` against
    each of its members trained alone and against ``none``, on every target and retrieval task."""

    group: str | None = None  # a name in intermediate.groups; null: no study report
    # train every intermediate and target run once per seed (folders, metrics and stages named <run>-s<seed>);
    # empty: once, with `seed`. Data splits and tuning always use `seed`.
    seeds: list[int] = Field(default_factory=list)
    resamples: int = Field(default=10_000, ge=1_000)  # paired bootstrap resamples per comparison
    confidence: float = Field(default=0.95, gt=0.5, lt=1)  # of every interval
    # points (of the metric in %): a task head learned when the interval of its test score minus its trivial
    # baseline's lies above learn_margin (not learned: below; else unclear); min_effect is the smallest difference
    # of interest ("no gain of interest": the interval lies between -min_effect and +min_effect)
    learn_margin: float = Field(default=2.0, ge=0, lt=100)
    min_effect: float = Field(default=2.0, gt=0, lt=100)
    # runs per init below which no verdict is given ("not assessed (1 seed)"): one seed's interval covers the
    # test set only, not the seed-to-seed spread of the training procedure
    min_seeds: int = Field(default=3, ge=2)
    # points: the seed-to-seed sd of a target's score that `xstilts plan` assumes until runs with several seeds
    # measured it (fine-tuning seed spreads of 0.5-2 points are common; the plan says when it used this)
    prior_seed_sd: float = Field(default=1.0, gt=0, lt=100)


class Params(_Strict):
    profile: str = "default"
    seed: int = Field(ge=0)
    model: ModelParams
    data: DataParams
    intermediate: IntermediateParams
    target: TargetParams
    retrieve: RetrieveParams
    tune: TuneParams = Field(default_factory=TuneParams)  # nothing is tuned without tune.tasks
    study: StudyParams = Field(default_factory=StudyParams)
    fanout: FanoutParams = Field(default_factory=FanoutParams)

    @model_validator(mode="after")
    def _study_design(self) -> Self:
        """The study's group, each member alone and ``none`` must all be trained, tuned and scored."""
        if len(set(self.study.seeds)) != len(self.study.seeds) or any(s < 0 for s in self.study.seeds):
            raise ValueError(f"study.seeds must be distinct non-negative integers, not {self.study.seeds}")
        group = self.study.group
        if group is None:
            return self
        members = self.intermediate.groups.get(group)
        if members is None:
            known = ", ".join(sorted(self.intermediate.groups)) or "none defined"
            raise ValueError(f"study.group {group!r} is not in intermediate.groups ({known})")
        needed = {
            "intermediate.tasks": [*members, group],
            "tune.tasks": [*members, group] if self.tune.tasks else [],
            "target.inits": ["none", *members, group],
            "retrieve.encoders": ["none", *members, group],
        }
        have = {
            "intermediate.tasks": self.intermediate.tasks,
            "tune.tasks": self.tune.tasks,
            "target.inits": self.target.inits,
            "retrieve.encoders": self.retrieve.encoders,
        }
        for key, names in needed.items():
            if missing := [n for n in names if n not in have[key]]:
                raise ValueError(
                    f"{key} lacks {', '.join(missing)}: the study of group {group} needs none, each member alone "
                    f"and the group (or set study.group: null)"
                )
        return self


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"])
    if not where or error["type"] == "value_error":  # a check of a section or across sections: it names the keys
        return f"params.yaml: {where + ': ' if where else ''}{error['msg'].removeprefix('Value error, ')}."
    return f"params.yaml: {where}: {error['msg']} (got {error.get('input')!r})."


def hub_mirror(params: Params) -> Path | None:
    """``data.hub_mirror`` as a path (relative ones from the repository root), or None."""
    if params.data.hub_mirror is None:
        return None
    path = Path(params.data.hub_mirror).expanduser()
    return path if path.is_absolute() else repo_root() / path


def load_params(path: Path | None = None) -> Params:
    """Read and validate ``params.yaml`` (default: at the repository root)."""
    path = path or repo_root() / "params.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise XstiltsError(f"No params.yaml at {path}; run from the project root.") from exc
    except yaml.YAMLError as exc:
        raise XstiltsError(f"params.yaml is not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(raw, dict):
        raise XstiltsError("params.yaml must be a mapping of stage names to settings.")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise XstiltsError(_describe(exc.errors()[0])) from exc
