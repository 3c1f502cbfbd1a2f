"""The study's numbers: per target, each init's scores by language and domain, and the comparisons.

A target's test rows are split by language shift (English, the language it trains on, versus the zero-shot
languages; human originals such as Polish apart from machine translations) and by domain shift: in-domain rows
(the domains its English training rows come from), unseen rows (domains neither its training data nor any
intermediate task of the design covers) and, apart, rows of domains only phase-2 data covered. Every value is
the mean over seeds of each seed's metric, with an interval that counts the seeds and the test set
(:mod:`~xstilts.study.intervals`).

The primary comparison of a target (:func:`primary`): the group against its best member, the member chosen
separately for each seed on dev, from the *other* seeds' runs (so the choice does not share the seed luck it is
compared on); for targets with domains, the headline is the difference of differences ``(group - best) unseen
minus (group - best) in-domain``. A target without dev rows is compared with every member (an intersection-union
test: the group beats its best member only if it beats each). The comparisons against ``none`` and each member
are secondary (Holm within each measure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from xstilts.errors import XstiltsError
from xstilts.study.bootstrap import Scored, ratio, resampled_metrics, translation_keys
from xstilts.study.intervals import Interval, SeedTerm, holm, interval, with_holm

NONE = "none"
BEST = "best member"  # the per-seed best member, as one more init
ROW_KEY = ["id", "language"]


@dataclass(frozen=True)
class Target:
    """One target's runs (every init, one table per seed, rows aligned) and what its training saw."""

    name: str
    family: str
    metric: str
    train_language: str
    original_languages: tuple[str, ...]
    train_domains: tuple[str, ...]
    seed_runs: dict[str, list[pd.DataFrame]]  # init -> one predictions table per seed (both splits)
    phase2_domains: tuple[str, ...] = ()  # its test domains that an intermediate task of the design covers

    @classmethod
    def of(cls, name: str, seed_runs: dict[str, list[pd.DataFrame]], **declared: Any) -> Target:
        """A target from each init's runs, one per seed, aligned on the same rows."""
        flat = {f"{init}#{k}": t for init, tables in seed_runs.items() for k, t in enumerate(tables)}
        aligned = align(flat, name)
        per_seed = {init: [aligned[f"{init}#{k}"] for k in range(len(t))] for init, t in seed_runs.items()}
        return cls(name=name, seed_runs=per_seed, **declared)

    @cached_property
    def runs(self) -> dict[str, pd.DataFrame]:
        """Each init's table with every example's score and weight averaged over its seeds."""
        return {init: average_seeds(tables) for init, tables in self.seed_runs.items()}

    def rows(self, split: str, init: str) -> pd.DataFrame:
        table = self.runs[init]
        return table[table["split"] == split]


def average_seeds(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Aligned tables of one init's runs with different seeds as one: each example's score and weight averaged."""
    out = tables[0].copy()
    for column in ("score", "weight"):
        out[column] = np.mean([t[column].to_numpy(float) for t in tables], axis=0)
    return out


@dataclass(frozen=True)
class Measure:
    """A subset of a split's rows, its metric averaged over its languages."""

    name: str
    what: str
    english: bool = False  # the training language's rows instead of the zero-shot languages'
    domains: str = "all"  # all | in (the target's training domains) | out (unseen) | seen (only phase 2 saw them)

    def mask(self, rows: pd.DataFrame, target: Target) -> np.ndarray:
        english = (rows["language"] == target.train_language).to_numpy()
        mask = english if self.english else ~english
        if self.domains == "all":
            return mask
        inside = rows["domain"].isin(target.train_domains).to_numpy()
        seen = rows["domain"].isin(target.phase2_domains).to_numpy() & ~inside
        return mask & {"in": inside, "out": ~inside & ~seen, "seen": seen}[self.domains]


ZERO_SHOT = Measure("zero_shot", "zero-shot languages, all domains")
UNSEEN, IN_DOMAIN = (
    Measure("zero_shot_ood", "zero-shot languages, unseen domains", domains="out"),
    Measure("zero_shot_id", "zero-shot languages, in-domain", domains="in"),
)
MORE = (
    Measure("english_ood", "English, unseen domains (domain shift alone)", english=True, domains="out"),
    Measure("zero_shot_seen", "zero-shot languages, domains only phase-2 data covered", domains="seen"),
)


def measures(target: Target) -> list[Measure]:
    """The zero-shot mean; where the test has in-domain and unseen rows, those apart (and the other subsets
    that have rows)."""
    test = target.rows("test", NONE)
    if not (UNSEEN.mask(test, target).any() and IN_DOMAIN.mask(test, target).any()):
        return [ZERO_SHOT]
    return [ZERO_SHOT, UNSEEN, IN_DOMAIN, *(m for m in MORE if m.mask(test, target).any())]


def headline(target: Target) -> Measure:
    """The measure a target's primary comparison is about: unseen domains where the test has them."""
    return UNSEEN if UNSEEN in measures(target) else ZERO_SHOT


def scored(rows: pd.DataFrame, mask: np.ndarray) -> Scored:
    chosen = rows[mask]
    columns = (chosen["score"].to_numpy(float), chosen["weight"].to_numpy(float), chosen["language"].to_numpy(str))
    return Scored(*columns, clusters=translation_keys(chosen["id"].tolist(), chosen["language"].tolist()))


@dataclass
class Evidence:
    """Each init's metric on each subset (measure): per seed, and per bootstrap resample of its seed-averaged
    scores (the same resamples for every init of a subset; subsets of disjoint rows resampled independently)."""

    seeds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    resampled: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)
    confidence: float = 0.95

    def add(self, name: str, mask: np.ndarray, tables: dict[str, list[pd.DataFrame]], resamples: int, seed: int):
        tests = {init: [t[t["split"] == "test"] for t in per_seed] for init, per_seed in tables.items()}
        for init, per_seed in tests.items():
            self.seeds[(init, name)] = [scored(t, mask).metric() for t in per_seed]
        parts = [scored(average_seeds(per_seed), mask) for per_seed in tests.values()]
        for init, values in zip(tests, resampled_metrics(parts, resamples, seed), strict=True):
            self.resampled[(init, name)] = values
        self.examples[name] = int(mask.sum())

    def mean(self, init: str, name: str) -> float:
        return float(np.mean(self.seeds[(init, name)]))

    def value(self, coefs: dict[tuple[str, str], float], shown: tuple[float, float], confidence: float | None = None):
        """``sum(coef * metric)`` over (init, measure) keys, with its interval."""
        inits = dict.fromkeys(init for init, _ in coefs)
        terms = [
            SeedTerm(np.sum([c * np.asarray(self.seeds[k]) for k, c in coefs.items() if k[0] == init], axis=0))
            for init in inits
        ]
        resampled = np.sum([c * self.resampled[k] for k, c in coefs.items()], axis=0)
        examples = sum(self.examples[name] for name in dict.fromkeys(name for _, name in coefs))
        return interval(terms, resampled, confidence or self.confidence, examples, shown)

    def difference(self, a: str, b: str, name: str, confidence: float | None = None) -> Interval:
        shown = (self.mean(a, name), self.mean(b, name))
        return self.value({(a, name): 1.0, (b, name): -1.0}, shown, confidence)


