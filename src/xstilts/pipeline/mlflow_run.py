"""``xstilts run``: an MLproject entry point run through MLflow Projects with the project's own backend.

The backend itself (:mod:`xstilts.pipeline.project_backend`) calls the CLI, so it sits above it; this module
holds what both need (the backend's name and whether MLflow can find it) and starts the run by that name only.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from xstilts.errors import XstiltsError

NAME = "xstilts"
ENTRY_POINT_GROUP = "mlflow.project_backend"
PROCESSES_ENV = "XSTILTS_PROCESSES"  # DDP processes for a training entry point (the backend launches them)


def is_registered() -> bool:
    """Whether MLflow can find the backend (the package's entry points are installed)."""
    return any(e.name == NAME for e in entry_points(group=ENTRY_POINT_GROUP))


def run_entry_point(entry_point: str, parameters: dict[str, str]) -> None:
    """Run ``entry_point`` of MLproject as ``mlflow run . -e ... --backend xstilts``, synchronously.

    MLflow validates the parameters and creates the run, and the entry point's command runs in this process
    rather than in a second Python process that would import MLflow and open the store again.
    """
    import mlflow.projects
    from mlflow.exceptions import ExecutionException

    from xstilts.paths import repo_root
    from xstilts.tracking import EXPERIMENT, configure

    if not is_registered():
        raise XstiltsError(
            f"MLflow cannot find the {NAME!r} project backend: reinstall the package "
            "(`pip install -e .`, or `make setup`) so that its entry points are registered."
        )
    configure()
    try:
        mlflow.projects.run(
            str(repo_root()),
            entry_point=entry_point,
            parameters=parameters,
            backend=NAME,
            env_manager="local",
            experiment_name=EXPERIMENT,
            synchronous=True,
        )
    except ExecutionException as exc:
        raise XstiltsError(f"MLflow {exc} ({entry_point} {parameters}); see its log above.") from exc
