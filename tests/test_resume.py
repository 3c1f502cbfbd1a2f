"""Resume: atomic checkpoints, and a run killed mid-training ends exactly like an uninterrupted one."""

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
from transformers import AutoTokenizer

from test_multitask import cfg, no_dropout_model, task_data
from xstilts.training import checkpoint
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


def test_a_crashed_loop_resumes_to_the_same_weights(tiny_encoder_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    settings = cfg(batch_size=4, epochs=3, eval_every=2, patience=2)

    def run(folder, crash_at=None):
        model = no_dropout_model(tiny_encoder_dir, {"x": ("a", "b"), "y": ("p", "q")})
        evals = []

        def on_step(step, loss):
            if step == crash_at:
                raise Crash

        result = train_tasks(
            model,
            [task_data(tokenizer, "x", 16, 1), task_data(tokenizer, "y", 8, 2, ("p", "q"))],
            settings,
            seed=4,
            on_step=on_step,
            on_eval=lambda step, values: evals.append((step, values)),
            checkpoint_dir=folder,
        )
        return result, evals, torch.cat([p.detach().flatten() for p in model.parameters()])

    plain, plain_evals, plain_weights = run(None)
    with pytest.raises(Crash):
        run(tmp_path / "ck", crash_at=5)
    assert checkpoint.latest(tmp_path / "ck").name == "step-00000004"
    resumed, resumed_evals, resumed_weights = run(tmp_path / "ck")
    assert resumed.resumed_from == 4
    assert (resumed.best_step, resumed.steps, resumed.best_score, resumed.stopped_early) == (
        plain.best_step,
        plain.steps,
        plain.best_score,
        plain.stopped_early,
    )
    assert resumed.train_tokens == plain.train_tokens
    assert resumed_evals == [e for e in plain_evals if e[0] > 4]
    assert torch.equal(resumed_weights, plain_weights)


def _command(project: Path, store: str) -> tuple[list[str], dict]:
    env = {**os.environ, "XSTILTS_ROOT": str(project), "MLFLOW_TRACKING_URI": store}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.pop("MLFLOW_RUN_ID", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    return [sys.executable, "-m", "xstilts", "intermediate", "--task", "vitaminc"], env


def _metrics(project: Path) -> dict:
    values = json.loads((project / "metrics/intermediate/vitaminc.json").read_text())
    return {k: v for k, v in values.items() if k not in NOT_COMPARED}


@pytest.mark.slow
def test_sigkill_mid_training_then_the_same_command_resumes(project, mlflow_store):
    """The CLI run is SIGKILLed once its first checkpoint exists; rerun, it must end with the same metrics."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["intermediate"].update(epochs=30, eval_every=5, patience=1000)  # 90 steps, a checkpoint every 5
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    command, env = _command(project, mlflow_store)
    subprocess.run(command, env=env, cwd=project, check=True, capture_output=True, text=True)
    uninterrupted = _metrics(project)
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
    assert 0 < killed_at < 90
    assert not (project / "metrics/intermediate/vitaminc.json").exists()

    again = subprocess.run(command, env=env, cwd=project, check=True, capture_output=True, text=True)
    assert "resuming from the checkpoint of step" in again.stdout
    assert _metrics(project) == pytest.approx(uninterrupted, abs=1e-6)
    assert not folder.exists(), "the finished run deletes its checkpoints"
    mlflow.set_tracking_uri(mlflow_store)
    run = mlflow.MlflowClient().get_run(killed_run)
    assert run.info.status == "FINISHED" and int(run.data.tags["resumed_from_step"]) >= killed_at
