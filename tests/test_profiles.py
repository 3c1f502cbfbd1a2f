"""Profiles: every task they name exists in the right role, and switching rewrites params.yaml validly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from xstilts.errors import XstiltsError
from xstilts.params import load_params
from xstilts.profiles import apply_profile
from xstilts.tasks import Role, get_task

REPO = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("name", PROFILES)
def test_profile_names_real_tasks(name):
    profile = yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text())
    source = profile["data"].get("source", "offline")
    for task in profile["data"]["tasks"]:
        get_task(task, source=source)
    groups = profile["intermediate"].get("groups", {})
    for group, members in groups.items():
        assert group not in profile["data"]["tasks"] and set(members) <= set(profile["data"]["tasks"]), group
    for section, role in (("intermediate", Role.INTERMEDIATE), ("target", Role.TARGET), ("retrieve", Role.RETRIEVAL)):
        for task in profile[section]["tasks"]:
            if section == "intermediate" and task in groups:
                continue
            found = get_task(task, role, source=source)
            assert task in profile["data"]["tasks"] or found.train_from in profile["data"]["tasks"], task
        for key in profile[section].get("per_task", {}):
            assert key in profile[section]["tasks"] or key in groups, f"{section}.per_task.{key}"
    for init in profile["target"]["inits"] + profile["retrieve"]["encoders"]:
        assert init == "none" or init in profile["intermediate"]["tasks"]


def test_switching_profiles_round_trips(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    apply_profile("full", tmp_path)
    full = load_params(tmp_path / "params.yaml")
    assert full.profile == "full" and "libreoffice_help" in full.data.tasks
    assert "# xstilts parameters" in (tmp_path / "params.yaml").read_text()  # comments survive
    apply_profile("default", tmp_path)
    default = load_params(tmp_path / "params.yaml")
    assert default.data.tasks == load_params(REPO / "params.yaml").data.tasks
    assert default.intermediate.tasks == ["sst2", "socialiqa", "all"] and default.study.group == "all"
    assert default.intermediate.for_task("all").examples_cap == 1000
    assert default.intermediate.for_task("sst2").examples_cap is None
    apply_profile("paper", tmp_path)
    paper = load_params(tmp_path / "params.yaml")
    assert paper.model.name == "xlm-roberta-large" and paper.data.source == "hub"
    assert paper.target.for_task("udpos").epochs == 10 and paper.target.for_task("xquad").max_length == 384


def test_unknown_profile(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    with pytest.raises(XstiltsError, match="Unknown profile 'huge'"):
        apply_profile("huge", tmp_path)


def test_every_switch_is_reversible(tmp_path):
    """Switching to a profile gives the same params.yaml (comments included) whatever was there before."""
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    fresh = {}
    for name in PROFILES:
        shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
        apply_profile(name, tmp_path)
        fresh[name] = (tmp_path / "params.yaml").read_text()
    assert fresh["default"] == (REPO / "params.yaml").read_text()  # the committed params.yaml is the default
    for first in PROFILES:
        for then in PROFILES:
            apply_profile(first, tmp_path)
            apply_profile(then, tmp_path)
            assert (tmp_path / "params.yaml").read_text() == fresh[then], (first, then)
    apply_profile("paper", tmp_path)
    paper = load_params(tmp_path / "params.yaml")
    assert "squadshifts" not in paper.intermediate.per_task  # the default's runs do not leak into the paper's
    assert paper.intermediate.for_task("all").examples_cap == 20000


@pytest.mark.parametrize("name", [p for p in PROFILES if p != "bigbench"])
def test_a_fresh_clone_can_fetch_every_profile_but_bigbench(name):
    """Every offline task a profile names reads only packages the registries still serve."""
    profile = yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text())
    source = profile["data"].get("source", "offline")
    unserved = [t for t in profile["data"]["tasks"] if not get_task(t, source=source).served()]
    assert not unserved, f"profile {name} needs bigbench 1.0.0 for {unserved}"
    bigbench = yaml.safe_load((REPO / "profiles" / "bigbench.yaml").read_text())
    assert not all(get_task(t).served() for t in bigbench["data"]["tasks"])
