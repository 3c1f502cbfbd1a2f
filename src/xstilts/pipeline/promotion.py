"""The ``promote`` entry point: per target task, the best run's model becomes ``xstilts-<task>@champion``."""

from __future__ import annotations

import mlflow

from xstilts.params import load_params
from xstilts.paths import metrics_dir
from xstilts.registry import PromotionResult, champions, promote
from xstilts.tasks import Role, get_task
from xstilts.tracking import phase_run, setting, write_metrics_json


def run_promote(tasks: list[str] | None = None) -> list[PromotionResult]:
    """Register, per target task, the best run's model as ``xstilts-<task>@champion`` if it beats the champion."""
    with phase_run("promote", {"tasks": ",".join(tasks or ["all"])}, {}):
        params = load_params()
        targets = tasks or params.target.tasks
        mlflow.log_param("metric", params.promote.metric)
        results = []
        for task in targets:
            if not get_task(task, Role.TARGET, source=params.data.source).spec.servable:
                # the pyfunc model (xstilts.serving) serves classifiers only; other families stay unregistered
                print(f"{task}: not registered (registry models exist for classification targets only)")
                continue
            result = promote(task, params.promote.metric, setting(params))
            mlflow.log_metric(f"{task}_promoted", float(result.promoted))
            results.append(result)
        board = {
            row["target"]: {"version": int(row["version"]), str(row["metric"]): float(row["metric_value"])}
            for row in champions()
            if row["target"] in targets
        }
        write_metrics_json(metrics_dir() / "champions.json", board)
        return results
