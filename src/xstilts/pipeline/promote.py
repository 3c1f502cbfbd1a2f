"""The ``promote`` entry point: per target and retrieval task, the best run's model becomes ``xstilts-<task>@champion``.

Each task competes on its own family's main metric (:func:`xstilts.registry.main_metric`): targets on
``dev_<main metric>_zeroshot``, retrieval tasks on their family's zero-shot dev metric (test where a task has no dev
split).
"""

from __future__ import annotations

import mlflow

from xstilts.params import load_params
from xstilts.paths import metrics_dir
from xstilts.registry import PromotionResult, champions, promote
from xstilts.tracking import phase_run, setting, write_metrics_json


def run_promote(tasks: list[str] | None = None) -> list[PromotionResult]:
    """Register, per task (default: every target and retrieval task), the best run's model as
    ``xstilts-<task>@champion`` if it beats the champion."""
    with phase_run("promote", {"tasks": ",".join(tasks or ["all"])}, {}):
        params = load_params()
        phases = {t: "target" for t in params.target.tasks} | {t: "retrieve" for t in params.retrieve.tasks}
        chosen = tasks or list(phases)
        results = []
        for task in chosen:
            result = promote(task, setting=setting(params), phase=phases.get(task, "target"))
            mlflow.log_metric(f"{task}_promoted", float(result.promoted))
            mlflow.log_param(f"{task}_metric", result.metric)
            results.append(result)
        board = {
            row["target"]: {"version": int(row["version"]), str(row["metric"]): float(row["metric_value"])}
            for row in champions()
            if row["target"] in chosen
        }
        write_metrics_json(metrics_dir() / "champions.json", board)
        return results
