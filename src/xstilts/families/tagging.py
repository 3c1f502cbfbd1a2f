"""Tagging: one tag per word (POS, NER), predicted on each word's first sub-token.

Metrics: POS tag sets score word ``accuracy`` (the main metric) and ``macro_f1`` (sklearn macro F1 over the tags
present in gold or prediction); NER tag sets (BIO/IOB2, see :func:`is_entity_tagset`) score seqeval's entity
``f1`` (the main metric, as XTREME scores PAN-X), ``precision``, ``recall`` and word ``accuracy``. A word cut
off by ``max_length`` counts as wrong (NER: tagged ``O``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from xstilts.errors import XstiltsError
from xstilts.families.base import (
    IGNORE,
    Baseline,
    Evaluation,
    Family,
    FamilySpec,
    all_true,
    as_list,
    blank,
    constant_evaluation,
    dropped,
    label_ids,
    softmax,
)

TOP_TAGS = 15  # tags the data card lists


def is_entity_tagset(labels: Sequence[str]) -> bool:
    """True for an entity (NER) tag set: every tag is ``O`` or ``B-``/``I-`` prefixed, and some tag is ``B-``."""
    return any(t.startswith("B-") for t in labels) and all(t == "O" or t[:2] in ("B-", "I-") for t in labels)


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str | None]]) -> dict[str, float]:
    """seqeval entity-level F1, precision and recall (default CoNLL mode) plus word accuracy; None: ``O``/wrong."""
    from seqeval.metrics import f1_score as entity_f1
    from seqeval.metrics import precision_score, recall_score

    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred, strict=False)):
        raise ValueError("entity_scores needs one predicted tag (or None) per gold tag in every sentence")
    if not any(gold):
        return {name: float("nan") for name in ("f1", "precision", "recall", "accuracy")}
    tagged = [["O" if t is None else t for t in row] for row in pred]
    flat_gold = [t for row in gold for t in row]
    flat_pred = [t for row in pred for t in row]
    gold_lists = [list(row) for row in gold]
    return {
        "f1": float(entity_f1(gold_lists, tagged, zero_division=0)),
        "precision": float(precision_score(gold_lists, tagged, zero_division=0)),
        "recall": float(recall_score(gold_lists, tagged, zero_division=0)),
        "accuracy": float(np.mean([g == p for g, p in zip(flat_gold, flat_pred, strict=True)])),
    }


def tagging_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str | None]], labels: Sequence[str]) -> dict:
    """NER tag sets (:func:`is_entity_tagset`): :func:`entity_scores`; POS: word accuracy and macro F1.

    POS macro F1 runs over the task's tags present in gold or prediction; None (a word with no prediction) is wrong.
    """
    from sklearn.metrics import accuracy_score, f1_score

    if is_entity_tagset(labels):
        return entity_scores(gold, pred)
    flat_gold = [t for row in gold for t in row]
    flat_pred = ["" if t is None else t for row in pred for t in row]
    if not flat_gold:
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    present = set(flat_gold) | set(flat_pred)
    used = [label for label in labels if label in present]
    return {
        "accuracy": float(accuracy_score(flat_gold, flat_pred)),
        "macro_f1": float(f1_score(flat_gold, flat_pred, labels=used, average="macro", zero_division=0)),
    }


def words_from_tokens(
    word_index: Sequence[Sequence[int]],
    token_probs: Sequence[np.ndarray],
    n_words: Sequence[int],
    labels: Sequence[str],
) -> tuple[list[list[str | None]], list[list[float]]]:
    """Word-level tags (and their probabilities) from each word's first sub-token; None where a word has none."""
    tags, confidence = [], []
    for index, probs, n in zip(word_index, token_probs, n_words, strict=True):
        row_tags: list[str | None] = [None] * n
        row_conf = [0.0] * n
        for t, w in enumerate(index[: len(probs)]):
            if w >= 0:
                best = int(probs[t].argmax())
                row_tags[w], row_conf[w] = labels[best], float(probs[t][best])
        tags.append(row_tags)
        confidence.append(row_conf)
    return tags, confidence


