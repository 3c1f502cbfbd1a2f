"""Where a pipeline's seconds go: per DVC stage, the work itself and the whole stage command.

Under ``dvc repro`` (``DVC_STAGE`` set) two kinds of line go to ``logs/timings.jsonl``:

* ``work``: the seconds inside an MLflow phase run (:func:`xstilts.tracking.phase_run`): reading data and
  models, training, evaluating, writing outputs and logging them;
* ``command``: the seconds of the stage's command, from its process's start (interpreter start-up and
  imports included; for ``xstilts run``, also the ``mlflow run`` launcher and the entry point's own process).

The pipeline's overhead is its wall time minus the work; what DVC spends between commands is its wall time
minus the commands'.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import psutil

from xstilts import hardware
from xstilts.paths import main_root

TIMINGS = "logs/timings.jsonl"


def stage() -> str | None:
    """The DVC stage this process runs under, None outside ``dvc repro``."""
    return os.environ.get("DVC_STAGE") or None


def record(kind: str, seconds: float, ok: bool) -> None:
    """Append a ``work`` or ``command`` line for the current DVC stage (nothing outside DVC or off rank 0)."""
    if stage() is None or os.environ.get("RANK", "0") != "0":
        return
    path = main_root() / TIMINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"stage": stage(), "kind": kind, "seconds": round(seconds, 3), "ok": ok, "at": time.time(), **machine()}
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def machine() -> dict[str, str | int]:
    """What a timing depends on, as its row records it (without importing torch): the CPU model and usable cores."""
    return {"cpu": hardware.cpu_model(), "cores": hardware.usable_cores()}


def record_pipeline(wall: float, work: float, commands: float, stages: int) -> None:
    """Append a ``pipeline`` line (a whole ``make run``): what :mod:`xstilts.pipeline.plan` learns DVC's own
    seconds per stage from."""
    path = main_root() / TIMINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"kind": "pipeline", "wall": round(wall, 1), "work": round(work, 1), "commands": round(commands, 1)}
    row.update(stages=stages, at=time.time(), **machine())
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def history() -> list[dict]:
    """Every line of ``logs/timings.jsonl`` recorded on this machine (its CPU model and usable cores)."""
    path = main_root() / TIMINGS
    here = machine()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return [r for r in rows if all(r.get(k) == v for k, v in here.items())]


def process_seconds() -> float:
    """Seconds since this process was created."""
    return time.time() - psutil.Process().create_time()


@dataclass
class StageTime:
    stage: str
    work: float  # inside the stage's MLflow phase runs
    command: float  # the whole stage command
    ok: bool


def stage_times(since: float) -> list[StageTime]:
    """One row per stage command that ended after ``since`` (seconds since the epoch), in the order they ended."""
    path = main_root() / TIMINGS
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    rows = [r for r in rows if r.get("kind") in ("work", "command") and r["at"] >= since]
    times = []
    for cmd in (r for r in rows if r["kind"] == "command"):
        began = cmd["at"] - cmd["seconds"]
        work = [r for r in rows if r["kind"] == "work" and r["stage"] == cmd["stage"] and began <= r["at"] <= cmd["at"]]
        times.append(StageTime(cmd["stage"], sum(r["seconds"] for r in work), cmd["seconds"], cmd["ok"]))
    return times
