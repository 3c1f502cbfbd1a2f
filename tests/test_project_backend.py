"""`xstilts run` (DVC's stage commands): MLflow Projects with the in-process ``xstilts`` backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import ExecutionException

from xstilts.cli import main
from xstilts.pipeline import mlflow_run, project_backend

REPO = Path(__file__).resolve().parents[1]


def _runs() -> list:
    return mlflow.search_runs(experiment_names=["xstilts"], output_format="list")


def test_the_backend_is_registered_with_mlflow():
    from mlflow.projects.backend import loader

    assert mlflow_run.is_registered()
    assert isinstance(loader.load_backend(project_backend.NAME), project_backend.InProcessBackend)


def test_an_entry_point_runs_in_this_process_into_the_run_mlflow_created(project):
    shutil.copy(REPO / "MLproject", project / "MLproject")
    mlflow.create_experiment("xstilts")  # as `mlflow run --experiment-name xstilts` leaves it: no experiment kind
    assert main(["run", "retrieve", "-P", "task=udhr", "-P", "encoder=none"]) == 0
    (run,) = _runs()  # one run: the entry point logged into the run MLflow Projects created
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "retrieve udhr <- none"  # MLflow gave it a random name; the entry point renamed it
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    tags = run.data.tags
    assert tags["mlflow.project.backend"] == project_backend.NAME
    assert tags["mlflow.project.entryPoint"] == "retrieve"
    assert tags["phase"] == "retrieve" and tags["task"] == "udhr"
    assert run.data.params["task"] == "udhr" and run.data.params["encoder"] == "none"
    assert "test_accuracy_zeroshot" in run.data.metrics
    assert (project / "metrics/retrieve/udhr-none.json").exists()


def test_a_failing_entry_point_fails_the_command_and_the_run(project, capsys):
    shutil.copy(REPO / "MLproject", project / "MLproject")
    assert main(["run", "retrieve", "-P", "task=no_such_task", "-P", "encoder=none"]) == 2
    err = capsys.readouterr().err
    assert "no_such_task" in err and "Traceback" not in err
    (run,) = _runs()
    assert run.info.status == "FAILED"
    assert "no_such_task" in run.data.tags["failure_reason"]


def test_only_xstilts_commands_run_in_process(tmp_path, store):
    (tmp_path / "MLproject").write_text("name: other\nentry_points:\n  main:\n    command: 'echo hello'\n")
    backend = project_backend.InProcessBackend()
    with pytest.raises(ExecutionException, match="--backend local"):
        backend.run(str(tmp_path), "main", {}, None, {}, mlflow.get_tracking_uri(), "0")
    assert _runs() == []  # refused before a run was created


def test_a_training_entry_point_runs_under_accelerate_launch_when_asked(project, monkeypatch):
    """``XSTILTS_PROCESSES=2`` (what `xstilts fanout` sets for ``fanout.gpus: 2``): DDP, gloo on the CPU here."""
    shutil.copy(REPO / "MLproject", project / "MLproject")
    monkeypatch.setenv(project_backend.PROCESSES_ENV, "2")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    assert main(["run", "intermediate", "-P", "task=vitaminc"]) == 0
    (run,) = _runs()  # the launched processes' main process logged into the run the backend created
    assert run.info.status == "FINISHED" and run.data.tags["processes"] == "2"
    assert (project / "metrics/intermediate/vitaminc.json").exists() and run.data.params["task"] == "vitaminc"


@pytest.mark.parametrize(
    ("entry", "value", "expected"), [("intermediate", "4", 4), ("tune", "4", 1), ("target", "1", 1)]
)
def test_only_training_entry_points_take_several_processes(monkeypatch, entry, value, expected):
    monkeypatch.setenv(project_backend.PROCESSES_ENV, value)
    assert project_backend.launched_processes(entry) == expected


def test_a_bad_process_count_is_one_sentence(monkeypatch):
    monkeypatch.setenv(project_backend.PROCESSES_ENV, "two")
    with pytest.raises(ExecutionException, match="XSTILTS_PROCESSES must be a whole number of processes"):
        project_backend.launched_processes("target")
