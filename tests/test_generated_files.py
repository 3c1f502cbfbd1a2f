"""`make run` leaves `git status` clean: what the default pipeline writes is either git-ignored or committed
exactly as it writes it (the default profile's data cards), and it writes no other profile's card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from project import place_packages
from xstilts.params import load_params
from xstilts.pipeline.dvcfile import build_stages

REPO = Path(__file__).resolve().parents[1]
DEFAULT = load_params(REPO / "profiles" / "default.yaml")
# committed as the default run writes it on the machine named in docs/pipeline.md (DVC refuses a git-ignored one);
# its models' hashes are that machine's, so a CPU that trains in another precision rewrites them
LOCK = "dvc.lock"


def written(params) -> set[str]:
    """Every path a stage of ``params``'s pipeline writes (its outs, metrics and plots)."""
    paths = set()
    for stages in build_stages(params).values():
        for stage in stages.values():
            for out in (o for key in ("outs", "metrics", "plots") for o in stage.get(key, [])):
                paths.add(next(iter(out)) if isinstance(out, dict) else out)
    return paths


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)


def _committed(path: str) -> bool:
    return _git("ls-files", "--error-unmatch", path).returncode == 0


def _ignored(path: str) -> bool:
    return _git("check-ignore", "-q", "--no-index", path).returncode == 0


def test_the_default_run_writes_only_ignored_files_and_the_committed_cards():
    paths = written(DEFAULT)
    assert {"metrics/champions.json", "data/prepared/sst2", "reports/code/training.json"} <= paths  # the walk works
    committed = {p for p in paths if _committed(p)}
    assert committed == {f"data/cards/{task}.md" for task in DEFAULT.data.tasks}
    assert sorted(p for p in paths - committed if not _ignored(p)) == []
    assert not _ignored(LOCK) and _committed(LOCK)


def _stale(changes: list) -> list:
    """What `dvc status --json` says changed in a stage's command, code (``src/``) or params: not its data, which
    is this workspace's state (a fresh clone has none; a used one may hold other profiles' packages)."""
    found = []
    for change in changes:
        if change == "changed command":
            found.append(change)
        elif isinstance(change, dict):
            for path, how in change.get("changed deps", {}).items():
                if isinstance(how, dict) or (path.startswith("src/") and how != "deleted"):
                    found.append({path: how})  # a params file's entries come as a dict
    return found


def test_the_committed_lock_is_the_current_pipelines():
    """The committed dvc.lock names dvc.yaml's stages with today's code and params: when this fails, run `make run`
    and commit dvc.lock with the change."""
    lock = yaml.safe_load((REPO / LOCK).read_text())["stages"]
    assert set(lock) == set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=REPO, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    stale = {stage: found for stage, changes in json.loads(status.stdout).items() if (found := _stale(changes))}
    assert stale == {}


def test_the_default_run_rewrites_no_other_profiles_card():
    cards = set(_git("ls-files", "data/cards").stdout.split())
    others = {f"data/cards/{t}.md" for t in ("vitaminc", "multiemo", "squadshifts", "parsinlu_rc", "libreoffice_help")}
    assert others <= cards and not others & written(DEFAULT)


@pytest.mark.slow
def test_the_committed_cards_are_what_the_default_pipeline_writes(tmp_path, monkeypatch, mlflow_store):
    """The fetch, extract, prepare and validate stages of the default profile, in a temp project."""
    from xstilts.pipeline.data_stages import run_extract, run_prepare, run_validate

    (tmp_path / "params.yaml").write_text((REPO / "profiles" / "default.yaml").read_text())
    place_packages(tmp_path, DEFAULT.data.tasks)
    run_extract()
    for task in DEFAULT.data.tasks:
        run_prepare(task)
        run_validate(task)
        card = f"data/cards/{task}.md"
        assert (tmp_path / card).read_text() == (REPO / card).read_text(), f"{card} differs from what the run writes"
