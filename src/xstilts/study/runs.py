"""What the study reads: the design from ``params.yaml`` and the per-example predictions of every run it names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xstilts.data.splits import read_split
from xstilts.errors import XstiltsError
from xstilts.params import Params
from xstilts.paths import curve_path, metrics_dir, prepared_dir, repo_root
from xstilts.study.analysis import NONE, Target, align
from xstilts.tasks import Role, get_task


@dataclass(frozen=True)
class Design:
    """The group G, its members (each also trained alone), and the inits every target is trained from."""

    group: str
    members: tuple[str, ...]
    targets: tuple[str, ...]
    retrieval: tuple[str, ...]  # bitext retrieval tasks (they keep per-query hits), scored from the same encoders
    layer: int  # the retrieval layer the comparisons are of (retrieve.layer)
    seed: int
    resamples: int
    confidence: float

    @property
    def inits(self) -> tuple[str, ...]:
        return (NONE, *self.members, self.group)

    @classmethod
    def of(cls, params: Params) -> Design:
        group = params.study.group
        if group is None:
            raise XstiltsError("params.yaml sets no study.group; name the multi-task group the study compares.")
        members = tuple(params.intermediate.groups[group])
        source, s = params.data.source, params.study
        retrieval = tuple(
            t for t in params.retrieve.tasks if get_task(t, Role.RETRIEVAL, source=source).family == "bitext"
        )
        targets = tuple(params.target.tasks)
        return cls(group, members, targets, retrieval, params.retrieve.layer, params.seed, s.resamples, s.confidence)


def predictions_csv(phase: str, task: str, init: str) -> Path:
    return repo_root() / "predictions" / phase / f"{task}-{init}.csv"


def read_predictions(path: Path) -> pd.DataFrame:
    """A run's per-example predictions table, ids, languages and domains as text."""
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run `dvc repro` (its {path.parent.name} stage) first.")
    text = {c: str for c in ("id", "language", "domain", "split", "gold", "prediction")}
    return pd.read_csv(path, dtype=text, keep_default_na=False)


def train_domains(task_name: str, source: str) -> tuple[str, ...]:
    """The domains of the English rows a target trains on (its ``train_from`` task's, if it has one)."""
    task = get_task(task_name, Role.TARGET, source=source)
    trained_on = task.train_from or task.name
    table = read_split(prepared_dir(trained_on), "train").select(["domain"])
    return tuple(sorted(set(table.column("domain").to_pylist())))


def load_target(name: str, design: Design, params: Params) -> Target:
    task = get_task(name, Role.TARGET, source=params.data.source)
    runs = {init: read_predictions(predictions_csv("target", name, init)) for init in design.inits}
    return Target(
        name=name,
        family=task.family.value,
        metric=task.metric,
        train_language=task.train_language,
        original_languages=tuple(task.original_languages),
        train_domains=train_domains(name, params.data.source),
        runs=align(runs, name),
    )


def load_retrieval(name: str, design: Design) -> Target:
    """A retrieval task's per-query hits at ``design.layer`` from every encoder; every query is zero-shot."""
    runs = {}
    for init in design.inits:
        table = read_predictions(predictions_csv("retrieve", name, init))
        table = table[table["layer"] == design.layer].drop(columns="layer")
        runs[init] = table.assign(domain=name)
    return Target(name, "bitext", "accuracy", "en", (), (), align(runs, name))


def retrieval_layers(name: str, design: Design) -> dict[str, dict[str, float]]:
    """Per encoder: mean test top-1 accuracy by layer (``retrieve.layer`` and ``retrieve.layers``)."""
    out = {}
    for init in design.inits:
        path = metrics_dir() / "retrieve" / f"{name}-{init}.json"
        if not path.is_file():
            raise XstiltsError(f"{path} is missing; run `dvc repro retrieve-{name}-{init}` first.")
        values = json.loads(path.read_text())
        layers = {str(design.layer): values["test_accuracy_zeroshot"]}
        for key, value in values.items():
            head, _, rest = key.partition("_")
            if head.startswith("layer") and rest == "test_accuracy_zeroshot":
                layers[head.removeprefix("layer")] = value
        out[init] = dict(sorted(layers.items(), key=lambda kv: (int(kv[0]) < 0, int(kv[0]))))  # -1 last
    return out


def intermediate_budget(design: Design) -> dict[str, dict[str, float]]:
    """Per intermediate model of the design: its optimizer steps and training examples (metrics files)."""
    out = {}
    for name in (*design.members, design.group):
        path = metrics_dir() / "intermediate" / f"{name}.json"
        if not path.is_file():
            raise XstiltsError(f"{path} is missing; run `dvc repro intermediate-{name}` first.")
        values = json.loads(path.read_text())
        examples = sum(v for k, v in values.items() if k.endswith("train_examples"))
        out[name] = {"steps": values.get("train_steps", float("nan")), "examples": examples}
    return out


def intermediate_curves(design: Design) -> dict[str, list[dict]]:
    """Per intermediate model of the design: its evaluations (``plots/intermediate/<name>.json``)."""
    out = {}
    for name in (*design.members, design.group):
        path = curve_path("intermediate", name)
        if not path.is_file():
            raise XstiltsError(f"{path} is missing; run `dvc repro intermediate-{name}` first.")
        out[name] = json.loads(path.read_text())
    return out
