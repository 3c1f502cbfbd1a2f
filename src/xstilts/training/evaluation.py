"""Predictions and per-language metrics for every trainable family.

Metric names per family (``<split>_<metric>_<language>``, plus ``_zeroshot`` and ``_translated`` averages):

* classification, multiple_choice: ``accuracy``;
* tagging (POS): ``accuracy`` (over words) and ``macro_f1`` (sklearn macro F1 over the tags present in gold or
  prediction; a word cut off by ``max_length`` counts as wrong);
* tagging (NER, a BIO/IOB2 tag set, see :func:`is_entity_tagset`): ``f1``, ``precision`` and ``recall`` over
  entities (seqeval's default CoNLL mode, as XTREME's ``evaluate.py`` scores PAN-X; a word cut off by
  ``max_length`` is tagged ``O``) and token ``accuracy`` (a cut-off word counts as wrong);
* extractive_qa: ``exact_match`` and ``f1`` (SQuAD v1.1, fractions in [0, 1]; see :mod:`squad_metric`); tasks
  with unanswerable questions: SQuAD 2.0 ``exact_match`` and ``f1``, plus ``has_ans_f1`` and ``no_ans_f1``.

:data:`MAIN_METRIC` is the one that picks the best checkpoint on the English dev set.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import datasets
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch.utils.data import DataLoader

from xstilts.modeling import MultiTaskModel
from xstilts.training.features import Collator, lengths
from xstilts.training.squad_metric import squad_scores

MAIN_METRIC = {
    "classification": "accuracy",
    "multiple_choice": "accuracy",
    "tagging": "accuracy",
    "extractive_qa": "f1",
}
N_BEST = 20


def main_metric(family: str, labels: Sequence[str] = ()) -> str:
    """The metric that picks checkpoints: :data:`MAIN_METRIC`, except entity F1 (seqeval) for NER tag sets."""
    if family == "tagging" and is_entity_tagset(labels):
        return "f1"
    return MAIN_METRIC[family]


MAX_ANSWER_TOKENS = 30


@torch.no_grad()
def model_outputs(
    model: MultiTaskModel, task: str, features: datasets.Dataset, collator: Collator, batch_size: int, bf16: bool
) -> list[np.ndarray]:
    """The head's float32 logits per row of ``features`` (batched by length), padding cut off.

    Rows are ``[n_labels]`` (classification), ``[n_choices]`` (multiple choice), ``[tokens, n_labels]``
    (tagging) or ``[tokens, 2]`` (extractive QA: start, end).
    """
    model.eval()
    family = model.specs[task].family
    order = np.argsort(lengths(family, features), kind="stable") if len(features) else np.zeros(0, dtype=int)
    loader = DataLoader(features.select(order), batch_size=batch_size, collate_fn=collator)
    device = next(model.parameters()).device
    rows: list[np.ndarray] = []
    for batch in loader:
        mask = batch["attention_mask"]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(task, batch["input_ids"].to(device), mask.to(device))
        logits = logits.float().cpu().numpy()
        if family == "multiple_choice":
            kept = (mask.sum(-1) > 0).sum(-1).tolist()
        elif family in ("tagging", "extractive_qa"):
            kept = mask.sum(-1).tolist()  # right padding: the first n tokens are real
        else:
            kept = [None] * len(logits)
        rows.extend(row if n is None else row[:n] for row, n in zip(logits, kept, strict=True))
    out: list[np.ndarray] = [np.empty(0)] * len(rows)
    for position, row in zip(order, rows, strict=True):
        out[position] = row
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def predict(
    model: MultiTaskModel, task: str, features: datasets.Dataset, collator: Collator, batch_size: int, bf16: bool
) -> np.ndarray | list[np.ndarray]:
    """Probabilities in the order of ``features``.

    classification: ``[n, n_labels]``; multiple choice: ``[n, most choices]`` (0 for choices a row lacks);
    tagging: a list of ``[tokens, n_labels]`` arrays; extractive QA: a list of ``[tokens, 2]`` start/end logits.
    """
    family = model.specs[task].family
    rows = model_outputs(model, task, features, collator, batch_size, bf16)
    if family == "extractive_qa":
        return rows
    if family == "tagging":
        return [_softmax(r) for r in rows]
    if family == "multiple_choice":
        width = max((len(r) for r in rows), default=0)
        out = np.zeros((len(rows), width))
        for i, r in enumerate(rows):
            out[i, : len(r)] = _softmax(r)
        return out
    if not rows:
        return np.zeros((0, len(model.specs[task].labels)))
    return _softmax(np.stack(rows))


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


def _spans(
    start: np.ndarray, end: np.ndarray, spans: Sequence[Sequence[int]], n_best: int, max_answer_tokens: int
) -> list[tuple[float, int, int]]:
    """(start + end logit, start char, end char) of one window's candidate spans among its top ``n_best`` tokens."""
    starts = np.argsort(start, kind="stable")[::-1][:n_best]
    ends = np.argsort(end, kind="stable")[::-1][:n_best]
    out = []
    for s in starts:
        if spans[s][0] < 0:
            continue
        for t in ends:
            if spans[t][0] < 0 or t < s or t - s + 1 > max_answer_tokens:
                continue
            out.append((float(start[s] + end[t]), spans[s][0], spans[t][1]))
    return out


