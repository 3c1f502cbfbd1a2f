"""`xstilts fanout` on a real local cluster: a Ray head and two worker nodes (fake GPUs), PostgreSQL and
`mlflow server` on 127.0.0.1, a folder as the DVC remote, and a tiny pipeline of the DVC smoke test's tasks."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import postgres_server
from project import place_packages
from test_dvc_smoke import TINY_DATA, _copy_repo
from xstilts.fanout import graph
from xstilts.fanout.coordinator import dry_run
from xstilts.fanout.worker import StageFailed, publish

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
DATA = {k: TINY_DATA[k] for k in ("sst2", "brown_pos", "pos_tr", "udhr")}
REMOTE_STAGES = {
    "tune-sst2", "intermediate-sst2", "target-brown_pos-none", "target-brown_pos-sst2", "retrieve-udhr-none",
    "retrieve-udhr-sst2",
}  # fmt: skip


def _serve():
    spec = importlib.util.spec_from_file_location("ui_check", REPO / "scripts" / "ui_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.serve


def _environment(tracking: str) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update(
        MLFLOW_TRACKING_URI=tracking, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0"
    )
    for var in ("XSTILTS_ROOT", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "RAY_ADDRESS"):
        env.pop(var, None)
    return env


def _run(root: Path, env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), cwd=root, env=env, capture_output=True, text=True)
    assert (proc.returncode == 0) == ok, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_encoder_dir) -> Path:
    """The tiny project, committed, with its packages in place (each test clones it)."""
    root = tmp_path_factory.mktemp("fanout") / "template"
    root.mkdir()
    _copy_repo(root)
    place_packages(root, list(TINY_DATA))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["name"] = str(tiny_encoder_dir)
    params["data"].update(DATA, tasks=list(DATA))
    for stage in ("intermediate", "target"):
        params[stage].update({"batch_size": 8, "eval_every": 2, "max_length": 32, "precision": "fp32", "per_task": {}})
    params["intermediate"].update(tasks=["sst2"], groups={})
    params["tune"].update(tasks=["sst2"], n_trials=2, evaluations=2, train_rows=16, dev_rows=8)
    params["target"].update(tasks=["pos_tr"], inits=["none", "sst2"])
    params["retrieve"].update(tasks=["udhr"], encoders=["none", "sst2"], layers=[1])
    params["study"] = {"group": None}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = _environment("sqlite:///unused.db")
    _run(root, env, sys.executable, "-m", "xstilts", "pipeline")
    _run(root, env, "git", "add", "-A")
    _run(root, env, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny")
    return root


def _clone(template: Path, dest: Path) -> Path:
    """A checkout of the template with the packages (untracked) and its own DVC remote."""
    subprocess.run(["git", "clone", "-q", str(template), str(dest)], check=True)
    shutil.copytree(template / "data" / "raw" / "packages", dest / "data" / "raw" / "packages")
    remote = dest.parent / f"{dest.name}-remote"
    remote.mkdir()
    add = [sys.executable, "-m", "dvc", "remote", "add", "--local", "-d", "-f", "local", str(remote)]
    subprocess.run(add, cwd=dest, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="module")
def serial(template, tmp_path_factory) -> Path:
    """The same pipeline with plain `dvc repro` (one thread, as each fan-out task has)."""
    root = _clone(template, tmp_path_factory.mktemp("serial") / "repo")
    _run(root, _environment(f"sqlite:///{root.parent / 'mlflow.db'}"), "dvc", "repro")
    return root


@pytest.fixture(scope="module")
def cluster():
    """A Ray head (no CPUs: the coordinator's) and two worker nodes of one CPU and one fake GPU, on 127.0.0.1."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray.cluster_utils import Cluster

    client_port = _free_port()  # Ray Client on the head: a coordinator whose driver lives there (test (b))
    head = {"num_cpus": 0, "include_dashboard": False, "ray_client_server_port": client_port}
    found = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(2):
        found.add_node(num_cpus=1, num_gpus=1)
    found.wait_for_nodes()
    found.client_address = f"ray://127.0.0.1:{client_port}"
    yield found
    found.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def services(tmp_path):
    """PostgreSQL (the tracking store and an Optuna database) and `mlflow server` on it, on 127.0.0.1."""
    with postgres_server(("mlflow", "optuna"), port=54331) as url:
        with _serve()(url, tmp_path) as tracking:
            yield tracking, url.replace("/mlflow?", "/optuna?")


def _lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]