class Tagging(FamilySpec):
    """Every token -> ``[batch, seq, n_labels]`` logits.

    Features: ``labels`` per token = the tag's index on the FIRST sub-token of each word, -100 elsewhere;
    ``word_index`` per token = the word's index on that sub-token, -1 elsewhere (maps predictions back to words).
    """

    family = Family.TAGGING
    # tags[i] labels tokens[i] (words, not sub-words); tag sets are the task's labels
    columns = [("tokens", pa.list_(pa.string())), ("tags", pa.list_(pa.string()))]
    metric = "accuracy"
    needs_examples = True
    per_token = True
    counts = ("Tag distribution", "tag")

    def main_metric(self, labels: Sequence[str] = ()) -> str:
        """Word accuracy, except entity F1 (seqeval) for NER tag sets."""
        return "f1" if is_entity_tagset(labels) else self.metric

    def add_helpers(self, df: Any, task: Any) -> None:
        tokens = [as_list(t) for t in df["tokens"].tolist()]
        tags = [as_list(t) for t in df["tags"].tolist()]
        df["n_tokens"] = [len(t) if t is not None else 0 for t in tokens]
        df["tags_aligned"] = [
            a is not None and b is not None and len(a) == len(b) for a, b in zip(tokens, tags, strict=True)
        ]
        df["no_empty_token"] = [t is not None and all(not blank(x) for x in t) for t in tokens]
        if task.labels:
            known = set(task.labels)
            df["tags_in_label_set"] = [t is not None and all(x in known for x in t) for t in tags]

    def expectations(self, gx: Any, task: Any) -> list:
        E = gx.expectations
        exps = [
            E.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=1, description="every row has tokens"),
            all_true(gx, "tags_aligned", "tags must have one tag per token"),
            all_true(gx, "no_empty_token", "no token may be empty or blank"),
        ]
        if task.labels:
            exps.append(all_true(gx, "tags_in_label_set", f"every tag must be one of the {len(task.labels)} labels"))
        return exps

    def baseline(self, train, test, labels, allow_no_answer=False):
        """The most frequent tag of train's words, for every word (ties: the first in sort order)."""
        counts = Counter(str(t) for tags in train["tags"] for t in tags)
        majority = min(counts, key=lambda t: (-counts[t], t))
        gold_tags = [[str(t) for t in tags] for tags in test["tags"]]
        evaluation = constant_evaluation(
            self.family,
            labels,
            test,
            [" ".join(t) for t in gold_tags],
            majority,
            gold_tags=gold_tags,
            pred_tags=[[majority] * len(t) for t in gold_tags],
        )
        return Baseline(evaluation, f"tag {majority!r} (the most frequent in train) for every word")

    def label_counts(self, rows: list[dict[str, Any]]) -> Counter:
        return Counter(t for r in rows for t in (r.get("tags") or []))

    def count_order(self, total: Counter, labels: Sequence[str]) -> list:
        return [v for v, _ in total.most_common(TOP_TAGS)]

    def tokenize(self, ds, tokenizer, labels, max_length, stride=None):
        """Words tokenised with ``is_split_into_words``; words cut off by ``max_length`` get no prediction."""
        if not getattr(tokenizer, "is_fast", False):
            raise XstiltsError("Tagging needs a fast tokenizer (word_ids); this model's tokenizer is not one.")
        ids = label_ids({t for tags in ds["tags"] for t in tags}, labels)

        def encode(batch: dict) -> dict:
            enc = tokenizer(list(batch["tokens"]), is_split_into_words=True, truncation=True, max_length=max_length)
            all_labels, all_words = [], []
            for i, tags in enumerate(batch["tags"]):
                seen: set[int] = set()
                row_labels, row_words = [], []
                for w in enc.word_ids(i):
                    if w is None or w in seen:
                        row_labels.append(IGNORE)
                        row_words.append(-1)
                    else:
                        seen.add(w)
                        row_labels.append(ids[tags[w]])
                        row_words.append(w)
                all_labels.append(row_labels)
                all_words.append(row_words)
            enc["labels"] = all_labels
            enc["word_index"] = all_words
            return enc

        return ds.map(encode, batched=True, remove_columns=dropped(ds))

    def collate(self, rows, pad_id, pad):
        """Right padding; ``labels`` padded with -100."""
        import torch

        length = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE, dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.as_tensor(r["input_ids"])
            mask[i, :n] = torch.as_tensor(r["attention_mask"])
            labels[i, :n] = torch.as_tensor(r["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def loss(self, logits, batch):
        """``[B, T, L]`` vs ``[B, T]``, -100 ignored."""
        import torch

        labels = batch["labels"]
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)

    def evaluate(self, outputs, examples, features, labels, allow_no_answer=False, null_threshold=0.0):
        probs = [softmax(r) for r in outputs]
        gold_tags = [list(t) for t in examples["tags"]]
        pred_tags, conf = words_from_tokens(features["word_index"], probs, [len(t) for t in gold_tags], labels)
        return Evaluation.of(
            self.family,
            labels,
            examples,
            gold=[" ".join(t) for t in gold_tags],
            prediction=[" ".join("_" if t is None else t for t in row) for row in pred_tags],
            confidence=[float(np.mean(c)) if c else 0.0 for c in conf],
            gold_tags=gold_tags,
            pred_tags=pred_tags,
        )

    def score(self, evaluation: Evaluation, chosen: np.ndarray) -> dict[str, float]:
        gold = [evaluation.gold_tags[i] for i in chosen]
        return tagging_scores(gold, [evaluation.pred_tags[i] for i in chosen], evaluation.labels)

    def parts(self, evaluation: Evaluation, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Word accuracy: correct words over words per sentence; entity F1: ``2 TP`` over ``2 TP + FP + FN``."""
        pairs = list(zip(evaluation.gold_tags, evaluation.pred_tags, strict=True))
        if metric == "accuracy":
            correct = [sum(g == p for g, p in zip(gold, pred, strict=True)) for gold, pred in pairs]
            return np.asarray(correct, dtype=float), np.asarray([len(gold) for gold, _ in pairs], dtype=float)
        if metric != "f1":
            raise XstiltsError(f"Tagging has no per-example parts for {metric!r}; only for accuracy and f1.")
        from seqeval.metrics.sequence_labeling import get_entities

        score, weight = [], []
        for gold, pred in pairs:
            g, p = set(get_entities(list(gold))), set(get_entities(["O" if t is None else t for t in pred]))
            tp = len(g & p)
            score.append(2.0 * tp)
            weight.append(2.0 * tp + len(p - g) + len(g - p))
        return np.asarray(score), np.asarray(weight)
