"""The learning gate: each family's trivial baseline, chosen on train and scored like the model, and the diagnosis
of each task head (learned, not learned, unclear) on its own test split, its seeds averaged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xstilts.families import spec
from xstilts.study.gate import GateInput, aligned, check, findings


def rows(n: int, **columns) -> pd.DataFrame:
    keys = {"id": [f"r{i}" for i in range(n)], "language": ["en"] * n, "domain": ["wiki"] * n}
    return pd.DataFrame({**keys, **columns})


def parts_of(family: str, train: pd.DataFrame, test: pd.DataFrame, labels=(), unanswerable=False):
    family_spec = spec(family)
    baseline = family_spec.baseline(train, test, list(labels), unanswerable)
    score, weight = family_spec.parts(baseline.evaluation, family_spec.main_metric(labels))
    return baseline.what, score, weight


def test_classification_predicts_the_majority_class_of_train():
    train = rows(5, label=["SUPPORTS", "REFUTES", "SUPPORTS", "NEI", "SUPPORTS"])
    test = rows(4, label=["REFUTES", "SUPPORTS", "SUPPORTS", "NEI"])
    what, score, weight = parts_of("classification", train, test, ("SUPPORTS", "REFUTES", "NEI"))
    assert what == "majority class 'SUPPORTS' of train"
    assert score.tolist() == [0, 1, 1, 0] and weight.tolist() == [1] * 4


def test_multiple_choice_predicts_the_choice_most_often_right_in_train():
    train = rows(4, label=[2, 0, 2, 1])
    test = rows(3, label=[1, 2, 2])
    what, score, _ = parts_of("multiple_choice", train, test)
    assert what.startswith("always choice 2") and score.tolist() == [0, 1, 1]


def test_extractive_qa_takes_the_better_of_the_empty_answer_and_the_first_words():
    # the answer is always the context's first two words: k = 2 wins on train
    contexts = ["Marie Curie won twice", "New York is big", "Ada Lovelace wrote notes"]
    train = rows(3, context=contexts, answers_text=[["Marie Curie"], ["New York"], ["Ada Lovelace"]])
    test = rows(2, context=["Alan Turing broke codes", "the cat sat"], answers_text=[["Alan Turing"], ["sat"]])
    what, score, _ = parts_of("extractive_qa", train, test)
    assert what == "the context's first 2 words" and score.tolist() == [1.0, 0.0]
    # SQuAD 2.0 with mostly unanswerable questions: the empty answer wins and scores 1 on those
    train2 = rows(3, context=contexts, answers_text=[[], [], ["Ada Lovelace"]])
    test2 = rows(2, context=contexts[:2], answers_text=[[], ["New York"]])
    what, score, _ = parts_of("extractive_qa", train2, test2, unanswerable=True)
    assert what == "the empty answer" and score.tolist() == [1.0, 0.0]


def test_tagging_tags_every_word_with_the_most_frequent_tag_of_train():
    train = rows(2, tokens=[["a", "b", "c"], ["d", "e"]], tags=[["NOUN", "VERB", "NOUN"], ["NOUN", "DET"]])
    test = rows(2, tokens=[["x", "y"], ["z"]], tags=[["NOUN", "VERB"], ["DET"]])
    what, score, weight = parts_of("tagging", train, test, ("NOUN", "VERB", "DET"))
    assert what.startswith("tag 'NOUN'") and score.tolist() == [1, 0] and weight.tolist() == [2, 1]


def _gate(model_scores: np.ndarray, baseline_scores: np.ndarray, margin: float = 0.02) -> dict:
    n = len(model_scores)
    table = rows(n).assign(score=model_scores, weight=1.0, baseline_score=baseline_scores, baseline_weight=1.0)
    g = GateInput("nli-s13", "nli", "nli", "accuracy", "majority class 'a' of train", table)
    return check([g], margin, 2_000, 0, 0.95)[0]


def test_a_model_at_its_majority_class_did_not_learn_and_a_better_one_did():
    rng = np.random.default_rng(0)
    majority = (rng.random(400) < 0.5).astype(float)
    stuck = _gate(majority.copy(), majority)  # predicts the majority class: exactly the baseline
    assert stuck["state"] == "not learned" and not stuck["learned"] and stuck["diff"] == 0
    better = np.where(rng.random(400) < 0.5, 1.0, majority)  # right on half the rows the baseline gets wrong
    learned = _gate(better, majority)
    assert learned["state"] == "learned" and learned["low"] > 0.02
    assert _gate(better, majority, margin=0.5)["state"] == "not learned"  # the declared margin is what it must beat
    assert learned["half_width"] == pytest.approx((learned["high"] - learned["low"]) / 2)


def test_a_head_whose_interval_holds_the_margin_is_unclear():
    rng = np.random.default_rng(1)
    majority = (rng.random(80) < 0.5).astype(float)
    slightly = np.where(rng.random(80) < 0.12, 1.0, majority)  # ~6 points above the baseline on 80 rows
    row = _gate(slightly, majority)
    assert row["low"] < 0.02 < row["high"] and row["state"] == "unclear" and not row["learned"]


def test_a_heads_seeds_are_averaged_with_an_interval_that_counts_them():
    rng = np.random.default_rng(2)
    majority = (rng.random(300) < 0.5).astype(float)
    inputs = []
    for seed, share in ((13, 0.2), (14, 0.5), (15, 0.8)):  # seed luck: the share of wrong rows it gets right
        score = np.where(rng.random(300) < share, 1.0, majority)
        table = rows(300).assign(score=score, weight=1.0, baseline_score=majority, baseline_weight=1.0)
        inputs.append(
            GateInput(f"all-s{seed}", "all", "nli", "accuracy", "majority", table.sample(frac=1, random_state=seed))
        )
    [row] = check(inputs, 0.02, 2_000, 0, 0.95)
    assert row["runs"] == ["all-s13", "all-s14", "all-s15"] and row["seeds"] == 3
    assert row["a_value"] == pytest.approx(np.mean(row["per_seed"]))
    assert row["se_seeds"] == pytest.approx(np.std(row["per_seed"], ddof=1) / np.sqrt(3))
    assert row["se_seeds"] > row["se_test"] > 0  # the seeds' spread dominates the gate's error here


def test_interference_is_a_group_head_that_did_not_learn_while_the_member_alone_did():
    rng = np.random.default_rng(3)
    majority = (rng.random(400) < 0.5).astype(float)
    good = np.where(rng.random(400) < 0.6, 1.0, majority)
    inputs = []
    for name, task, score in (("nli", "nli", good), ("qa", "qa", good), ("all", "nli", majority), ("all", "qa", good)):
        table = rows(400).assign(score=score, weight=1.0, baseline_score=majority, baseline_weight=1.0)
        inputs.append(GateInput(name, name, task, "accuracy", "majority", table))
    gate = check(inputs, 0.02, 1_000, 0, 0.95)
    assert [r["state"] for r in gate] == ["learned", "learned", "not learned", "learned"]
    [found] = findings(gate, "all", ["nli", "qa"])
    assert found["kind"] == "interference" and found["task"] == "nli"
    assert [r["spec"] for r in found["rows"]] == ["all", "nli"]
    alone_stuck = findings([{**gate[0], "state": "not learned"}, *gate[1:]], "all", ["nli", "qa"])
    assert [f["kind"] for f in alone_stuck] == ["member not learned", "group head not learned"]


def test_the_gate_lines_the_baseline_up_with_the_predictions_by_id_and_language():
    test = rows(3)
    keys = {"split": ["test", "test", "dev", "test"], "id": ["r2", "r0", "r0", "r1"], "language": ["en"] * 4}
    predictions = pd.DataFrame({**keys, "score": [1.0, 0.0, 1.0, 1.0], "weight": 1.0})
    merged = aligned(predictions, (np.array([0.0, 1.0, 0.0]), np.ones(3)), test)
    assert merged.set_index("id")["baseline_score"].to_dict() == {"r0": 0.0, "r1": 1.0, "r2": 0.0}
    with pytest.raises(ValueError, match="different rows"):
        aligned(predictions[predictions["id"] != "r1"], (np.zeros(3), np.ones(3)), test)


def test_every_intermediate_task_declares_the_domains_its_data_covers():
    from xstilts.tasks import Role
    from xstilts.tasks.base import registered

    for source in ("offline", "hub"):
        for name, cls in registered(source).items():
            if cls.role == Role.INTERMEDIATE:
                assert cls.domains, f"{source} task {name} declares no domains"
    assert {"products", "reviews"} <= set(registered("offline")["squadshifts"].domains)  # Amazon reviews