def best_per_seed(target: Target, members: list[str], measure: Measure) -> list[str] | None:
    """For each seed, the member with the best dev score by ``measure`` over the *other* seeds' runs (with one
    seed: its own run; ties: the first listed); None without dev rows (the best member is never chosen on test)."""
    dev = {m: [t[t["split"] == "dev"] for t in target.seed_runs[m]] for m in members}
    first = dev[members[0]][0]
    if first.empty or not measure.mask(first, target).any():
        return None
    values = {m: [scored(t, measure.mask(t, target)).metric() for t in tables] for m, tables in dev.items()}
    n = len(values[members[0]])
    others = [[s] if n == 1 else [k for k in range(n) if k != s] for s in range(n)]

    def chosen(rows: list[int]) -> str:
        means = {m: float(np.nanmean([values[m][k] for k in rows])) for m in members}
        return max(members, key=lambda m: (-np.inf if np.isnan(means[m]) else means[m], -members.index(m)))

    return [chosen(rows) for rows in others]


@dataclass
class Comparison:
    a: str
    b: str
    measure: str
    interval: Interval
    role: str  # "vs none", "group vs member", "group vs best member"

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "measure": self.measure, "role": self.role, **self.interval.as_dict()}


@dataclass
class Primary:
    """A target's primary comparison: the value its verdict reads."""

    kind: str  # "robustness" (difference of differences), "level" (group - best member), "every member" (IUT)
    measure: str  # the headline measure
    interval: Interval  # "every member": the comparison with the least favourable member
    against: str  # the member(s) compared with: "vitaminc, squadshifts, vitaminc" (per seed) or the one member
    upper: float  # the bound "no" reads: the interval's high; "every member": the lowest Bonferroni high
    best: list[str] | None = None  # the best member of each seed

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "interval"}
        return {**out, **self.interval.as_dict()}


@dataclass
class Results:
    evidence: Evidence
    comparisons: list[Comparison]
    primary: Primary


def analyse(target: Target, group: str, members: list[str], resamples: int, seed: int, confidence: float) -> Results:
    """Every measure's evidence, the secondary comparisons (Holm per measure) and the primary comparison."""
    chosen = measures(target)
    best = best_per_seed(target, members, headline(target))
    tables = dict(target.seed_runs)
    if best is not None:
        tables[BEST] = [target.seed_runs[m][s] for s, m in enumerate(best)]
    evidence = Evidence(confidence=confidence)
    test = target.rows("test", NONE)
    for k, measure in enumerate(chosen):
        evidence.add(measure.name, measure.mask(test, target), tables, resamples, seed + 1009 * k)
    comparisons = []
    for measure in chosen:
        pairs = [(i, NONE, "vs none") for i in [*members, group]] + [(group, m, "group vs member") for m in members]
        if best is not None:
            pairs.append((group, BEST, "group vs best member"))
        rows = [Comparison(a, b, measure.name, evidence.difference(a, b, measure.name), role) for a, b, role in pairs]
        for c, p in zip(rows, holm([c.interval.p for c in rows]), strict=True):
            c.interval = with_holm(c.interval, p)
        comparisons += rows
    return Results(evidence, comparisons, primary(target, evidence, group, members, best))


