"""Open a store's xstilts experiment in the real MLflow UI (headless Chromium) and check what a person sees.

    .venv/bin/python scripts/ui_check.py [--store mlflow.db] [--screenshot docs/mlflow-runs.png]

The store is copied first (SQLite's backup API: a consistent copy while a pipeline writes to it), served by
``mlflow server`` on a free localhost port, and the experiment's runs page rendered twice by Chromium: the DOM
(a window tall enough for every row, since the table renders only the rows in view) and a 2000x1000 screenshot.
The check: the experiment is tagged as model training and holds no data-stage run, every top-level run is
named for its phase and its name is in the page (trials are folded under their tune run), and every run that
logged datasets shows one of them. Exit 1 with what is missing.

MLflow 3.17's UI chooses an experiment's page by its "GenAI | Model training" switch (``?workflowType=``, else
the browser's last choice, GenAI for a new browser), not by the experiment's tag: the page opened here is the one
the switch's "Model training" shows, ``#/experiments/<id>/runs?workflowType=machine_learning``.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from mlflow import MlflowClient

from xstilts.tracking import DATA_PHASES, EXPERIMENT, KIND_TAG, MODEL_TRAINING, Tag

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "chromium"
MISSING_CHROMIUM = "chromium not installed (apt install chromium)"
PARENT_TAG = "mlflow.parentRunId"


@dataclass
class Expected:
    """What the runs page must show: the experiment id, top-level run names, and each run's dataset names; and
    the runs that break the rules whatever the page shows."""

    experiment_id: str
    kind: str | None
    runs: list[str]
    datasets: dict[str, list[str]] = field(default_factory=dict)  # run name -> its dataset names
    unnamed: list[str] = field(default_factory=list)  # names that do not start with the run's phase
    data_stages: list[str] = field(default_factory=list)  # data-stage runs here, not in the data experiment


def copy_store(source: Path, dest: Path) -> Path:
    """A consistent copy of the SQLite store ``source`` (opened read-only) at ``dest``."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(dest) as out:
        src.backup(out)
    return dest


def expected(db: Path, experiment: str = EXPERIMENT) -> Expected:
    """Read from the store what the page must show."""
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"{db} has no experiment {experiment!r}; make runs first (`make run`).")
    runs = [r for r in client.search_runs([found.experiment_id], max_results=1000) if PARENT_TAG not in r.data.tags]
    datasets = {r.info.run_name: [i.dataset.name for i in r.inputs.dataset_inputs] for r in runs}
    return Expected(
        found.experiment_id,
        found.tags.get(KIND_TAG),
        [r.info.run_name for r in runs],
        {k: v for k, v in datasets.items() if v},
        [r.info.run_name for r in runs if r.info.run_name.split(" ")[0] != r.data.tags.get(Tag.PHASE)],
        [r.info.run_name for r in runs if r.data.tags.get(Tag.PHASE) in DATA_PHASES],
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(db: Path | str, scratch: Path, wait_s: float = 180) -> Iterator[str]:
    """``mlflow server`` on ``db`` (a sqlite file, or a database URL) at a free localhost port, until the block
    ends; yields its base URL."""
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    backend = db if isinstance(db, str) else f"sqlite:///{db}"
    command = [str(mlflow), "server", "--backend-store-uri", backend, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--default-artifact-root", (scratch / "artifacts").as_uri()]
    log = scratch / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=scratch)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + wait_s
        while True:
            if server.poll() is not None:
                raise SystemExit(f"mlflow server exited ({server.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit(f"mlflow server did not answer within {wait_s:.0f} s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def chromium(url: str, scratch: Path, size: tuple[int, int], screenshot: Path | None = None) -> str:
    """Render ``url`` in headless Chromium (a fresh profile) and return its DOM, or write ``screenshot``."""
    binary = shutil.which(CHROMIUM)
    if binary is None:
        raise SystemExit(MISSING_CHROMIUM)
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    command += [f"--user-data-dir={tempfile.mkdtemp(dir=scratch)}", f"--window-size={size[0]},{size[1]}"]
    command += ["--virtual-time-budget=30000"]
    command += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


class _Text(HTMLParser):
    """The page's text nodes (stripped) and its title; scripts and styles left out."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self.title = ""
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if (text := data.strip()) and not {"script", "style"} & set(self._in):
            self.nodes.append(text)
            if "title" in self._in and not self.title:  # the document's, before any in the body
                self.title = text


def problems(want: Expected, dom: str) -> list[str]:
    """What the rendered page lacks, one sentence each."""
    page = _Text()
    page.feed(dom)
    shown = set(page.nodes)
    found = []
    if want.kind != MODEL_TRAINING:
        found.append(f"the experiment's {KIND_TAG} tag is {want.kind!r}, not {MODEL_TRAINING!r}")
    if not page.title.startswith("Runs"):
        found.append(f"the page is {page.title!r}, not the runs table")
    if not want.runs:
        found.append("the experiment has no runs")
    found += [f"run {name!r} is not named for its phase and task" for name in want.unnamed]
    found += [f"run {name!r} is a data stage's, not in the data experiment" for name in want.data_stages]
    found += [f"run {name!r} is not on the page" for name in want.runs if name not in shown]
    found += [
        f"run {name!r} shows none of its datasets ({', '.join(names)})"
        for name, names in want.datasets.items()
        if not any(node == n or node.startswith(f"{n} (") for node in shown for n in names)
    ]
    return found


def check(store: Path, screenshot: Path | None, experiment: str = EXPERIMENT) -> tuple[Expected, list[str]]:
    """Copy ``store``, serve it, render its runs page; return what was expected and what is missing."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        db = copy_store(store, scratch / "mlflow.db")
        want = expected(db, experiment)
        with serve(db, scratch) as base:
            url = f"{base}/#/experiments/{want.experiment_id}/runs?workflowType=machine_learning"
            dom = chromium(url, scratch, (1600, min(600 + 48 * len(want.runs), 12000)))
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                chromium(url, scratch, (2000, 1000), screenshot.resolve())
    return want, problems(want, dom)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "mlflow.db", help="the SQLite store (read, not changed)")
    parser.add_argument("--experiment", default=EXPERIMENT)
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "mlflow-runs.png")
    args = parser.parse_args(argv)
    if not args.store.is_file():
        raise SystemExit(f"{args.store} does not exist; pass --store with an MLflow SQLite store.")
    want, missing = check(args.store, args.screenshot, args.experiment)
    print(f"{len(want.runs)} runs, {len(want.datasets)} with datasets; screenshot: {args.screenshot}")
    for line in missing:
        print(f"MISSING: {line}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
