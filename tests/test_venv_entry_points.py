"""`.venv/bin/mlflow run` and `.venv/bin/dvc repro` run the venv's Python without `source .venv/bin/activate`.

``make setup`` installs ``xstilts-venv-path.pth``, which puts the venv's bin folder first on PATH for every process
the venv's interpreter starts. Each test runs with a PATH that lacks the venv (as a shell without activation has).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mlflow
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PTH = "xstilts-venv-path.pth"
BARE_PATH = os.pathsep.join(["/usr/bin", "/bin"])  # no venv on it


@pytest.fixture(scope="module")
def venv_bin() -> Path:
    """The bin folder of the venv running the tests, with this checkout's PATH hook installed."""
    if sys.prefix == sys.base_prefix:
        pytest.fail("run the tests with the project's venv (`make test` or .venv/bin/python -m pytest)")
    installed = Path(sysconfig.get_path("purelib")) / PTH
    if not installed.is_file() or installed.read_text() != (REPO / PTH).read_text():
        pytest.fail(f"{installed} is missing or stale; run `make setup`")
    return Path(sys.prefix) / "bin"


def _bare_env(**extra: str) -> dict[str, str]:
    """The test's environment without the venv on PATH (and without any run MLflow set for this process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "VIRTUAL_ENV")}
    return {**env, "PATH": BARE_PATH, "HF_HUB_OFFLINE": "1", **extra}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_a_shell_outside_the_venv_has_no_python_that_imports_xstilts(tmp_path):
    # the situation the hook fixes: a shell started outside the venv
    proc = subprocess.run(["bash", "-c", "python -c 'import xstilts'"], cwd=tmp_path, env=_bare_env())
    assert proc.returncode != 0


def test_the_venvs_python_puts_its_bin_folder_first_once(venv_bin, tmp_path):
    # PATH as the venv's Python sees it, what `python` is in a shell it starts, and PATH in that python
    chain = "command -v python; python -c 'import os; print(os.environ[\"PATH\"])'"
    show = f"import os, subprocess; print(os.environ['PATH']); subprocess.run(['bash', '-c', {chain!r}])"
    sep, bin_ = os.pathsep, str(venv_bin)
    expected = {
        BARE_PATH: f"{bin_}{sep}{BARE_PATH}",
        f"/usr/bin{sep}{bin_}{sep}/bin": f"{bin_}{sep}/usr/bin{sep}{bin_}{sep}/bin",  # first, as activation does
        f"{bin_}{sep}{BARE_PATH}": f"{bin_}{sep}{BARE_PATH}",  # already first: left as it is
    }
    for path, seen in expected.items():
        out = _run([str(venv_bin / "python"), "-c", show], tmp_path, _bare_env(PATH=path)).stdout
        assert out.splitlines() == [seen, str(venv_bin / "python"), seen]  # nested processes do not grow PATH


def test_mlflow_run_of_an_entry_point_without_activation(venv_bin, project, mlflow_store):
    shutil.copy(REPO / "MLproject", project / "MLproject")
    args = ["-e", "retrieve", "-P", "task=udhr", "-P", "encoder=none", "--env-manager", "local"]
    env = _bare_env(MLFLOW_TRACKING_URI=mlflow_store, XSTILTS_ROOT=str(project))
    proc = _run([str(venv_bin / "mlflow"), "run", ".", *args, "--experiment-name", "xstilts"], project, env)
    assert "succeeded" in proc.stderr
    (run,) = mlflow.search_runs(experiment_names=["xstilts"], output_format="list")
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.backend"] == "local"
    assert run.data.tags["phase"] == "retrieve" and "test_accuracy_zeroshot" in run.data.metrics
    assert (project / "metrics/retrieve/udhr-none.json").is_file()


def test_dvc_repro_without_activation_runs_the_venvs_python(venv_bin, tmp_path):
    # a stage command as xstilts pipeline writes them: `python -m ...`, resolved on DVC's PATH
    where = "python -c 'import sys, xstilts; print(sys.prefix)' > prefix.txt"
    stage = {"cmd": where, "outs": [{"prefix.txt": {"cache": False}}]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"where": stage}}))
    env = _bare_env(DVC_NO_ANALYTICS="1")
    _run([str(venv_bin / "dvc"), "init", "--no-scm", "-q"], tmp_path, env)
    proc = _run([str(venv_bin / "dvc"), "repro"], tmp_path, env)
    assert "Running stage 'where'" in proc.stdout
    assert (tmp_path / "prefix.txt").read_text().strip() == sys.prefix
