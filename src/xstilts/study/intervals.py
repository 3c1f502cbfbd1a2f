"""Intervals that count the seeds: one standard error from the seed and the test-set variance, Welch's t.

A study value (``group - member`` on a measure, or a difference of such differences) is a linear combination of
per-init metrics. Its variance has two parts (Bouthillier et al. 2021): the **seeds** (each init's metric moves
from one training seed to the next: the variance over its seeds' runs, divided by their number) and the **test
set** (the examples are a sample: the variance of the combination over paired bootstrap resamples of the
seed-averaged per-example scores). The interval and the p-value come from the same t statistic, with
Welch-Satterthwaite degrees of freedom (the bootstrap part counts as known), so ``p < alpha`` exactly when the
interval leaves out 0. With one run per init the seed part is not measured and the interval is the test set's
alone (normal quantiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
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
    df: float  # Welch-Satterthwaite degrees of freedom (inf: normal)
    seeds: int  # runs per init (the most any init of the value has)
    n_examples: int
    n_resamples: int
    p_holm: float | None = None

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
    """(standard error, its seed part, degrees of freedom) of the sum of ``terms`` plus test-set noise."""
    seed_parts = [t.variance_of_mean for t in terms]
    total = sum(seed_parts) + test_variance
    denominator = sum(v**2 / (len(t.values) - 1) for v, t in zip(seed_parts, terms, strict=True) if len(t.values) > 1)
    df = total**2 / denominator if denominator > 0 else float("inf")
    return float(np.sqrt(total)), float(np.sqrt(sum(seed_parts))), float(df)


def t_interval(estimate: float, se: float, df: float, confidence: float) -> tuple[float, float, float]:
    """(low, high, p): ``estimate`` +- the t quantile times ``se``, and the two-sided p of ``estimate / se``."""
    if se == 0:
        return estimate, estimate, 1.0 if estimate == 0 else 0.0
    q = float(scipy.stats.t.ppf(0.5 + confidence / 2, df))
    p = float(2 * scipy.stats.t.sf(abs(estimate) / se, df))
    return estimate - q * se, estimate + q * se, min(p, 1.0)


def interval(
    terms: Sequence[SeedTerm],
    resampled: np.ndarray,
    confidence: float,
    n_examples: int,
    values: tuple[float, float] = (float("nan"), float("nan")),
) -> Interval:
    """The value ``sum(term means)`` with its interval: ``resampled`` holds the value on each bootstrap resample
    of the seed-averaged scores (its variance is the test-set part); ``values``: the two sides' levels, shown."""
    estimate = float(sum(t.mean for t in terms))
    test_variance = float(np.nanvar(resampled, ddof=1)) if len(resampled) > 1 else 0.0
    se, se_seeds, df = welch(terms, test_variance)
    low, high, p = t_interval(estimate, se, df, confidence)
    seeds = max(len(t.values) for t in terms)
    errors = {"se": se, "se_seeds": se_seeds, "se_test": float(np.sqrt(test_variance)), "df": df}
    return Interval(
        *values, estimate, low, high, p, **errors, seeds=seeds, n_examples=n_examples, n_resamples=len(resampled)
    )


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


def detectable(iv: Interval, alpha: float, power: float = POWER) -> float:
    """The smallest true difference this design finds with probability ``power`` at ``alpha`` (two-sided): the
    standard error times the sum of the two quantiles (Card et al. 2020)."""
    df = iv.df
    return float(iv.se * (scipy.stats.t.ppf(1 - alpha / 2, df) + scipy.stats.t.ppf(power, df)))


def needed(iv: Interval, effect: float, alpha: float, power: float = POWER) -> dict[str, float | None]:
    """How many seeds (per init, the test set unchanged) or test examples (the seeds unchanged) would make
    ``effect`` detectable; None where growing that alone cannot (the other part's noise is already too large).
    Normal quantiles: a projection, not a promise."""
    z = float(scipy.stats.norm.ppf(1 - alpha / 2) + scipy.stats.norm.ppf(power))
    target = (effect / z) ** 2  # the variance at which ``effect`` is detectable
    seed_var, test_var = iv.se_seeds**2, iv.se_test**2
    out: dict[str, float | None] = {"seeds": None, "test_examples": None}
    if seed_var > 0 and target > test_var:
        out["seeds"] = float(np.ceil(max(iv.seeds * seed_var / (target - test_var), 2)))
    if test_var > 0 and target > seed_var:
        out["test_examples"] = float(np.ceil(iv.n_examples * test_var / (target - seed_var)))
    return out
