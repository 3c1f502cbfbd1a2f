"""The study's statistics: intervals that count the seeds, the best member chosen without the winner's curse,
p-values that agree with their intervals, and a false-positive rate at its nominal level."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from synthetic_study import frame, null_target, target
from xstilts.study.analysis import BEST, IN_DOMAIN, UNSEEN, analyse, best_per_seed, headline, measures
from xstilts.study.bootstrap import Scored, resampled_metrics
from xstilts.study.intervals import SeedTerm, detectable, interval, needed, t_interval, welch

MEMBERS = ["nli", "qa"]


def one_stratum(values) -> Scored:
    values = np.asarray(values, dtype=float)
    return Scored(values, np.ones_like(values), np.zeros(len(values), dtype=str))


def test_without_test_set_noise_the_interval_is_welchs_t_test():
    a, b = [0.61, 0.55, 0.66], [0.52, 0.50, 0.57, 0.49]
    iv = interval([SeedTerm(a), SeedTerm([-x for x in b])], np.zeros(1000), 0.95, 100, (np.mean(a), np.mean(b)))
    welch_test = scipy.stats.ttest_ind(a, b, equal_var=False)
    assert iv.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert iv.p == pytest.approx(welch_test.pvalue)
    assert iv.df == pytest.approx(welch_test.df)
    ci = welch_test.confidence_interval(0.95)
    assert (iv.low, iv.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_the_test_set_part_is_the_bootstrap_standard_error_as_scipy_computes_it():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.62, rng.random(300) < 0.55
    draws = resampled_metrics([one_stratum(a), one_stratum(b)], 10_000, seed=1)
    iv = interval([SeedTerm([a.mean()]), SeedTerm([-b.mean()])], draws[0] - draws[1], 0.95, 300)
    theirs = scipy.stats.bootstrap(
        (a.astype(float), b.astype(float)),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        paired=True,
        n_resamples=10_000,
        rng=np.random.default_rng(2),
    ).standard_error
    assert iv.se_seeds == 0 and np.isinf(iv.df)  # one run each: the test set alone, normal quantiles
    assert iv.se == pytest.approx(theirs, rel=0.03)
    assert iv.high - iv.diff == pytest.approx(1.959964 * iv.se)


def test_the_standard_error_adds_the_seed_and_test_variances():
    terms = [SeedTerm([0.6, 0.7, 0.65]), SeedTerm([-0.5, -0.55, -0.6])]
    se, se_seeds, df = welch(terms, test_variance=0.02**2)
    seed_var = np.var([0.6, 0.7, 0.65], ddof=1) / 3 + np.var([0.5, 0.55, 0.6], ddof=1) / 3
    assert se_seeds == pytest.approx(np.sqrt(seed_var))
    assert se == pytest.approx(np.sqrt(seed_var + 0.02**2))
    # Welch-Satterthwaite with the bootstrap part counted as known: more df than the seeds alone give
    parts = [np.var(v, ddof=1) / 3 for v in ([0.6, 0.7, 0.65], [0.5, 0.55, 0.6])]
    assert df == pytest.approx((seed_var + 0.02**2) ** 2 / sum(v**2 / 2 for v in parts))
    assert df > 4


def test_a_larger_seed_spread_widens_the_interval():
    base = frame(40, domains=("hotels",))
    widths = []
    for seed_sd in (0.01, 0.08):
        iv = analyse(null_target(np.random.default_rng(5), seed_sd, base=base), "all", MEMBERS, 1000, 13, 0.95)
        widths.append(iv.primary.interval.high - iv.primary.interval.low)
        assert iv.primary.interval.se_seeds > 0
    assert widths[1] > 1.5 * widths[0]


def test_200_null_studies_with_a_seed_sd_of_4_points_reject_at_most_7_percent():
    rng = np.random.default_rng(2026)
    base = frame(40, domains=("hotels",))
    rejected = []
    for _ in range(200):
        results = analyse(null_target(rng, 0.04, base=base), "all", MEMBERS, 1000, 13, 0.95)
        rejected.append(results.primary.interval.p < 0.05)
    assert np.mean(rejected) <= 0.07


def _seed_luck_only(rng: np.random.Generator, sd: float, seeds: int = 3):
    """Identical members and an equal group: every run's score is the same per-example level plus its seed's luck
    (no other noise), the same luck on dev and test."""
    base = frame(25, langs=("en", "de"), domains=("hotels",))
    level = rng.uniform(0.3, 0.7, len(base))
    inits = ("none", *MEMBERS, "all")
    return target({i: [base.assign(score=level + rng.normal(0, sd), weight=1.0) for _ in range(seeds)] for i in inits})


def test_an_equal_group_against_identical_members_has_no_winners_curse():
    rng = np.random.default_rng(11)
    crossfit, own_dev = [], []
    for _ in range(600):
        t = _seed_luck_only(rng, 0.015)
        best = best_per_seed(t, MEMBERS, headline(t))
        test = {i: [float(run[run["split"] == "test"]["score"].mean()) for run in t.seed_runs[i]] for i in t.seed_runs}
        crossfit.append(np.mean(test["all"]) - np.mean([test[m][s] for s, m in enumerate(best)]))
        # the naive choice: each seed's best member on that same seed's dev (it carries the seed's luck to test)
        naive = [
            max(MEMBERS, key=lambda m: t.seed_runs[m][s].query("split == 'dev'")["score"].mean()) for s in range(3)
        ]
        own_dev.append(np.mean(test["all"]) - np.mean([test[m][s] for s, m in enumerate(naive)]))
    assert abs(100 * np.mean(crossfit)) < 0.2
    assert 100 * np.mean(own_dev) < -0.5  # the bias the cross-fitted choice removes


def test_the_best_member_of_a_seed_is_chosen_on_the_other_seeds_dev_runs():
    base = frame(10, domains=("hotels",))

    def run(dev: float) -> object:
        return base.assign(score=np.where(base["split"] == "dev", dev, 0.5), weight=1.0)

    runs = {"none": [run(0.5)] * 3, "nli": [run(0.9), run(0.1), run(0.1)], "qa": [run(0.2), run(0.6), run(0.6)]}
    runs["all"] = [run(0.5)] * 3
    t = target(runs)
    # seed 0: others' dev nli 0.1, qa 0.6 -> qa; seed 1: nli 0.5, qa 0.4 -> nli; seed 2 likewise
    assert best_per_seed(t, MEMBERS, headline(t)) == ["qa", "nli", "nli"]
    one = target({i: tables[:1] for i, tables in runs.items()})
    assert best_per_seed(one, MEMBERS, headline(one)) == ["nli"]  # one seed: its own dev
    no_dev = target({i: [r[r["split"] == "test"] for r in tables] for i, tables in runs.items()})
    assert best_per_seed(no_dev, MEMBERS, headline(no_dev)) is None
    results = analyse(no_dev, "all", MEMBERS, 1000, 0, 0.95)
    assert results.primary.kind == "every member" and BEST not in results.evidence.examples


def test_every_printed_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(8)
    checked = 0
    for k in range(30):
        t = null_target(rng, 0.03 * (k % 3), seeds=1 + k % 3, base=frame(30))
        results = analyse(t, "all", MEMBERS, 1000, k, 0.95)
        for iv in [c.interval for c in results.comparisons] + [results.primary.interval]:
            assert (iv.p < 0.05) == (iv.low > 0 or iv.high < 0)
            checked += 1
    assert checked > 300


def test_the_robustness_headline_is_a_difference_of_differences():
    base = frame(40)
    rng = np.random.default_rng(1)
    # the group loses 10 points less than its members out of domain: a gap of +10 points, whatever the levels
    levels = {"none": (0.7, 0.5), "nli": (0.8, 0.5), "qa": (0.8, 0.5), "all": (0.7, 0.6)}
    runs = {}
    for init, (hotels, medicine) in levels.items():
        score = np.where(base["domain"] == "hotels", hotels, medicine)
        runs[init] = [base.assign(score=score + rng.normal(0, 0.002), weight=1.0) for _ in range(3)]
    results = analyse(target(runs), "all", MEMBERS, 1000, 0, 0.95)
    p = results.primary
    assert p.kind == "robustness" and p.measure == "zero_shot_ood"
    assert p.interval.diff == pytest.approx(0.1 + 0.1, abs=0.01)  # (all - best) out: +0.1, in: -0.1
    assert p.interval.low > 0


def test_a_domain_that_phase_2_covered_is_not_unseen():
    base = frame(20, domains=("hotels", "medicine", "products"))
    runs = {i: [base.assign(score=0.5, weight=1.0)] for i in ("none", *MEMBERS, "all")}
    t = target(runs, phase2_domains=("products", "wikipedia"))
    test = t.rows("test", "none")
    assert set(test[UNSEEN.mask(test, t)]["domain"]) == {"medicine"}
    assert set(test[IN_DOMAIN.mask(test, t)]["domain"]) == {"hotels"}
    seen = next(m for m in measures(t) if m.name == "zero_shot_seen")
    assert set(test[seen.mask(test, t)]["domain"]) == {"products"}
    assert set(test[seen.mask(test, t)]["language"]) == {"de", "fr", "pl"}


def test_the_minimum_detectable_effect_and_what_would_detect_min_effect():
    test_noise = np.random.default_rng(0).normal(0, 0.002, 5000)
    iv = interval([SeedTerm([0.6, 0.7, 0.65]), SeedTerm([-0.5, -0.55, -0.6])], test_noise, 0.95, 400)
    effect = detectable(iv, 0.05)
    assert effect == pytest.approx(iv.se * (scipy.stats.t.ppf(0.975, iv.df) + scipy.stats.t.ppf(0.8, iv.df)))
    more = needed(iv, 0.02, 0.05)
    z = scipy.stats.norm.ppf(0.975) + scipy.stats.norm.ppf(0.8)
    # with that many seeds, the projected standard error detects 2 points
    projected = np.sqrt(iv.se_seeds**2 * 3 / more["seeds"] + iv.se_test**2)
    assert z * projected <= 0.02 < z * np.sqrt(iv.se_seeds**2 * 3 / (more["seeds"] - 1) + iv.se_test**2)
    assert more["test_examples"] is None  # the seeds alone are already too noisy for 2 points
    assert t_interval(0.0, 0.0, np.inf, 0.95) == (0.0, 0.0, 1.0)
