"""Classification: a single sentence or a sentence pair -> one label (NLI, sentiment, fact verification)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from xstilts.families.base import (
    Baseline,
    Evaluation,
    Family,
    FamilySpec,
    constant_evaluation,
    dropped,
    label_ids,
    non_empty,
    softmax,
    sort_key,
)


def choice_evaluation(family: Family, outputs: np.ndarray, features: Any, labels: list[str], show: Any) -> Evaluation:
    """One predicted index per row (the argmax of ``outputs``, probabilities), scored by accuracy."""
    gold = np.asarray(features["labels"], dtype=int)
    pred = outputs.argmax(-1) if len(outputs) else np.zeros(0, dtype=int)
    return Evaluation.of(
        family,
        labels,
        features,
        gold=[show(int(i)) for i in gold],
        prediction=[show(int(i)) for i in pred],
        confidence=[float(x) for x in (outputs.max(-1) if len(outputs) else [])],
        correct={"accuracy": (gold == pred).astype(float)},
    )


class Classification(FamilySpec):
    """Mean-pooled sequence -> ``[batch, n_labels]`` logits; ``labels`` is the label's index."""

    family = Family.CLASSIFICATION
    columns = [("text_a", pa.string()), ("text_b", pa.string()), ("label", pa.string())]
    metric = "accuracy"
    counts = ("Label distribution", "label")

    def baseline(self, train, test, labels, allow_no_answer=False):
        """The majority class of train (ties: the first in label order)."""
        counts = Counter(train["label"].astype(str))
        majority = min(counts, key=lambda k: (-counts[k], str(k)))
        gold = test["label"].astype(str).tolist()
        correct = {"accuracy": np.asarray([g == majority for g in gold], dtype=float)}
        return Baseline(
            constant_evaluation(self.family, labels, test, gold, majority, correct=correct),
            f"majority class {majority!r} of train",
        )

    def expectations(self, gx: Any, task: Any) -> list:
        E = gx.expectations
        exps = non_empty(gx, "text_a", "the text to classify")
        exps.append(
            E.ExpectColumnValuesToMatchRegex(
                column="text_b", regex=r"\S", description="text_b, when given, must not be empty or blank"
            )
        )
        exps.append(E.ExpectColumnValuesToNotBeNull(column="label", description="every row has a label"))
        if task.labels:
            exps.append(
                E.ExpectColumnValuesToBeInSet(
                    column="label", value_set=list(task.labels), description=f"labels are {', '.join(task.labels)}"
                )
            )
        return exps

    def label_counts(self, rows: list[dict[str, Any]]) -> Counter:
        return Counter(r.get("label") for r in rows)

    def count_order(self, total: Counter, labels: Sequence[str]) -> list:
        return list(labels) + sorted((v for v in total if v not in labels), key=sort_key)

    def tokenize(self, ds, tokenizer, labels, max_length, stride=None):
        ids = label_ids(set(ds.unique("label")), labels)
        pair = any(b is not None for b in ds["text_b"])

        def encode(batch: dict) -> dict:
            args = (batch["text_a"], batch["text_b"]) if pair else (batch["text_a"],)
            enc = tokenizer(*args, truncation=True, max_length=max_length)
            enc["labels"] = [ids[x] for x in batch["label"]]
            return enc

        return ds.map(encode, batched=True, remove_columns=dropped(ds))

    def evaluate(self, outputs, examples, features, labels, allow_no_answer=False, null_threshold=0.0):
        probs = softmax(np.stack(outputs)) if outputs else np.zeros((0, len(labels)))
        return choice_evaluation(self.family, probs, features, labels, lambda i: labels[i])
