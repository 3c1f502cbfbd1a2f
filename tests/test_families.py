"""Heads, features, training and metrics of every trainable family, on a tiny model and tiny in-test fixtures."""

from __future__ import annotations

import json
import random

import datasets
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from transformers import AutoTokenizer

from project import write_task
from xstilts.encoder.loading import load_bare_encoder
from xstilts.errors import XstiltsError
from xstilts.families.base import IGNORE, MASKED_SCORE, per_language_metrics
from xstilts.families.extractive_qa import decode_qa
from xstilts.families.squad_metric import exact_match, f1, normalize_answer, squad_scores
from xstilts.families.tagging import tagging_scores, words_from_tokens
from xstilts.modeling import HeadSpec, MultiTaskModel, load_model
from xstilts.params import TrainParams
from xstilts.pipeline import train_and_evaluate as pipeline_training
from xstilts.pipeline.train_and_evaluate import train_and_evaluate_tasks
from xstilts.tasks.base import SCHEMAS, Family, Role, Task
from xstilts.training.evaluation import evaluate
from xstilts.training.features import Collator, tokenize
from xstilts.training.loop import train_task

WORDS = "the hotel was clean and staff were friendly room dirty service terrible doctor very good care".split()
TAGS = ("DET", "NOUN", "VERB", "ADJ", "CONJ")
TAG_OF = {
    "the": "DET",
    "and": "CONJ",
    "was": "VERB",
    "were": "VERB",
    "clean": "ADJ",
    "friendly": "ADJ",
    "dirty": "ADJ",
    "terrible": "ADJ",
    "very": "ADJ",
    "good": "ADJ",
}


def _cfg(**overrides) -> TrainParams:
    values = {
        "tasks": ["x"],
        "lr": 3e-3,
        "epochs": 6,
        "batch_size": 4,
        "max_length": 32,
        "warmup_ratio": 0.0,
        "eval_every": 1000,
        "patience": 100,
        "precision": "fp32",  # the same numbers on every CI machine (auto differs between them)
    }
    return TrainParams(**{**values, **overrides})


def _common(i: int, lang: str = "en") -> dict:
    return {"id": f"x{i}", "language": lang, "domain": "fixture", "source": "fixture", "split": "train"}


def _dataset(rows: list[dict], family: Family) -> datasets.Dataset:
    """Rows in the prepared Parquet schema of ``family``, as ``load_split`` would return them."""
    return datasets.Dataset(pa.Table.from_pylist([{**r, "split": "train"} for r in rows], schema=SCHEMAS[family]))


@pytest.fixture
def tokenizer(tiny_encoder_dir):
    return AutoTokenizer.from_pretrained(tiny_encoder_dir)


def _model(tiny_encoder_dir, task: str, family: str, labels=()) -> MultiTaskModel:
    torch.manual_seed(0)
    return MultiTaskModel(load_bare_encoder(tiny_encoder_dir), [HeadSpec(task, family, list(labels))])


# ---- fixtures per family -------------------------------------------------------------------------------------


def tagging_rows(n: int, lang: str = "en") -> list[dict]:
    rng = random.Random(n)
    rows = []
    for i in range(n):
        tokens = rng.sample(WORDS, 6)
        rows.append({**_common(i, lang), "tokens": tokens, "tags": [TAG_OF.get(t, "NOUN") for t in tokens]})
    return rows


def choice_rows(n: int, lang: str = "en") -> list[dict]:
    """The right choice is always "good"; 2 to 4 choices, so batches mix choice counts."""
    rng = random.Random(n)
    rows = []
    for i in range(n):
        distractors = rng.sample(["terrible", "dirty", "broken", "nobody"], 1 + i % 3)
        label = rng.randrange(len(distractors) + 1)
        choices = distractors[:label] + ["good"] + distractors[label:]
        context = " ".join(rng.sample(WORDS, 5))
        rows.append(
            {**_common(i, lang), "context": context, "question": "the care was", "choices": choices, "label": label}
        )
    return rows