def primary(target: Target, evidence: Evidence, group: str, members: list[str], best: list[str] | None) -> Primary:
    name = headline(target).name
    if best is None:  # no dev rows: the group must beat every member (intersection-union test)
        each = {m: evidence.difference(group, m, name) for m in members}
        worst = min(members, key=lambda m: (1 if each[m].diff > 0 else -1) * (1 - each[m].p))
        alpha = (1 - evidence.confidence) / len(members)  # Bonferroni: "below min_effect against some member"
        upper = min(evidence.difference(group, m, name, 1 - alpha).high for m in members)
        return Primary("every member", name, each[worst], worst, upper)
    against = ", ".join(best) if len(set(best)) > 1 else best[0]
    if name == UNSEEN.name:
        out, inside = UNSEEN.name, IN_DOMAIN.name
        coefs = {(group, out): 1.0, (BEST, out): -1.0, (group, inside): -1.0, (BEST, inside): 1.0}
        gaps = tuple(evidence.mean(i, out) - evidence.mean(i, inside) for i in (group, BEST))
        iv = evidence.value(coefs, gaps)
        return Primary("robustness", name, iv, against, iv.high, best)
    iv = evidence.difference(group, BEST, name)
    return Primary("level", name, iv, against, iv.high, best)


def seed_spread(evidence: Evidence) -> dict[str, dict[str, dict[str, Any]]]:
    """Per init and measure: each seed's test value, their mean and standard deviation (ddof 1)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (init, name), values in evidence.seeds.items():
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out.setdefault(init, {})[name] = {"values": values, "mean": float(np.mean(values)), "sd": sd}
    return out


def cell_scores(rows: pd.DataFrame, by: list[str]) -> dict[str, float]:
    """The metric per group of rows (``by`` columns joined by ``/``)."""
    out = {}
    for key, group in rows.groupby(by, sort=True):
        name = "/".join(key) if isinstance(key, tuple) else str(key)
        out[name] = ratio(group["score"].to_numpy(float), group["weight"].to_numpy(float))
    return out


def robustness(target: Target, init: str) -> dict[str, Any]:
    """Mean, worst language, worst domain, worst (language, domain) cell of the zero-shot test rows (seeds
    averaged); the unseen minus in-domain gap; human originals apart from translations."""
    test = target.rows("test", init)
    zs = test[test["language"] != target.train_language]
    langs, domains, cells = (cell_scores(zs, by) for by in (["language"], ["domain"], ["language", "domain"]))
    out: dict[str, Any] = {"mean": float(np.mean(list(langs.values()))), "by_language": langs}

    def worst(values: dict[str, float]) -> dict[str, Any]:
        key = min(values, key=lambda k: (values[k], k))
        return {"name": key, "value": values[key]}

    out.update(worst_language=worst(langs), worst_domain=worst(domains), worst_cell=worst(cells))
    out["by_domain"], out["by_cell"] = domains, cells
    for m in measures(target):
        out[m.name] = scored(test, m.mask(test, target)).metric()
    if UNSEEN.name in out:
        out["gap_ood_minus_id"] = out[UNSEEN.name] - out[IN_DOMAIN.name]
    if target.original_languages:
        original = [v for k, v in langs.items() if k in target.original_languages]
        translated = [v for k, v in langs.items() if k not in target.original_languages]
        out["original"], out["translated"] = float(np.mean(original)), float(np.mean(translated))
    return out


def by_language_vs_none(target: Target, inits: list[str], resamples: int, seed: int, confidence: float) -> dict:
    """Each init minus ``none`` per test language, with intervals that count the seeds (for the plots)."""
    test = target.rows("test", NONE)
    evidence = Evidence(confidence=confidence)
    tables = {i: target.seed_runs[i] for i in [NONE, *inits]}
    languages = sorted(set(test["language"]))
    for k, lang in enumerate(languages):
        evidence.add(lang, (test["language"] == lang).to_numpy(), tables, resamples, seed + 7919 * k)
    return {i: {lang: evidence.difference(i, NONE, lang).as_dict() for lang in languages} for i in inits}


def align(runs: dict[str, pd.DataFrame], target: str) -> dict[str, pd.DataFrame]:
    """The runs' tables sorted by (split, id, language); all inits must hold the same examples."""
    out = {}
    reference = None
    for init, table in runs.items():
        if not {"score", "weight"} <= set(table.columns):
            raise XstiltsError(
                f"The predictions of {target} from {init} have no score/weight columns (written before the study "
                f"existed); rerun `dvc repro target-{target}-{init}`."
            )
        ordered = table.sort_values(["split", *ROW_KEY], kind="stable").reset_index(drop=True)
        keys = ordered[["split", *ROW_KEY]]
        if reference is None:
            reference = keys
        elif not keys.equals(reference):
            raise XstiltsError(f"The runs of {target} were scored on different examples; rerun its target stages.")
        out[init] = ordered
    return out
