"""DDP: the training loop on 2 CPU processes (``accelerate launch``, gloo backend) matches one process.

Run as a script, this file is the worker: ``test_ddp.py <encoder dir> <batch size> <optimizer> <out.json>
<checkpoints>`` (optimizer ``adamw``, the loop's own, or ``sgd``: plain SGD, whose step scales with the gradient).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
TOLERANCE = 1e-4


SGD_LR = 0.05


def worker(encoder_dir: str, batch_size: int, optimizer: str, out: Path, checkpoints: Path) -> None:
    """Two tasks (so DDP meets heads without gradients), 2 evaluations, checkpoints on; the main process reports."""
    import torch
    from accelerate import PartialState
    from transformers import AutoTokenizer

    if optimizer == "sgd":  # AdamW's step does not depend on the gradient's scale; SGD's does
        torch.optim.AdamW = lambda params, lr, weight_decay: torch.optim.SGD(params, lr=SGD_LR)

    from test_multitask import cfg, no_dropout_model, task_data
    from xstilts.training import checkpoint
    from xstilts.training.loop import train_tasks
    from xstilts.training.sampling import SamplingConfig

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    model = no_dropout_model(encoder_dir, {"x": ("a", "b"), "y": ("p", "q")})
    initial = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
    evals = []
    result = train_tasks(
        model,
        [task_data(tokenizer, "x", 32, 1), task_data(tokenizer, "y", 16, 2, ("p", "q"))],
        cfg(batch_size=batch_size, epochs=2, eval_every=3),
        seed=11,
        sampling=SamplingConfig("uniform"),
        on_eval=lambda step, values: evals.append([step, values]),
        checkpoint_dir=checkpoints,
    )
    state = PartialState()
    if state.is_main_process:
        rng = checkpoint.read(checkpoint.latest(checkpoints), "rng.pt")
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        report = {
            "processes": state.num_processes,
            "checkpoint_processes": len(rng),
            "steps": result.steps,
            "best_step": result.best_step,
            "best_score": result.best_score,
            "dev_scores": result.dev_scores,
            "evals": evals,
            "weights": weights.tolist(),
            "initial": initial,
        }
        out.write_text(json.dumps(report))


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    env.update(OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1")
    return env


def _launch(args: list[str], tmp_path: Path, name: str, processes: int) -> dict:
    out, checkpoints = tmp_path / f"{name}.json", tmp_path / f"ck-{name}"
    script = [str(Path(__file__).resolve()), *args, str(out), str(checkpoints)]
    if processes == 1:
        command = [sys.executable, *script]
    else:
        accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
        assert accelerate, "accelerate's launcher is not installed next to this Python"
        # torchrun-style processes (--multi_gpu) that ACCELERATE_USE_CPU puts on the CPU with the gloo backend
        launcher = ["--multi_gpu", "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no"]
        command = [accelerate, "launch", *launcher, "--dynamo_backend", "no", *script]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_effective_batch(tiny_encoder_dir, tmp_path):
    """2 processes x batch 4 against 1 process x batch 8 (dropout off, rows of equal length, 2 tasks).

    Each optimizer step sees the same 8 rows either way and DDP averages the two halves' gradients, which is
    the mean over 8 rows; only the order of float sums differs. Tolerance: train losses, dev scores and every
    weight agree within 1e-4 (absolute).
    """
    two = _launch([str(tiny_encoder_dir), "4", "adamw"], tmp_path, "two", 2)
    one = _launch([str(tiny_encoder_dir), "8", "adamw"], tmp_path, "one", 1)
    assert (two["processes"], two["checkpoint_processes"], one["processes"]) == (2, 2, 1)
    assert two["steps"] == one["steps"] == 2 * (4 + 2)
    assert [e[0] for e in two["evals"]] == [e[0] for e in one["evals"]] == [3, 6, 9, 12]
    for (_, a), (_, b) in zip(two["evals"], one["evals"], strict=True):
        assert a.keys() == b.keys()
        assert all(a[k] == pytest.approx(b[k], abs=TOLERANCE) for k in a)
    assert two["best_step"] == one["best_step"]
    assert two["dev_scores"] == pytest.approx(one["dev_scores"], abs=TOLERANCE)
    assert two["weights"] == pytest.approx(one["weights"], abs=TOLERANCE)


@pytest.mark.slow
def test_two_processes_average_their_gradients(tiny_encoder_dir, tmp_path):
    """With SGD the step is lr x gradient, so summing the two processes' gradients instead of averaging them
    would double every update; the weights after 12 steps match one process with the same effective batch."""
    import numpy as np

    two = _launch([str(tiny_encoder_dir), "4", "sgd"], tmp_path, "two-sgd", 2)
    one = _launch([str(tiny_encoder_dir), "8", "sgd"], tmp_path, "one-sgd", 1)
    moved = np.abs(np.asarray(one["weights"]) - np.asarray(one["initial"])).max()
    assert moved > 100 * TOLERANCE  # a doubled update would be far outside the tolerance below
    assert two["weights"] == pytest.approx(one["weights"], abs=TOLERANCE)


if __name__ == "__main__":
    sys.path[:0] = [str(SRC), str(TESTS)]
    worker(sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))
