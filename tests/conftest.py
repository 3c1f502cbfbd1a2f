"""Shared fixtures: a tiny encoder, and an isolated project root with its own MLflow store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


def _postgres_binary(name: str) -> str | None:
    import glob
    import shutil

    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@contextmanager
def postgres_server(databases: tuple[str, ...] = ("optuna",), port: int = 54329) -> Iterator[str]:
    """A throwaway PostgreSQL server on a Unix socket (Debian's postgresql, run as its postgres user), with
    ``databases``; yields the URL of the first (the others: the same URL with their name)."""
    import pwd
    import shutil
    import tempfile

    tools = {n: _postgres_binary(n) for n in ("initdb", "pg_ctl", "createdb")}
    if None in tools.values() or shutil.which("runuser") is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) here: `apt-get install postgresql` to run this")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to run the server as (`apt-get install postgresql` creates it)")
    folder = Path(tempfile.mkdtemp(prefix="xstilts-pg-"))
    shutil.chown(folder, "postgres")
    data, as_postgres = folder / "data", ["runuser", "-u", "postgres", "--"]
    port = str(port)
    options = f"-p {port} -k {folder} -c listen_addresses=''"
    start = [*as_postgres, tools["pg_ctl"], "-D", str(data), "-o", options, "-w", "-l", str(folder / "log"), "start"]
    try:
        for command in ([*as_postgres, tools["initdb"], "-D", str(data), "-A", "trust"], start):
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        said = (getattr(exc, "stderr", "") or "").strip().splitlines()
        pytest.skip(f"a PostgreSQL server could not be started here ({said[-1] if said else exc})")
    try:
        for name in databases:
            subprocess.run([*as_postgres, tools["createdb"], "-h", str(folder), "-p", port, name], check=True)
        yield f"postgresql://postgres@/{databases[0]}?host={folder}&port={port}"
    finally:
        subprocess.run([*as_postgres, tools["pg_ctl"], "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url
