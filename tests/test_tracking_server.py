"""A shared `mlflow server` (several machines log to it): experiments are made without a local artifact path,
so every run's artifacts go where the server keeps them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import mlflow

from xstilts.tracking import configure, local_store

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ui_check.py"


def _serve():
    spec = importlib.util.spec_from_file_location("ui_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.serve


def test_stores_on_this_disk_are_told_from_shared_ones():
    assert local_store("sqlite:////repo/mlflow.db") and local_store("file:///repo/mlruns") and local_store("/x/mlruns")
    assert not local_store("http://127.0.0.1:5000") and not local_store("postgresql://u@db/mlflow")


def test_an_experiment_on_a_tracking_server_keeps_its_artifacts_on_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path / "repo"))
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    with _serve()(tmp_path / "server.db", tmp_path) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        exp_id = configure("shared")
        location = mlflow.get_experiment(exp_id).artifact_location
        assert location.startswith((tmp_path / "artifacts").as_uri()), location  # the server's root, not mlruns/
        with mlflow.start_run(experiment_id=exp_id):
            mlflow.log_text("hello", "note.txt")
        assert [p.read_text() for p in (tmp_path / "artifacts").rglob("note.txt")] == ["hello"]
        assert not (tmp_path / "repo" / "mlruns").exists()
    mlflow.set_tracking_uri(None)
