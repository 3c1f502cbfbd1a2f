"""Multiple choice: context + question -> the index of the right choice (COPA, SocialIQA, ParsiNLU)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from xstilts.errors import XstiltsError
from xstilts.families.base import (
    MASKED_SCORE,
    Baseline,
    Family,
    FamilySpec,
    all_true,
    as_list,
    blank,
    constant_evaluation,
    cut,
    dropped,
    softmax,
)
from xstilts.families.classification import choice_evaluation


class MultipleChoice(FamilySpec):
    """One (context + question, choice) pair per choice, each mean-pooled -> one score: ``[batch, n_choices]``.

    Batches are ``[batch, most choices, longest pair]``; padding choices are all padding with an all-zero
    attention mask, are not encoded and score :data:`MASKED_SCORE`, so rows with fewer choices share a batch.
    """

    family = Family.MULTIPLE_CHOICE
    # label: index into choices
    columns = [
        ("context", pa.string()),
        ("question", pa.string()),
        ("choices", pa.list_(pa.string())),
        ("label", pa.int64()),
    ]
    metric = "accuracy"
    counts = ("Gold choice index distribution", "label index")

    def add_helpers(self, df: Any, task: Any) -> None:
        choices = [as_list(c) for c in df["choices"].tolist()]
        df["n_choices"] = [len(c) if c is not None else 0 for c in choices]
        df["no_empty_choice"] = [c is not None and all(not blank(x) for x in c) for c in choices]
        df["has_context_or_question"] = [
            not (blank(c) and blank(q)) for c, q in zip(df["context"].tolist(), df["question"].tolist(), strict=True)
        ]

    def expectations(self, gx: Any, task: Any) -> list:
        E = gx.expectations
        return [
            E.ExpectColumnValuesToNotBeNull(column="context", description="context must be a string"),
            E.ExpectColumnValuesToNotBeNull(column="question", description="question must be a string"),
            all_true(gx, "has_context_or_question", "question may be empty only when the context is not"),
            E.ExpectColumnValuesToBeBetween(
                column="n_choices", min_value=2, description="choices must hold at least 2 options"
            ),
            all_true(gx, "no_empty_choice", "no choice may be empty or blank"),
            E.ExpectColumnValuesToNotBeNull(column="label", description="every row has a label"),
            E.ExpectColumnValuesToBeBetween(column="label", min_value=0, description="label is a choice index >= 0"),
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="n_choices", column_B="label", description="label must index into choices (< n_choices)"
            ),
        ]

    def baseline(self, train, test, labels, allow_no_answer=False):
        """The best constant choice: the position that is right most often in train (ties: the first)."""
        counts = Counter(int(x) for x in train["label"])
        k = min(counts, key=lambda c: (-counts[c], c))
        gold = [int(x) for x in test["label"]]
        correct = {"accuracy": np.asarray([g == k for g in gold], dtype=float)}
        evaluation = constant_evaluation(self.family, labels, test, [str(g) for g in gold], str(k), correct=correct)
        return Baseline(evaluation, f"always choice {k} (the most often right in train)")

    def label_counts(self, rows: list[dict[str, Any]]) -> Counter:
        return Counter(r.get("label") for r in rows)

    def tokenize(self, ds, tokenizer, labels, max_length, stride=None):
        """First = context and question joined by a space; second = the choice.

        A context too long for ``max_length`` is cut (at a token boundary) so that the question and the longest
        choice still fit; ``longest_first`` truncation remains as a safety net.
        """
        rows = zip(ds["choices"], ds["label"], strict=True)
        bad = [i for i, (n, y) in enumerate(rows) if not n or not 0 <= y < len(n)]
        if bad:
            raise XstiltsError(f"Multiple-choice row {bad[0]} has no choices or a label outside its choices.")
        specials = tokenizer.num_special_tokens_to_add(pair=True)

        def encode(batch: dict) -> dict:
            questions = [q or "" for q in batch["question"]]
            contexts = [c or "" for c in batch["context"]]
            q_len = [len(x) for x in tokenizer(questions, add_special_tokens=False)["input_ids"]]
            choice_len = [
                max(len(x) for x in tokenizer(list(choices), add_special_tokens=False)["input_ids"])
                for choices in batch["choices"]
            ]
            budgets = [max_length - specials - q - c - 1 for q, c in zip(q_len, choice_len, strict=True)]
            contexts = cut(tokenizer, contexts, budgets)
            firsts, seconds, owner = [], [], []
            for i, (context, question, choices) in enumerate(zip(contexts, questions, batch["choices"], strict=True)):
                first = f"{context} {question}".strip()
                for choice in choices:
                    firsts.append(first)
                    seconds.append(choice or "")
                    owner.append(i)
            enc = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)
            out = {"input_ids": [[] for _ in contexts], "attention_mask": [[] for _ in contexts]}
            for j, i in enumerate(owner):
                out["input_ids"][i].append(enc["input_ids"][j])
                out["attention_mask"][i].append(enc["attention_mask"][j])
            out["labels"] = list(batch["label"])
            return out

        return ds.map(encode, batched=True, remove_columns=dropped(ds))

    def collate(self, rows, pad_id, pad):
        import torch

        n_choices = max(len(r["input_ids"]) for r in rows)
        length = max(len(x) for r in rows for x in r["input_ids"])
        ids = torch.full((len(rows), n_choices, length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), n_choices, length), dtype=torch.long)
        for i, r in enumerate(rows):
            for c, (x, m) in enumerate(zip(r["input_ids"], r["attention_mask"], strict=True)):
                ids[i, c, : len(x)] = torch.as_tensor(x)
                mask[i, c, : len(m)] = torch.as_tensor(m)
        labels = torch.as_tensor([r["labels"] for r in rows], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def lengths(self, features):
        """Choices x longest pair."""
        return [len(x) * max(len(c) for c in x) for x in features["input_ids"]]

    def head_width(self, task, labels):
        return 1

    def logits(self, model, head, input_ids, mask):
        import torch

        batch, n_choices, length = input_ids.shape
        flat_ids, flat_mask = input_ids.reshape(-1, length), mask.reshape(-1, length)
        real = flat_mask.sum(-1) > 0  # padding choices are skipped, not encoded
        scores = head(model.embed(flat_ids[real], flat_mask[real])).squeeze(-1)
        out = torch.full((batch * n_choices,), MASKED_SCORE, dtype=scores.dtype, device=scores.device)
        out[real] = scores
        return out.view(batch, n_choices)

    def kept(self, mask):
        return (mask.sum(-1) > 0).sum(-1).tolist()

    def evaluate(self, outputs, examples, features, labels, allow_no_answer=False, null_threshold=0.0):
        width = max((len(r) for r in outputs), default=0)
        probs = np.zeros((len(outputs), width))
        for i, r in enumerate(outputs):
            probs[i, : len(r)] = softmax(r)
        return choice_evaluation(self.family, probs, features, labels, str)
