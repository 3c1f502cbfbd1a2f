"""Shared fixtures: a tiny encoder, and an isolated project root with its own MLflow store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import build_tiny_encoder  # noqa: E402


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh sqlite tracking store (and artifact root) for this test, forgotten afterwards."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "")  # restored (removed) after the test; configure() sets it
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture
def project(tmp_path, monkeypatch, tiny_encoder_dir, mlflow_store) -> Path:
    """A temp project root (tiny params and prepared data) that xstilts resolves as its repository."""
    from project import make_project

    root = tmp_path / "proj"
    root.mkdir()
    make_project(root, tiny_encoder_dir)
    monkeypatch.setenv("XSTILTS_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def store(mlflow_store) -> Iterator[str]:
    """The isolated store, configured the way the entry points configure it (experiment "xstilts")."""
    from xstilts.tracking import configure

    configure()  # mlflow.set_tracking_uri() from an earlier test would otherwise win over the env var
    yield mlflow_store


@pytest.fixture(autouse=True)
def fresh_accelerate_state() -> Iterator[None]:
    """Each test starts without accelerate's process-wide state (a real run is one process with one precision)."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