def decode_qa(
    contexts: Sequence[str],
    example_index: Sequence[int],
    offsets: Sequence[Sequence[Sequence[int]]],
    logits: Sequence[np.ndarray],
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    allow_no_answer: bool = False,
    null_threshold: float = 0.0,
) -> tuple[list[str], list[float]]:
    """Best answer text per example over all its windows, and its probability among the candidates.

    Per window: the ``n_best`` highest start and end logits; a candidate needs both tokens in the context
    (offset not [-1, -1]), end >= start and at most ``max_answer_tokens`` tokens; its score is start + end
    logit and its text ``context[start offset : end offset]``. No candidate: the empty answer.

    ``allow_no_answer`` (SQuAD 2.0, as transformers' ``run_qa`` post-processing): the null score is the CLS
    token's (position 0) start + end logit, the minimum over the example's windows; the answer is empty when the
    null score exceeds the best span's by more than ``null_threshold``. The null score then joins the candidates
    whose softmax gives the probability.
    """
    windows: dict[int, list[int]] = defaultdict(list)
    for j, e in enumerate(example_index):
        windows[e].append(j)
    texts, confidence = [], []
    for e, context in enumerate(contexts):
        candidates: list[tuple[float, int, int]] = []
        for j in windows.get(e, []):
            candidates += _spans(logits[j][:, 0], logits[j][:, 1], offsets[j], n_best, max_answer_tokens)
        scores = [c[0] for c in candidates]
        best = int(np.argmax(scores)) if candidates else -1
        if allow_no_answer and windows.get(e):
            null = min(float(logits[j][0, 0] + logits[j][0, 1]) for j in windows[e])
            probs = _softmax(np.asarray([*scores, null]))
            if not candidates or null - scores[best] > null_threshold:
                texts.append("")
                confidence.append(float(probs[-1]))
            else:
                texts.append(context[candidates[best][1] : candidates[best][2]])
                confidence.append(float(probs[best]))
        elif candidates:
            texts.append(context[candidates[best][1] : candidates[best][2]])
            confidence.append(float(_softmax(np.asarray(scores))[best]))
        else:
            texts.append("")
            confidence.append(0.0)
    return texts, confidence


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


def per_language_metrics(
    languages: Iterable[str],
    score: Callable[[np.ndarray], dict[str, float]],
    prefix: str,
    train_language: str = "en",
    original_languages: tuple[str, ...] = (),
) -> dict[str, float]:
    """``<prefix>_<metric>_<lang>`` for each language and each metric ``score(mask)`` returns, plus averages.

    ``_zeroshot``: mean over languages other than the training language; ``_translated``: the same without
    languages whose data are human originals (e.g. Polish in MultiEmo), when there are any.
    """
    languages = np.asarray(list(languages))
    by_lang = {lang: score(languages == lang) for lang in sorted(set(languages.tolist()))}
    metrics: dict[str, float] = {}
    names = list(dict.fromkeys(name for values in by_lang.values() for name in values))
    for name in names:
        for lang, values in by_lang.items():
            metrics[f"{prefix}_{name}_{lang}"] = float(values[name])
        zero_shot = [values[name] for lang, values in by_lang.items() if lang != train_language]
        if zero_shot:
            metrics[f"{prefix}_{name}_zeroshot"] = float(np.mean(zero_shot))
        translated = [
            values[name] for lang, values in by_lang.items() if lang not in (train_language, *original_languages)
        ]
        if original_languages and translated:
            metrics[f"{prefix}_{name}_translated"] = float(np.mean(translated))
    return metrics


