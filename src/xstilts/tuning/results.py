"""What a study leaves: ``tuning/<task>.yaml`` (read by phase 2), and the parent run's summary and plots."""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

from xstilts.atomic import write_text_atomic
from xstilts.errors import XstiltsError
from xstilts.tuning.key import result_path


def untuned_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    from xstilts.tuning.study import UNTUNED_ATTR

    return next((t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(UNTUNED_ATTR)), None)


def _value(trial: optuna.trial.FrozenTrial | None) -> float | None:
    if trial is None or trial.value is None or not math.isfinite(trial.value):
        return None
    return float(trial.value)


def summary(study: optuna.Study, name: str, key: str, space: dict, budget: dict, metric: str) -> dict[str, Any]:
    """The result of a study with at least one COMPLETE trial: best and untuned values, trials by state."""
    from xstilts.tuning.study import counts

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise XstiltsError(f"Study {name} has no COMPLETE trial (trials by state: {counts(study)}); nothing to use.")
    best = max(complete, key=lambda t: (t.value, -t.number))  # the earliest of equal values: trial 0 wins ties
    untuned = untuned_trial(study)
    return {
        "study": name,
        "key": key,
        "objective": metric,
        "lr": float(best.params["lr"]),
        "epochs": best.params["epochs"],
        "value": _value(best),
        "best_trial": best.number,
        "untuned": {
            "lr": float(untuned.params["lr"]) if untuned else None,
            "epochs": untuned.params.get("epochs") if untuned else None,
            "value": _value(untuned),
            "state": untuned.state.name if untuned else None,
        },
        "trials": counts(study),
        "space": space,
        "budget": budget,
    }


def write_result(out_name: str, result: dict[str, Any]) -> Path:
    path = result_path(out_name)
    write_text_atomic(path, yaml.safe_dump(result, sort_keys=True))
    return path


def save_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optimization history, parameter importances (from 2 complete trials on) and lr x epochs, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    paths = []

    def save(figure, name: str) -> None:
        path = folder / name
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)

    with warnings.catch_warnings():  # optuna's matplotlib plots are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        save(ovm.plot_optimization_history(study).figure, "optimization_history.png")
        if len(done) >= 2 and len({(t.params["lr"], t.params["epochs"]) for t in done}) >= 2:
            save(ovm.plot_param_importances(study).figure, "param_importances.png")
    figure, ax = plt.subplots(figsize=(6, 4))
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x"), ("FAIL", "s")):
        trials = [t for t in study.get_trials(deepcopy=False) if t.state.name == state and "lr" in t.params]
        if not trials:
            continue
        values = [t.value if t.value is not None else float("nan") for t in trials]
        points = ax.scatter([t.params["lr"] for t in trials], [t.params["epochs"] for t in trials],
                            c=values if state == "COMPLETE" else None, marker=marker, label=state.lower())  # fmt: skip
        if state == "COMPLETE":
            figure.colorbar(points, ax=ax, label="dev value")
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="epochs", title=f"{study.study_name}: lr x epochs")
    ax.legend()
    save(figure, "lr_x_epochs.png")
    return paths


def log_summary(study: optuna.Study, result: dict[str, Any] | None) -> None:
    """On the active (parent) run: trials by state, best values as metrics and tags, the plots as artifacts."""
    import mlflow

    from xstilts.tuning.study import counts

    mlflow.log_metrics({f"trials_{state.lower()}": float(n) for state, n in counts(study).items()})
    if result is not None:
        best = {"best_value": result["value"], "best_lr": result["lr"], "best_epochs": result["epochs"]}
        mlflow.log_metrics({k: float(v) for k, v in best.items() if v is not None})
        mlflow.set_tags({"best_lr": str(result["lr"]), "best_epochs": str(result["epochs"])})
    with tempfile.TemporaryDirectory() as tmp:
        for path in save_plots(study, Path(tmp)):
            mlflow.log_artifact(str(path), artifact_path="plots")