def _runs(tracking: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000)


def test_the_graph_comes_from_dvc_and_the_dry_run_prints_its_waves(template, tmp_path):
    root = _clone(template, tmp_path / "repo")
    stages = graph.load(root)
    assert {n for n, s in stages.items() if s.remote} == REMOTE_STAGES
    assert stages["intermediate-sst2"].needs >= {"tune-sst2", "prepare-sst2", "validate-sst2", "code"}
    assert "reports/validation/sst2.json" in stages["intermediate-sst2"].uncached_deps
    lines = dry_run(root)
    waves = [line.split(": ", 1)[1].split(", ") for line in lines]
    position = {name.removesuffix(" (here)"): k for k, wave in enumerate(waves) for name in wave}
    assert position["tune-sst2"] < position["intermediate-sst2"] < position["target-brown_pos-sst2"]
    assert "fetch (here)" in waves[1] and "intermediate-sst2" in waves[position["intermediate-sst2"]]


def test_fanout_gives_the_serial_pipelines_lock(template, serial, cluster, services, tmp_path):
    """(a) The fanned-out dvc.lock equals a serial `dvc repro`'s, and `dvc status` is clean."""
    tracking, _ = services
    root = _clone(template, tmp_path / "repo")
    env = _environment(tracking)
    out = _run(root, env, sys.executable, "-m", "xstilts", "fanout", "--address", cluster.address).stdout
    assert "speed-up over one after another" in out
    assert _lock(root) == _lock(serial)
    assert "Data and pipelines are up to date" in _run(root, env, "dvc", "status").stdout
    for name in ("metrics/target/pos_tr-sst2.json", "tuning/sst2.yaml", "predictions/retrieve/udhr-sst2.csv"):
        assert (root / name).read_bytes() == (serial / name).read_bytes(), name
    ran = [r for r in _runs(tracking) if r.data.tags.get("phase") in ("intermediate", "target", "retrieve")]
    assert len(ran) == 5 and all(r.info.status == "FINISHED" and r.data.tags.get("fanout_node") for r in ran)
    nodes = {r.data.tags["fanout_node"] for r in ran}
    assert nodes <= {n.node_id for n in cluster.list_all_nodes()} and len(nodes) == 2  # both worker nodes worked
    # run again: nothing is out of date, nothing goes to the cluster
    assert "Nothing to run" in _run(root, env, sys.executable, "-m", "xstilts", "fanout", "--dry-run").stdout


def test_a_committed_lock_does_not_keep_the_nodes_runs_out(template, serial, cluster, services, tmp_path):
    """A checkout whose committed dvc.lock already names every stage (as this project commits one): the stages
    still run on the nodes and come back whole, uncached metrics included, so the downstream stages run."""
    tracking, _ = services
    root = _clone(template, tmp_path / "repo")
    env = _environment(tracking)
    shutil.copy2(serial / "dvc.lock", root / "dvc.lock")
    _run(root, env, "git", "add", "dvc.lock")
    _run(root, env, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "the serial run's lock")
    _run(root, env, sys.executable, "-m", "xstilts", "fanout", "--address", cluster.address)
    assert _lock(root) == _lock(serial)
    assert "Data and pipelines are up to date" in _run(root, env, "dvc", "status").stdout
    for name in ("metrics/retrieve/udhr-none.json", "metrics/target/pos_tr-sst2.json", "metrics/champions.json"):
        assert (root / name).read_bytes() == (serial / name).read_bytes(), name


