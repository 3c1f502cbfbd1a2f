"""The study's numbers: per target, each init's scores by language and domain, and the comparisons.

A target's test rows are split by language shift (English, the language it trains on, versus the zero-shot
languages; human originals such as Polish apart from machine translations) and by domain shift: in-domain rows
(the domains its English training rows come from), unseen rows (domains neither its training data nor any
intermediate task of the design covers) and, apart, rows of domains only phase-2 data covered. Every value is
the mean over seeds of each seed's metric, with an interval that counts the seeds and the test set
(:mod:`~xstilts.study.intervals`). Inits whose runs share their seeds (a target run of seed s from each init) are
compared paired: one difference per seed.

The primary comparison of a target (:mod:`~xstilts.study.primary`): the group against every member
(intersection-union), so no best member is chosen; for targets with domains, the headline is the difference of
differences ``(group - member) unseen minus (group - member) in-domain``. The comparisons against ``none``, each
member and the best member (the same intersection-union interval, per measure) are secondary (Holm within each
measure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from xstilts.errors import XstiltsError
from xstilts.study.bootstrap import Scored, ratio, resampled_metrics, translation_keys
from xstilts.study.intervals import Interval, SeedTerm, holm, interval, shared_noise, with_holm
from xstilts.study.primary import Primary

NONE = "none"
BEST = "best member"  # the group against every member: the least of its differences to them
ROW_KEY = ["id", "language"]
Parts = dict[str, list[tuple[np.ndarray, np.ndarray]]]  # init -> per seed: (score, weight) of the test rows


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
    seed_names: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # init -> its runs' seeds (default: 0..n-1)

    @classmethod
    def of(cls, name: str, seed_runs: dict[str, list[pd.DataFrame]], **declared: Any) -> Target:
        """A target from each init's runs, one per seed, aligned on the same rows."""
        flat = {f"{init}#{k}": t for init, tables in seed_runs.items() for k, t in enumerate(tables)}
        aligned = align(flat, name)
        per_seed = {init: [aligned[f"{init}#{k}"] for k in range(len(t))] for init, t in seed_runs.items()}
        return cls(name=name, seed_runs=per_seed, **declared)

    def seeds_of(self, init: str) -> tuple[Any, ...]:
        """The seeds of ``init``'s runs, in order: runs of two inits with the same seeds are paired."""
        return tuple(self.seed_names.get(init, range(len(self.seed_runs[init]))))

    @cached_property
    def runs(self) -> dict[str, pd.DataFrame]:
        """Each init's table with every example's score and weight averaged over its seeds."""
        return {init: average_seeds(tables) for init, tables in self.seed_runs.items()}

    @cached_property
    def test_parts(self) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
        """Each init's runs' (score, weight) on the test rows, in the order of :meth:`rows`."""
        first = next(iter(self.seed_runs.values()))[0]
        test = (first["split"] == "test").to_numpy()
        return {
            init: [(t["score"].to_numpy(float)[test], t["weight"].to_numpy(float)[test]) for t in tables]
            for init, tables in self.seed_runs.items()
        }

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
    """Each init's metric on each subset (measure): per seed, and per seed on each bootstrap resample of the test
    rows (``[seeds, resamples]``: the same resamples for every run of a subset; subsets of disjoint rows resampled
    independently)."""

    seeds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    resampled: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)
    confidence: float = 0.95
    names: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # init -> its runs' seeds (pairing)

    def add(self, name: str, mask: np.ndarray, rows: pd.DataFrame, parts: Parts, resamples: int, seed: int) -> None:
        """Measure ``name`` (the ``mask`` of the test ``rows``) from each init's per-seed (score, weight) ``parts``."""
        chosen = rows[mask]
        strata = chosen["language"].to_numpy(str)
        clusters = translation_keys(chosen["id"].tolist(), chosen["language"].tolist())

        def of(score: np.ndarray, weight: np.ndarray) -> Scored:
            return Scored(score[mask], weight[mask], strata, clusters)

        runs = {init: [of(score, weight) for score, weight in runs] for init, runs in parts.items()}
        drawn = iter(resampled_metrics([r for scored_runs in runs.values() for r in scored_runs], resamples, seed))
        for init, scored_runs in runs.items():
            self.seeds[(init, name)] = [r.metric() for r in scored_runs]
            self.resampled[(init, name)] = np.stack([next(drawn) for _ in scored_runs])
        self.examples[name] = int(mask.sum())

    def mean(self, init: str, name: str) -> float:
        return float(np.mean(self.seeds[(init, name)]))

    def value(self, coefs: dict[tuple[str, str], float], shown: tuple[float, float], confidence: float | None = None):
        """``sum(coef * metric)`` over (init, measure) keys, with its interval: inits whose runs have the same
        seeds (two or more) are paired, one seed term of their per-seed combination; the others apart."""
        per_init: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # init -> (per seed, per seed and resample)
        for (init, name), c in coefs.items():
            values, drawn = per_init.get(init, (0.0, 0.0))
            key = (init, name)
            per_init[init] = (values + c * np.asarray(self.seeds[key]), drawn + c * self.resampled[key])
        paired: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
        for init, (values, drawn) in per_init.items():
            seeds = self.names.get(init, tuple(range(len(values))))
            key = seeds if len(values) > 1 else (init,)  # one run (no seed to pair on): its own term
            old_values, old_drawn = paired.get(key, (0.0, 0.0))
            paired[key] = (old_values + values, old_drawn + drawn)
        terms = [SeedTerm(values) for values, _ in paired.values()]
        resampled = np.sum([drawn.mean(axis=0) for _, drawn in paired.values()], axis=0)
        shared = sum(shared_noise(drawn) for _, drawn in paired.values())
        examples = sum(self.examples[name] for name in dict.fromkeys(name for _, name in coefs))
        return interval(terms, resampled, confidence or self.confidence, examples, shown, shared)

    def difference(self, a: str, b: str, name: str, confidence: float | None = None) -> Interval:
        shown = (self.mean(a, name), self.mean(b, name))
        return self.value({(a, name): 1.0, (b, name): -1.0}, shown, confidence)


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
class Results:
    evidence: Evidence
    comparisons: list[Comparison]
    primary: Primary


