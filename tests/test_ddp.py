"""DDP: the training loop on 2 CPU processes (``accelerate launch``, gloo backend) matches one process.

Run as a script, this file is the worker: ``test_ddp.py <encoder dir> <batch size> <optimizer> <dropout> <crash at>
<out.json> <checkpoints>`` (optimizer ``adamw``, the loop's own, or ``sgd``: plain SGD, whose step scales with the
gradient; dropout ``0`` or ``1``; crash at: the step whose checkpoint every process dies right after, 0 for none).
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


KILLED = 137  # the exit status a SIGKILLed process reports to its launcher


def worker(
    encoder_dir: str, batch_size: int, optimizer: str, dropout: bool, crash_at: int, out: Path, checkpoints: Path
) -> None:
    """Two tasks (so DDP meets heads without gradients), 4 evaluations, checkpoints on; the main process reports."""
    import torch
    from accelerate import PartialState
    from transformers import AutoTokenizer

    if optimizer == "sgd":  # AdamW's step does not depend on the gradient's scale; SGD's does
        torch.optim.AdamW = lambda params, lr, weight_decay: torch.optim.SGD(params, lr=SGD_LR)

    from test_multitask import cfg, dropout_model, no_dropout_model, task_data
    from xstilts.training import checkpoint, loop
    from xstilts.training.loop import train_tasks
    from xstilts.training.sampling import SamplingConfig

    if crash_at:
        real_save = loop._Loop.save

        def save_then_die(self) -> None:
            real_save(self)
            if self.step == crash_at:
                os._exit(KILLED)  # every process, right after the checkpoint: what a kill of the job leaves

        loop._Loop.save = save_then_die
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    model = (dropout_model if dropout else no_dropout_model)(encoder_dir, {"x": ("a", "b"), "y": ("p", "q")})
    initial = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
    evals, losses = [], {}
    result = train_tasks(
        model,
        [task_data(tokenizer, "x", 32, 1), task_data(tokenizer, "y", 16, 2, ("p", "q"))],
        cfg(batch_size=batch_size, epochs=2, eval_every=3),
        seed=11,
        sampling=SamplingConfig("uniform"),
        on_eval=lambda step, values: evals.append([step, values]),
        on_step=losses.__setitem__,
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
            "losses": {str(k): v for k, v in losses.items()},
            "resumed_from": result.resumed_from,
            "weights": weights.tolist(),
            "initial": initial,
        }
        out.write_text(json.dumps(report))


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    env.update(OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1")
    return env


def _launch(args: list[str], tmp_path: Path, name: str, processes: int, killed: bool = False) -> dict:
    """Run the worker with ``args`` (encoder, batch size, optimizer[, dropout, crash at]); its report.
    ``killed``: the run must die at its crash step (it leaves checkpoints under ``ck-<name>``, no report)."""
    args = [*args, "0", "0"][:5]
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
    if killed:
        assert done.returncode != 0 and not out.exists(), "the run was meant to die at its crash step"
        return {}
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


@pytest.mark.slow
def test_two_processes_resume_to_the_uninterrupted_result(tiny_encoder_dir, tmp_path):
    """2 gloo processes with dropout on both die right after the checkpoint of step 6 (of 12); the same launch
    resumes, each process from its own saved RNG state, and ends with the uninterrupted 2-process run's
    per-step losses, evaluations and weights, exactly."""
    plain = _launch([str(tiny_encoder_dir), "4", "adamw", "1", "0"], tmp_path, "plain", 2)
    _launch([str(tiny_encoder_dir), "4", "adamw", "1", "6"], tmp_path, "resumed", 2, killed=True)
    resumed = _launch([str(tiny_encoder_dir), "4", "adamw", "1", "0"], tmp_path, "resumed", 2)
    assert (plain["resumed_from"], resumed["resumed_from"], resumed["steps"]) == (0, 6, 12)
    assert resumed["losses"] == {k: v for k, v in plain["losses"].items() if int(k) > 6}
    assert resumed["evals"] == [e for e in plain["evals"] if e[0] > 6]
    assert resumed["weights"] == plain["weights"]


if __name__ == "__main__":
    sys.path[:0] = [str(SRC), str(TESTS)]
    args = sys.argv[1:]
    worker(args[0], int(args[1]), args[2], args[3] == "1", int(args[4]), Path(args[5]), Path(args[6]))
