"""Hand-made study results: predictions tables of every init and seed, drawn from rates the test chooses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xstilts.study.analysis import Target
from xstilts.study.runs import Design

LANGS = ("en", "de", "fr", "pl")
DOMAINS = ("hotels", "medicine")


def frame(rows_per_cell: int, splits=("dev", "test"), langs=LANGS, domains=DOMAINS) -> pd.DataFrame:
    """The rows of one target (no scores): per split, language and domain ``rows_per_cell`` ids."""
    rows = [
        {"split": split, "id": f"{domain}-{i}", "language": lang, "domain": domain}
        for split in splits
        for lang in langs
        for domain in domains
        for i in range(rows_per_cell)
    ]
    return pd.DataFrame(rows)


def scored(base: pd.DataFrame, rate: dict[str, float], rng: np.random.Generator, dev_rate: float | None = None):
    """``base`` with 0/1 scores: right with probability ``rate[domain]`` (``dev_rate`` on every dev row)."""
    p = base["domain"].map(rate).to_numpy(float)
    if dev_rate is not None:
        p = np.where(base["split"] == "dev", dev_rate, p)
    return base.assign(score=(rng.random(len(base)) < p).astype(float), weight=1.0)


def target(seed_runs: dict[str, list[pd.DataFrame]], phase2_domains: tuple[str, ...] = (), seed_names=None) -> Target:
    return Target.of(
        "emo",
        seed_runs,
        family="classification",
        metric="accuracy",
        train_language="en",
        original_languages=("pl",),
        train_domains=("hotels",),
        phase2_domains=phase2_domains,
        seed_names=seed_names or {},
    )


def rates_target(rates: dict[str, tuple[float, float]], seeds: int = 1, dev=None, rows: int = 60, seed: int = 0):
    """Each init right with probability rates[init] = (hotels, medicine) on test; ``dev``: init -> dev rate."""
    base = frame(rows)
    rng = np.random.default_rng(seed)
    runs = {
        init: [scored(base, dict(zip(DOMAINS, r, strict=True)), rng, (dev or {}).get(init)) for _ in range(seeds)]
        for init, r in rates.items()
    }
    return target(runs)


def null_target(rng: np.random.Generator, seed_sd: float, seeds: int = 3, rows: int = 40, base=None) -> Target:
    """Every init alike: each example's chance of being right is drawn once, and each run (init, seed) shifts
    it by its own seed luck ~ N(0, seed_sd), the same on dev and test (a lucky seed is lucky everywhere)."""
    base = frame(rows, domains=("hotels",)) if base is None else base
    difficulty = rng.uniform(0.35, 0.85, len(base))
    runs = {}
    for init in ("none", "nli", "qa", "all"):
        runs[init] = []
        for _ in range(seeds):
            p = np.clip(difficulty + rng.normal(0, seed_sd), 0, 1)
            runs[init].append(base.assign(score=(rng.random(len(base)) < p).astype(float), weight=1.0))
    return target(runs)


def gate_rows(specs: dict[str, list[str]], stuck: tuple[str, ...] = ()) -> list[dict]:
    """Learning-gate rows for ``specs`` (spec -> its tasks): every task far above its baseline, except the tasks
    in ``stuck``, which score exactly their majority-class baseline."""
    from xstilts.study.gate import GateInput, check

    rng = np.random.default_rng(0)
    baseline = (rng.random(300) < 0.5).astype(float)
    inputs = []
    for spec, tasks in specs.items():
        for task in tasks:
            model = baseline.copy() if task in stuck else np.where(rng.random(300) < 0.6, 1.0, baseline)
            rows = pd.DataFrame({"id": [f"r{i}" for i in range(300)], "language": "en", "score": model, "weight": 1.0})
            rows = rows.assign(baseline_score=baseline, baseline_weight=1.0)
            inputs.append(GateInput(spec, spec, task, "accuracy", "majority class 'SUPPORTS' of train", rows))
    return check(inputs, 0.02, 1_000, 0, 0.95)


INITS = ("none", "nli", "qa", "all")


def runs_target(name: str, base: dict[str, np.ndarray], runs: dict[str, list[tuple[np.ndarray, np.ndarray]]], **kw):
    """A target from columns shared by every run (``base``) and each run's (score, weight), already aligned."""
    tables = {i: [pd.DataFrame({**base, "score": s, "weight": w}) for s, w in r] for i, r in runs.items()}
    return Target(name=name, seed_runs=tables, **kw)


def pos_like(rng: np.random.Generator, effects: dict[str, float], seed_sd: float, seeds: int, sentences: int = 400):
    """A POS-like target (word accuracy on ``sentences`` Turkish test sentences of 8-20 words, ~14): each word of a
    sentence is right with the sentence's chance, plus ``effects[init]`` and each run's own seed luck ~ N(0,
    seed_sd), the same for every sentence of the run. Returns the target and each run's luck (init -> per seed)."""
    n = rng.integers(8, 21, sentences)
    difficulty = rng.uniform(0.45, 0.75, sentences)
    ids = np.array([f"s{i}" for i in range(sentences)])
    base = {"split": np.full(sentences, "test"), "id": ids, "language": np.full(sentences, "tr")}
    base["domain"] = np.full(sentences, "wiki")
    runs, luck = {}, {}
    for init in INITS:
        luck[init] = rng.normal(0, seed_sd, seeds)
        chances = [np.clip(difficulty + effects.get(init, 0.0) + shift, 0, 1) for shift in luck[init]]
        runs[init] = [(rng.binomial(n, p).astype(float), n.astype(float)) for p in chances]
    declared = {"family": "tagging", "metric": "accuracy", "train_language": "en", "original_languages": ()}
    return runs_target("pos_tr", base, runs, train_domains=("news",), **declared), luck


