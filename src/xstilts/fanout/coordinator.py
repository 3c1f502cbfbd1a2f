"""``xstilts fanout``: the pipeline's training, tuning and retrieval stages as Ray tasks, the rest right here.

DVC runs one stage per workspace at a time, so each task works in its own checkout of this commit and hands its
outputs back through the DVC remote and run cache; only this process writes ``dvc.lock`` (``dvc repro -s --pull``
restores a stage another node ran). A stage whose node or worker is lost runs again elsewhere (``fanout.retries``);
one whose command fails does not. The MLflow runs of a lost or cancelled attempt end FAILED or KILLED with the
reason, and rerunning the command after this process died restores, rather than reruns, what already finished.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.fanout import graph
from xstilts.fanout.view import Row, View, summary
from xstilts.fanout.worker import Result, StageFailed, Task
from xstilts.params import FanoutParams, load_params
from xstilts.pipeline.mlflow_run import PROCESSES_ENV
from xstilts.tracking import DATA_EXPERIMENT, EXPERIMENT, Tag, configure, local_store, tracking_uri
from xstilts.tuning.study import WAIT_ENV

PASSED_ENV = ("MLFLOW_TRACKING_URI", "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM", "XSTILTS_LOG", "HF_HOME")
COMMITTED = ("dvc.yaml", "params.yaml", "MLproject", "pyproject.toml", "src")


def dry_run(root: Path) -> list[str]:
    """The waves of out-of-date stages, each marked with where it would run."""
    stages = graph.load(root)
    pending = graph.out_of_date(root, stages)
    if not pending:
        return ["Nothing to run: every stage is up to date."]
    lines = []
    for k, wave in enumerate(graph.waves(stages, pending), 1):
        marked = [f"{name}{'' if stages[name].remote else ' (here)'}" for name in wave]
        lines.append(f"wave {k}: " + ", ".join(marked))
    return lines


def fanout(root: Path, address: str | None, origin: str | None, remote: str | None, scratch: str | None) -> None:
    """Run every out-of-date stage; raise with one sentence when a stage failed (the others finish first)."""
    try:
        import ray
    except ImportError as exc:
        raise XstiltsError("xstilts fanout needs Ray: pip install -e '.[cluster]'.") from exc

    fan = load_params(root / "params.yaml").fanout
    uri = tracking_uri()
    if local_store(uri):
        raise XstiltsError(
            f"xstilts fanout needs a tracking server every node reaches, not {uri}: start `mlflow server` "
            "(docs/cluster.md) and set MLFLOW_TRACKING_URI=http://<host>:<port>."
        )
    _check_tuning(root, fan)
    commit = _committed(root)
    remote = remote or _default_remote(root)
    _answers(uri)
    configure(DATA_EXPERIMENT)  # made once here, not by several nodes at the same moment
    configure(EXPERIMENT)
    stages = graph.load(root)
    pending = graph.out_of_date(root, stages)
    rows = {n: Row(n, "cluster" if stages[n].remote else "here") for n in _ordered(stages, pending)}
    try:
        context = ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise XstiltsError(f"Ray cluster {address or '(local)'} cannot be reached: {exc}".strip()) from exc
    links = {"Ray dashboard": f"http://{context.dashboard_url}" if context.dashboard_url else "off", "MLflow": uri}
    if storage := load_params(root / "params.yaml").tune.storage:
        links["Optuna"] = f"optuna-dashboard {storage}"
    run = _Run(root, stages, pending, rows, fan, Task("", "", origin or str(root), commit, remote, "", ""), scratch)
    started = time.time()
    with View(rows, links) as view:
        run.view = view
        try:
            run.loop()
        except KeyboardInterrupt:
            run.cancel()
            raise
    for line in summary(rows, time.time() - started):
        print(line)
    failed = [n for n, r in rows.items() if r.state == "failed"]
    if failed:
        logs = root / "logs" / "fanout"
        raise XstiltsError(f"{len(failed)} stage(s) failed: {', '.join(failed)} (their output: {logs}).")


class _Run:
    """The coordinator's loop: what is ready runs here or goes to the cluster; what comes back is restored."""

    def __init__(self, root, stages, pending, rows, fan: FanoutParams, base: Task, scratch) -> None:
        import ray

        from xstilts.fanout.worker import run as run_task

        self.root, self.stages, self.pending, self.rows, self.fan = root, stages, pending, rows, fan
        self.base, self.scratch, self.session = base, scratch, uuid.uuid4().hex[:8]
        self.done = set(stages) - pending
        self.inflight: dict = {}  # ObjectRef -> (stage, attempt id, helper)
        self.pushed: set[str] = set()
        self.view: View | None = None
        self.remote_fn = ray.remote(_on_node(run_task)).options(
            num_cpus=fan.cpus, num_gpus=fan.gpus, max_retries=0, retry_exceptions=False
        )
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        self.board = (  # on the driver's node where it can be; a lost node's board starts again (empty) elsewhere
            ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(_Board).options(scheduling_strategy=here)
        ).remote()
        self.cached = _RunCache(root)

    def loop(self) -> None:
        import ray

        for name in self.pending:  # runs an earlier coordinator left RUNNING when it died (its tasks died with it)
            if self.stages[name].remote:
                _end_runs(f"%/{name}/%", "FAILED", "the fanout coordinator that started it died", like=True)
        while True:
            for name in self._ready():
                self._start(name)
            if not self.inflight:
                if not self._ready():
                    return
                continue
            finished, _ = ray.wait(list(self.inflight), num_returns=1, timeout=1.0)
            for ref in finished:
                self._finish(ref)
            self._show_nodes()

    def _ready(self) -> list[str]:
        blocked = {n for n, r in self.rows.items() if r.state in ("failed", "skipped")}
        for name, row in self.rows.items():
            if row.state == "waiting" and self.stages[name].needs & blocked:
                self._set(name, "skipped")
        return [
            n
            for n, r in self.rows.items()
            if r.state == "waiting" and (self.stages[n].needs & self.pending) <= self.done
        ]

    def _start(self, name: str) -> None:
        stage = self.stages[name]
        if not stage.remote:
            started = time.time()
            ok = _dvc(self.root, name, "repro", "--single-item", name)
            self._set(name, "here" if ok else "failed", seconds=time.time() - started)
            if ok:
                self.done.add(name)
            return
        for up in sorted(stage.needs - self.pushed):  # what the nodes pull: this checkout's outputs
            if not self.stages[up].remote and self.stages[up].pushed_outs:
                _dvc(self.root, up, "push", up)
            self.pushed.add(up)
        if self.cached.has(name):  # an earlier session's node finished it (this process died before restoring it)
            self._restore(name, time.time(), "")
            return
        self._submit(name, helper=False)
        if entry := graph.entry_of(stage.cmd):
            for _ in range(self.fan.tune_workers - 1 if entry == "tune" else 0):
                self._submit(name, helper=True)

    def _submit(self, name: str, helper: bool) -> None:
        row = self.rows[name]
        row.attempts += 0 if helper else 1
        attempt = f"{self.session}/{name}/{row.attempts}{'h' + uuid.uuid4().hex[:4] if helper else ''}"
        files = {p: (self.root / p).read_bytes() for p in self.stages[name].uncached_deps if (self.root / p).is_file()}
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        if not helper and self.fan.tune_workers > 1 and graph.entry_of(self.stages[name].cmd) == "tune":
            env[WAIT_ENV] = "1"  # it writes tuning/<spec>.yaml: once the helpers' trials are done
        if self.fan.gpus >= 2:
            env[PROCESSES_ENV] = str(int(self.fan.gpus))  # one DDP process per GPU (`accelerate launch`)
        if self.fan.cpus >= 1:
            env["OMP_NUM_THREADS"] = str(int(self.fan.cpus))  # torch uses the task's CPUs, not the whole node's
        task = Task(
            name, self.stages[name].cmd, self.base.origin, self.base.commit, self.base.remote, attempt,
            (self.root / "dvc.lock").read_text() if (self.root / "dvc.lock").exists() else "",
            files, env, self.scratch, self.fan.checkpoints, helper,
        )  # fmt: skip
        self.inflight[self.remote_fn.remote(task, self.board)] = (name, attempt, helper)
        if not helper:
            self._set(name, "running", started=time.time(), node="", gpus="")

    def _finish(self, ref) -> None:
        import ray

        name, attempt, helper = self.inflight.pop(ref)
        try:
            result: Result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the stage itself failed: never retried
            cause = exc.cause if isinstance(exc.cause, StageFailed) else exc
            _write_log(self.root, name, str(cause))
            _end_runs(attempt, "FAILED", f"the stage failed: {str(cause).splitlines()[0]}")
            if not helper:
                self._set(name, "failed")
            return
        except ray.exceptions.RayError as exc:  # the node or the worker was lost
            reason = f"its node or worker was lost ({type(exc).__name__}); the stage was retried"
            _end_runs(attempt, "FAILED", reason)
            if helper:
                return
            if self.rows[name].attempts <= self.fan.retries:
                self._set(name, "retried")
                self._submit(name, helper=False)
            else:
                _write_log(self.root, name, str(exc))
                self._set(name, "failed")
            return
        if not helper:
            self._restore(name, time.time() - result.seconds, result.node)

    def _restore(self, name: str, started: float, node: str) -> None:
        _forget(self.root, name)
        ok = _dvc(self.root, name, "repro", "--single-item", "--pull", name)
        state = ("done" if node else "restored") if ok else "failed"
        self._set(name, state, node=node, seconds=time.time() - started if node else 0.0)
        if ok:
            self.done.add(name)

    def _show_nodes(self) -> None:
        import ray

        try:
            started = ray.get(self.board.snapshot.remote(), timeout=30)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            started = {}  # the board is starting again on another node: where the stages run is shown next time
        for name, attempt, helper in self.inflight.values():
            row = self.rows[name]
            if not helper and attempt in started and row.node != started[attempt][0]:
                row.node, row.gpus = started[attempt]
                self._set(name, "running")
        if self.view:
            self.view.tick()

    def cancel(self) -> None:
        """Ctrl-C: cancel every task and end its runs KILLED."""
        import ray

        for ref, (_, attempt, _) in list(self.inflight.items()):
            ray.cancel(ref, force=True)
            _end_runs(attempt, "KILLED", "cancelled: Ctrl-C on the fanout coordinator")
        self.inflight.clear()

    def _set(self, name: str, state: str, **fields) -> None:
        if self.view:
            self.view.set(name, state, **fields)
        else:
            self.rows[name].state = state


