"""Resume: atomic checkpoints; a run crashed or SIGKILLed mid-training ends exactly like an uninterrupted one
(dropout on, scored on rows it never trained on, embeddings full or trimmed); a changed seed, setting or data
starts fresh. DDP resume is in test_ddp.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoTokenizer

from project import _classification, override, write_task
from test_multitask import cfg, dropout_model, task_data
from tiny import CORPUS
from xstilts.families import Family
from xstilts.paths import repo_root as project_root
from xstilts.pipeline.phases import run_intermediate
from xstilts.training import checkpoint, loop
from xstilts.training.loop import train_tasks

SRC = Path(__file__).resolve().parents[1] / "src"
NOT_COMPARED = {"wall_seconds", "train_tokens_per_second"}  # timings differ between any two runs


def test_checkpoint_write_is_atomic_and_keeps_the_newest(tmp_path):
    folder = tmp_path / "ck"
    checkpoint.write(folder, 3, {"state.pt": {"step": 3}})
    checkpoint.write(folder, 6, {"state.pt": {"step": 6}})
    (folder / f"{checkpoint.TMP_PREFIX}{checkpoint.STEP_PREFIX}00000009").mkdir()  # what a kill mid-write leaves
    assert [p.name for p in checkpoint.step_dirs(folder)] == ["step-00000006"]
    assert checkpoint.read(checkpoint.latest(folder), "state.pt") == {"step": 6}
    checkpoint.clean_temporary(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["step-00000006"]
    (checkpoint.latest(folder) / "state.pt").write_bytes(b"half")
    with pytest.raises(Exception, match="cannot be read.*delete"):
        checkpoint.read(checkpoint.latest(folder), "state.pt")


def test_a_changed_config_or_input_gets_another_key(tmp_path):
    data = tmp_path / "train.parquet"
    data.write_bytes(b"rows")
    key = checkpoint.config_hash({"lr": 1e-3}, [tmp_path])
    assert key == checkpoint.config_hash({"lr": 1e-3}, [tmp_path])
    assert key != checkpoint.config_hash({"lr": 2e-3}, [tmp_path])
    data.write_bytes(b"more rows")
    assert key != checkpoint.config_hash({"lr": 1e-3}, [tmp_path])


class Crash(Exception):
    pass


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_crashed_loop_resumes_to_the_same_losses_and_weights(tiny_encoder_dir, tmp_path):
    """Dropout on, so the resumed run must restore every RNG to redraw the same masks; dev rows are not train rows.

    Every optimizer step's loss after the crash, every evaluation and every final weight equal the
    uninterrupted run's exactly."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    settings = cfg(batch_size=4, epochs=3, eval_every=2, patience=100)
    data = [task_data(tokenizer, "x", 16, 1), task_data(tokenizer, "y", 8, 2, ("p", "q"))]
    train_rows = {tuple(r) for d in data for r in d.train["input_ids"]}
    assert not train_rows & {tuple(r) for d in data for r in d.dev["input_ids"]}

    def run(folder, crash_at=None):
        model = dropout_model(tiny_encoder_dir, {"x": ("a", "b"), "y": ("p", "q")})
        losses, evals = {}, []

        def on_step(step, loss):
            if step == crash_at:
                raise Crash
            losses[step] = loss

        result = train_tasks(
            model,
            data,
            settings,
            seed=4,
            on_step=on_step,
            on_eval=lambda step, values: evals.append((step, values)),
            checkpoint_dir=folder,
        )
        return result, losses, evals, _weights(model)

    plain, plain_losses, plain_evals, plain_weights = run(None)
    assert len(set(plain_losses.values())) == len(plain_losses) == plain.steps == 18
    with pytest.raises(Crash):
        run(tmp_path / "ck", crash_at=5)
    assert checkpoint.latest(tmp_path / "ck").name == "step-00000004"
    resumed, resumed_losses, resumed_evals, resumed_weights = run(tmp_path / "ck")
    assert resumed.resumed_from == 4
    assert resumed_losses == {s: v for s, v in plain_losses.items() if s > 4}
    assert resumed_evals == [e for e in plain_evals if e[0] > 4]
    assert (resumed.best_step, resumed.steps, resumed.best_score, resumed.train_tokens) == (
        plain.best_step,
        plain.steps,
        plain.best_score,
        plain.train_tokens,
    )
    assert _equal(resumed_weights, plain_weights)


