"""`dvc repro` of a tiny profile in a temp copy of the repository: the real stages, entry points and registry."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from project import place_packages
from xstilts.encoder.weights import EMBEDDINGS_FILE

REPO = Path(__file__).resolve().parents[1]
TINY_DATA = {
    "sst2": {"train_size": 24, "dev_size": 12, "test_size": 12},
    "socialiqa": {"train_size": 24, "dev_size": 12, "test_size": 12},
    "brown_pos": {"train_size": 24, "dev_size": 12, "test_size": 12},  # the English training data of pos_tr
    "pos_tr": {"dev_size": 10, "test_size": 10},  # 20 rows over dev and test: the least a task expects (min_rows)
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


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _snapshot(root: Path) -> dict[str, bytes]:
    """The bytes of dvc.lock and of every metrics file, validation report, data card and predictions file."""
    folders = ("metrics", "reports/validation", "data/cards", "predictions", "reports/study")
    files = [root / "dvc.lock", root / "reports/study.json", root / "reports/study.md"]
    files += [p for f in folders for p in sorted((root / f).rglob("*")) if p.is_file()]
    files += sorted((root / "tuning").glob("*.yaml"))
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _listed(status: str) -> set[str]:
    """The stages that `dvc status` reports as changed (lines `name:` at the start)."""
    return {line[:-1] for line in status.splitlines() if line.endswith(":") and not line.startswith((" ", "\t"))}


def _run_notebook(root: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    """``notebooks/compare_runs.ipynb`` run top to bottom in ``root/notebooks``, on the store ``env`` names."""
    nb = nbformat.read(root / "notebooks" / "compare_runs.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook with outputs cleared"
    folder = {"metadata": {"path": str(root / "notebooks")}}  # the kernel's working folder
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources=folder)
    client.execute(env=env)  # a cell that raises fails here, with its traceback
    return nb


def _outputs(nb: nbformat.NotebookNode, tag: str, kind: str) -> list[str]:
    """The ``kind`` (a MIME type) outputs of the one cell tagged ``tag``."""
    (cell,) = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    return [o["data"][kind] for o in cell.outputs if kind in o.get("data", {})]


@pytest.mark.slow
def test_dvc_repro_tiny_profile(tmp_path, tiny_encoder_dir):
    root = tmp_path / "repo"
    root.mkdir()
    _copy_repo(root)
    place_packages(root, list(TINY_DATA))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["name"] = str(tiny_encoder_dir)
    params["data"].update(TINY_DATA, tasks=list(TINY_DATA))
    for stage in ("intermediate", "target"):
        params[stage].update({"batch_size": 8, "eval_every": 2, "max_length": 32, "precision": "fp32", "per_task": {}})
    design = ["sst2", "socialiqa", "both"]  # the study: group `both` against each member alone and none
    params["intermediate"].update(tasks=design, groups={"both": design[:2]}, per_task={"sst2": {"lr": 1e-3}})
    params["tune"].update(tasks=design, n_trials=2, evaluations=2, train_rows=16, dev_rows=8)
    params["target"].update(tasks=["pos_tr"], inits=["none", *design])
    params["retrieve"].update(tasks=["udhr"], encoders=["none", *design], layers=[1])
    params["study"] = {"group": "both", "resamples": 1000}

    def write_params() -> None:
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    write_params()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",
    }
    for var in ("XSTILTS_ROOT", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        env.pop(var, None)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), cwd=root, env=env, capture_output=True, text=True)
        assert (proc.returncode == 0) == ok, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    def dvc(*args: str) -> str:
        return run("dvc", *args).stdout

    # a stale dvc.yaml (written for the repository's params) stops the first stage with one sentence
    failed = run("dvc", "repro", "fetch", ok=False)
    assert "dvc.yaml is out of date with params.yaml; run `xstilts pipeline`" in failed.stdout + failed.stderr
    run(sys.executable, "-m", "xstilts", "pipeline")
    first = dvc("repro")
    assert {"prepare-udhr", "validate-udhr", "tune-sst2", "intermediate-both", "promote", "report"} <= _ran(first)
    study = json.loads((root / "reports/study.json").read_text())
    assert set(study["targets"]) == {"pos_tr", "udhr"} and study["design"]["inits"] == ["none", *design]
    # the learning gate: each member alone and each head of the group, on its own test split
    assert [(r["model"], r["task"]) for r in study["gate"]] == [
        ("sst2", "sst2"), ("socialiqa", "socialiqa"), ("both", "sst2"), ("both", "socialiqa")
    ]  # fmt: skip
    assert {t["verdict"]["answer"] for t in study["targets"].values()} == {"not assessed (1 seed)"}  # one seed
    assert study["targets"]["pos_tr"]["primary"]["kind"] == "level"  # one domain: the group against every member
    assert set(study["retrieval_layers"]["udhr"]["both"]) == {"1", "-1"}
    text = (root / "reports/study.md").read_text()
    assert text.index("## Did phase 2 learn?") < text.index("## The answer")
    plots = sorted(p.name for p in (root / "reports/study").glob("*.png"))
    assert {"group_vs_best.png", "retrieval_by_layer.png"} <= set(plots)
    # the notebook, on this run's store: the report's main table, its figure and answer, per-language scores
    nb = _run_notebook(root, env)
    compared = [
        n for n, t in study["targets"].items() if any(c["role"] == "group vs best member" for c in t["comparisons"])
    ]
    (table,) = _outputs(nb, "main-table", "text/plain")
    assert compared and all(name in table for name in compared) and "both - best" in table
    assert _outputs(nb, "figure", "image/png") and _outputs(nb, "plot", "image/png")
    assert _outputs(nb, "answer", "text/markdown")[0] == "\n\n".join(study["answer"])
    per_language = "".join(_outputs(nb, "per-language", "text/plain"))
    assert all(init in per_language for init in ["none", *design]) and "zeroshot" in per_language
    rendered = run("dvc", "plots", "show", "-o", str(tmp_path / "plots")).stdout
    assert "index.html" in rendered and "group_vs_best.png" in (tmp_path / "plots/index.html").read_text()
    tuned = yaml.safe_load((root / "tuning/sst2.yaml").read_text())
    assert tuned["trials"]["COMPLETE"] + tuned["trials"]["PRUNED"] == 2 and tuned["untuned"]["lr"] == 1e-3
    metrics = json.loads(dvc("metrics", "show", "--json"))
    values = next(iter(metrics.values()))["data"]
    target = values["metrics/target/pos_tr-sst2.json"]["data"]
    for key in ("test_accuracy_tr", "dev_accuracy_tr", "dev_accuracy_zeroshot"):
        assert 0.0 <= target[key] <= 1.0, key
    assert target["dev_accuracy_zeroshot"] == pytest.approx(target["dev_accuracy_tr"])
    assert "wall_seconds" not in target  # timings live in MLflow: the metrics file is the same on a rerun
    assert "Data and pipelines are up to date" in dvc("status")
    outputs = _snapshot(root)
    assert _ran(dvc("repro")) == set()
    assert _snapshot(root) == outputs  # a second repro writes nothing

    # every model holds its frozen embedding matrix as one file, stored once (hard links to DVC's cache)
    models = ("intermediate/sst2", "target/brown_pos-none", "target/brown_pos-sst2")
    assert len({(root / "models" / m / "encoder" / EMBEDDINGS_FILE).stat().st_ino for m in models}) == 1
    # MLflow: a copy per registered champion only (pos_tr's; udhr's too when an intermediate encoder wins)
    assert len(list((root / "mlruns").rglob(EMBEDDINGS_FILE))) in (1, 2)

    # (a) validating the same data again writes byte-identical outputs
    assert _ran(dvc("repro", "-f", "-s", "validate-udhr")) == {"validate-udhr"}
    assert "Data and pipelines are up to date" in dvc("status")
    assert _snapshot(root) == outputs

    # (b) one retrieval task's languages: only its own stages (and the registry step: udhr has a champion)
    params["data"]["udhr"]["languages"] = ["de"]
    write_params()
    assert _listed(dvc("status")) == {"prepare-udhr", "validate-udhr"}  # validate expects data.udhr.languages
    retrieves = {f"retrieve-udhr-{e}" for e in ["none", *design]}
    assert _ran(dvc("repro")) == {"prepare-udhr", "validate-udhr", *retrieves, "promote", "report"}

    # (c) one intermediate task's setting: that intermediate and what starts from it (and the registry step)
    params["intermediate"]["per_task"]["sst2"]["lr"] = 2e-3
    write_params()
    assert _listed(dvc("status")) == {"tune-sst2", "intermediate-sst2"}  # trial 0 is that setting
    downstream = {"target-brown_pos-sst2", "retrieve-udhr-sst2", "promote", "report"}
    assert _ran(dvc("repro")) == {"tune-sst2", "intermediate-sst2", *downstream}
    assert "Data and pipelines are up to date" in dvc("status")

    # docs/pipeline.md's way of running one phase by hand
    by_hand = run(
        "mlflow", "run", ".", "-e", "retrieve", "-P", "task=udhr", "-P", "encoder=sst2",
        "--env-manager", "local", "--experiment-name", "xstilts",
    )  # fmt: skip
    assert "succeeded" in by_hand.stderr
    champions = run(sys.executable, "-m", "xstilts", "champions").stdout
    assert "pos_tr" in champions
