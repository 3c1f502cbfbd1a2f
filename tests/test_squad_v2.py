"""SQuAD 2.0: no-answer decoding (null score against the best span) and the official v2.0 scoring semantics."""

from __future__ import annotations

import math

import datasets
import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import AutoTokenizer

from xstilts.families.extractive_qa import decode_qa
from xstilts.families.squad_metric import f1_v2, gold_v2, squad_scores
from xstilts.modeling import HeadSpec
from xstilts.tasks.base import SCHEMAS, Family
from xstilts.training.evaluation import evaluate
from xstilts.training.features import Collator, tokenize

CONTEXT = "hello world"
OFFSETS = [[-1, -1], [0, 5], [6, 11], [-1, -1]]  # <s> hello world </s>


def _window(cls: float, start=(2.0, 0.0), end=(0.0, 2.0)) -> np.ndarray:
    """Logits of the 4-token window: CLS start = end = ``cls``; spans: hello 2, hello world 4, world 2."""
    return np.asarray([[cls, cls], [start[0], end[0]], [start[1], end[1]], [0.0, 0.0]])


def _softmax(x):
    e = np.exp(np.asarray(x) - max(x))
    return e / e.sum()


def test_null_beats_best_span():
    texts, conf = decode_qa([CONTEXT], [0], [OFFSETS], [_window(3.0)], allow_no_answer=True)
    assert texts == [""]  # null 6 > best span 4
    assert conf[0] == pytest.approx(_softmax([2.0, 4.0, 2.0, 6.0])[-1])


def test_span_beats_null():
    texts, conf = decode_qa([CONTEXT], [0], [OFFSETS], [_window(1.5)], allow_no_answer=True)
    assert texts == ["hello world"]  # null 3 < best span 4
    assert conf[0] == pytest.approx(_softmax([2.0, 4.0, 2.0, 3.0])[1])


def test_threshold_and_v1_unchanged():
    window = [_window(3.0)]  # null 6, best span 4: the difference is 2
    assert decode_qa([CONTEXT], [0], [OFFSETS], window, allow_no_answer=True, null_threshold=2.5)[0] == ["hello world"]
    assert decode_qa([CONTEXT], [0], [OFFSETS], window, allow_no_answer=True, null_threshold=1.5)[0] == [""]
    # SQuAD v1.1 style: CLS is never an answer and the probability is among the spans only
    texts, conf = decode_qa([CONTEXT], [0], [OFFSETS], window)
    assert texts == ["hello world"] and conf[0] == pytest.approx(_softmax([2.0, 4.0, 2.0])[1])


def test_null_is_the_minimum_over_windows():
    # Two examples interleaved; each has a window whose null (6) beats the best span (4) and one whose null (1) does
    # not. The minimum (1) rules: both answer with the span, whether their low-null window comes last or first.
    contexts = [CONTEXT, CONTEXT]
    high, low = _window(3.0), _window(0.5, start=(-9.0, -9.0), end=(-9.0, -9.0))
    texts, _ = decode_qa(contexts, [0, 1, 1, 0], [OFFSETS] * 4, [high, low, high, low], allow_no_answer=True)
    assert texts == ["hello world", "hello world"]
    # both windows' nulls above the best span: no answer
    texts, _ = decode_qa([CONTEXT], [0, 0], [OFFSETS] * 2, [high, _window(2.5)], allow_no_answer=True)
    assert texts == [""]  # min(6, 5) = 5 > 4


def test_no_candidate_span_means_no_answer():
    question_only = [[-1, -1]] * 4
    texts, conf = decode_qa([CONTEXT], [0], [question_only], [_window(-5.0)], allow_no_answer=True)
    assert texts == [""] and conf == [1.0]


def test_official_v2_semantics_by_hand():
    # compute_f1: if either side has no tokens, 1 when both have none, else 0
    assert f1_v2("", "") == 1.0 and f1_v2("The.", "") == 1.0  # "The." normalises to nothing
    assert f1_v2("Paris", "") == 0.0 and f1_v2("", "Paris") == 0.0
    assert f1_v2("Eiffel Tower in Paris", "The Eiffel Tower") == pytest.approx(2 / 3)  # P 2/4, R 2/2
    # gold answers that normalise to nothing are dropped; none left: [""]
    assert gold_v2(["the", "Paris"]) == ["Paris"] and gold_v2(["a"]) == [""] and gold_v2([]) == [""]