def analyse(target: Target, group: str, members: list[str], resamples: int, seed: int, confidence: float) -> Results:
    """Every measure's evidence, the secondary comparisons (Holm per measure) and the primary comparison."""
    chosen = measures(target)
    evidence = Evidence(confidence=confidence, names={i: target.seeds_of(i) for i in target.seed_runs})
    test = target.rows("test", NONE)
    for k, measure in enumerate(chosen):
        evidence.add(measure.name, measure.mask(test, target), test, target.test_parts, resamples, seed + 1009 * k)
    runs = min(len(target.seed_runs[i]) for i in [group, *members])
    comparisons = []
    for measure in chosen:
        pairs = [(i, NONE, "vs none") for i in [*members, group]] + [(group, m, "group vs member") for m in members]
        rows = [Comparison(a, b, measure.name, evidence.difference(a, b, measure.name), role) for a, b, role in pairs]
        each = {m: evidence.difference(group, m, measure.name) for m in members}
        best = Primary("level", measure.name, each, runs).interval(confidence)
        rows.append(Comparison(group, BEST, measure.name, best, "group vs best member"))
        for c, p in zip(rows, holm([c.interval.p for c in rows]), strict=True):
            c.interval = with_holm(c.interval, p)
        comparisons += rows
    return Results(evidence, comparisons, primary(target, evidence, group, members, runs))


def primary(target: Target, evidence: Evidence, group: str, members: list[str], runs: int) -> Primary:
    """The group against every member on the headline measure: a difference of differences where the test has
    in-domain and unseen rows, else the level."""
    name = headline(target).name
    if name != UNSEEN.name:
        return Primary("level", name, {m: evidence.difference(group, m, name) for m in members}, runs)
    out, inside = UNSEEN.name, IN_DOMAIN.name
    each = {}
    for m in members:
        coefs = {(group, out): 1.0, (m, out): -1.0, (group, inside): -1.0, (m, inside): 1.0}
        gaps = tuple(evidence.mean(i, out) - evidence.mean(i, inside) for i in (group, m))
        each[m] = evidence.value(coefs, gaps)
    return Primary("robustness", name, each, runs)


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
    evidence = Evidence(confidence=confidence, names={i: target.seeds_of(i) for i in target.seed_runs})
    parts = {i: target.test_parts[i] for i in [NONE, *inits]}
    languages = sorted(set(test["language"]))
    for k, lang in enumerate(languages):
        evidence.add(lang, (test["language"] == lang).to_numpy(), test, parts, resamples, seed + 7919 * k)
    return {i: {lang: evidence.difference(i, NONE, lang).as_dict() for lang in languages} for i in inits}


def align(runs: dict[str, pd.DataFrame], target: str) -> dict[str, pd.DataFrame]:
    """The runs' tables sorted by (split, id, language); all inits must hold the same examples."""
    out = {}
    columns = ["split", *ROW_KEY]
    first: tuple[pd.DataFrame, np.ndarray, pd.DataFrame] | None = None  # unsorted keys, sort order, sorted keys
    for init, table in runs.items():
        if not {"score", "weight"} <= set(table.columns):
            raise XstiltsError(
                f"The predictions of {target} from {init} have no score/weight columns (written before the study "
                f"existed); rerun `dvc repro target-{target}-{init}`."
            )
        table = table.reset_index(drop=True)
        if first is not None and table[columns].equals(first[0]):  # the first table's rows in its order: one sort
            out[init] = table.iloc[first[1]].reset_index(drop=True)
            continue
        ordered = table.sort_values(columns, kind="stable")
        keys = ordered[columns].reset_index(drop=True)
        if first is None:
            first = (table[columns], ordered.index.to_numpy(), keys)
        elif not keys.equals(first[2]):
            raise XstiltsError(f"The runs of {target} were scored on different examples; rerun its target stages.")
        out[init] = ordered.reset_index(drop=True)
    return out
