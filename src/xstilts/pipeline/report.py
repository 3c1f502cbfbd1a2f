"""The ``report`` entry point: the study's answer, from every run's per-example test predictions (the targets'
and retrieval tasks', and the intermediate models' own, for the learning gate).

Writes ``reports/study.json``, ``reports/study.md`` and the PNGs under ``reports/study/`` (all computed before
any file is replaced, so a failure leaves the last report whole), and logs them to an MLflow run (phase=report).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import mlflow

from xstilts.atomic import write_text_atomic
from xstilts.params import Params, load_params
from xstilts.paths import repo_root
from xstilts.study.document import build, markdown, terminal_text
from xstilts.study.gate import check
from xstilts.study.plots import draw
from xstilts.study.runs import (
    Design,
    gate_inputs,
    intermediate_budget,
    intermediate_curves,
    load_retrieval,
    load_target,
    retrieval_layers,
    run_machines,
)
from xstilts.tracking import Tag, log_settings, phase_run, run_name

PLOTS = "reports/study"


def report_paths(root: Path | None = None) -> tuple[Path, Path, Path]:
    root = root or repo_root()
    return root / "reports" / "study.json", root / "reports" / "study.md", root / PLOTS


def run_report(params: Params | None = None) -> dict:
    """Build the study report for ``params`` (default: ``params.yaml``) and return its data."""
    with phase_run("report", {}, {Tag.TASK: "study"}, run_name("report")):
        params = params or load_params()
        design = Design.of(params)
        log_settings(params, params.study.model_dump(), {Tag.INTERMEDIATE: design.group})
        targets = [load_target(name, design, params) for name in design.targets]
        targets += [load_retrieval(name, design) for name in design.retrieval]
        layers = {name: retrieval_layers(name, design) for name in design.retrieval}
        gate = check(gate_inputs(design), design.learn_margin, design.resamples, design.seed, design.confidence)
        study = build(targets, design, intermediate_budget(design), gate, layers, run_machines(design))
        json_path, md_path, plot_dir = report_paths()
        with tempfile.TemporaryDirectory(dir=json_path.parent.parent) as tmp:
            drawn = draw(study, Path(tmp), intermediate_curves(design))
            text = markdown(study, [f"study/{p.name}" for p in drawn])
            if plot_dir.exists():
                shutil.rmtree(plot_dir)
            plot_dir.mkdir(parents=True)
            for p in drawn:
                shutil.move(p, plot_dir / p.name)
        write_text_atomic(json_path, json.dumps(study, indent=2) + "\n")  # in the design's order, the same every run
        write_text_atomic(md_path, text)
        for path in (json_path, md_path):
            mlflow.log_artifact(str(path))
        mlflow.log_artifacts(str(plot_dir), artifact_path="study")
        for state in ("not learned", "unclear"):
            mlflow.log_metric(f"phase2_{state.replace(' ', '_')}", sum(r["state"] == state for r in study["gate"]))
        for name, target in study["targets"].items():
            primary = target["primary"]
            mlflow.log_metrics({f"{name}_primary_diff": primary["diff"], f"{name}_primary_p": primary["p"]})
            mlflow.set_tag(f"verdict_{name}", target["verdict"]["answer"])
        print(terminal_text(study))
        return study
