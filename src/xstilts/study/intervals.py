"""Intervals that count the seeds: a seed part at Student's t and a test-set part at the normal quantile.

A study value (``group - member`` on a measure, or a difference of such differences) is a linear combination of
per-init metrics. Its error has two parts (Bouthillier et al. 2021): the **seeds** (each init's metric moves
from one training seed to the next: the variance over its seeds' runs, divided by their number; inits paired by
seed give one term of per-seed differences) and the **test set** (the examples are a sample: the variance of the
combination over paired bootstrap resamples of the seed-averaged per-example scores). Each part is scaled by its
own quantile, Student's t with the seed part's Welch-Satterthwaite degrees of freedom and the normal for the
test set's (known), and the two are added in quadrature: unlike one t with Satterthwaite's df over both parts,
which is liberal with 2-4 seed df (up to 7.6% outside a 95% interval), this holds its level whatever the ratio of
the two parts. The p-value is the smallest alpha whose interval leaves out 0, so ``p < alpha`` exactly when the
interval does. Each run's own noise over the test examples (a model right on one example, wrong on its neighbour)
moves its seed's metric, so the seed part holds it; the bootstrap of the seed-averaged value holds it again,
divided by the number of runs: :func:`shared_noise` measures that share from each run's resamples and the test
part leaves it out (a two-way random-effects split of examples x seeds), so no noise is counted twice.
``benchmarks/verdict_rates.py`` measures the coverage that results. With one run per init the seed part is not
measured and the interval is the test set's alone (normal quantiles): it is about these models, not about the
training procedure that made them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

POWER = 0.8  # of the minimum detectable effect (Card et al. 2020)


@dataclass(frozen=True)
class Interval:
    """``diff`` (a - b, or a contrast) with its interval and two-sided p-value, and where its error comes from."""

    a_value: float
    b_value: float
    diff: float
    low: float
    high: float
    p: float
    se: float
    se_seeds: float  # the seed part of the standard error (0 with one run per init)
    se_test: float  # the test-set part
    df: float  # Welch-Satterthwaite degrees of freedom of the seed part (inf: no seed part)
    seeds: int  # runs per init (the most any init of the value has; a paired term counts its seeds)
    n_examples: int
    n_resamples: int
    p_holm: float | None = None
    confidence: float = 0.95  # of low and high

    def as_dict(self) -> dict[str, float | int | None]:
        out = asdict(self)
        out["df"] = None if np.isinf(self.df) else self.df
        return out


@dataclass(frozen=True)
class SeedTerm:
    """One init's part of a value: its per-seed values (already weighted by the contrast) of the measure."""

    values: Sequence[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance_of_mean(self) -> float:
        """The seed variance of this init's mean value; 0 with one run (unmeasured, or an encoder without a seed)."""
        n = len(self.values)
        return float(np.var(self.values, ddof=1)) / n if n > 1 else 0.0


def welch(terms: Sequence[SeedTerm], test_variance: float) -> tuple[float, float, float]:
    """(standard error, its seed part, the seed part's Welch-Satterthwaite df) of the sum of ``terms`` plus
    test-set noise of variance ``test_variance``."""
    seed_parts = [t.variance_of_mean for t in terms]
    seed = sum(seed_parts)
    denominator = sum(v**2 / (len(t.values) - 1) for v, t in zip(seed_parts, terms, strict=True) if len(t.values) > 1)
    df = seed**2 / denominator if denominator > 0 else float("inf")
    return float(np.sqrt(seed + test_variance)), float(np.sqrt(seed)), float(df)


def shared_noise(per_seed: np.ndarray) -> float:
    """The variance that the bootstrap of a seed-averaged value shares with its seed part: ``per_seed`` holds one
    term's value per run (rows) on the same bootstrap resamples (columns). Each run's deviation from the runs' mean
    on a resample is its own noise over the test examples; that noise's variance over ``k`` runs, divided by ``k``,
    is ``mean over runs of var(deviation) / (k - 1)``. 0 with one run (no seed part to share with)."""
    k = per_seed.shape[0]
    if k < 2 or per_seed.shape[1] < 2:
        return 0.0
    deviations = per_seed - per_seed.mean(axis=0, keepdims=True)
    return float(np.mean(np.nanvar(deviations, axis=1, ddof=1))) / (k - 1)


def half_width(se_seeds: float, se_test: float, df: float, confidence: float) -> float:
    """The seed part times Student's t quantile (``df``), the test part times the normal's, in quadrature."""
    q = 0.5 + confidence / 2
    t = float(scipy.special.stdtrit(df, q)) if np.isfinite(df) else float(scipy.special.ndtri(q))
    return float(np.hypot(t * se_seeds, scipy.special.ndtri(q) * se_test))


def p_value(estimate: float, se_seeds: float, se_test: float, df: float) -> float:
    """The smallest two-sided alpha whose :func:`half_width` interval leaves out 0."""
    if se_seeds == 0 and se_test == 0:
        return 1.0 if estimate == 0 else 0.0
    if se_seeds == 0 or se_test == 0:  # one part: the t (or normal) test itself
        se, dist = (se_test, np.inf) if se_seeds == 0 else (se_seeds, df)
        return min(1.0, float(2 * scipy.stats.t.sf(abs(estimate) / se, dist)))

    def gap(alpha: float) -> float:
        return half_width(se_seeds, se_test, df, 1 - alpha) - abs(estimate)

    tiny = 1e-15
    if gap(tiny) <= 0:
        return tiny
    return 1.0 if gap(1.0) >= 0 else float(scipy.optimize.brentq(gap, tiny, 1.0, xtol=1e-12, rtol=1e-10))


def t_interval(estimate: float, se_seeds: float, se_test: float, df: float, confidence: float):
    """(low, high, p) of ``estimate`` with its two error parts."""
    h = half_width(se_seeds, se_test, df, confidence)
    return estimate - h, estimate + h, p_value(estimate, se_seeds, se_test, df)


def interval(
    terms: Sequence[SeedTerm],
    resampled: np.ndarray,
    confidence: float,
    n_examples: int,
    values: tuple[float, float] = (float("nan"), float("nan")),
    shared: float = 0.0,
) -> Interval:
    """The value ``sum(term means)`` with its interval: ``resampled`` holds the seed-averaged value on each
    bootstrap resample of the test examples; its variance less ``shared`` (:func:`shared_noise`, which the seed
    part already counts) is the test-set part; ``values``: the two sides' levels, shown."""
    estimate = float(sum(t.mean for t in terms))
    test_variance = float(np.nanvar(resampled, ddof=1)) if len(resampled) > 1 else 0.0
    test_variance = max(test_variance - shared, 0.0)
    se, se_seeds, df = welch(terms, test_variance)
    low, high, p = t_interval(estimate, se_seeds, float(np.sqrt(test_variance)), df, confidence)
    seeds = max(len(t.values) for t in terms)
    errors = {"se": se, "se_seeds": se_seeds, "se_test": float(np.sqrt(test_variance)), "df": df}
    sizes = {"seeds": seeds, "n_examples": n_examples, "n_resamples": len(resampled), "confidence": confidence}
    return Interval(*values, estimate, low, high, p, **errors, **sizes)


def with_holm(interval_: Interval, p_holm: float) -> Interval:
    return Interval(**{**asdict(interval_), "p_holm": p_holm})


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else p
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def test_only(iv: Interval) -> Interval:
    """``iv`` with its seed part left out: an interval about these models (test-set sampling), normal quantiles."""
    low, high, p = t_interval(iv.diff, 0.0, iv.se_test, float("inf"), iv.confidence)
    out = {**asdict(iv), "se": iv.se_test, "se_seeds": 0.0, "df": float("inf"), "low": low, "high": high, "p": p}
    return Interval(**out)


def bounds_at(iv: Interval, confidence: float) -> tuple[float, float]:
    """``iv``'s interval at another confidence (the same estimate, error parts and df)."""
    h = half_width(iv.se_seeds, iv.se_test, iv.df, confidence)
    return iv.diff - h, iv.diff + h


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """The level each hypothesis is tested at by Holm's step-down procedure, in the input order: ``alpha / (m - k)``
    at step k while every earlier step rejected; from the first step that does not reject on, that step's level.
    A hypothesis's interval at its level leaves out 0 exactly when its Holm-adjusted p is below ``alpha``."""
    m = len(p_values)
    order = np.argsort(np.asarray(p_values, dtype=float), kind="stable")
    out = [0.0] * m
    level, stopped = alpha, False
    for step, k in enumerate(order):
        if not stopped:
            level = alpha / (m - step)
            stopped = not p_values[k] < level
        out[k] = level
    return out


def detectable(iv: Interval, alpha: float, power: float = POWER) -> float | None:
    """The smallest true difference this design finds with probability ``power`` at ``alpha`` (two-sided): each
    error part times the sum of its two quantiles (Card et al. 2020), in quadrature; None when the seed variance is
    not measured (one run per init): then the error of the procedure is unknown."""
    if iv.seeds < 2:
        return None
    return planned(iv.se_seeds, iv.se_test, iv.df, alpha, power)


def planned(se_seeds: float, se_test: float, df: float, alpha: float, power: float = POWER) -> float:
    """:func:`detectable` from its parts: the seed part's error with ``df`` degrees of freedom, the test part's."""
    quantile = scipy.special.stdtrit if np.isfinite(df) else lambda _, q: scipy.special.ndtri(q)
    t = float(quantile(df, 1 - alpha / 2) + quantile(df, power))
    z = float(scipy.special.ndtri(1 - alpha / 2) + scipy.special.ndtri(power))
    return float(np.hypot(t * se_seeds, z * se_test))


def needed(iv: Interval, effect: float, alpha: float, power: float = POWER) -> dict[str, float | None]:
    """How many seeds (per init, the test set unchanged) or test examples (the seeds unchanged) would make
    ``effect`` detectable; None where growing that alone cannot, or where it is not the larger part of the error
    (more test rows are proposed only when the test set's part dominates), or with an unmeasured seed variance.
    Normal quantiles: a projection, not a promise."""
    z = float(scipy.stats.norm.ppf(1 - alpha / 2) + scipy.stats.norm.ppf(power))
    target = (effect / z) ** 2  # the variance at which ``effect`` is detectable
    seed_var, test_var = iv.se_seeds**2, iv.se_test**2
    out: dict[str, float | None] = {"seeds": None, "test_examples": None}
    if iv.seeds < 2:
        return out
    if seed_var > 0 and target > test_var:
        out["seeds"] = float(np.ceil(max(iv.seeds * seed_var / (target - test_var), 2)))
    if test_var > seed_var and target > seed_var:
        out["test_examples"] = float(np.ceil(iv.n_examples * test_var / (target - seed_var)))
    return out


def seed_sd_to_lose(diff: float, se_test: float, seeds: int, confidence: float, terms: int = 2) -> float:
    """The seed-to-seed sd (of each of ``terms`` inits' values, independent) at which ``diff`` would stop being
    distinguishable from 0 at ``confidence``, with ``seeds`` runs per init and the test-set error ``se_test``
    (normal quantiles, as if that sd were known); 0 when the test set alone already cannot tell it from 0."""
    z = float(scipy.stats.norm.ppf(0.5 + confidence / 2))
    room = (abs(diff) / z) ** 2 - se_test**2
    return float(np.sqrt(room * seeds / terms)) if room > 0 else 0.0
