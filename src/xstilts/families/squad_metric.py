"""SQuAD exact match and F1, written out after the official ``evaluate-v1.1.py`` and ``evaluate-v2.0.py``.

Answers are normalised by lower-casing, removing punctuation (``string.punctuation``), removing the articles
"a", "an" and "the" as whole words, and collapsing whitespace. F1 is over the bag of normalised tokens; both
scores take the best over the gold answers. Scores here are fractions in [0, 1] (the official scripts print
them x 100).

* v1.1 (:func:`squad_scores` by default): an empty prediction or gold scores F1 0 even against an empty
  counterpart, and a question without gold answers scores 0.
* v2.0 (``allow_no_answer=True``): gold answers that normalise to nothing are dropped, and a question left with
  none is unanswerable, whose only right answer is the empty string; a side with no tokens scores EM = F1 = 1
  against another side with none, else 0. ``has_ans_f1`` / ``no_ans_f1`` are F1 on the questions that do /
  do not have gold answers (NaN on the others), as the official ``HasAns_f1`` / ``NoAns_f1``.
"""

from __future__ import annotations

import math
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


def f1_v2(prediction: str, gold: str) -> float:
    """SQuAD 2.0 F1: as :func:`f1`, except that a side with no tokens scores 1 against another with none, else 0."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    return f1(prediction, gold)


def best_over_gold(metric, prediction: str, golds: Iterable[str]) -> float:
    """The best score of ``prediction`` against any gold answer (0 when there is none)."""
    return max((metric(prediction, g) for g in golds), default=0.0)


def gold_v2(golds: Iterable[str]) -> list[str]:
    """The gold answers SQuAD 2.0 scores against: those that normalise to something, or ``[""]`` if none does."""
    return [g for g in golds if normalize_answer(g)] or [""]


def squad_scores(
    predictions: Sequence[str], golds: Sequence[Sequence[str]], allow_no_answer: bool = False
) -> dict[str, list[float]]:
    """Per-question ``exact_match`` and ``f1`` (average them for the corpus score); v2.0 when ``allow_no_answer``.

    v2.0 adds ``has_ans_f1`` and ``no_ans_f1``: the question's F1 where it has (has not) gold answers, NaN elsewhere.
    """
    pairs = list(zip(predictions, golds, strict=True))
    if not allow_no_answer:
        return {
            "exact_match": [best_over_gold(exact_match, p, g) for p, g in pairs],
            "f1": [best_over_gold(f1, p, g) for p, g in pairs],
        }
    scores = {
        "exact_match": [best_over_gold(exact_match, p, gold_v2(g)) for p, g in pairs],
        "f1": [best_over_gold(f1_v2, p, gold_v2(g)) for p, g in pairs],
    }
    has_answer = [len(g) > 0 for _, g in pairs]
    scores["has_ans_f1"] = [s if has else math.nan for s, has in zip(scores["f1"], has_answer, strict=True)]
    scores["no_ans_f1"] = [math.nan if has else s for s, has in zip(scores["f1"], has_answer, strict=True)]
    return scores