def _on_node(run_task):
    def on_node(task: Task, board) -> Result:
        import ray

        board.started.remote(task.attempt, ray.get_runtime_context().get_node_id(), _gpus())
        return run_task(task)

    on_node.__name__ = "xstilts_stage"
    return on_node


def _gpus() -> str:
    import ray

    return ",".join(str(g) for g in ray.get_gpu_ids())


class _Board:
    """Where each attempt runs: the node and GPUs it reports when it starts (a Ray actor)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, str]] = {}

    def started(self, attempt: str, node: str, gpus: str) -> None:
        self.seen[attempt] = (node, gpus)

    def snapshot(self) -> dict[str, tuple[str, str]]:
        return dict(self.seen)


class _RunCache:
    """Whether the DVC remote's run cache already holds a stage run with this checkout's inputs."""

    def __init__(self, root: Path) -> None:
        self.root, self.pulled = root, False

    def has(self, name: str) -> bool:
        from dvc.repo import Repo
        from dvc.stage.cache import _can_hash

        with Repo(str(self.root)) as repo:
            if not self.pulled:
                repo.stage_cache.pull(None)  # the entries only (small files), not the data
                self.pulled = True
            (stage,) = repo.stage.collect(name)
            stage.save_deps()
            return bool(_can_hash(stage) and repo.stage_cache._load(stage))


def _forget(root: Path, name: str) -> None:
    """Drop ``name``'s entry from dvc.lock (a committed lock has one), so that ``repro --pull`` restores the run
    a node just made from the run cache: with an entry whose inputs match, DVC pulls the outputs that entry
    names instead, and leaves the uncached ones (metrics) missing."""
    from dvc.dvcfile import Lockfile
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        (stage,) = repo.stage.collect(name)
        Lockfile(repo, str(root / "dvc.lock")).remove_stage(stage)


def _end_runs(attempt: str, status: str, reason: str, like: bool = False) -> None:
    """End the runs an attempt left RUNNING (its node died, or it was cancelled) with ``status`` and the reason
    (``like``: ``attempt`` is a SQL LIKE pattern)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    query = f"tags.{Tag.ATTEMPT} {'LIKE' if like else '='} '{attempt}' and attributes.status = 'RUNNING'"
    for found in client.search_runs(ids, filter_string=query, max_results=5000):
        client.set_tag(found.info.run_id, Tag.FAILURE, reason)
        client.set_terminated(found.info.run_id, status=status)


