"""The MLflow UI, in a real browser: a store of tiny runs served by `mlflow server`, rendered by headless Chromium."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from xstilts.pipeline.phases import run_intermediate, run_target
from xstilts.pipeline.retrieve import run_retrieve
from xstilts.tracking import phase_run

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ui_check.py"
REQUIRE = "XSTILTS_REQUIRE_BROWSER"  # .ci/run sets it to 1: there a missing browser fails the test, not skips it


def _ui_check():
    spec = importlib.util.spec_from_file_location("ui_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ui_check = _ui_check()


def test_a_page_without_the_runs_names_or_datasets_fails_the_check():
    want = ui_check.Expected("1", None, ["intermediate vitaminc"], {"intermediate vitaminc": ["vitaminc train"]})
    dom = "<html><head><title>Overview - Experiment 1 - MLflow</title></head><body><a>gentle-owl-42</a></body></html>"
    assert ui_check.problems(want, dom) == [
        "the experiment's mlflow.experimentKind tag is None, not 'custom_model_development'",
        "the page is 'Overview - Experiment 1 - MLflow', not the runs table",
        "run 'intermediate vitaminc' is not on the page",
        "run 'intermediate vitaminc' shows none of its datasets (vitaminc train)",
    ]
    old = ui_check.Expected(
        "1", "custom_model_development", ["gentle-owl-42"], {}, ["gentle-owl-42"], ["gentle-owl-42"]
    )
    assert ui_check.problems(old, dom)[1:] == [  # a store of MLflow's random names, data stages among the runs
        "run 'gentle-owl-42' is not named for its phase and task",
        "run 'gentle-owl-42' is a data stage's, not in the data experiment",
    ]
    shown = "<title>Runs - Experiment 1 - MLflow</title><a>intermediate vitaminc</a><a>vitaminc train (d549618057)</a>"
    assert ui_check.problems(ui_check.Expected("1", "custom_model_development", want.runs, want.datasets), shown) == []


def _require_browser() -> None:
    """Skip without Chromium, or fail when ``$XSTILTS_REQUIRE_BROWSER`` is 1 (CI, where the test must run)."""
    if shutil.which(ui_check.CHROMIUM) is None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{ui_check.MISSING_CHROMIUM}, and {REQUIRE}=1 requires it.")
        pytest.skip(ui_check.MISSING_CHROMIUM)


def test_the_runs_page_shows_each_runs_name_and_datasets(project, tmp_path):
    _require_browser()
    run_intermediate("vitaminc")
    run_target("multiemo", "vitaminc")
    run_retrieve("udhr", "none")
    with phase_run("prepare", {"task": "udhr"}, {"task": "udhr"}):
        pass  # a data stage: in the data experiment, not on this page
    shot = tmp_path / "runs.png"
    want, missing = ui_check.check(tmp_path / "mlflow.db", shot)  # the store of the project fixture
    assert missing == []
    assert sorted(want.runs) == ["intermediate vitaminc", "retrieve udhr <- none", "target multiemo <- vitaminc"]
    assert sorted(want.datasets["target multiemo <- vitaminc"]) == ["multiemo dev", "multiemo test", "multiemo train"]
    assert shot.read_bytes().startswith(b"\x89PNG")
