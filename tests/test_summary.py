"""The end-of-run summary reads single- and multi-task metric files and every family's metric."""

from __future__ import annotations

import json

from xstilts.summary import comparison_table, english_scores, intermediate_lines


def test_english_scores_single_and_multi_task():
    single = {"dev_accuracy_en": 0.5, "test_accuracy_en": 0.6, "test_accuracy_de": 0.1, "train_steps": 3.0}
    assert english_scores(single) == {"": {"accuracy": (0.5, 0.6)}}
    multi = {"squad_v2_dev_f1_en": 0.2, "squad_v2_test_f1_en": 0.3, "mnli_test_accuracy_en": 0.7}
    scores = english_scores(multi)
    assert scores["squad_v2"] == {"f1": (0.2, 0.3)}
    assert scores["mnli"]["accuracy"][1] == 0.7


def test_intermediate_lines_and_tables(tmp_path):
    (tmp_path / "intermediate").mkdir()
    (tmp_path / "intermediate" / "all.json").write_text(
        json.dumps({"a_dev_accuracy_en": 0.5, "a_test_accuracy_en": 0.25, "b_dev_f1_en": 0.1, "b_test_f1_en": 0.2})
    )
    text = "".join(intermediate_lines(tmp_path))
    assert "Intermediate all (a): English accuracy dev 50.0 / test 25.0" in text
    assert "Intermediate all (b): English f1 dev 10.0 / test 20.0" in text
    table = comparison_table("t", {"init=none": {"test_f1_fa": 0.158}, "init=all": {"test_f1_fa": 0.201}}, "test_f1_")
    assert "15.8" in table and "20.1" in table


def test_a_targets_trivial_baseline_is_a_column_beside_its_inits():
    from xstilts.summary import _baseline_column

    runs = {
        "init=none": {"test_accuracy_en": 0.8, "test_accuracy_de": 0.6, "test_baseline_accuracy_en": 0.5},
        "init=all": {"test_accuracy_en": 0.7},
    }
    column = _baseline_column(runs, "accuracy")
    assert column == {"trivial baseline": {"test_accuracy_en": 0.5}}
    table = comparison_table("t", {**runs, **column}, "test_accuracy_")
    assert "trivial baseline" in table.splitlines()[1] and "50.0" in table
    assert _baseline_column({"init=none": {"test_accuracy_en": 0.8}}, "accuracy") == {}
