"""An independent reader and scorer of XTREME prediction files, for tests.

Written from the file layout that google-research/xtreme's ``evaluate.py`` reads, not from xstilts' writer or
its checker (``xstilts.xtreme_submission``), so that the two can disagree:

- ``<task>/test-<lang>.tsv``: classification (xnli, pawsx) holds one label per line, compared line by line
  with the gold file (equal line counts required); tagging (udpos, panx) one tag per line, sentences split by
  blank lines.
- ``<task>/test-<lang>.json`` (xquad, mlqa, tydiqa): one JSON object ``{question id: answer text}``, scored
  against a SQuAD v1.1 gold file (``{"data": [{"paragraphs": [{"qas": [...]}]}]}``) by exact match and
  token F1 after SQuAD's answer normalisation (lower case, no punctuation, no English articles).
- ``xcopa/test-<lang>.jsonl`` (XTREME-R, not in ``evaluate.py``): one JSON object per line with an integer
  ``label``, compared line by line with the gold file's.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path

EXTENSION = {"xnli": "tsv", "pawsx": "tsv", "udpos": "tsv", "panx": "tsv", "xquad": "json", "mlqa": "json"}
EXTENSION.update(tydiqa="json", xcopa="jsonl")


def prediction_file(root: Path, task: str, language: str) -> Path:
    return root / task / f"test-{language}.{EXTENSION[task]}"


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def read_sentences(path: Path) -> list[list[str]]:
    sentences, current = [], []
    for line in read_lines(path):
        if line:
            current.append(line)
        elif current:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def read_answers(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()), path
    return data


def read_choices(path: Path) -> list[int]:
    labels = [json.loads(line)["label"] for line in read_lines(path) if line]
    assert all(type(label) is int for label in labels), path
    return labels


def _normalise(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _token_f1(prediction: str, gold: str) -> float:
    p, g = _normalise(prediction).split(), _normalise(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(gold: dict, predictions: dict[str, str]) -> dict[str, float]:
    """Exact match and F1 (0-100) over every gold question; an unanswered one scores 0."""
    em = f1 = 0.0
    questions = [qa for article in gold["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    for qa in questions:
        answers = [a["text"] for a in qa["answers"]]
        predicted = predictions.get(qa["id"])
        if predicted is None:
            continue
        em += max(float(_normalise(predicted) == _normalise(a)) for a in answers)
        f1 += max(_token_f1(predicted, a) for a in answers)
    return {"exact_match": 100 * em / len(questions), "f1": 100 * f1 / len(questions)}


def score(prediction: Path, gold: Path, task: str) -> dict[str, float]:
    """The file's score against its gold file (accuracy 0-100, or SQuAD's exact match and F1)."""
    if EXTENSION[task] == "json":
        return squad_scores(json.loads(gold.read_text(encoding="utf-8")), read_answers(prediction))
    if task in ("udpos", "panx"):
        predicted, wanted = read_sentences(prediction), read_sentences(gold)
        assert [len(s) for s in predicted] == [len(s) for s in wanted], f"{prediction}: tags per sentence differ"
        pairs = [(p, g) for ps, gs in zip(predicted, wanted, strict=True) for p, g in zip(ps, gs, strict=True)]
    else:
        read = read_choices if task == "xcopa" else read_lines
        predicted, wanted = read(prediction), read(gold)
        assert len(predicted) == len(wanted), f"{prediction} has {len(predicted)} lines, the gold {len(wanted)}"
        pairs = list(zip(predicted, wanted, strict=True))
    return {"accuracy": 100 * sum(p == g for p, g in pairs) / len(pairs)}
