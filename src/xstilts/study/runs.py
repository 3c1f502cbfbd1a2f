"""What the study reads: the design from ``params.yaml`` and the per-example predictions of every run it names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.data.splits import read_split
from xstilts.errors import XstiltsError
from xstilts.params import Params
from xstilts.paths import curve_path, metrics_dir, prepared_dir, repo_root
from xstilts.pipeline.run_names import run_seeds, seeded
from xstilts.study.analysis import NONE, Target
from xstilts.study.gate import GateInput, aligned
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
    seeds: tuple[int | None, ...] = (None,)  # each run's seeds (study.seeds); None: once, with ``seed``
    learn_margin: float = 0.02  # study.learn_margin, as a fraction
    min_effect: float = 0.02  # study.min_effect, as a fraction
    source: str = "offline"  # data.source: where the tasks are looked up
    min_seeds: int = 3  # study.min_seeds: fewer runs per init and no verdict is given
    tuned: tuple[str, ...] = ()  # tune.tasks: specs whose lr and epochs were tuned once (with ``seed``)

    @property
    def seed_values(self) -> list[int]:
        return [self.seed if s is None else s for s in self.seeds]

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
        seeds = tuple(run_seeds(params))
        stats = {"learn_margin": s.learn_margin / 100, "min_effect": s.min_effect / 100, "source": source}
        stats |= {"min_seeds": s.min_seeds, "tuned": tuple(params.tune.tasks)}
        layer = params.retrieve.layer
        return cls(group, members, targets, retrieval, layer, params.seed, s.resamples, s.confidence, seeds, **stats)

    @property
    def models(self) -> list[tuple[str, str, list[str]]]:
        """Every intermediate model of the design: (run name, spec, the tasks it trained)."""
        specs = [(m, [m]) for m in self.members] + [(self.group, list(self.members))]
        return [(seeded(spec, s), spec, tasks) for spec, tasks in specs for s in self.seeds]

    def phase2_domains(self) -> tuple[str, ...]:
        """The domains the members' data covers (their declarations, :attr:`xstilts.tasks.base.Task.domains`)."""
        tasks = (get_task(m, Role.INTERMEDIATE, source=self.source) for m in self.members)
        return tuple(sorted({d for t in tasks for d in t.domains}))


def predictions_csv(phase: str, task: str, init: str | None = None) -> Path:
    """``predictions/<phase>/<task>-<init>.csv``; without ``init``, ``<task>.csv`` (an intermediate model)."""
    return repo_root() / "predictions" / phase / (f"{task}.csv" if init is None else f"{task}-{init}.csv")


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
    seed_runs = {
        init: [read_predictions(predictions_csv("target", name, seeded(init, s))) for s in design.seeds]
        for init in design.inits
    }
    return Target.of(
        name,
        seed_runs,
        seed_names={init: design.seeds for init in design.inits},
        phase2_domains=design.phase2_domains(),
        family=task.family.value,
        metric=task.metric,
        train_language=task.train_language,
        original_languages=tuple(task.original_languages),
        train_domains=train_domains(name, params.data.source),
    )


def load_retrieval(name: str, design: Design) -> Target:
    """A retrieval task's per-query hits at ``design.layer`` from every encoder (the pretrained one has no seed);
    every query is zero-shot."""
    seed_runs, names = {}, {}
    for init in design.inits:
        names[init] = (None,) if init == NONE else design.seeds
        tables = [read_predictions(predictions_csv("retrieve", name, seeded(init, s))) for s in names[init]]
        seed_runs[init] = [t[t["layer"] == design.layer].drop(columns="layer").assign(domain=name) for t in tables]
    declared = {"family": "bitext", "metric": "accuracy", "train_language": "en", "seed_names": names}
    return Target.of(name, seed_runs, original_languages=(), train_domains=(), **declared)


def retrieval_layers(name: str, design: Design) -> dict[str, dict[str, float]]:
    """Per encoder: mean test top-1 accuracy by layer (``retrieve.layer`` and ``retrieve.layers``), averaged over
    the seeds' runs where there are several."""
    out = {}
    for init in design.inits:
        seeds = [None] if init == NONE else design.seeds
        runs = [_layer_accuracies(name, seeded(init, s), design.layer) for s in seeds]
        mean = {layer: float(np.mean([run[layer] for run in runs])) for layer in runs[0]}
        out[init] = dict(sorted(mean.items(), key=lambda kv: (int(kv[0]) < 0, int(kv[0]))))  # -1 last
    return out


