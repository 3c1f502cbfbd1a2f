"""The study: its name and storage, trial 0, orphaned trials, and trials handed out up to ``n_trials``.

Workers on one machine share a journal file (Optuna's ``JournalFileBackend``; SQLite is unsafe for parallel
writers). A lock file next to it makes "count the trials, then ask for one" atomic, so several workers end with
exactly ``n_trials`` finished trials. ``tune.storage`` may instead name an RDB URL (PostgreSQL) for workers on
several machines; there PostgreSQL advisory locks serialise the count and the creation of Optuna's tables (on
other databases the count is not locked, and a worker may run one trial past the cap). There a running trial
records Optuna heartbeats (``tune.heartbeat``): a trial whose worker went silent is failed by the next worker
that asks for a trial, and its setting is retried (Optuna's ``RetryHeartbeatStaleTrialCallback``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from xstilts.errors import XstiltsError
from xstilts.lifeline import alive
from xstilts.params import Params, TuneParams
from xstilts.paths import repo_root
from xstilts.progress import progress
from xstilts.tuning.key import study_key

if TYPE_CHECKING:
    from xstilts.pipeline.run_plan import RunPlan

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RETRIES = 2  # times a trial whose worker went silent is retried (RDB storage)
WORKER_ATTR, REASON_ATTR, UNTUNED_ATTR = "worker", "fail_reason", "untuned"
RUN_ATTR = "mlflow_run_id"  # the study's parent MLflow run, shared by every worker
SCHEMA_LOCK = "optuna tables"  # a PostgreSQL advisory lock's name: one worker at a time creates the tables


def journal_path(study_name: str) -> Path:
    return repo_root() / "tuning" / "studies" / f"{study_name}.journal"


def open_storage(tune: TuneParams, study_name: str) -> optuna.storages.BaseStorage:
    """The journal file (default) or the RDB at ``tune.storage``; an unreachable one fails in one sentence."""
    if tune.storage is None:
        path = journal_path(study_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    try:
        # workers starting together on a fresh database would each create Optuna's tables, and all but one fail
        with _advisory_lock(tune.storage, SCHEMA_LOCK), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
            return optuna.storages.RDBStorage(
                tune.storage,
                heartbeat_interval=tune.heartbeat,
                grace_period=2 * tune.heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES),
            )
    except ModuleNotFoundError as exc:
        raise XstiltsError(
            f"tune.storage needs the {exc.name} driver; `pip install -e '.[postgres]'` (or set tune.storage: null "
            "for a local journal file)."
        ) from exc
    except Exception as exc:  # SQLAlchemy's errors for a bad URL or a server that does not answer
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XstiltsError(
            f"tune.storage {_safe(tune.storage)} cannot be reached ({type(exc).__name__}: {first}); start the "
            "database, or set tune.storage: null for a local journal file."
        ) from exc


def _safe(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        user = rest.split("@", 1)[0].split(":", 1)[0]
        rest = f"{user}:***@{rest.split('@', 1)[1]}"
    return f"{scheme}{sep}{rest}"


class _Grid(optuna.samplers.GridSampler):
    """Optuna's grid sampler, without its ``study.stop()`` once the grid is done (that works only inside
    ``study.optimize``; :func:`next_trial` stops at ``n_trials``, and past the grid the sampler repeats it)."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
        return None


def make_sampler(tune: TuneParams, seed: int) -> optuna.samplers.BaseSampler:
    if tune.sampler == "grid":
        return _Grid(tune.grid.model_dump(), seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(tune: TuneParams) -> optuna.pruners.BasePruner:
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.startup_trials, n_warmup_steps=tune.warmup_evaluations)
    if tune.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, tune.warmup_evaluations))
    return optuna.pruners.NopPruner()


def untuned_values(plan: RunPlan, tune: TuneParams) -> dict[str, float]:
    """Trial 0: phase 2's own lr and epochs; integer epochs in the space need an integer here."""
    epochs = plan.cfg.epochs
    if tune.epochs.step is not None and not float(epochs).is_integer():
        raise XstiltsError(
            f"intermediate epochs for {plan.out_name} is {epochs}, not an integer, so trial 0 (the untuned "
            "setting) cannot be drawn from integer epochs; set tune.epochs.step: null (continuous)."
        )
    return {"lr": plan.cfg.lr, "epochs": int(epochs) if tune.epochs.step is not None else float(epochs)}


