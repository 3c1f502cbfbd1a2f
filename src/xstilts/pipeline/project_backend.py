"""An MLflow Projects backend that runs an entry point's ``python -m xstilts`` command in this process.

MLflow's ``local`` backend starts each entry point's command as a second Python process, which imports MLflow
and opens the tracking store again before it can start (about 3 s a stage, measured). Every command in
``MLproject`` is ``python -m xstilts ...``, so this backend does what the local one does up to the command
(validates the parameters against ``MLproject``, creates the run with the project's tags, sets
``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_ID``, works in the project folder) and then
calls :func:`xstilts.cli.main` with the command's arguments. It is registered as the ``xstilts`` backend of
the ``mlflow.project_backend`` entry-point group, so ``mlflow run . -e target -P task=multiemo --backend
xstilts`` uses it too; DVC's stages use it through ``xstilts run`` (:mod:`xstilts.pipeline.mlflow_run`). It
always runs synchronously. It sits above the CLI: nothing in the CLI imports it.

With ``XSTILTS_PROCESSES=N`` (N > 1; ``xstilts fanout`` sets it to a stage's ``fanout.gpus``), a training entry
point runs instead under ``accelerate launch --multi_gpu --num_processes N`` (DDP), into the same run.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from mlflow.entities import RunStatus
from mlflow.exceptions import ExecutionException
from mlflow.projects.backend.abstract_backend import AbstractBackend
from mlflow.projects.submitted_run import SubmittedRun
from mlflow.projects.utils import (
    PROJECT_STORAGE_DIR,
    fetch_and_validate_project,
    get_entry_point_command,
    get_or_create_run,
    get_run_env_vars,
    load_project,
)
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PROJECT_ENV

from xstilts.cli import main
from xstilts.pipeline.mlflow_run import NAME, PROCESSES_ENV
from xstilts.tracking import temporary_environ

COMMAND_PREFIX = ("python", "-m", "xstilts")
DDP_ENTRIES = frozenset({"intermediate", "target"})  # the entry points whose training loop runs under DDP


class FinishedRun(SubmittedRun):
    """A run whose command has already returned (this backend runs it before handing the run back)."""

    def __init__(self, run_id: str, ok: bool) -> None:
        self._run_id = run_id
        self._ok = ok

    @property
    def run_id(self) -> str:
        return self._run_id

    def wait(self) -> bool:
        return self._ok

    def get_status(self) -> str:
        return RunStatus.to_string(RunStatus.FINISHED if self._ok else RunStatus.FAILED)

    def cancel(self) -> None:
        """Nothing to cancel: the command has finished."""


class InProcessBackend(AbstractBackend):
    """``--backend xstilts``: the local backend's steps, with the command called instead of started."""

    def run(
        self,
        project_uri: str,
        entry_point: str,
        params: dict[str, Any],
        version: str | None,
        backend_config: Mapping[str, Any],
        tracking_uri: str,
        experiment_id: str,
    ) -> FinishedRun:
        work_dir = fetch_and_validate_project(project_uri, version, entry_point, params)
        project = load_project(work_dir)
        (command,) = get_entry_point_command(project, entry_point, params, backend_config.get(PROJECT_STORAGE_DIR))
        argv = shlex.split(command)
        if tuple(argv[: len(COMMAND_PREFIX)]) != COMMAND_PREFIX:
            raise ExecutionException(
                f"The {NAME} backend runs only `python -m xstilts ...` commands, not {command!r}; "
                "use `--backend local` for this entry point."
            )
        run = get_or_create_run(None, project_uri, experiment_id, work_dir, version, entry_point, params)
        run_id = run.info.run_id
        MlflowClient().set_tag(run_id, MLFLOW_PROJECT_ENV, "local")
        with temporary_environ(get_run_env_vars(run_id, experiment_id)), contextlib.chdir(work_dir):
            processes = launched_processes(entry_point)
            args = argv[len(COMMAND_PREFIX) :]
            ok = _launch(args, processes) if processes > 1 else _call(args)
        return FinishedRun(run_id, ok)


def _call(args: list[str]) -> bool:
    """``xstilts <args>`` in this process; True when it succeeded (its own errors are printed by it or here)."""
    try:
        return main(args) == 0
    except SystemExit as exc:  # argparse's usage errors
        return exc.code in (0, None)
    except Exception:
        traceback.print_exc()  # as the entry point's own process would have, before exiting non-zero
        return False


def launched_processes(entry_point: str) -> int:
    """How many DDP processes ``entry_point`` runs on: ``XSTILTS_PROCESSES`` for a training entry point, else 1."""
    if entry_point not in DDP_ENTRIES:
        return 1
    value = os.environ.get(PROCESSES_ENV, "1")
    if not value.isdigit() or int(value) < 1:
        raise ExecutionException(f"{PROCESSES_ENV} must be a whole number of processes (1 or more), not {value!r}.")
    return int(value)


def _launch(args: list[str], processes: int) -> bool:
    """``accelerate launch`` of ``xstilts <args>`` on ``processes`` processes (one per GPU; gloo on CPUs when
    ``ACCELERATE_USE_CPU`` is set); its main process logs into the run this backend created."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
    return subprocess.run([*launch, "-m", "xstilts", *args], check=False).returncode == 0
