"""Hand-made study results: predictions tables of every init and seed, drawn from rates the test chooses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xstilts.study.analysis import Target

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


def target(seed_runs: dict[str, list[pd.DataFrame]], phase2_domains: tuple[str, ...] = ()) -> Target:
    return Target.of(
        "emo",
        seed_runs,
        family="classification",
        metric="accuracy",
        train_language="en",
        original_languages=("pl",),
        train_domains=("hotels",),
        phase2_domains=phase2_domains,
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
