"""The study's numbers: per target, each init's scores by language and domain, and the paired comparisons.

A target's test rows are split by language shift (English, the language it trains on, versus the zero-shot
languages; human originals such as Polish apart from machine translations) and by domain shift (rows of the
domains its English training rows come from, in-domain, versus the other domains, out-of-domain). Comparisons:
each init vs ``none``, the group vs each member, and the group vs its best member, chosen on dev by the same
measure; Holm's correction runs over the distinct comparisons of one (target, measure) table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xstilts.errors import XstiltsError
from xstilts.study.bootstrap import Interval, Scored, holm, paired, ratio, translation_keys

NONE = "none"
ROW_KEY = ["id", "language"]


@dataclass(frozen=True)
class Target:
    """One target's runs: test and dev rows of every init (aligned), and what its training saw."""

    name: str
    family: str
    metric: str
    train_language: str
    original_languages: tuple[str, ...]
    train_domains: tuple[str, ...]
    runs: dict[str, pd.DataFrame]  # init -> predictions table (both splits; seeds averaged), rows in one order
    seed_runs: dict[str, list[pd.DataFrame]] = field(default_factory=dict)  # init -> one table per seed

    def rows(self, split: str, init: str) -> pd.DataFrame:
        table = self.runs[init]
        return table[table["split"] == split]