def _dvc(root: Path, stage: str, *args: str) -> bool:
    """A DVC command here, its output in ``logs/fanout/<stage>.log``; whether it succeeded."""
    log = root / "logs" / "fanout" / f"{stage}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("a") as out:
        out.write(f"$ dvc {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(["dvc", *args], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    return proc.returncode == 0


def _write_log(root: Path, stage: str, text: str) -> None:
    log = root / "logs" / "fanout" / f"{stage}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(text + "\n")


def _ordered(stages: dict[str, graph.Stage], pending: set[str]) -> list[str]:
    return [name for wave in graph.waves(stages, pending) for name in wave]


def _committed(root: Path) -> str:
    """The commit the nodes check out; the pipeline's definition and code must be committed in it."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise XstiltsError(f"xstilts fanout needs a git checkout (the nodes clone it): {proc.stderr.strip()}")
        return proc.stdout.rstrip()

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "-z", "--", *COMMITTED)
    if dirty:
        names = ", ".join(entry[3:] for entry in dirty.split("\0")[:5] if entry)
        raise XstiltsError(f"Commit {names} first: the nodes check out commit {commit[:10]}, not this workspace.")
    return commit


def _default_remote(root: Path) -> str:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        name = repo.config["core"].get("remote")
        if not name:
            raise XstiltsError("xstilts fanout needs a DVC remote every node reaches: `dvc remote add -d` one.")
        return repo.config["remote"][name]["url"]


def _answers(uri: str) -> None:
    """An MLflow server that does not answer stops here, in one sentence (MLflow itself retries for minutes)."""
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10):
            pass
    except OSError as exc:
        said = f"The MLflow server {uri} does not answer ({exc}); start it, or fix MLFLOW_TRACKING_URI."
        raise XstiltsError(said) from exc


def _check_tuning(root: Path, fan: FanoutParams) -> None:
    if fan.tune_workers > 1 and load_params(root / "params.yaml").tune.storage is None:
        raise XstiltsError(
            f"fanout.tune_workers is {fan.tune_workers}, but workers on several nodes share a study only through "
            "a database: set tune.storage to postgresql://user@host/db."
        )