def test_a_stage_whose_node_is_lost_runs_again_on_another(template, serial, cluster, services, tmp_path):
    """(b) The node training the intermediate model is removed mid-run: the stage runs again on the other node, its
    first MLflow run ends FAILED with the reason, and the results equal the serial run's.

    The coordinator connects through Ray Client (``ray://``), so its driver lives on the head: on one host every node
    has the address 127.0.0.1, and a driver connected by GCS address may attach to the raylet of the node removed."""
    import time

    from mlflow import MlflowClient

    tracking, _ = services
    root = _clone(template, tmp_path / "repo")
    env = _environment(tracking)
    command = [sys.executable, "-m", "xstilts", "fanout", "--address", cluster.client_address]
    client = MlflowClient(tracking)

    def start() -> tuple[subprocess.Popen, object]:
        """The coordinator, and the intermediate run once it is RUNNING on a node (None if the coordinator ended)."""
        coordinator = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lost = None
        while lost is None and coordinator.poll() is None:
            ids = [e.experiment_id for e in client.search_experiments()]
            query = "tags.phase = 'intermediate' and attributes.status = 'RUNNING'"
            found = [r for r in client.search_runs(ids, query) if r.data.tags.get("fanout_node")] if ids else []
            lost = found[0] if found else time.sleep(0.2)
        return coordinator, lost

    coordinator, lost = start()
    early = "" if lost is not None else coordinator.communicate()[0].decode()
    if "Starting Ray client server failed" in early:  # Ray Client's per-driver server died at start-up (seen once
        coordinator, lost = start()  # in five runs on 2 cores, before any stage ran): the user's remedy, run again
    assert lost is not None, early[-4000:] or coordinator.communicate()[0].decode()[-4000:]
    (node,) = [n for n in cluster.list_all_nodes() if n.node_id == lost.data.tags["fanout_node"]]
    cluster.remove_node(node)
    cluster.add_node(num_cpus=1, num_gpus=1)  # the next tests find two worker nodes again
    out = coordinator.communicate(timeout=900)[0].decode()
    assert coordinator.returncode == 0, out[-4000:]
    assert "intermediate-sst2: retried" in out and "intermediate-sst2: done" in out
    first = client.get_run(lost.info.run_id)
    assert first.info.status == "FAILED" and "lost" in first.data.tags["failure_reason"], first.data.tags
    again = [r for r in _runs(tracking) if r.data.tags.get("phase") == "intermediate" and r.info.status == "FINISHED"]
    assert len(again) == 1 and again[0].data.tags["fanout_node"] != node.node_id
    assert _lock(root) == _lock(serial)
    for name in ("metrics/target/pos_tr-sst2.json", "metrics/intermediate/sst2.json"):
        assert (root / name).read_bytes() == (serial / name).read_bytes(), name


def test_a_restarted_coordinator_trains_nothing_twice(template, cluster, services, tmp_path):
    """(c) The coordinator killed mid-run, then started again: every stage trained once (count the MLflow runs)."""
    tracking, _ = services
    root = _clone(template, tmp_path / "repo")
    env = _environment(tracking)
    command = [sys.executable, "-m", "xstilts", "fanout", "--address", cluster.address]
    first = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in first.stdout:  # killed once the intermediate model is back on the coordinator
        seen.append(line)
        if "intermediate-sst2: done" in line:
            break
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert any("intermediate-sst2: done" in line for line in seen), "".join(seen)
    _run(root, env, *command)  # the tasks it had in flight died with it (Ray's owner fate-sharing): run again
    training = [r for r in _runs(tracking) if r.data.tags.get("phase") in ("intermediate", "target", "retrieve")]
    finished = [r for r in training if r.info.status == "FINISHED"]
    assert sorted(r.info.run_name for r in finished) == sorted({r.info.run_name for r in finished})  # no twice
    assert len(finished) == 5 and not [r for r in training if r.info.status == "RUNNING"]
    assert "Data and pipelines are up to date" in _run(root, env, "dvc", "status").stdout
    # a new coordinator (another checkout of the commit, the same remote): every node stage comes from the run cache
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(template), str(other)], check=True)
    shutil.copytree(root / "data" / "raw" / "packages", other / "data" / "raw" / "packages")
    add = [sys.executable, "-m", "dvc", "remote", "add", "--local", "-d", "-f", "local", str(tmp_path / "repo-remote")]
    subprocess.run(add, cwd=other, check=True, capture_output=True)
    out = _run(other, env, *command).stdout
    assert {line.split("] ")[1].split(":")[0] for line in out.splitlines() if ": restored" in line} == REMOTE_STAGES
    again = [r for r in _runs(tracking) if r.data.tags.get("phase") in ("intermediate", "target", "retrieve")]
    assert len([r for r in again if r.info.status == "FINISHED"]) == 5  # nothing trained twice
    assert _lock(other) == _lock(root)


