"""Behavioural tests of the served models (as Made-With-ML's ``tests/model``): a champion per family, trained by
the target phase on data where each property is learnable, promoted, and asked through its MLflow pyfunc model.

* invariance: a change the label must not follow (the noun a sentiment is about) leaves the label;
* direction: a change it must follow (a positive adjective made negative) moves the score the right way;
* minimum functionality: the sentiment of plain sentences, a QA answer inside its own context (and the right
  one), one tag per word (and the right one).
"""

from __future__ import annotations

from itertools import product

import mlflow
import pandas as pd
import pytest

from project import make_project, tiny_params, write_task
from xstilts.families import Family
from xstilts.pipeline.phases import run_target
from xstilts.pipeline.promote import run_promote

NOUNS = ["hotel", "room", "staff", "service", "product", "film", "doctor", "care"]  # words the tiny vocabulary has
POSITIVE = ["clean", "friendly", "good", "fine", "special"]
NEGATIVE = ["dirty", "terrible", "broken"]
HELD_OUT = [("film", "fine"), ("doctor", "dirty"), ("care", "broken"), ("room", "special")]  # in no training split
TASKS = ("multiemo", "pos_tr", "parsinlu_rc")  # classification, tagging (trained on brown_pos), extractive QA
TRAIN = {"lr": 3e-3, "epochs": 12, "batch_size": 8, "eval_every": 24, "patience": 100}


def _pairs(held_out: bool) -> list[tuple[str, str]]:
    return [p for p in product(NOUNS, POSITIVE + NEGATIVE) if (p in HELD_OUT) == held_out]


def _row(i: int, language: str = "en", **columns) -> dict:
    return {"id": f"r{i}", "language": language, "domain": "reviews", "source": "fixture", **columns}


def _splits(make) -> dict[str, list[dict]]:
    """Training rows from every (noun, adjective) pair but the held-out ones; dev and test from those."""
    rows = {"train": _pairs(False), "dev": HELD_OUT, "test": HELD_OUT}
    return {split: [_row(i, **make(n, a)) for i, (n, a) in enumerate(pairs)] for split, pairs in rows.items()}


def _sentiment(noun: str, adj: str) -> dict:
    label = "positive" if adj in POSITIVE else "negative"
    return {"text_a": f"the {noun} was {adj}", "text_b": None, "label": label}


def _tags(noun: str, adj: str) -> dict:
    return {"tokens": ["the", noun, "was", adj], "tags": ["DET", "NOUN", "VERB", "ADJ"]}


def _answer(noun: str, adj: str) -> dict:
    context = f"the {noun} was {adj}"
    return {"context": context, "question": f"what was {adj}", "answers_text": [noun], "answers_start": [4]}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_encoder_dir) -> dict[str, mlflow.pyfunc.PyFuncModel]:
    """Each task's champion, trained and promoted in a project of its own, loaded as its pyfunc model."""
    root = tmp_path_factory.mktemp("behaviour")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("XSTILTS_ROOT", str(root))
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mp.setenv("MLFLOW_EXPERIMENT_ID", "")
        mp.chdir(root)
        target = {**tiny_params(tiny_encoder_dir)["target"], **TRAIN, "tasks": list(TASKS), "inits": ["none"]}
        make_project(root, tiny_encoder_dir, target=target)
        write_task(root, "multiemo", Family.CLASSIFICATION, _splits(_sentiment))
        tagging = _splits(_tags)
        write_task(root, "brown_pos", Family.TAGGING, {"train": tagging["train"], "dev": tagging["dev"]})
        write_task(root, "pos_tr", Family.TAGGING, {"dev": tagging["dev"], "test": tagging["test"]})
        qa = _splits(_answer)
        write_task(root, "squadshifts", Family.EXTRACTIVE_QA, {"train": qa["train"], "dev": qa["dev"]})
        write_task(root, "parsinlu_rc", Family.EXTRACTIVE_QA, {"dev": qa["dev"], "test": qa["test"]})
        for task in TASKS:
            run_target(task, "none")
        assert [r.promoted for r in run_promote(list(TASKS))] == [True] * len(TASKS)
        yield {task: mlflow.pyfunc.load_model(f"models:/xstilts-{task}@champion") for task in TASKS}
        mlflow.set_tracking_uri(None)


def _classify(served, texts: list[str]) -> pd.DataFrame:
    return served["multiemo"].predict(pd.DataFrame({"text": texts}))


def test_sentiment_of_plain_sentences(served):
    out = _classify(served, [f"the {n} was {a}" for n, a in HELD_OUT])
    assert list(out["label"]) == [_sentiment(n, a)["label"] for n, a in HELD_OUT]


def test_invariance_the_noun_does_not_change_the_sentiment(served):
    for adj in POSITIVE + NEGATIVE:
        labels = set(_classify(served, [f"the {noun} was {adj}" for noun in NOUNS])["label"])
        assert labels == {_sentiment("hotel", adj)["label"]}, adj


def test_direction_a_negative_word_lowers_the_positive_score(served):
    for noun in NOUNS:
        good, bad = _classify(served, [f"the {noun} was clean", f"the {noun} was dirty"])["prob_positive"]
        assert good > bad, noun
    alone, added = _classify(served, ["the hotel was clean", "the hotel was clean and the room was terrible"])[
        "prob_positive"
    ]
    assert added < alone


def test_a_qa_answer_lies_inside_its_context_and_is_the_noun(served):
    contexts = [f"the {n} was {a}" for n, a in HELD_OUT] + ["the hotel was clean and the staff were friendly"]
    questions = [f"what was {a}" for _, a in HELD_OUT] + ["who were friendly"]
    out = served["parsinlu_rc"].predict(pd.DataFrame({"question": questions, "context": contexts}))
    for text, start, context in zip(out["text"], out["start"], contexts, strict=True):
        assert text and context[start : start + len(text)] == text, (text, start, context)
    assert list(out["text"][: len(HELD_OUT)]) == [n for n, _ in HELD_OUT]


def test_one_tag_per_word_and_the_right_ones(served):
    words = [["the", n, "was", a] for n, a in HELD_OUT] + [["the", "hotel", "and", "the", "room", "were", "clean"]]
    out = served["pos_tr"].predict(pd.DataFrame({"tokens": words}))
    assert [len(t) for t in out["tags"]] == [len(w) for w in words]
    assert all(list(t) == ["DET", "NOUN", "VERB", "ADJ"] for t in out["tags"][: len(HELD_OUT)])
    unknown = served["pos_tr"].predict(pd.DataFrame({"text": ["the zebra , was purple !"]}))
    assert len(unknown["tags"][0]) == len(unknown["tokens"][0]) == 6  # words outside the vocabulary get a tag too
