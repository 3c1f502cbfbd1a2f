"""Did phase 2 learn? Each intermediate model's test score on its own task against a trivial baseline.

For every intermediate model of the design (each seed) and every task head it trained (a group has one per
member), the task's **test** split (dev chose the checkpoint) is scored against the family's trivial baseline,
chosen on train (:meth:`~xstilts.families.base.FamilySpec.baseline`: the majority class, the best constant
choice, the better of the empty answer and the context's first words, the most frequent tag). The task counts as
learned when the lower bound of ``metric - baseline`` (paired bootstrap over the test rows) is above
``study.learn_margin``. A comparison that involves a model that did not learn says nothing about multi-task
training: its verdict is "uninformative", never "no".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xstilts.study.bootstrap import Scored, resampled_metrics
from xstilts.study.intervals import SeedTerm, interval


@dataclass(frozen=True)
class GateInput:
    """One task head of one intermediate model, scored on its task's test rows beside the trivial baseline."""

    model: str  # the run (``all-s14``)
    spec: str  # the intermediate spec (``all``)
    task: str
    metric: str
    baseline: str  # what the baseline predicts
    rows: pd.DataFrame  # test rows: language, score, weight, baseline_score, baseline_weight


def check(inputs: Sequence[GateInput], margin: float, resamples: int, seed: int, confidence: float) -> list[dict]:
    """One row per input: the model's and the baseline's test metric, the difference with its interval, and
    ``learned`` (its lower bound above ``margin``)."""
    out = []
    for k, g in enumerate(inputs):
        strata = g.rows["language"].to_numpy(str)
        model = Scored(g.rows["score"].to_numpy(float), g.rows["weight"].to_numpy(float), strata)
        base = Scored(g.rows["baseline_score"].to_numpy(float), g.rows["baseline_weight"].to_numpy(float), strata)
        a, b = resampled_metrics([model, base], resamples, seed + 31 * k)
        values = (model.metric(), base.metric())
        iv = interval([SeedTerm([values[0]]), SeedTerm([-values[1]])], a - b, confidence, len(g.rows), values)
        row: dict[str, Any] = {"model": g.model, "spec": g.spec, "task": g.task, "metric": g.metric}
        out.append({**row, "baseline": g.baseline, "learned": bool(iv.low > margin), **iv.as_dict()})
    return out


def not_learned(rows: Sequence[dict[str, Any]], specs: Sequence[str]) -> list[dict[str, Any]]:
    """The gate rows of ``specs`` whose task was not learned."""
    return [r for r in rows if r["spec"] in specs and not r["learned"]]


def aligned(predictions: pd.DataFrame, baseline: tuple[np.ndarray, np.ndarray], test: pd.DataFrame) -> pd.DataFrame:
    """The test rows of a model's predictions with the baseline's per-example parts beside them (matched on id
    and language; the baseline's parts are in the order of ``test``)."""
    parts = test[["id", "language"]].assign(baseline_score=baseline[0], baseline_weight=baseline[1])
    rows = predictions[predictions["split"] == "test"][["id", "language", "score", "weight"]]
    merged = rows.merge(parts, on=["id", "language"], how="inner", validate="one_to_one")
    if len(merged) != len(rows) or len(merged) != len(test):
        raise ValueError("predictions and test split hold different rows")
    return merged