def qa_rows(n: int, lang: str = "en") -> list[dict]:
    """The answer is always the word "staff", somewhere in a context of other words."""
    rng = random.Random(n)
    others = [w for w in WORDS if w != "staff"]
    rows = []
    for i in range(n):
        words = rng.sample(others, 8)
        words.insert(rng.randrange(9), "staff")
        context = " ".join(words)
        rows.append(
            {
                **_common(i, lang),
                "context": context,
                "question": "who were friendly",
                "answers_text": ["staff"],
                "answers_start": [context.index("staff")],
            }
        )
    return rows


def classification_rows(n: int) -> list[dict]:
    rng = random.Random(n)
    rows = []
    for i in range(n):
        label = rng.choice(["positive", "negative"])
        word = "good" if label == "positive" else "terrible"
        text = " ".join(rng.sample(WORDS[:8], 4) + [word])
        rows.append({**_common(i), "text_a": text, "text_b": None, "label": label})
    return rows


FAMILIES = {
    "classification": (classification_rows, ("negative", "positive")),
    "multiple_choice": (choice_rows, ()),
    "tagging": (tagging_rows, TAGS),
    "extractive_qa": (qa_rows, ()),
}


# ---- training: the loss falls for every family -----------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_training_loss_falls(family, tokenizer, tiny_encoder_dir):
    make_rows, labels = FAMILIES[family]
    result_metric = "f1" if family == "extractive_qa" else "accuracy"
    examples = _dataset(make_rows(16), Family(family))
    features = tokenize(family, examples, tokenizer, labels, 32)
    model = _model(tiny_encoder_dir, "t", family, labels)
    losses: list[float] = []
    curve: list[float] = []
    dev_examples = _dataset(make_rows(4), Family(family))
    dev = tokenize(family, dev_examples, tokenizer, labels, 32)
    result = train_task(
        model,
        "t",
        features,
        dev,
        Collator(tokenizer, family),
        _cfg(eval_every=8),
        seed=3,
        dev_examples=dev_examples,
        on_step=lambda step, loss: losses.append(loss),
        on_eval=lambda step, values: curve.append(values[f"dev_{result_metric}_train_language"]),
    )
    assert len(losses) == result.steps == 24
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    assert last < 0.7 * first, (family, losses)
    assert result.dev_metric == result_metric
    assert len(curve) == 3 and result.best_dev_score == max(curve)  # the best of the evaluations it logged


def test_no_dev_keeps_the_last_weights(tokenizer, tiny_encoder_dir):
    examples = _dataset(tagging_rows(4), Family.TAGGING)
    model = _model(tiny_encoder_dir, "t", "tagging", TAGS)
    features = tokenize("tagging", examples, tokenizer, TAGS, 32)
    result = train_task(model, "t", features, None, Collator(tokenizer, "tagging"), _cfg(epochs=1), seed=0)
    assert np.isnan(result.best_dev_score) and result.best_step == result.steps == 1


# ---- multiple choice -------------------------------------------------------------------------------------------


class LengthScorer(torch.nn.Module):
    """Scores each choice by its number of tokens, through the real masking of padding choices."""

    def __init__(self) -> None:
        super().__init__()
        self.specs = {"mc": HeadSpec("mc", "multiple_choice", [])}
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, task, input_ids, attention_mask):
        scores = attention_mask.sum(-1).float()
        return scores.masked_fill(scores == 0, MASKED_SCORE)


