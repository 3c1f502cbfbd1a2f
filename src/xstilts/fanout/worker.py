"""One stage on one cluster node: a clean checkout of the coordinator's commit, its inputs pulled from the DVC
remote, ``dvc repro -s``, the outputs verified, then pushed with their run-cache entry.

The worker never writes the coordinator's ``dvc.lock``: the coordinator restores the stage from the run cache.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.lifeline import PARENT_ENV
from xstilts.tracking import ATTEMPT_ENV, NODE_ENV

REMOTE_NAME = "fanout"


@dataclass(frozen=True)
class Task:
    """What a node needs to run one stage (or, ``helper``, one more tuning worker on the stage's study)."""

    stage: str
    cmd: str
    origin: str  # a git URL or path the node can clone
    commit: str
    remote: str  # the DVC remote's URL
    attempt: str  # session/stage/n: tags the attempt's MLflow runs
    lock: str  # the coordinator's dvc.lock (its upstream stages' hashes)
    files: dict[str, bytes] = field(default_factory=dict)  # the uncached files the stage reads
    env: dict[str, str] = field(default_factory=dict)  # MLFLOW_TRACKING_URI and the like
    scratch: str | None = None  # where checkouts go (default: the node's temp folder)
    checkpoints: str | None = None  # a folder every node shares: a retried stage resumes from it
    helper: bool = False


@dataclass(frozen=True)
class Result:
    stage: str
    node: str
    seconds: float
    attempt: str
    helper: bool = False


class StageFailed(XstiltsError):
    """The stage's own command failed (bad data, a bad parameter): never retried."""


def node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (tests of the pieces)
        return socket.gethostname()


def run(task: Task) -> Result:
    """The whole attempt, inside a Ray task."""
    started, node = time.time(), node_id()
    where = checkout(task)
    env = _environment(task, where, node)
    if task.helper:
        _pull_inputs(where, task.stage, env)
        _call(["sh", "-c", task.cmd], where, env, f"tuning helper of {task.stage}")
    else:
        _call(["dvc", "repro", "--single-item", "--pull", task.stage], where, env, f"stage {task.stage}")
        publish(where, task.stage, env)
    shutil.rmtree(where, ignore_errors=True)  # a failed attempt keeps its checkout, for a look
    return Result(task.stage, node, time.time() - started, task.attempt, task.helper)


def checkout(task: Task) -> Path:
    """A fresh clone at the coordinator's commit, with its dvc.lock, the uncached inputs and the remote."""
    base = Path(task.scratch or os.environ.get("TMPDIR", "/tmp")) / "xstilts-fanout"
    where = base / f"{task.stage}-{uuid.uuid4().hex[:8]}"
    where.parent.mkdir(parents=True, exist_ok=True)
    git = ["git", "-c", "advice.detachedHead=false"]
    _call([*git, "clone", "--quiet", "--no-checkout", task.origin, str(where)], base, None, "git clone")
    _call([*git, "checkout", "--quiet", task.commit], where, None, f"git checkout {task.commit}")
    (where / "dvc.lock").write_text(task.lock)
    for name, data in task.files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(data)
    _call(["dvc", "remote", "add", "--local", "--default", "--force", REMOTE_NAME, task.remote], where, None, "dvc")
    if task.checkpoints:
        Path(task.checkpoints).mkdir(parents=True, exist_ok=True)
        (where / "checkpoints").symlink_to(task.checkpoints, target_is_directory=True)
    return where


def publish(where: Path, stage: str, env: dict[str, str] | None = None) -> None:
    """Verify the stage's outputs, then push them, their run-cache entry and the objects of its uncached outs (which
    ``dvc push --run-cache`` leaves behind, so the coordinator could not restore the stage without them)."""
    from dvc.repo import Repo

    from xstilts.verify import verify

    _, mismatches = verify(where, stages={stage})
    if mismatches:
        said = "; ".join(m.sentence(where) for m in mismatches[:3])
        raise StageFailed(f"{stage}: its outputs do not match their hashes, so nothing was pushed: {said}")
    _call(["dvc", "push", "--run-cache", stage], where, env, f"dvc push of {stage}")
    with Repo(str(where)) as repo:
        (found,) = [s for s in repo.index.stages if s.name == stage]
        uncached = [out.hash_info for out in found.outs if not out.use_cache and out.hash_info]
        result = repo.cloud.push(uncached, remote=REMOTE_NAME)
    if result.failed:
        raise StageFailed(f"{stage}: {len(result.failed)} of its uncached outputs could not be pushed to the remote.")


def _pull_inputs(where: Path, stage: str, env: dict[str, str]) -> None:
    from dvc.repo import Repo

    with Repo(str(where)) as repo:
        (found,) = [s for s in repo.index.stages if s.name == stage]
        paths = [d.def_path for d in found.deps if not (where / d.def_path).exists()]
    if paths:
        _call(["dvc", "pull", *paths], where, env, f"dvc pull for {stage}")


def _environment(task: Task, where: Path, node: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XSTILTS_ROOT", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID")}
    env.update(task.env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(where / "src")  # the checkout's code, not whatever this node has installed
    env.update({ATTEMPT_ENV: task.attempt, NODE_ENV: node, PARENT_ENV: str(os.getpid())})
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _call(command: list[str], cwd: Path, env: dict[str, str] | None, what: str) -> None:
    """Run a command; on failure raise StageFailed with its last lines. It dies with this process."""
    log = cwd / "fanout.log" if cwd.is_dir() and what.startswith(("stage", "tuning")) else None
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=_die_with_parent, check=False
    )
    if log:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise StageFailed(f"{what} failed on {socket.gethostname()} (exit {proc.returncode}) in {cwd}:\n{tail}")