def average_seeds(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Aligned tables of one init's runs with different seeds as one: each example's score and weight averaged
    (the bootstrap then resamples the seed-averaged per-example scores)."""
    out = tables[0].copy()
    for column in ("score", "weight"):
        out[column] = np.mean([t[column].to_numpy(float) for t in tables], axis=0)
    return out


def seed_spread(target: Target) -> dict[str, dict[str, dict[str, Any]]]:
    """Per init and measure: the test value of each seed's run, their mean and standard deviation (ddof 1)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for init, tables in target.seed_runs.items():
        out[init] = {}
        for m in measures(target):
            values = [scored(t[t["split"] == "test"], m.mask(t[t["split"] == "test"], target)).metric() for t in tables]
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            out[init][m.name] = {"values": values, "mean": float(np.mean(values)), "sd": sd}
    return out


@dataclass(frozen=True)
class Measure:
    """A subset of a split's rows, its metric averaged over its languages."""

    name: str
    what: str
    english: bool = False  # the training language's rows instead of the zero-shot languages'
    domains: str = "all"  # "all", "in" (the English training rows' domains) or "out" (the others)

    def mask(self, rows: pd.DataFrame, target: Target) -> np.ndarray:
        english = (rows["language"] == target.train_language).to_numpy()
        mask = english if self.english else ~english
        if self.domains != "all":
            inside = rows["domain"].isin(target.train_domains).to_numpy()
            mask = mask & (inside if self.domains == "in" else ~inside)
        return mask


ZERO_SHOT = Measure("zero_shot", "zero-shot languages, all domains")
DOMAIN_SHIFT = (
    Measure("zero_shot_ood", "zero-shot languages, out-of-domain", domains="out"),
    Measure("zero_shot_id", "zero-shot languages, in-domain", domains="in"),
    Measure("english_ood", "English, out-of-domain (domain shift alone)", english=True, domains="out"),
)


def measures(target: Target) -> list[Measure]:
    """The zero-shot mean, and where the test has domains the English training never saw, in/out of domain."""
    test = target.rows("test", NONE)
    inside = test["domain"].isin(target.train_domains).to_numpy()
    return [ZERO_SHOT, *(DOMAIN_SHIFT if inside.any() and not inside.all() else ())]


def scored(rows: pd.DataFrame, mask: np.ndarray) -> Scored:
    chosen = rows[mask]
    columns = (chosen["score"].to_numpy(float), chosen["weight"].to_numpy(float), chosen["language"].to_numpy(str))
    return Scored(*columns, clusters=translation_keys(chosen["id"].tolist(), chosen["language"].tolist()))


def cell_scores(rows: pd.DataFrame, by: list[str]) -> dict[str, float]:
    """The metric per group of rows (``by`` columns joined by ``/``)."""
    out = {}
    for key, group in rows.groupby(by, sort=True):
        name = "/".join(key) if isinstance(key, tuple) else str(key)
        out[name] = ratio(group["score"].to_numpy(float), group["weight"].to_numpy(float))
    return out


def robustness(target: Target, init: str) -> dict[str, Any]:
    """Mean, worst language, worst domain, worst (language, domain) cell of the zero-shot test rows; the
    out-of-domain minus in-domain gap; human originals apart from translations."""
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
    if "zero_shot_ood" in out:
        out["gap_ood_minus_id"] = out["zero_shot_ood"] - out["zero_shot_id"]
    if target.original_languages:
        original = [v for k, v in langs.items() if k in target.original_languages]
        translated = [v for k, v in langs.items() if k not in target.original_languages]
        out["original"], out["translated"] = float(np.mean(original)), float(np.mean(translated))
    return out


@dataclass
class Comparison:
    a: str
    b: str
    measure: str
    interval: Interval
    role: str  # "vs none", "group vs member", "group vs best member"
    best_on_dev: dict[str, float] = field(default_factory=dict)  # the members' dev values, for "vs best"

    def as_dict(self) -> dict[str, Any]:
        out = {"a": self.a, "b": self.b, "measure": self.measure, "role": self.role, **self.interval.as_dict()}
        if self.best_on_dev:
            out["dev_values"] = self.best_on_dev
        return out


def best_member(target: Target, members: list[str], measure: Measure) -> tuple[str | None, dict[str, float]]:
    """The member whose run scores highest on dev by ``measure`` (ties: the first listed); None without dev rows
    (e.g. Tatoeba has a test split only): the best member is never chosen on test."""
    values = {}
    for m in members:
        dev = target.rows("dev", m)
        mask = measure.mask(dev, target)
        values[m] = scored(dev, mask).metric() if mask.any() else float("nan")
    if all(np.isnan(v) for v in values.values()):
        return None, values
    best = max(members, key=lambda m: (-np.inf if np.isnan(values[m]) else values[m], -members.index(m)))
    return best, values


def compare(target: Target, group: str, members: list[str], resamples: int, seed: int, confidence: float) -> list:
    """Every comparison of every measure of ``target``, with Holm-adjusted p-values per measure."""
    out: list[Comparison] = []
    for k, measure in enumerate(measures(target)):
        test = {init: target.rows("test", init) for init in target.runs}
        parts = {init: scored(rows, measure.mask(rows, target)) for init, rows in test.items()}
        # the same resamples for every comparison of a measure: one seed per (target, measure)
        draw = seed + 1009 * k
        rows = [
            Comparison(i, NONE, measure.name, paired(parts[i], parts[NONE], resamples, draw, confidence), "vs none")
            for i in [*members, group]
        ]
        rows += [
            Comparison(
                group, m, measure.name, paired(parts[group], parts[m], resamples, draw, confidence), "group vs member"
            )
            for m in members
        ]
        adjusted = holm([c.interval.p for c in rows])
        for c, p in zip(rows, adjusted, strict=True):
            c.interval = _with_holm(c.interval, p)
        best, dev_values = best_member(target, members, measure)
        if best is not None:
            chosen = next(c for c in rows if c.role == "group vs member" and c.b == best)
            rows.append(Comparison(group, best, measure.name, chosen.interval, "group vs best member", dev_values))
        out += rows
    return out


def _with_holm(interval: Interval, p_holm: float) -> Interval:
    return Interval(**{**interval.as_dict(), "p_holm": p_holm})


def by_language_vs_none(target: Target, init: str, resamples: int, seed: int, confidence: float) -> dict:
    """``init`` minus ``none`` per test language, each with its own interval (for the plots)."""
    a, b = target.rows("test", init), target.rows("test", NONE)
    out = {}
    for lang in sorted(set(a["language"])):
        mask = (a["language"] == lang).to_numpy()
        out[lang] = paired(scored(a, mask), scored(b, mask), resamples, seed, confidence).as_dict()
    return out


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