def test_multiple_choice_accuracy_from_known_scores(tokenizer):
    def row(i, lang, choices, label):
        return {**_common(i, lang), "context": "the hotel", "question": "was", "choices": choices, "label": label}

    # The longest choice wins: right, right, wrong (en); right, wrong (de, with 2 choices against 4 in a batch).
    rows = [
        row(0, "en", ["good", "very very good", "dirty"], 1),
        row(1, "en", ["the room was dirty", "good"], 0),
        row(2, "en", ["good", "very good care", "clean", "dirty"], 0),
        row(3, "de", ["clean", "very clean"], 1),
        row(4, "de", ["the staff were friendly", "good"], 1),
    ]
    examples = _dataset(rows, Family.MULTIPLE_CHOICE)
    features = tokenize("multiple_choice", examples, tokenizer, (), 32)
    batch = Collator(tokenizer, "multiple_choice")([features[1], features[2]])
    assert batch["input_ids"].shape[:2] == (2, 4) and batch["attention_mask"][0, 2:].sum() == 0
    evaluation = evaluate(LengthScorer(), "mc", examples, features, Collator(tokenizer, "multiple_choice"), 2)
    assert evaluation.prediction == ["1", "0", "1", "1", "0"]
    metrics = evaluation.per_language("dev")
    assert metrics["dev_accuracy_en"] == pytest.approx(2 / 3)
    assert metrics["dev_accuracy_de"] == pytest.approx(1 / 2)
    assert metrics["dev_accuracy_zeroshot"] == pytest.approx(1 / 2)


def test_padding_choices_never_win(tiny_encoder_dir):
    model = _model(tiny_encoder_dir, "mc", "multiple_choice").eval()
    ids = torch.tensor([[[0, 7, 2, 1], [0, 8, 9, 2], [1, 1, 1, 1]]])
    mask = torch.tensor([[[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]]])
    scores = model("mc", ids, mask)
    assert scores.shape == (1, 3) and scores[0, 2] == MASKED_SCORE and scores[0, :2].gt(-100).all()


# ---- tagging ---------------------------------------------------------------------------------------------------


def test_a_word_of_several_sub_tokens_gets_one_prediction(tokenizer):
    # "hotel,clean" is one word that the tokenizer splits into three sub-tokens: hotel , clean
    rows = [{**_common(0), "tokens": ["the", "hotel,clean", "was"], "tags": ["DET", "NOUN", "VERB"]}]
    examples = _dataset(rows, Family.TAGGING)
    features = tokenize("tagging", examples, tokenizer, TAGS, 32)
    assert features[0]["word_index"] == [-1, 0, 1, -1, -1, 2, -1]
    assert features[0]["labels"] == [IGNORE, 0, 1, IGNORE, IGNORE, 2, IGNORE]
    # the later sub-tokens of word 1 vote ADJ; only the first sub-token (NOUN) counts
    probs = np.full((7, len(TAGS)), 0.1)
    for token, tag in [(1, 0), (2, 1), (3, 3), (4, 3), (5, 2)]:
        probs[token, tag] = 0.9
    tags, confidence = words_from_tokens(features["word_index"], [probs], [3], TAGS)
    assert tags == [["DET", "NOUN", "VERB"]] and confidence == [[0.9, 0.9, 0.9]]
    # a word cut off by max_length has no prediction and counts as wrong
    cut = tokenize("tagging", examples, tokenizer, TAGS, 4)
    tags, _ = words_from_tokens(cut["word_index"], [probs[:4]], [3], TAGS)
    assert tags == [["DET", "NOUN", None]]


def test_tagging_scores_by_hand():
    scores = tagging_scores([["DET", "NOUN", "NOUN"]], [["DET", "NOUN", None]], TAGS)
    # DET: P=R=1; NOUN: P=1, R=1/2, F1=2/3; the missing prediction is not a tag of its own
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)


def test_per_language_metrics_averages_each_metric():
    metrics = per_language_metrics(
        ["en", "de", "pl"], lambda mask: {"a": float(np.flatnonzero(mask)[0]), "b": 1.0}, "test", "en", ("pl",)
    )
    assert metrics["test_a_de"] == 1.0 and metrics["test_a_pl"] == 2.0
    assert metrics["test_a_zeroshot"] == 1.5 and metrics["test_a_translated"] == 1.0
    assert metrics["test_b_zeroshot"] == 1.0


# ---- extractive QA ---------------------------------------------------------------------------------------------


