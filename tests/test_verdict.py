"""The verdict: each answer from hand-made results, decided from one set of numbers (the interval printed beside
it, at Holm's level), its reason read back against those numbers, no verdict from one seed, the gate beside the
verdicts (never instead of them), runs of several machines never pooled, and the claim's languages and domains."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from synthetic_study import BUDGET, DESIGN, LEARNED, SPECS, gate_rows, levels_target, pos_like, udhr_like
from xstilts.study.analysis import Target
from xstilts.study.document import build, markdown, terminal_text
from xstilts.study.intervals import holm
from xstilts.study.runs import Design
from xstilts.study.verdict import bounds, classify

RESULT_SETS = {  # every answer, from a hand-made result set: (gain, seed noise, rows per cell, example noise)
    "yes": (levels_target(0.10, 0.005, 40, example_noise=0.02), LEARNED),
    "yes-small": (levels_target(0.01, 0.005, 40, example_noise=0.005), LEARNED),
    "yes-unclear": (levels_target(0.035, 0.005, 40, example_noise=0.03), LEARNED),
    "no-gain": (levels_target(0.0, 0.005, 40, example_noise=0.005), LEARNED),
    "worse": (levels_target(-0.10, 0.005, 40, example_noise=0.02), LEARNED),
    "inconclusive": (levels_target(0.02, 0.01, 10, example_noise=0.3), LEARNED),
}
LABELS = {
    "yes": "yes, at least 2 points",
    "yes-small": "yes, but smaller than 2 points",
    "yes-unclear": "yes, size unclear",
    "no-gain": "no gain of interest",
    "worse": "worse",
    "inconclusive": "inconclusive",
}


@pytest.mark.parametrize("expected", list(RESULT_SETS))
def test_the_verdict_gives_each_of_its_answers(expected):
    t, gate = RESULT_SETS[expected]
    study = build([t], DESIGN, BUDGET, gate)
    verdict = study["targets"]["emo"]["verdict"]
    assert verdict["code"] == expected and verdict["answer"] == LABELS[expected]
    label = LABELS[expected]
    assert study["answer"][0].startswith(f"**Classification.** {label[0].upper() + label[1:]}.")
    assert f"**{label}**" in markdown(study, [])


def _read(why: str) -> tuple[float, float, float]:
    """The level and the interval a reason sentence states."""
    found = re.search(r"its ([\d.]+)% (?:\(Holm-adjusted\) )?interval \[([+-][\d.]+), ([+-][\d.]+)\]", why)
    assert found, why
    return float(found[1]) / 100, float(found[2]) / 100, float(found[3]) / 100


def _holds(claim: str, low: float, high: float) -> bool:
    """Whether the claim a reason sentence makes of [low, high] is true (bounds in points, as printed)."""
    checks = {
        r"lies above ([\d.]+) points": lambda e: low > e,
        r"lies above 0 and below ([\d.]+) points": lambda e: 0 < low and high < e,
        r"lies above 0 and reaches ([\d.]+) points": lambda e: 0 < low <= e <= high,
        r"holds 0 and lies between -([\d.]+) and \+[\d.]+ points": lambda e: -e < low <= 0 <= high < e,
        r"holds 0 and reaches \+([\d.]+) points": lambda e: low <= 0 <= high and high >= e,
        r"holds 0 and reaches -([\d.]+) points": lambda e: low <= -e and low <= 0 <= high,
        r"lies below 0": lambda _: high < 0,
    }
    for pattern, check in checks.items():
        if (found := re.search(pattern, claim)) is not None:
            return check(float(found[1]) / 100 if found.groups() else 0.0)
    raise AssertionError(claim)


def test_each_reason_is_written_from_the_numbers_its_verdict_read():
    targets = [RESULT_SETS[a][0] for a in RESULT_SETS]
    declared = ("family", "metric", "train_language", "original_languages", "train_domains")
    renamed = [Target.of(f"t{k}", t.seed_runs, **{d: getattr(t, d) for d in declared}) for k, t in enumerate(targets)]
    study = build(renamed, DESIGN, BUDGET, LEARNED)
    table = "\n".join(markdown(study, []).split("## Primary comparisons and verdicts")[1].splitlines()[:12])
    for name, result in study["targets"].items():
        v = result["verdict"]
        confidence, low, high = _read(v["why"])
        assert confidence == pytest.approx(v["confidence"], abs=1e-4)
        assert (low, high) == (pytest.approx(v["low"], abs=6e-4), pytest.approx(v["high"], abs=6e-4))
        assert classify(v["low"], v["high"], DESIGN.min_effect) == v["code"]  # the decision, from those numbers
        assert _holds(v["why"], v["low"], v["high"])  # and what the sentence says of them is true
        assert f"| {name} |" in table and bounds(v) in table.split(f"| {name} |")[1].split("\n")[0]
        assert v["p_holm"] == result["primary"]["p_holm"]
        assert (v["p_holm"] < 0.05) == (v["low"] > 0 or v["high"] < 0)  # the adjusted p and the interval agree
    unassessed = build(renamed, dataclasses.replace(DESIGN, min_seeds=4), BUDGET, LEARNED)
    for result in unassessed["targets"].values():
        v = result["verdict"]
        assert v["answer"] == "not assessed (3 seeds)"
        assert _read(v["why"]) == (0.95, pytest.approx(v["low"], abs=6e-4), pytest.approx(v["high"], abs=6e-4))
        assert "covers these models only (test-set sampling)" in v["why"]


def test_one_seed_is_not_assessed_with_the_sensitivity_line_and_the_command_that_would_answer():
    rng = np.random.default_rng(0)
    pos, _ = pos_like(rng, {"all": 0.018}, 0.01, 1)
    udhr, _ = udhr_like(rng, {"all": -0.15}, 0.01, 1)
    design = Design("all", ("nli", "qa"), ("pos_tr",), ("udhr",), -1, 13, 2_000, 0.95, tuned=("nli", "qa", "all"))
    study = build([pos, udhr], design, BUDGET, LEARNED)
    for result in study["targets"].values():
        v = result["verdict"]
        assert v["answer"] == "not assessed (1 seed)" and v["scope"] == "these models only (test-set sampling)"
        assert result["detectable"]["effect"] is None and result["primary"]["se_seeds"] == 0
    assert study["targets"]["udhr"]["verdict"]["seed_sd_to_lose"] > 0.01  # 15 points worse: a few points of sd
    text = terminal_text(study)
    assert text.count("**not assessed (1 seed)**") == 4  # the table and the answer, per target
    assert "95%: these models only (test-set sampling)" in text
    assert "would stop being distinguishable from 0 at a seed sd above" in text  # the sensitivity line
    assert "`make run PROFILE=study`" in text and "`xstilts fanout --address <head>:6379`" in text
    assert "detects" not in text.split("## ")[0].split("pos_tr: ")[-1]  # no minimum detectable effect
    assert "test rows (same seeds" not in text  # more test rows are proposed only where the test set dominates
    assert "one seed (13): the intervals cover test-set sampling only" in markdown(study, [])
    assert "tuned once (Optuna, with `seed`) and held fixed across seeds" in markdown(study, [])


def test_the_gate_diagnoses_and_never_voids_a_verdict():
    t, _ = RESULT_SETS["worse"]
    learned = build([t], DESIGN, BUDGET, LEARNED)["targets"]["emo"]["verdict"]
    study = build([t], DESIGN, BUDGET, gate_rows(SPECS, stuck=("nli",)))
    verdict = study["targets"]["emo"]["verdict"]
    assert verdict == learned  # the same verdict, whatever the gate says
    assert "`nli` did not learn its task alone" in study["answer"][0]  # the member is named
    assert "majority class 'SUPPORTS'" in study["answer"][0]
    text = markdown(study, [])
    assert text.index("## Did phase 2 learn?") < text.index("## Primary comparisons")
    assert "| `nli` alone | 1 | accuracy" in text and "| **not learned** |" in text
    assert "`nli` alone not learned; `nli` in `all` not learned |" in text  # the gate beside the verdict


def test_a_group_head_that_did_not_learn_while_its_member_did_is_reported_as_interference():
    gate = gate_rows(SPECS)
    stuck = gate_rows({"all": ["nli"]}, stuck=("nli",))[0]
    gate = [r if (r["spec"], r["task"]) != ("all", "nli") else stuck for r in gate]
    study = build([RESULT_SETS["yes"][0]], DESIGN, BUDGET, gate)
    assert [f["kind"] for f in study["findings"]] == ["interference"]
    assert "**Interference**: `nli` learned alone" in study["answer"][0]
    assert study["targets"]["emo"]["verdict"]["code"] == "yes"  # still reported
    assert "(interference)" in markdown(study, [])


def test_runs_from_several_machines_are_never_pooled():
    t, _ = RESULT_SETS["yes"]
    machines = {"nli-s1": "bf16", "qa-s1": "bf16", "all-s1": "fp32"}
    study = build([t], DESIGN, BUDGET, LEARNED, machines=machines)
    v = study["targets"]["emo"]["verdict"]
    assert v["answer"] == "not assessed (runs from 2 machine settings)"
    assert "never pooled" in v["why"] and "bf16: 2 runs; fp32: 1 run" in markdown(study, [])


def test_the_report_is_the_same_bytes_on_a_rerun():
    t, gate = RESULT_SETS["yes"]
    first, again = build([t], DESIGN, BUDGET, gate), build([t], DESIGN, BUDGET, gate)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    assert markdown(again, []) == markdown(first, [])
    primary = first["targets"]["emo"]["primary"]
    assert primary["kind"] == "robustness" and primary["low"] > 0 and primary["p_holm"] < 0.05
    assert first["targets"]["emo"]["detectable"]["effect"] > 0
    assert set(primary["members"]) == {"nli", "qa"}


def test_holm_runs_over_the_primary_comparisons_of_all_targets():
    yes, _ = RESULT_SETS["yes"]
    other = levels_target(0.0, 0.01, 10, seed=4, example_noise=0.3)
    declared = ("family", "metric", "train_language", "original_languages", "train_domains")
    other = Target.of("emo2", other.seed_runs, **{k: getattr(yes, k) for k in declared})
    study = build([yes, other], DESIGN, BUDGET, LEARNED)
    ps = {n: t["primary"] for n, t in study["targets"].items()}
    assert [round(x, 6) for x in holm([ps["emo"]["p"], ps["emo2"]["p"]])] == [ps["emo"]["p_holm"], ps["emo2"]["p_holm"]]
    assert all(c["role"] != "primary" for t in study["targets"].values() for c in t["comparisons"])
    # the first step of Holm's procedure tests at alpha / 2: the interval printed beside it is a 97.5% one
    assert study["targets"]["emo"]["verdict"]["confidence"] == pytest.approx(0.975)
    assert "97.5% (Holm-adjusted) interval" in study["targets"]["emo"]["verdict"]["why"]


def test_the_claim_names_the_languages_and_domains_it_covers():
    study = build([RESULT_SETS["yes"][0]], DESIGN, BUDGET, LEARNED)
    assert study["targets"]["emo"]["covers"] == {"languages": ["de", "fr", "pl"], "domains": ["hotels", "medicine"]}
    assert "(accuracy; de, fr, pl; 2 domains: hotels, medicine)" in study["answer"][0]