def test_two_tune_workers_on_two_nodes_share_one_study(template, cluster, services, tmp_path):
    """(d) fanout.tune_workers 2 on a PostgreSQL study: the study ends with n_trials trials, from both nodes."""
    import optuna

    tracking, optuna_url = services
    root = _clone(template, tmp_path / "repo")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"].update(storage=optuna_url, n_trials=6)
    params["target"]["inits"], params["retrieve"]["encoders"] = ["sst2"], ["sst2"]  # the tune stage starts alone
    params["fanout"]["tune_workers"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = _environment(tracking)
    _run(root, env, sys.executable, "-m", "xstilts", "pipeline")
    _run(root, env, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two tune workers")
    _run(root, env, sys.executable, "-m", "xstilts", "fanout", "--address", cluster.address)
    (name,) = optuna.get_all_study_names(optuna_url)
    trials = optuna.load_study(study_name=name, storage=optuna_url).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6 and len(trials) <= 7  # at most one over: the one a stale worker left
    trial_runs = [r for r in _runs(tracking) if r.data.tags.get("phase") == "tune-trial"]
    assert len({r.data.tags["fanout_node"] for r in trial_runs}) == 2
    assert json.loads(json.dumps(yaml.safe_load((root / "tuning/sst2.yaml").read_text())))["trials"]


def test_a_worker_refuses_to_push_a_corrupted_output(tmp_path):
    """A file written in place through its hard link: the worker names it and pushes nothing."""
    env = _environment("sqlite:///unused.db")
    root, remote = tmp_path / "repo", tmp_path / "remote"
    root.mkdir()
    _run(root, env, "git", "init", "-q")
    _run(root, env, "dvc", "init", "-q")
    _run(root, env, "dvc", "config", "cache.type", "hardlink")
    _run(root, env, "dvc", "remote", "add", "-d", "fanout", str(remote))
    make = f"{sys.executable} -c \"open('out.txt', 'w').write('good')\""
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"make": {"cmd": make, "outs": ["out.txt"]}}}))
    _run(root, env, "dvc", "repro", "-q")
    with open(root / "out.txt", "r+") as f:
        f.write("evil")
    with pytest.raises(StageFailed, match="do not match their hashes, so nothing was pushed.*out.txt"):
        publish(root, "make", env)
    assert not remote.exists() or not any(remote.rglob("*"))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("local", "xstilts fanout needs a tracking server every node reaches, not sqlite:"),
        ("dirty", "Commit params.yaml first: the nodes check out commit"),
        ("workers", "fanout.tune_workers is 2, but workers on several nodes share a study only through a database"),
        ("server", "The MLflow server http://127.0.0.1:9 does not answer"),
    ],
)
def test_what_fanout_cannot_do_is_said_in_one_sentence(template, tmp_path, change, said):
    root = _clone(template, tmp_path / "repo")
    env = _environment("http://127.0.0.1:9")  # nothing listens there
    if change == "local":
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    elif change in ("dirty", "workers"):
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["fanout"]["tune_workers"] = 2 if change == "workers" else 1
        params["fanout"]["retries"] = 3 if change == "dirty" else 2
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = _run(root, env, sys.executable, "-m", "xstilts", "fanout", "--address", "127.0.0.1:9", ok=False)
    assert failed.returncode == 2 and said in failed.stderr, failed.stderr[-2000:]