def test_qa_answer_across_a_window_boundary_is_found_in_the_next_window(tokenizer):
    words = WORDS + WORDS[:4]  # 20 one-token words
    context = " ".join(words)
    answer = " ".join(words[8:12])  # tokens 8..11: crosses the end of the first window (10 context tokens)
    start = context.index(answer)
    rows = [
        {**_common(0), "context": context, "question": "who were", "answers_text": [answer], "answers_start": [start]}
    ]
    examples = _dataset(rows, Family.EXTRACTIVE_QA)
    features = tokenize("extractive_qa", examples, tokenizer, (), 16, 4)
    assert len(features) == 3 and features["example_index"] == [0, 0, 0]
    first, second = features[0], features[1]
    assert first["labels"] == [0, 0]  # the answer does not fit in the first window: CLS
    s, e = second["labels"]
    assert 0 < s <= e
    assert context[second["offsets"][s][0] : second["offsets"][e][1]] == answer
    assert all(o == [-1, -1] for o in second["offsets"][:5]) and second["offsets"][5][0] > 0  # <s> q q </s> </s>

    logits = [np.zeros((len(f["input_ids"]), 2)) for f in features]
    logits[0][0] = [9.0, 9.0]  # CLS is never an answer
    logits[0][6, 0], logits[0][8, 1] = 2.0, 2.0  # a valid but weaker span in the first window
    logits[1][s, 0], logits[1][e, 1] = 5.0, 5.0
    logits[1][e + 1, 0] = 8.0  # a start after the best end: not a span with that end
    texts, confidence = decode_qa([context], features["example_index"], features["offsets"], logits)
    assert texts == [answer] and 0 < confidence[0] < 1
    # at most 2 tokens: the 4-token answer is no longer allowed
    texts, _ = decode_qa([context], features["example_index"], features["offsets"], logits, max_answer_tokens=2)
    assert texts[0] != answer and len(texts[0].split()) <= 2


def test_qa_needs_room_for_context(tokenizer):
    with pytest.raises(XstiltsError, match="no context beyond the overlap"):
        tokenize("extractive_qa", _dataset(qa_rows(1), Family.EXTRACTIVE_QA), tokenizer, (), 16, 8)


def test_squad_metric_by_hand():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a pear and the plum") == "apple pear and plum"
    assert exact_match("the Eiffel Tower", "Eiffel Tower") == 1.0
    assert f1("the Eiffel Tower", "Eiffel Tower") == 1.0
    # pred {eiffel, tower, in, paris} vs gold {eiffel, tower}: P = 2/4, R = 1 -> F1 = 2/3
    assert f1("Eiffel Tower in Paris", "The Eiffel Tower") == pytest.approx(2 / 3)
    # bag of tokens: "cat cat" vs "cat" shares one token: P = 1/2, R = 1
    assert f1("the cat the cat", "cat") == pytest.approx(2 / 3)
    assert f1("another apple", "apple") == pytest.approx(2 / 3)  # "another" is not an article
    assert f1("", "apple") == 0.0 and f1("the", "a") == 0.0  # v1.1: nothing left scores 0
    scores = squad_scores(["Paris", "tower"], [["France", "Paris, France"], ["Tower."]])
    assert scores["exact_match"] == [0.0, 1.0]
    assert scores["f1"] == pytest.approx([2 / 3, 1.0])  # max over gold answers


# ---- the phase function for every family -----------------------------------------------------------------------


def _task(name, family, labels=(), languages=("en",), train_from=None) -> Task:
    cls = type(
        f"T_{name}",
        (Task,),
        {
            "name": name,
            "family": family,
            "role": Role.TARGET,
            "labels": labels,
            "languages": languages,
            "train_from": train_from,
        },
    )
    return cls()


def _run(task, project, tiny_encoder_dir, **cfg):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    with mlflow.start_run():
        return train_and_evaluate_tasks(
            [task],
            tokenizer,
            load_bare_encoder(tiny_encoder_dir),
            _cfg(**cfg),
            7,
            project / "models" / task.name,
            project / "predictions" / f"{task.name}.csv",
            {"seed": 7},
        )