PAIRS = [(a, b) for a in range(6) for b in range(6) if a != b]  # sentence indices in tiny.CORPUS (English)
NLI = ("entailment", "neutral", "contradiction")


def write_unseen_dev_vitaminc(root: Path, train_pairs: int = 16) -> None:
    """vitaminc with ``train_pairs`` training pairs and dev/test pairs that appear nowhere in train."""
    rows = [_classification(i, CORPUS[a], NLI[(a * 7 + b) % 3], text_b=CORPUS[b]) for i, (a, b) in enumerate(PAIRS)]
    train, evaluation = rows[:train_pairs], rows[train_pairs:]
    assert not {(r["text_a"], r["text_b"]) for r in train} & {(r["text_a"], r["text_b"]) for r in evaluation}
    write_task(root, "vitaminc", Family.CLASSIFICATION, {"train": train, "dev": evaluation, "test": evaluation})


def _set_params(project: Path, **changes) -> None:
    """Change ``params.yaml``: ``seed=14`` or ``intermediate__lr=2e-3``."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / "params.yaml").write_text(yaml.safe_dump(override(params, **changes)))


def _model_weights(project: Path) -> dict[str, torch.Tensor]:
    folder = project / "models/intermediate/vitaminc"
    return {
        f"{p.relative_to(folder)}:{k}": v
        for p in sorted(folder.rglob("*.safetensors"))
        for k, v in load_file(p).items()
    }


def _comparable(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k not in NOT_COMPARED}


def _train_losses() -> dict[int, float]:
    """The last run's logged training losses by step (the mean since the previous evaluation, so every step's
    dropout masks count): the saved weights alone are the best evaluation's, which may precede the crash."""
    history = mlflow.MlflowClient().get_metric_history(mlflow.last_active_run().info.run_id, "vitaminc_train_loss")
    return {m.step: m.value for m in history}


def _crash_after_first_checkpoint(monkeypatch) -> None:
    """Run ``intermediate vitaminc`` until its first checkpoint (step 2) is written, then fail it."""
    real = loop._Loop.save

    def save_then_crash(self):
        real(self)
        raise Crash

    monkeypatch.setattr(loop._Loop, "save", save_then_crash)
    with pytest.raises(Crash):
        run_intermediate("vitaminc")
    monkeypatch.setattr(loop._Loop, "save", real)
    [key_dir] = (project_root() / "checkpoints/intermediate/vitaminc").iterdir()
    assert checkpoint.latest(key_dir).name == "step-00000002"


@pytest.mark.parametrize("trim", [False, True], ids=["full-embeddings", "trimmed-embeddings"])
def test_a_crashed_phase_run_resumes_to_the_uninterrupted_result(project, monkeypatch, capsys, trim):
    """``intermediate`` from the tiny encoder (dropout on), 12 steps, a checkpoint every 2; scored on unseen rows.
    With ``trim_embeddings`` the checkpoint holds the trimmed matrix, which the rerun must trim the same way."""
    write_unseen_dev_vitaminc(project)
    _set_params(project, intermediate__epochs=3, intermediate__patience=100, intermediate__trim_embeddings=trim)
    plain = _comparable(run_intermediate("vitaminc"))
    plain_weights, plain_losses = _model_weights(project), _train_losses()
    assert plain["train_steps"] == 12 and "test_accuracy_en" in plain
    _crash_after_first_checkpoint(monkeypatch)
    capsys.readouterr()
    resumed = _comparable(run_intermediate("vitaminc"))
    assert "resuming from the checkpoint of step 2" in capsys.readouterr().out
    assert _train_losses() == {s: v for s, v in plain_losses.items() if s > 2}
    assert resumed == plain
    assert _equal(_model_weights(project), plain_weights)


@pytest.mark.parametrize("change", ["seed", "setting", "data"])
def test_a_changed_seed_setting_or_data_does_not_resume(project, monkeypatch, capsys, change):
    """A kill, then a change, then the same command: the run starts fresh and ends as an uninterrupted run of
    the changed configuration does (the crashed run's checkpoint belongs to the old one)."""
    write_unseen_dev_vitaminc(project)
    _set_params(project, intermediate__epochs=3, intermediate__patience=100)
    _crash_after_first_checkpoint(monkeypatch)
    if change == "seed":
        _set_params(project, seed=14)
    elif change == "setting":
        _set_params(project, intermediate__lr=2e-3)
    else:
        write_unseen_dev_vitaminc(project, train_pairs=15)  # one training row fewer; validation report renewed
    capsys.readouterr()
    after_change = _comparable(run_intermediate("vitaminc"))
    assert "resuming" not in capsys.readouterr().out
    fresh = _comparable(run_intermediate("vitaminc"))  # nothing to resume: the finished run removed its checkpoint
    assert after_change == fresh