def open_study(plan: RunPlan, params: Params) -> tuple[optuna.Study, str]:
    """Create or load the study of ``plan`` (trial 0 enqueued once); returns it and its name.

    The sampler's seed is ``seed`` plus the number of trials the study already holds, so a fresh study is
    reproducible and a continued one (more trials, or after a kill) draws new points instead of repeating the
    first run's; a worker joining others at work adds its process id (parallel runs are not reproducible)."""
    tune = params.tune
    name = f"{plan.out_name}-{study_key(plan, tune)}"
    storage = open_storage(tune, name)
    with locked(tune, name):
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            pruner=make_pruner(tune),
            load_if_exists=True,
        )
        fail_orphans(study)
        trials = study.get_trials(deepcopy=False)
        busy = any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        study.sampler = make_sampler(tune, params.seed + len(trials) + (os.getpid() if busy else 0))
        if not trials:
            study.enqueue_trial(untuned_values(plan, tune), user_attrs={UNTUNED_ATTR: True})
    return study, name


@contextmanager
def locked(tune: TuneParams, study_name: str) -> Iterator[None]:
    """An exclusive lock for the study's workers: next to the journal file; a PostgreSQL advisory lock on the
    study's name for a PostgreSQL storage (workers on several machines); none for other RDBs."""
    if tune.storage is not None:
        with _advisory_lock(tune.storage, study_name):
            yield
        return
    with open(journal_path(study_name).with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


WAIT_ENV = "XSTILTS_TUNE_WAIT"  # xstilts fanout: the worker DVC runs waits for the study's other workers


@contextmanager
def _advisory_lock(url: str, name: str) -> Iterator[None]:
    """A PostgreSQL advisory lock on ``name`` while the block runs (none for other databases)."""
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy

    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_orphans(study: optuna.Study) -> list[int]:
    """Mark FAIL (with a reason) the RUNNING trials whose worker, on this machine, has died; their numbers."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        their_host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).partition(":")
        if their_host != host or not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue
        reason = f"its worker (pid {pid}) died mid-trial; not counted"
        study._storage.set_trial_user_attr(trial._trial_id, REASON_ATTR, reason)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        failed.append(trial.number)
    return failed


def next_trial(study: optuna.Study, tune: TuneParams, study_name: str) -> optuna.Trial | None:
    """A new trial (trial 0 first), or None once the finished and running trials reach ``n_trials``."""
    with locked(tune, study_name), warnings.catch_warnings():
        # heartbeats outside Study.optimize are this module's own (heartbeat()); fail_stale_trials is "experimental"
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_orphans(study)
        optuna.storages.fail_stale_trials(study)  # RDB: trials whose heartbeat stopped, failed and re-enqueued
        states = (*FINISHED, TrialState.RUNNING)
        if len(study.get_trials(deepcopy=False, states=states)) >= tune.n_trials:
            return None
        trial = study.ask()
        trial.set_user_attr(WORKER_ATTR, worker_id())
        return trial


@contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """While ``trial`` runs, record its heartbeat every interval (storages with heartbeats: an RDB)."""
    storage = study._storage
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat of trial {trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def trials(study: optuna.Study, tune: TuneParams, study_name: str) -> Iterator[optuna.Trial]:
    """:func:`next_trial` until it gives None, with a progress bar of the study's finished trials (all workers')."""

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=FINISHED))

    with progress(total=tune.n_trials, initial=finished(), desc=f"tune {study_name}", unit="trial") as bar:
        while (trial := next_trial(study, tune, study_name)) is not None:
            yield trial
            bar.update(finished() - bar.n)


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state (COMPLETE, PRUNED, FAIL, and RUNNING or WAITING ones if any)."""
    found = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for trial in study.get_trials(deepcopy=False):
        found[trial.state.name] = found.get(trial.state.name, 0) + 1
    return found
