"""Did phase 2 learn? Each task head's test score on its own task against a trivial baseline: a diagnosis.

For every intermediate spec of the design and every task head it trains (a group has one per member), the task's
**test** split (dev chose the checkpoint) is scored against the family's trivial baseline, chosen on train
(:meth:`~xstilts.families.base.FamilySpec.baseline`: the majority class, the best constant choice, the better of
the empty answer and the context's first words, the most frequent tag). The head's metric is averaged over the
seeds, with an interval that counts the seeds and the test set (:mod:`~xstilts.study.intervals`), and the head is
in one of three states: **learned** (the lower bound of ``metric - baseline`` above ``study.learn_margin``), **not
learned** (the upper bound below it) or **unclear**. The gate never voids a verdict (whether the group's head
learns is itself an outcome of multi-task training): a group head that did not learn while its member alone did is
reported as **interference**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xstilts.study.bootstrap import Scored, resampled_metrics
from xstilts.study.intervals import SeedTerm, interval, shared_noise

STATES = ("learned", "not learned", "unclear")
DECIDABLE = 0.05  # a half-width above this (5 points) can rarely tell "learned" from "not learned"


@dataclass(frozen=True)
class GateInput:
    """One task head of one intermediate model, scored on its task's test rows beside the trivial baseline."""

    model: str  # the run (``all-s14``)
    spec: str  # the intermediate spec (``all``)
    task: str
    metric: str
    baseline: str  # what the baseline predicts
    rows: pd.DataFrame  # test rows: language, score, weight, baseline_score, baseline_weight


def state(low: float, high: float, margin: float) -> str:
    """learned (``low`` above ``margin``), not learned (``high`` below it) or unclear."""
    return "learned" if low > margin else "not learned" if high < margin else "unclear"


def check(inputs: Sequence[GateInput], margin: float, resamples: int, seed: int, confidence: float) -> list[dict]:
    """One row per (spec, task head), its seeds' runs together: the seed-averaged test metric and the baseline's,
    the difference with an interval that counts the seeds and the test set, its half-width and the state."""
    heads: dict[tuple[str, str], list[GateInput]] = {}
    for g in inputs:
        heads.setdefault((g.spec, g.task), []).append(g)
    out = []
    for k, ((spec, task), runs) in enumerate(heads.items()):
        tables = [g.rows.sort_values(["id", "language"], kind="stable").reset_index(drop=True) for g in runs]
        if any(not t[["id", "language"]].equals(tables[0][["id", "language"]]) for t in tables):
            raise ValueError(f"the runs of {spec} hold different {task} test rows")
        strata = tables[0]["language"].to_numpy(str)
        models = [Scored(t["score"].to_numpy(float), t["weight"].to_numpy(float), strata) for t in tables]
        per_seed = [m.metric() for m in models]
        first = tables[0]
        base = Scored(first["baseline_score"].to_numpy(float), first["baseline_weight"].to_numpy(float), strata)
        *drawn, b = resampled_metrics([*models, base], resamples, seed + 31 * k)
        values = (float(np.mean(per_seed)), base.metric())
        a, shared = np.mean(drawn, axis=0), shared_noise(np.stack(drawn))
        iv = interval([SeedTerm(per_seed), SeedTerm([-values[1]])], a - b, confidence, len(first), values, shared)
        row: dict[str, Any] = {"model": spec, "spec": spec, "task": task, "metric": runs[0].metric}
        head = state(iv.low, iv.high, margin)
        extra = {"runs": [g.model for g in runs], "per_seed": per_seed, "half_width": (iv.high - iv.low) / 2}
        out.append({**row, "baseline": runs[0].baseline, "state": head, "learned": head == "learned", **extra})
        out[-1].update(iv.as_dict())
    return out


def findings(rows: Sequence[dict[str, Any]], group: str, members: Sequence[str]) -> list[dict[str, Any]]:
    """What the gate says about the design: per member, ``interference`` (its head in the group did not learn while
    the member alone did), ``member not learned`` (alone), and every other head that did not learn or is unclear."""
    by = {(r["spec"], r["task"]): r for r in rows}
    out = []
    for m in members:
        alone, inside = by.get((m, m)), by.get((group, m))
        if alone is not None and alone["state"] != "learned":
            out.append({"kind": f"member {alone['state']}", "task": m, "rows": [alone]})
        if inside is None or inside["state"] == "learned":
            continue
        if inside["state"] == "not learned" and alone is not None and alone["state"] == "learned":
            out.append({"kind": "interference", "task": m, "rows": [inside, alone]})
        else:
            out.append({"kind": f"group head {inside['state']}", "task": m, "rows": [inside]})
    return out


def aligned(predictions: pd.DataFrame, baseline: tuple[np.ndarray, np.ndarray], test: pd.DataFrame) -> pd.DataFrame:
    """The test rows of a model's predictions with the baseline's per-example parts beside them (matched on id
    and language; the baseline's parts are in the order of ``test``)."""
    parts = test[["id", "language"]].assign(baseline_score=baseline[0], baseline_weight=baseline[1])
    rows = predictions[predictions["split"] == "test"][["id", "language", "score", "weight"]]
    merged = rows.merge(parts, on=["id", "language"], how="inner", validate="one_to_one")
    if len(merged) != len(rows) or len(merged) != len(test):
        raise ValueError("predictions and test split hold different rows")
    return merged