def _command(project: Path, store: str) -> tuple[list[str], dict]:
    env = {**os.environ, "XSTILTS_ROOT": str(project), "MLFLOW_TRACKING_URI": store}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.pop("MLFLOW_RUN_ID", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    return [sys.executable, "-m", "xstilts", "intermediate", "--task", "vitaminc"], env


def _metrics(project: Path) -> dict:
    values = json.loads((project / "metrics/intermediate/vitaminc.json").read_text())
    return {k: v for k, v in values.items() if k not in NOT_COMPARED}


def _history(store: str, run_id: str) -> set[tuple[int, float]]:
    mlflow.set_tracking_uri(store)
    return {(m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, "vitaminc_train_loss")}


@pytest.mark.slow
def test_sigkill_mid_training_then_the_same_command_resumes(project, mlflow_store):
    """The CLI run (dropout on; dev and test rows unseen in training) is SIGKILLed once a checkpoint exists; the
    same command then resumes into the same MLflow run and ends with the uninterrupted run's losses at every
    step (steps the killed attempt logged after its last checkpoint included: replayed, they must repeat),
    metrics and weights, exactly."""
    write_unseen_dev_vitaminc(project)
    _set_params(project, intermediate__epochs=10, intermediate__eval_every=1, intermediate__patience=1000)
    command, env = _command(project, mlflow_store)
    subprocess.run(command, env=env, cwd=project, check=True, capture_output=True, text=True)
    uninterrupted, uninterrupted_weights = _metrics(project), _model_weights(project)
    assert uninterrupted["train_steps"] == 40
    mlflow.set_tracking_uri(mlflow_store)
    [plain_run] = mlflow.search_runs(search_all_experiments=True, output_format="list")
    plain_losses = _history(mlflow_store, plain_run.info.run_id)
    assert len(plain_losses) == 40
    (project / "metrics/intermediate/vitaminc.json").unlink()

    folder = project / "checkpoints/intermediate/vitaminc"
    process = subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(folder.glob("*/step-*")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    [key_dir] = folder.iterdir()
    killed_run = checkpoint.read_run_id(key_dir)
    killed_at = int(checkpoint.latest(key_dir).name.removeprefix(checkpoint.STEP_PREFIX))
    assert 0 < killed_at < 40
    assert not (project / "metrics/intermediate/vitaminc.json").exists()

    again = subprocess.run(command, env=env, cwd=project, check=True, capture_output=True, text=True)
    assert f"resuming from the checkpoint of step {killed_at}" in again.stdout
    assert _metrics(project) == uninterrupted
    assert _equal(_model_weights(project), uninterrupted_weights)
    assert _history(mlflow_store, killed_run) == plain_losses
    assert not folder.exists(), "the finished run deletes its checkpoints"
    run = mlflow.MlflowClient().get_run(killed_run)
    assert run.info.status == "FINISHED" and int(run.data.tags["resumed_from_step"]) == killed_at


def test_how_often_a_run_evaluates_does_not_change_its_training(tiny_encoder_dir):
    """Evaluation leaves the RNG as it found it: evaluating every step or every 3 gives the same per-step losses
    (dropout on), so a tuning trial with ``evaluations`` trains exactly like phase 2 with ``eval_every``."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    data = [task_data(tokenizer, "x", 16, 1), task_data(tokenizer, "y", 8, 2, ("p", "q"))]
    runs = []
    for every in (1, 3):
        losses = {}
        model = dropout_model(tiny_encoder_dir, {"x": ("a", "b"), "y": ("p", "q")})
        train_tasks(model, data, cfg(batch_size=4, epochs=2, eval_every=every, patience=100), seed=4,
                    on_step=losses.__setitem__)  # fmt: skip
        runs.append(losses)
    assert len(runs[0]) == 12 and runs[0] == runs[1]