def _mean_of_scored(values: np.ndarray) -> float:
    """Mean over the examples a per-example score applies to (NaN: not scored, e.g. ``no_ans_f1`` of an answerable
    question); NaN when none is scored."""
    scored = values[~np.isnan(values)]
    return float(scored.mean()) if scored.size else float("nan")


@dataclass
class Evaluation:
    """Predictions of one split, one entry per example, and the metrics over any subset of its examples."""

    family: str
    labels: list[str]
    ids: list[str]
    languages: list[str]
    domains: list[str]
    gold: list[str]  # shown in the predictions table
    prediction: list[str]
    confidence: list[float]
    correct: dict[str, np.ndarray] = field(default_factory=dict)  # per-example scores (accuracy, em, f1)
    gold_tags: list[list[str]] = field(default_factory=list)  # tagging only
    pred_tags: list[list[str | None]] = field(default_factory=list)

    def score(self, mask: np.ndarray | None = None) -> dict[str, float]:
        mask = np.ones(len(self.ids), dtype=bool) if mask is None else np.asarray(mask)
        if self.family == "tagging":
            chosen = np.flatnonzero(mask)
            return tagging_scores([self.gold_tags[i] for i in chosen], [self.pred_tags[i] for i in chosen], self.labels)
        return {name: _mean_of_scored(values[mask]) for name, values in self.correct.items()}

    def per_language(self, prefix: str, train_language: str = "en", original_languages: tuple[str, ...] = ()) -> dict:
        return per_language_metrics(self.languages, self.score, prefix, train_language, original_languages)

    def table(self, split: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "split": split,
                "id": self.ids,
                "language": self.languages,
                "domain": self.domains,
                "gold": self.gold,
                "prediction": self.prediction,
                "confidence": self.confidence,
            }
        )


def evaluate(
    model: MultiTaskModel,
    task: str,
    examples: datasets.Dataset,
    features: datasets.Dataset,
    collator: Collator,
    batch_size: int,
    bf16: bool,
    allow_no_answer: bool = False,
    null_threshold: float = 0.0,
) -> Evaluation:
    """Predict ``features`` (built from ``examples`` by the family's builder) and score them per example.

    Extractive QA only: ``allow_no_answer`` (the task's ``unanswerable``) decodes and scores SQuAD 2.0 style, with
    ``null_threshold`` as in :func:`decode_qa`.
    """
    spec = model.specs[task]
    family, labels = spec.family, list(spec.labels)
    common = {"family": family, "labels": labels}
    if family in ("classification", "multiple_choice"):
        probs = predict(model, task, features, collator, batch_size, bf16)
        gold = np.asarray(features["labels"], dtype=int)
        pred = probs.argmax(-1) if len(probs) else np.zeros(0, dtype=int)
        show = (lambda i: labels[i]) if family == "classification" else str
        return Evaluation(
            **common,
            ids=features["id"],
            languages=features["language"],
            domains=features["domain"],
            gold=[show(int(i)) for i in gold],
            prediction=[show(int(i)) for i in pred],
            confidence=[float(x) for x in (probs.max(-1) if len(probs) else [])],
            correct={"accuracy": (gold == pred).astype(float)},
        )
    if family == "tagging":
        probs = predict(model, task, features, collator, batch_size, bf16)
        gold_tags = [list(t) for t in examples["tags"]]
        pred_tags, conf = words_from_tokens(features["word_index"], probs, [len(t) for t in gold_tags], labels)
        return Evaluation(
            **common,
            ids=examples["id"],
            languages=examples["language"],
            domains=examples["domain"],
            gold=[" ".join(t) for t in gold_tags],
            prediction=[" ".join("_" if t is None else t for t in row) for row in pred_tags],
            confidence=[float(np.mean(c)) if c else 0.0 for c in conf],
            gold_tags=gold_tags,
            pred_tags=pred_tags,
        )
    logits = model_outputs(model, task, features, collator, batch_size, bf16)
    texts, conf = decode_qa(
        examples["context"],
        features["example_index"],
        features["offsets"],
        logits,
        allow_no_answer=allow_no_answer,
        null_threshold=null_threshold,
    )
    golds = [list(a) for a in examples["answers_text"]]
    scores = squad_scores(texts, golds, allow_no_answer)
    return Evaluation(
        **common,
        ids=examples["id"],
        languages=examples["language"],
        domains=examples["domain"],
        gold=[json.dumps(g, ensure_ascii=False) for g in golds],
        prediction=texts,
        confidence=conf,
        correct={name: np.asarray(values, dtype=float) for name, values in scores.items()},
    )