def test_squad_v2_scores():
    predictions = ["", "Paris", "Paris France", "", "a"]
    golds = [[], [], ["France", "Paris, France"], ["Paris"], ["the"]]
    scores = squad_scores(predictions, golds, allow_no_answer=True)
    assert scores["exact_match"] == [1.0, 0.0, 1.0, 0.0, 1.0]
    # "Paris France" vs "France": P 1/2, R 1 -> 2/3; vs "Paris, France": 1 (max over golds)
    assert scores["f1"] == pytest.approx([1.0, 0.0, 1.0, 0.0, 1.0])
    assert [math.isnan(x) for x in scores["has_ans_f1"]] == [True, True, False, False, False]
    assert [math.isnan(x) for x in scores["no_ans_f1"]] == [False, False, True, True, True]
    # answerable questions score as in v1.1 (same examples as the v1.1 hand test)
    v1 = squad_scores(["Paris", "tower"], [["France", "Paris, France"], ["Tower."]])
    v2 = squad_scores(["Paris", "tower"], [["France", "Paris, France"], ["Tower."]], allow_no_answer=True)
    assert v1["exact_match"] == v2["exact_match"] == [0.0, 1.0]
    assert v1["f1"] == pytest.approx(v2["f1"]) and v1["f1"] == pytest.approx([2 / 3, 1.0])
    assert set(v1) == {"exact_match", "f1"}
    # v1.1 keeps scoring an empty gold list 0
    assert squad_scores([""], [[]]) == {"exact_match": [0.0], "f1": [0.0]}


class NullWhenNobody(torch.nn.Module):
    """QA logits: the token ``staff`` scores 5 as start and end; CLS scores 4 when the question has ``nobody``."""

    def __init__(self, staff: int, nobody: int) -> None:
        super().__init__()
        self.specs = {"qa": HeadSpec("qa", "extractive_qa", [])}
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.staff, self.nobody = staff, nobody

    def forward(self, task, input_ids, attention_mask):
        logits = torch.zeros((*input_ids.shape, 2))
        logits[input_ids == self.staff] = 5.0
        logits[:, 0] = torch.where((input_ids == self.nobody).any(-1), 6.0, -6.0)[:, None]
        return logits


def test_evaluate_scores_unanswerable_questions(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    context = "the hotel was clean and the staff were friendly"

    def row(i, question, answers):
        starts = [context.index(a) for a in answers]
        common = {"id": f"q{i}", "language": "en", "domain": "fixture", "source": "fixture", "split": "dev"}
        return {**common, "context": context, "question": question, "answers_text": answers, "answers_start": starts}

    rows = [row(0, "who were friendly", ["staff"]), row(1, "nobody helped", []), row(2, "who helped nobody", [])]
    rows[2]["context"] = "the room was dirty"  # no "staff": the best span scores 0 < null 12
    examples = datasets.Dataset(pa.Table.from_pylist(rows, schema=SCHEMAS[Family.EXTRACTIVE_QA]))
    features = tokenize("extractive_qa", examples, tokenizer, (), 32)
    model = NullWhenNobody(tokenizer.convert_tokens_to_ids("staff"), tokenizer.convert_tokens_to_ids("nobody"))
    collator = Collator(tokenizer, "extractive_qa")

    v2 = evaluate(model, "qa", examples, features, collator, 2, allow_no_answer=True)
    assert v2.prediction == ["staff", "", ""]  # null 12 beats the span "staff" (10) in row 1
    metrics = v2.per_language("dev")
    assert metrics["dev_f1_en"] == metrics["dev_exact_match_en"] == 1.0
    assert metrics["dev_has_ans_f1_en"] == 1.0 and metrics["dev_no_ans_f1_en"] == 1.0

    v1 = evaluate(model, "qa", examples, features, collator, 2)
    assert v1.prediction[:2] == ["staff", "staff"] and set(v1.score()) == {"exact_match", "f1"}
    assert v1.score()["f1"] == pytest.approx(1 / 3)  # v1.1: a question without gold answers scores 0