def test_qa_target_trains_from_an_english_task(project, tiny_encoder_dir, monkeypatch):
    source_task = _task("qa_en", Family.EXTRACTIVE_QA)
    target = _task("qa_hi", Family.EXTRACTIVE_QA, languages=("hi",), train_from="qa_en")
    monkeypatch.setattr(pipeline_training, "get_task", lambda name, source="offline": {"qa_en": source_task}[name])
    write_task(project, "qa_en", Family.EXTRACTIVE_QA, {"train": qa_rows(12), "dev": qa_rows(3), "test": []})
    target_rows = qa_rows(4, "hi") + qa_rows(2, "de")
    write_task(project, "qa_hi", Family.EXTRACTIVE_QA, {"train": [], "dev": target_rows, "test": target_rows})
    outcome = _run(target, project, tiny_encoder_dir, epochs=2, eval_every=3)
    m = outcome.metrics
    assert {"dev_f1_hi", "dev_exact_match_de", "test_f1_zeroshot", "dev_exact_match_zeroshot"} <= set(m)
    assert m["dev_f1_zeroshot"] == pytest.approx((m["dev_f1_hi"] + m["dev_f1_de"]) / 2)
    assert m["train_examples"] == 12 and m["train_features"] >= 12
    table = pd.read_csv(project / "predictions" / "qa_hi.csv", keep_default_na=False)
    assert len(table) == 12 and json.loads(table["gold"][0]) == ["staff"]
    _, model, meta = load_model(outcome.model_dir)
    assert meta["train_from"] == "qa_en" and meta["doc_stride"] == 8 and model.specs["qa_hi"].family == "extractive_qa"


@pytest.mark.parametrize("family", ["tagging", "multiple_choice"])
def test_phase_writes_per_language_metrics(family, project, tiny_encoder_dir):
    make_rows, labels = FAMILIES[family]
    task = _task(f"fam_{family}", Family(family), labels, languages=("en", "tr"))
    evaluation = make_rows(3) + make_rows(3, "tr")
    write_task(project, task.name, Family(family), {"train": make_rows(8), "dev": evaluation, "test": evaluation})
    metrics = _run(task, project, tiny_encoder_dir, epochs=1, eval_every=1).metrics
    names = ["accuracy", "macro_f1"] if family == "tagging" else ["accuracy"]
    for name in names:
        assert {f"dev_{name}_en", f"test_{name}_tr", f"test_{name}_zeroshot"} <= set(metrics)
        assert metrics[f"test_{name}_zeroshot"] == metrics[f"test_{name}_tr"]
    table = pd.read_csv(project / "predictions" / f"{task.name}.csv")
    assert set(table["split"]) == {"dev", "test"} and len(table) == 12


def test_target_without_english_training_data_fails_clearly(project, tiny_encoder_dir):
    task = _task("mc_fa", Family.MULTIPLE_CHOICE, languages=("fa",))
    write_task(project, "mc_fa", Family.MULTIPLE_CHOICE, {"train": [], "dev": choice_rows(2, "fa")})
    with pytest.raises(XstiltsError, match="mc_fa has no English training data"):
        _run(task, project, tiny_encoder_dir)


def test_train_from_must_share_the_family(project, tiny_encoder_dir, monkeypatch):
    source_task = _task("cls_en", Family.CLASSIFICATION, ("a", "b"))
    task = _task("pos_x", Family.TAGGING, TAGS, train_from="cls_en")
    monkeypatch.setattr(pipeline_training, "get_task", lambda name, source="offline": source_task)
    with pytest.raises(XstiltsError, match="same family"):
        _run(task, project, tiny_encoder_dir)


def test_a_family_has_one_spec():
    from xstilts.families.base import FamilySpec, spec

    with pytest.raises(ValueError, match="family 'tagging' has two specs: Tagging, Other"):

        class Other(FamilySpec):
            family = Family.TAGGING

    assert type(spec("tagging")).__name__ == "Tagging"
