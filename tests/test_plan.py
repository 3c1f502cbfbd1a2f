"""``xstilts plan``: the stage graph's schedule, estimates from this machine's history, the detectable effect."""

from __future__ import annotations

import json

import pytest

from xstilts import timing
from xstilts.params import load_params
from xstilts.pipeline import plan
from xstilts.study.intervals import POWER, planned

GRAPH = {
    "a": {"outs": ["x"]},
    "b": {"deps": ["x"], "outs": ["y/one"]},
    "c": {"deps": ["x"], "metrics": [{"m.json": {"cache": False}}]},
    "d": {"deps": ["y", "m.json"]},
}


def test_the_schedule_follows_the_stage_graph():
    seconds = {"a": 1.0, "b": 5.0, "c": 3.0, "d": 2.0}
    assert plan.graph(GRAPH) == {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}
    assert plan.schedule(GRAPH, seconds, 1) == 11.0
    assert plan.schedule(GRAPH, seconds, 2) == 1.0 + 5.0 + 2.0  # b and c side by side
    assert plan.schedule(GRAPH, {"b": 5.0, "d": 2.0}, 4) == 7.0  # stages not run are done already


def test_what_runs_is_downstream_of_what_changed_and_code_reruns_only_its_kinds():
    stages = {"code": {"outs": ["fp/a.json", "fp/b.json"]}, **GRAPH}
    stages["a"]["deps"], stages["c"]["deps"] = ["fp/a.json"], ["x", "fp/b.json"]
    assert plan.downstream(stages, {"b"}, set()) == ["b", "d"]
    assert plan.downstream(stages, {"code"}, set()) == ["code"]  # the fingerprints it writes are unchanged
    assert plan.downstream(stages, {"code"}, {"fp/b.json"}) == ["code", "c", "d"]
    assert plan.downstream(stages, {"code"}, {"fp/a.json"}) == ["code", "a", "b", "c", "d"]


def test_estimates_prefer_this_stage_then_its_seeds_then_its_family_then_its_kind():
    stages = {n: {} for n in ("target-brown_pos-all-s14", "target-brown_pos-sst2", "target-polarity-none", "fetch")}
    rows = [
        {"kind": "command", "ok": True, "stage": "target-brown_pos-all-s13", "seconds": 40.0, "at": 100.0},
        {"kind": "command", "ok": True, "stage": "target-brown_pos-none", "seconds": 30.0, "at": 200.0},
        {"kind": "command", "ok": True, "stage": "target-brown_pos-sst2", "seconds": 20.0, "at": 300.0},
        {"kind": "command", "ok": False, "stage": "fetch", "seconds": 99.0, "at": 400.0},  # failed: not a timing
    ]
    seconds, sources = plan.estimate(stages, rows, scale=3.0)
    assert seconds == {
        "target-brown_pos-all-s14": 40.0,  # the same stage, another seed
        "target-brown_pos-sst2": 20.0,  # itself
        "target-polarity-none": 30.0,  # no polarity yet: the median of the target stages here
        "fetch": plan.REFERENCE_SECONDS["fetch"],  # data stages are not scaled by the training step
    }
    assert sources["target-polarity-none"] == "target stages here"
    seconds, sources = plan.estimate({"target-x-none": {}}, [], scale=3.0)
    assert (
        seconds["target-x-none"] == 3.0 * plan.REFERENCE_SECONDS["target"]
        and sources["target-x-none"] == "reference x 3"
    )


def test_a_stages_evaluation_is_estimated_from_its_examples_at_this_machines_rate():
    rows = [
        {
            "kind": "evaluate",
            "stage": "target-brown_pos-none",
            "family": "tagging",
            "rows": 600,
            "seconds": 3.0,
            "at": 95,
        },
        {"kind": "command", "ok": True, "stage": "target-brown_pos-none", "seconds": 30.0, "at": 100.0},
    ]
    evaluated = {"target-brown_pos-all": [("tagging", 600), ("tagging", 1400)], "target-polarity-none": [("x", 9)]}
    stages = {n: {} for n in ("target-brown_pos-all", "target-polarity-none", "target-brown_pos-none")}
    seconds, sources = plan.estimate(stages, rows, 1.0, evaluated)
    assert seconds["target-brown_pos-all"] == 27.0 + 2000 * 0.005  # the rest of a brown_pos stage + 2,000 examples
    assert sources["target-brown_pos-all"].endswith("+ evaluation from its examples")
    assert seconds["target-polarity-none"] == 30.0  # a family with no known rate: a whole stage as measured
    assert seconds["target-brown_pos-none"] == 30.0  # no examples given: as it ran


def test_history_is_this_machines_only(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_STAGE", "target-a-none")
    timing.record("command", 12.0, ok=True)
    (tmp_path / timing.TIMINGS).open("a").write(json.dumps({"kind": "command", "stage": "b", "cpu": "other"}) + "\n")
    assert [r["stage"] for r in timing.history()] == ["target-a-none"]


@pytest.mark.parametrize("seeds", [1, 3])
def test_the_detectable_effect_uses_the_reports_error_parts(project, seeds):
    params = load_params()
    params.study.group, params.study.seeds = "g", [13, 14, 15]
    primary = {"seeds": seeds, "se_seeds": 0.004 if seeds > 1 else 0.0, "se_test": 0.003, "n_examples": 400}
    (project / "reports").mkdir(exist_ok=True)
    (project / "reports/study.json").write_text(json.dumps({"targets": {"multiemo": {"primary": primary}}}))
    found = plan.detectable_effects(params)["multiemo"]
    spread = 0.004 * seeds**0.5 if seeds > 1 else 2**0.5 * params.study.prior_seed_sd / 100
    assert found["effect"] == pytest.approx(100 * planned(spread / 3**0.5, 0.003, 2, 0.05, POWER))
    need = found["seeds_needed"]
    assert 100 * planned(spread / need**0.5, 0.003, need - 1, 0.05, POWER) <= params.study.min_effect
    assert need == 2 or 100 * planned(spread / (need - 1) ** 0.5, 0.003, need - 2, 0.05, POWER) > 2.0
    assert ("prior_seed_sd" in found["why"]) == (seeds == 1)
    params.study.seeds = []
    assert plan.detectable_effects(params)["multiemo"]["effect"] is None  # one seed: nothing about the procedure
    (project / "reports/study.json").unlink()
    params.study.seeds = [13, 14, 15]
    first = plan.detectable_effects(params)["multiemo"]  # no run yet: the seed part alone, a lower bound
    prior = 2**0.5 * params.study.prior_seed_sd / 100
    assert first["lower_bound"] and first["effect"] == pytest.approx(100 * planned(prior / 3**0.5, 0, 2, 0.05, POWER))


def test_the_plan_reads_the_examples_of_current_prepared_data_only(project, monkeypatch):
    monkeypatch.setattr(plan, "step_seconds", lambda precision: plan.REFERENCE_STEP)  # the probe: tested by use
    params = load_params()
    found = plan.evaluated_examples(params)
    assert found["target-multiemo-none"] == [("classification", 12)]  # dev 6 + test 6 fixture rows
    assert "target-multiemo-none" not in plan.evaluated_examples(params, {"prepare-multiemo"})  # to be re-prepared
    made = plan.make_plan(params, detect=False, stale=False)
    assert set(made.to_run) == set(made.stages) and made.wall(1) >= made.wall(4) > 0


def test_a_failing_dvc_status_is_said_and_every_stage_counted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))  # not a DVC repository: `dvc status` fails
    assert plan.stale_stages(GRAPH) == list(GRAPH)
    assert "xstilts plan: `dvc status` failed (" in capsys.readouterr().err
