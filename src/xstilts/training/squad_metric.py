"""SQuAD v1.1 exact match and F1, written out after the official ``evaluate-v1.1.py`` (no Hub download).

Answers are normalised by lower-casing, removing punctuation (``string.punctuation``), removing the articles
"a", "an" and "the" as whole words, and collapsing whitespace. F1 is over the bag of normalised tokens; both
scores take the best over the gold answers. Scores here are fractions in [0, 1] (the official script prints
them x 100); as in v1.1, an empty prediction or gold scores F1 0 even against an empty counterpart.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over_gold(metric, prediction: str, golds: Iterable[str]) -> float:
    """The best score of ``prediction`` against any gold answer (0 when there is none)."""
    return max((metric(prediction, g) for g in golds), default=0.0)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, list[float]]:
    """Per-question ``exact_match`` and ``f1`` (average them for the corpus score)."""
    return {
        "exact_match": [best_over_gold(exact_match, p, g) for p, g in zip(predictions, golds, strict=True)],
        "f1": [best_over_gold(f1, p, g) for p, g in zip(predictions, golds, strict=True)],
    }
