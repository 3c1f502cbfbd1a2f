"""The study: paired bootstrap, Holm, per-example metric parts, and verdicts from one set of numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthetic_study import BUDGET, DESIGN, LEARNED, frame, levels_target, scored, target
from xstilts.errors import XstiltsError
from xstilts.families.base import Evaluation
from xstilts.families.tagging import tagging_scores
from xstilts.study.analysis import align
from xstilts.study.bootstrap import Scored
from xstilts.study.document import build, markdown
from xstilts.study.intervals import holm
from xstilts.study.runs import Design


def one_stratum(values) -> Scored:
    values = np.asarray(values, dtype=float)
    return Scored(values, np.ones_like(values), np.zeros(len(values), dtype=str))


def test_strata_are_resampled_separately_and_averaged():
    from xstilts.study.bootstrap import resampled_metrics

    # two languages, one perfect and one at zero: every resample keeps each language's size, so the mean over
    # languages never moves
    a = Scored(np.array([1.0, 1, 0, 0]), np.ones(4), np.array(["de", "de", "fr", "fr"]))
    assert set(resampled_metrics([a], 2_000, seed=0)[0].tolist()) == {0.5}


def test_translations_of_one_row_are_resampled_together():
    from xstilts.study.bootstrap import resampled_metrics

    # ids x and y in two languages; right on x in both, wrong on y in both: drawing k copies of x out of 2 gives
    # k/2 in each language, so the language mean is 0, 1/2 or 1; independent draws per language would give 1/4, 3/4
    langs, score = np.array(["de", "de", "fr", "fr"]), np.array([1.0, 0, 1, 0])
    shared = Scored(score, np.ones(4), langs, clusters=np.array(["x", "y", "x", "y"]))
    assert set(resampled_metrics([shared], 2_000, seed=0)[0].tolist()) == {0.0, 0.5, 1.0}
    apart = Scored(score, np.ones(4), langs, clusters=np.array(["de-x", "de-y", "fr-x", "fr-y"]))
    assert {0.25, 0.75} <= set(resampled_metrics([apart], 2_000, seed=0)[0].tolist())


def test_keys_missing_from_some_languages_are_still_resampled_together():
    from xstilts.study.bootstrap import resampled_metrics, translation_keys

    # UDHR-like: de lacks paragraph z. de: x right, y wrong; fr: x right, y and z wrong. Drawing (x, y, z) counts
    # (a, b, c) gives de = a/(a+b), fr = a/3: de = 1 forces fr >= 1/3, so the language mean is never 1/2, which
    # independent draws per language reach (de = 1, fr = 0)
    ids = ["udhr-de-1-0", "udhr-de-2-0", "udhr-fr-1-0", "udhr-fr-2-0", "udhr-fr-3-0"]
    langs = np.array(["de", "de", "fr", "fr", "fr"])
    keys = translation_keys(ids, langs.tolist())
    assert keys.tolist() == ["udhr-1-0", "udhr-2-0", "udhr-1-0", "udhr-2-0", "udhr-3-0"]
    values = resampled_metrics([Scored(np.array([1.0, 0, 1, 0, 0]), np.ones(5), langs, keys)], 2_000, seed=0)[0]
    assert set(np.round(values, 6).tolist()) <= {
        0.0,
        round(1 / 3, 6),
        round(5 / 12, 6),
        round(2 / 3, 6),
        round(5 / 6, 6),
        1.0,
    }
    stratified = resampled_metrics([Scored(np.array([1.0, 0, 1, 0, 0]), np.ones(5), langs)], 2_000, seed=0)[0]
    assert 0.5 in stratified.tolist()


def test_holm_matches_a_hand_computation():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04; monotone: 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_a_paired_bootstrap_refuses_unpaired_examples():
    from xstilts.study.bootstrap import resampled_metrics

    with pytest.raises(XstiltsError, match="same examples"):
        resampled_metrics([one_stratum([1, 0]), one_stratum([1, 0, 1])], 1_000, seed=0)


@pytest.mark.parametrize("labels", [("NOUN", "VERB", "ADJ"), ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")])
def test_tagging_parts_give_the_familys_own_metric_over_any_rows(labels):
    from xstilts.families import spec

    rng = np.random.default_rng(7)
    gold = [list(rng.choice(labels, rng.integers(1, 9))) for _ in range(60)]
    pred = [
        [t if rng.random() < 0.7 else (None if rng.random() < 0.2 else str(rng.choice(labels))) for t in g]
        for g in gold
    ]
    ev = Evaluation(
        "tagging",
        list(labels),
        [str(i) for i in range(60)],
        ["tr"] * 60,
        ["news"] * 60,
        [],
        [],
        [],
        gold_tags=gold,
        pred_tags=pred,
    )
    family = spec("tagging")
    metric = family.main_metric(labels)
    score, weight = family.parts(ev, metric)
    for rows in (np.arange(60), np.arange(0, 60, 3)):
        expected = tagging_scores([gold[i] for i in rows], [pred[i] for i in rows], labels)[metric]
        assert score[rows].sum() / weight[rows].sum() == pytest.approx(expected)


def test_domain_and_language_shift_are_measured_apart():
    study = build([levels_target(0.10, 0.005, 40, example_noise=0.02)], DESIGN, BUDGET, LEARNED)
    rob = study["targets"]["emo"]["robustness"]["none"]
    assert set(study["targets"]["emo"]["measures"]) == {"zero_shot", "zero_shot_ood", "zero_shot_id", "english_ood"}
    assert rob["gap_ood_minus_id"] == pytest.approx(rob["zero_shot_ood"] - rob["zero_shot_id"])
    assert {"original", "translated"} <= set(rob)  # Polish, the human original, apart


def test_runs_scored_on_different_examples_are_refused():
    a = frame(5).assign(score=1.0, weight=1.0)
    with pytest.raises(XstiltsError, match="different examples"):
        align({"none": a, "all": a.iloc[1:]}, "emo")
    with pytest.raises(XstiltsError, match="score/weight"):
        align({"none": a.drop(columns=["score"])}, "emo")


# ------------------------------------------------------------------ bad input

PAIR = {
    "intermediate__groups": {"pair": ["vitaminc", "socialiqa"]},
    "intermediate__tasks": ["vitaminc", "socialiqa", "pair"],
    "target__inits": ["none", "vitaminc", "socialiqa", "pair"],
    "retrieve__encoders": ["none", "vitaminc", "socialiqa", "pair"],
    "study": {"group": "pair", "resamples": 1000},
}


def test_a_design_missing_a_member_fails_in_one_sentence(tmp_path, tiny_encoder_dir):
    from project import override, tiny_params
    from xstilts.params import load_params

    params = override(tiny_params(tiny_encoder_dir), **{**PAIR, "target__inits": ["none", "vitaminc", "pair"]})
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    with pytest.raises(XstiltsError) as failure:
        load_params(tmp_path / "params.yaml")
    assert str(failure.value) == (
        "params.yaml: target.inits lacks socialiqa: the study of group pair needs none, each member alone and the "
        "group (or set study.group: null)."
    )


def test_a_report_without_its_runs_fails_and_keeps_the_last_report(project):
    import mlflow
    import yaml

    from project import override
    from xstilts.pipeline.report import run_report

    params = override(yaml.safe_load((project / "params.yaml").read_text()), **PAIR)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    last = project / "reports" / "study.json"
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text('{"the": "last report"}')
    with pytest.raises(XstiltsError, match=r"multiemo-none.csv is missing; run `dvc repro`"):
        run_report()
    assert last.read_text() == '{"the": "last report"}'
    [run] = mlflow.search_runs(experiment_names=["xstilts"], output_format="list")
    assert run.info.status == "FAILED" and "is missing" in run.data.tags["failure_reason"]
    assert run.data.tags["phase"] == "report"


# ------------------------------------------------------------------ several seeds


def test_several_seeds_are_averaged_per_example_and_reported_with_their_spread():
    rng = np.random.default_rng(1)
    base = frame(30)
    rates = {"hotels": 0.6, "medicine": 0.5}
    t = target({i: [scored(base, rates, rng) for _ in range(2)] for i in ("none", "nli", "qa", "all")})
    first, second = t.seed_runs["all"]
    assert t.runs["all"]["score"].tolist() == ((first["score"] + second["score"]) / 2).tolist()
    design = Design("all", ("nli", "qa"), ("emo",), (), -1, 13, 2_000, 0.95, seeds=(1, 2))
    study = build([t], design, BUDGET, LEARNED)
    spread = study["targets"]["emo"]["seeds"]["none"]["zero_shot"]
    assert len(spread["values"]) == 2 and spread["sd"] == pytest.approx(np.std(spread["values"], ddof=1), abs=1e-6)
    assert study["design"]["seeds"] == [1, 2] and "2 seeds" in study["answer"][0]
    text = markdown(study, [])
    assert " ± " in text and "adds the seed variance to the test set's" in text


def test_the_budget_names_each_spec_once_across_seeds_and_says_when_seeds_differ():
    from xstilts.study.prose import budget_sentence

    study = {
        "design": {"seeds": [13, 14], "resamples": 1000},
        "budget": {
            "a-s13": {"spec": "a", "steps": 10, "examples": 160, "precision": "bf16"},
            "a-s14": {"spec": "a", "steps": 10, "examples": 160, "precision": "bf16"},
            "b-s13": {"spec": "b", "steps": 5, "examples": 80, "precision": "fp32"},
            "b-s14": {"spec": "b", "steps": 6, "examples": 80, "precision": "fp32"},
        },
        "targets": {"t": {"test_rows": 30, "test_languages": 1}},
    }
    assert budget_sentence(["t"], study) == (
        "Budget: intermediate training `a` 10 steps on 160 examples in bf16 (each seed), "
        "`b` 5 steps on 80 examples in fp32 / 6 steps on 80 examples in fp32; t 30 test rows in 1 language; 2 seeds, "
        "1,000 paired bootstrap resamples."
    )


def test_retrieval_by_layer_averages_the_seeds_runs(tmp_path, monkeypatch):
    import json

    from xstilts.study.runs import retrieval_layers

    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    folder = tmp_path / "metrics" / "retrieve"
    folder.mkdir(parents=True)
    scores = {
        "t-none": (0.9, 0.5),
        "t-g-s1": (0.2, 0.6),
        "t-g-s2": (0.4, 0.8),
        "t-a-s1": (0.1, 0.1),
        "t-a-s2": (0.1, 0.1),
    }
    for run, (last, layer4) in scores.items():
        (folder / f"{run}.json").write_text(
            json.dumps({"test_accuracy_zeroshot": last, "layer4_test_accuracy_zeroshot": layer4})
        )
    design = Design("g", ("a",), (), ("t",), -1, 13, 100, 0.95, seeds=(1, 2))
    layers = retrieval_layers("t", design)
    assert layers["none"] == {"4": 0.5, "-1": 0.9}
    assert layers["g"] == pytest.approx({"4": 0.7, "-1": 0.3})
    assert list(layers["g"]) == ["4", "-1"]