def _layer_accuracies(name: str, run: str, layer: int) -> dict[str, float]:
    path = metrics_dir() / "retrieve" / f"{name}-{run}.json"
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run `dvc repro retrieve-{path.stem}` first.")
    values = json.loads(path.read_text())
    layers = {str(layer): values["test_accuracy_zeroshot"]}
    for key, value in values.items():
        head, _, rest = key.partition("_")
        if head.startswith("layer") and rest == "test_accuracy_zeroshot":
            layers[head.removeprefix("layer")] = value
    return layers


def intermediate_budget(design: Design) -> dict[str, dict[str, float | str]]:
    """Per intermediate model of the design (seeded run name): its spec, optimizer steps, training examples and
    precision (metrics files)."""
    out = {}
    for spec, seed in ((m, s) for m in (*design.members, design.group) for s in design.seeds):
        name = seeded(spec, seed)
        path = metrics_dir() / "intermediate" / f"{name}.json"
        if not path.is_file():
            raise XstiltsError(f"{path} is missing; run `dvc repro intermediate-{name}` first.")
        values = json.loads(path.read_text())
        examples = sum(v for k, v in values.items() if k.endswith("train_examples"))
        out[name] = {
            "spec": spec,
            "steps": values.get("train_steps", float("nan")),
            "examples": examples,
            "precision": values.get("precision", "unrecorded"),  # what auto became on the machine that trained it
        }
    return out


def run_machines(design: Design) -> dict[str, str]:
    """Each intermediate and target run's machine setting as its metrics file records it ("machine, precision";
    files not written yet are left out): runs of different settings are never pooled."""
    runs = [("intermediate", seeded(m, s)) for m in (*design.members, design.group) for s in design.seeds]
    runs += [("target", f"{t}-{seeded(i, s)}") for t in design.targets for i in design.inits for s in design.seeds]
    out = {}
    for phase, name in runs:
        path = metrics_dir() / phase / f"{name}.json"
        if path.is_file():
            values = json.loads(path.read_text())
            recorded = [str(values[k]) for k in ("machine", "precision") if values.get(k)]
            recorded += [f"compile {values['compile']}"] if values.get("compile") else []
            out[f"{phase} {name}"] = ", ".join(recorded) or "unrecorded"
    return out


def intermediate_curves(design: Design) -> dict[str, list[dict]]:
    """Per intermediate model of the design: its evaluations (``plots/intermediate/<name>.json``)."""
    out = {}
    for name in (seeded(m, s) for m in (*design.members, design.group) for s in design.seeds):
        path = curve_path("intermediate", name)
        if not path.is_file():
            raise XstiltsError(f"{path} is missing; run `dvc repro intermediate-{name}` first.")
        out[name] = json.loads(path.read_text())
    return out


def gate_inputs(design: Design) -> list[GateInput]:
    """Every task head of every intermediate model of the design, beside its task's trivial baseline."""
    baselines = {}
    out = []
    for run, spec, tasks in design.models:
        table = read_predictions(predictions_csv("intermediate", run))
        for name in tasks:
            task = get_task(name, Role.INTERMEDIATE, source=design.source)
            if name not in baselines:
                baselines[name] = trivial_baseline(name, design.source)
            what, parts, test = baselines[name]
            rows = table[table["task"] == name] if "task" in table.columns else table
            try:
                scored = aligned(rows, parts, test)
            except ValueError as exc:
                raise XstiltsError(
                    f"predictions/intermediate/{run}.csv and data/prepared/{name}/test.parquet hold different "
                    f"{name} test rows ({exc}); rerun `dvc repro intermediate-{run}`."
                ) from exc
            out.append(GateInput(run, spec, name, task.metric, what, scored))
    return out


def trivial_baseline(name: str, source: str) -> tuple[str, tuple[np.ndarray, np.ndarray], pd.DataFrame]:
    """What ``name``'s trivial baseline predicts, its per-example (score, weight) on the test split, and the split."""
    task = get_task(name, Role.INTERMEDIATE, source=source)
    train, test = (read_split(prepared_dir(name), split).to_pandas() for split in ("train", "test"))
    baseline = task.spec.baseline(train, test, list(task.labels), task.unanswerable)
    return baseline.what, task.spec.parts(baseline.evaluation, task.metric), test
