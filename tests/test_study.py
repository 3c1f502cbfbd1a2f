"""The study: paired bootstrap, Holm, per-example metric parts, best member on dev, and verdicts from numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from xstilts.errors import XstiltsError
from xstilts.families.base import Evaluation
from xstilts.families.tagging import tagging_scores
from xstilts.study.analysis import Target, align, best_member, measures
from xstilts.study.bootstrap import Scored, holm, paired
from xstilts.study.report import build, markdown
from xstilts.study.runs import Design


def one_stratum(values) -> Scored:
    values = np.asarray(values, dtype=float)
    return Scored(values, np.ones_like(values), np.zeros(len(values), dtype=str))


def test_interval_of_a_hand_made_example_matches_the_hand_computation():
    # the differences are 1, 1, 1, 0: a resampled mean difference is Binomial(4, 3/4) / 4, so the 2.5% quantile
    # is 1/4 (P(X <= 0) = 0.004 < 0.025 <= P(X <= 1) = 0.051) and the 97.5% one is 1 (P(X <= 3) = 0.68)
    result = paired(one_stratum([1, 1, 1, 0]), one_stratum([0, 0, 0, 0]), 10_000, seed=3)
    assert (result.diff, result.low, result.high) == (0.75, 0.25, 1.0)
    # as far from 0.75 as 0 is: only a resampled difference of 0, probability (1/4)^4 = 0.0039
    assert 0.002 < result.p < 0.007


def test_interval_agrees_with_scipy_bootstrap_on_a_paired_mean():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.62, rng.random(300) < 0.55
    ours = paired(one_stratum(a), one_stratum(b), 10_000, seed=1)
    theirs = scipy.stats.bootstrap(
        (a.astype(float), b.astype(float)),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        paired=True,
        n_resamples=10_000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.01)
    assert ours.high == pytest.approx(theirs.high, abs=0.01)


def test_a_ratio_metric_is_recomputed_on_each_resample_as_scipy_does():
    rng = np.random.default_rng(4)
    weight = rng.integers(1, 30, 200).astype(float)  # words per sentence
    a, b = rng.binomial(weight.astype(int), 0.8).astype(float), rng.binomial(weight.astype(int), 0.75).astype(float)
    strata = np.zeros(200, dtype=str)
    ours = paired(Scored(a, weight, strata), Scored(b, weight, strata), 10_000, seed=5)
    theirs = scipy.stats.bootstrap(
        (a, b, weight),
        lambda x, y, w: x.sum() / w.sum() - y.sum() / w.sum(),
        paired=True,
        vectorized=False,
        n_resamples=4_000,
        method="percentile",
        rng=np.random.default_rng(6),
    ).confidence_interval
    assert ours.diff == pytest.approx(a.sum() / weight.sum() - b.sum() / weight.sum())
    assert ours.low == pytest.approx(theirs.low, abs=0.006)
    assert ours.high == pytest.approx(theirs.high, abs=0.006)


def test_strata_are_resampled_separately_and_averaged():
    # two languages, one perfect and one at zero for both systems: every resample keeps each language's size,
    # so the mean over languages never moves
    a = Scored(np.array([1.0, 1, 0, 0]), np.ones(4), np.array(["de", "de", "fr", "fr"]))
    result = paired(a, a, 2_000, seed=0)
    assert (result.a_value, result.low, result.high, result.p) == (0.5, 0.0, 0.0, 1.0)


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
    with pytest.raises(XstiltsError, match="same examples"):
        paired(one_stratum([1, 0]), one_stratum([1, 0, 1]), 1_000, seed=0)


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


# ------------------------------------------------------------------ the report from hand-made results

LANGS, DOMAINS = ("en", "de", "fr", "pl"), ("hotels", "medicine")
DESIGN = Design("all", ("nli", "qa"), ("emo",), (), -1, seed=13, resamples=2_000, confidence=0.95)


def run_table(rate: dict[str, float], seed: int, dev_rate: float | None = None) -> pd.DataFrame:
    """Predictions of one init: per split, language and domain 60 rows correct with probability rate[domain]."""
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("dev", "test"):
        for lang in LANGS:
            for domain in DOMAINS:
                p = dev_rate if split == "dev" and dev_rate is not None else rate[domain]
                for i in range(60):
                    correct = float(rng.random() < p)
                    rows.append(
                        {
                            "split": split,
                            "id": f"{domain}-{i}",
                            "language": lang,
                            "domain": domain,
                            "score": correct,
                            "weight": 1.0,
                        }
                    )
    return pd.DataFrame(rows)


def target(rates: dict[str, tuple[float, float]], dev: dict[str, float] | None = None) -> Target:
    runs = {
        init: run_table({"hotels": r[0], "medicine": r[1]}, k, (dev or {}).get(init))
        for k, (init, r) in enumerate(rates.items())
    }
    return Target("emo", "classification", "accuracy", "en", ("pl",), ("hotels",), align(runs, "emo"))


BUDGET = {
    "nli": {"spec": "nli", "steps": 40.0, "examples": 640.0},
    "qa": {"spec": "qa", "steps": 25.0, "examples": 400.0},
    "all": {"spec": "all", "steps": 60.0, "examples": 960.0},
}
GROUP_WINS = {"none": (0.6, 0.4), "nli": (0.62, 0.42), "qa": (0.6, 0.45), "all": (0.75, 0.7)}
GROUP_TIES = {"none": (0.6, 0.4), "nli": (0.62, 0.55), "qa": (0.6, 0.45), "all": (0.6, 0.55)}


def test_two_result_sets_give_two_verdicts_and_a_rerun_the_same_bytes():
    wins = build([target(GROUP_WINS)], DESIGN, BUDGET)
    ties = build([target(GROUP_TIES)], DESIGN, BUDGET)
    assert wins["answer"] != ties["answer"]
    assert wins["answer"][0].startswith("**Classification.** Yes on emo")
    assert ties["answer"][0].startswith("**Classification.** No")
    again = build([target(GROUP_WINS)], DESIGN, BUDGET)
    assert json.dumps(again, sort_keys=True) == json.dumps(wins, sort_keys=True)
    assert markdown(again, []) == markdown(wins, [])
    ood = next(
        c
        for c in wins["targets"]["emo"]["comparisons"]
        if c["role"] == "group vs best member" and c["measure"] == "zero_shot_ood"
    )
    assert ood["low"] > 0 and ood["p_holm"] < 0.05
    assert "out-of-domain" in wins["targets"]["emo"]["measures"]["zero_shot_ood"]


def test_the_best_member_is_chosen_on_dev_not_test():
    # qa is the better member on test (0.45 out of domain), nli on dev (every dev row right)
    t = target(GROUP_TIES, dev={"nli": 1.0, "qa": 0.0})
    ood = next(m for m in measures(t) if m.name == "zero_shot_ood")
    best, values = best_member(t, ["nli", "qa"], ood)
    assert best == "nli" and values == {"nli": 1.0, "qa": 0.0}
    study = build([t], DESIGN, BUDGET)
    chosen = [c["b"] for c in study["targets"]["emo"]["comparisons"] if c["role"] == "group vs best member"]
    assert set(chosen) == {"nli"}


def test_domain_and_language_shift_are_measured_apart():
    study = build([target(GROUP_WINS)], DESIGN, BUDGET)
    rob = study["targets"]["emo"]["robustness"]["none"]
    assert set(study["targets"]["emo"]["measures"]) == {"zero_shot", "zero_shot_ood", "zero_shot_id", "english_ood"}
    assert rob["gap_ood_minus_id"] == pytest.approx(rob["zero_shot_ood"] - rob["zero_shot_id"])
    assert rob["worst_domain"]["name"] == "medicine"
    assert {"original", "translated"} <= set(rob)  # Polish, the human original, apart


def test_runs_scored_on_different_examples_are_refused():
    a, b = run_table({"hotels": 0.5, "medicine": 0.5}, 0), run_table({"hotels": 0.5, "medicine": 0.5}, 1)
    with pytest.raises(XstiltsError, match="different examples"):
        align({"none": a, "all": b.iloc[1:]}, "emo")
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
    from xstilts.pipeline.study_report import run_report

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
    from xstilts.study.runs import _target

    seeds = {
        init: [run_table({"hotels": r[0], "medicine": r[1]}, 10 * k + s) for s in range(2)]
        for k, (init, r) in enumerate(GROUP_WINS.items())
    }
    t = _target(
        "emo",
        seeds,
        family="classification",
        metric="accuracy",
        train_language="en",
        original_languages=("pl",),
        train_domains=("hotels",),
    )
    first, second = t.seed_runs["all"]
    assert t.runs["all"]["score"].tolist() == ((first["score"] + second["score"]) / 2).tolist()
    design = Design("all", ("nli", "qa"), ("emo",), (), -1, 13, 2_000, 0.95, seeds=(1, 2))
    study = build([t], design, BUDGET)
    spread = study["targets"]["emo"]["seeds"]["none"]["zero_shot"]
    assert len(spread["values"]) == 2 and spread["sd"] == pytest.approx(np.std(spread["values"], ddof=1), abs=1e-6)
    assert study["design"]["seeds"] == [1, 2] and "2 seeds" in study["answer"][0]
    assert " ± " in markdown(study, []) and "averaged over the seeds" in markdown(study, [])


def test_the_budget_names_each_spec_once_across_seeds_and_says_when_seeds_differ():
    from xstilts.study.verdict import budget_sentence

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