def udhr_like(rng: np.random.Generator, effects: dict[str, float], seed_sd: float, seeds: int, keys: int = 42):
    """A UDHR-like retrieval target: ``keys`` paragraphs in 12 languages (ids ``udhr-<lang>-<key>-0``, so a key's
    translations are resampled together), top-1 right or wrong, chances shared by a key's translations."""
    langs = ("ar", "de", "es", "fr", "hi", "id", "ja", "pl", "ru", "sw", "tr", "zh")
    key = np.tile(np.arange(keys), len(langs))
    language = np.repeat(langs, keys)
    ids = np.array([f"udhr-{lang}-{k}-0" for lang, k in zip(language, key, strict=True)])
    base = {"split": np.full(len(ids), "test"), "id": ids, "language": language, "domain": np.full(len(ids), "udhr")}
    chance = rng.uniform(0.35, 0.7, keys)[key] + rng.normal(0, 0.03, len(ids))
    runs, luck = {}, {}
    for init in INITS:
        luck[init] = rng.normal(0, seed_sd, seeds)
        chances = [np.clip(chance + effects.get(init, 0.0) + shift, 0, 1) for shift in luck[init]]
        runs[init] = [((rng.random(len(ids)) < p).astype(float), np.ones(len(ids))) for p in chances]
    declared = {"family": "bitext", "metric": "accuracy", "train_language": "en", "original_languages": ()}
    return runs_target("udhr", base, runs, train_domains=(), **declared), luck


def simulate(make, effects: dict[str, float], seed_sd: float, seeds: int, studies: int, seed: int, **rules):
    """``studies`` synthetic studies of one target (``make``: :func:`pos_like` or :func:`udhr_like`) analysed and
    judged as the report does (``analyse`` -> ``judge``): per study the verdict's code and interval, and whether
    that interval covers the difference it is about (the procedure's, or these models' when not assessed) and
    the procedure's. ``rules``: min_effect, min_seeds, resamples, confidence."""
    from xstilts.study.analysis import analyse
    from xstilts.study.verdict import judge

    rules = {"min_effect": 0.02, "min_seeds": 3, "resamples": 400, "confidence": 0.95, **rules}
    rng = np.random.default_rng(seed)
    members = ["nli", "qa"]
    procedure = min(effects.get("all", 0.0) - effects.get(m, 0.0) for m in members)
    out = []
    for k in range(studies):
        target, luck = make(rng, effects, seed_sd, seeds)
        results = analyse(target, "all", members, rules["resamples"], k, rules["confidence"])
        v = judge({target.name: results.primary}, rules["confidence"], rules["min_effect"], rules["min_seeds"])
        v = v[target.name]
        models = min(
            effects.get("all", 0.0) + luck["all"].mean() - effects.get(m, 0.0) - luck[m].mean() for m in members
        )
        truth = models if v["code"] == "not-assessed" else procedure
        out.append(
            {
                "code": v["code"],
                "low": v["low"],
                "high": v["high"],
                "covers": v["low"] <= truth <= v["high"],
                "covers_procedure": v["low"] <= procedure <= v["high"],
            }
        )
    return pd.DataFrame(out)


# ------------------------------------------------------------------ a hand-made design and its results

DESIGN = Design("all", ("nli", "qa"), ("emo",), (), -1, seed=13, resamples=2_000, confidence=0.95, seeds=(1, 2, 3))
BUDGET = {
    "nli": {"spec": "nli", "steps": 40.0, "examples": 640.0},
    "qa": {"spec": "qa", "steps": 25.0, "examples": 400.0},
    "all": {"spec": "all", "steps": 60.0, "examples": 960.0},
}
SPECS = {"nli": ["nli"], "qa": ["qa"], "all": ["nli", "qa"]}
LEARNED = gate_rows(SPECS)


def levels_target(gain: float, noise: float, rows: int, seed: int = 0, example_noise: float = 0.0):
    """Continuous scores: every init at one per-example level, the group ``gain`` above it out of domain, each
    run shifted by seed luck of sd ``noise`` and each of its scores by noise of sd ``example_noise``; 3 seeds."""
    rng = np.random.default_rng(seed)
    base = frame(rows)
    level = rng.uniform(0.3, 0.7, len(base))
    outside = (base["domain"] != "hotels").to_numpy()
    runs = {
        init: [
            base.assign(
                score=level
                + gain * outside * (init == "all")
                + rng.normal(0, noise)
                + rng.normal(0, example_noise, len(base)),
                weight=1.0,
            )
            for _ in range(3)
        ]
        for init in ("none", "nli", "qa", "all")
    }
    return target(runs)
