"""Great Expectations suites per family: each kind of defect fails with a clear sentence; clean data passes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.data.validation import ValidationReport, run_validation, validate_task
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family, Role, Task

# Tasks for families that have no task module yet; not registered.


class TinyClassification(Task):
    name = "tinycls"
    family = Family.CLASSIFICATION
    role = Role.TARGET
    labels = ("yes", "no")
    languages = ("en", "de")


class TinyChoice(Task):
    name = "tinymc"
    family = Family.MULTIPLE_CHOICE
    role = Role.INTERMEDIATE


class TinyQA(Task):
    name = "tinyqa"
    family = Family.EXTRACTIVE_QA
    role = Role.TARGET
    languages = ("en", "de")


class TinyTagging(Task):
    name = "tinypos"
    family = Family.TAGGING
    role = Role.TARGET
    labels = ("NOUN", "VERB", "DET", "PUNCT")
    languages = ("en", "de")


class TinyBitext(Task):
    name = "tinybitext"
    family = Family.BITEXT
    role = Role.RETRIEVAL
    languages = ("de", "fr")


def _common(i: str, split: str, language: str = "en") -> dict[str, Any]:
    return {"id": i, "language": language, "domain": "test", "source": "pkg==1.0", "split": split}


def cls_row(i: str, split: str, language: str = "en", **kw: Any) -> dict[str, Any]:
    return {**_common(i, split, language), "text_a": f"text {i}", "text_b": None, "label": "yes", **kw}


def mc_row(i: str, split: str, **kw: Any) -> dict[str, Any]:
    row = {"context": "A cat sat.", "question": "Who sat?", "choices": ["a cat", "a dog"], "label": 0}
    return {**_common(i, split), **row, **kw}


def qa_row(i: str, split: str, language: str = "en", **kw: Any) -> dict[str, Any]:
    row = {"context": "Paris is in France.", "question": "Where is Paris?", "answers_text": ["France"]}
    return {**_common(i, split, language), **row, "answers_start": [12], **kw}


def tag_row(i: str, split: str, language: str = "en", **kw: Any) -> dict[str, Any]:
    row = {"tokens": ["The", "cat", "sat", "."], "tags": ["DET", "NOUN", "VERB", "PUNCT"]}
    return {**_common(i, split, language), **row, **kw}


def bitext_row(i: str, split: str, language: str = "de", **kw: Any) -> dict[str, Any]:
    return {**_common(i, split, language), "text": f"Satz {i}", "en_text": f"Sentence {i}", **kw}


CLEAN = {
    TinyClassification: [
        cls_row("c-1", "train"),
        cls_row("c-2", "train", label="no", text_b="a second text"),
        cls_row("c-3", "dev"),
        cls_row("c-3", "dev", "de", text_a="Text drei"),  # translations share an id within one split
        cls_row("c-4", "test", "de"),
    ],
    TinyChoice: [mc_row("m-1", "train"), mc_row("m-2", "dev", question="", label=1), mc_row("m-3", "test")],
    TinyQA: [
        qa_row("q-1", "train"),
        qa_row("q-2", "dev", answers_text=["Paris", "France"], answers_start=[0, 12]),
        qa_row(
            "q-3", "test", "de", context="Paris liegt in Frankreich.", answers_text=["Frankreich"], answers_start=[15]
        ),
    ],
    TinyTagging: [tag_row("t-1", "train"), tag_row("t-2", "dev"), tag_row("t-3", "test", "de")],
    TinyBitext: [bitext_row("b-de-1", "dev"), bitext_row("b-fr-1", "test", "fr"), bitext_row("b-de-2", "test")],
}


def write_prepared(folder: Path, family: Family, rows: list[dict[str, Any]]) -> Path:
    """Write rows to ``folder/<split>.parquet`` by the file split given as ``_file`` (else ``split``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        chosen = [{k: v for k, v in r.items() if k != "_file"} for r in rows if r.get("_file", r["split"]) == split]
        pq.write_table(pa.Table.from_pylist(chosen, schema=SCHEMAS[family]), folder / f"{split}.parquet")
    return folder


def check(tmp_path: Path, task_cls: type[Task], rows: list[dict[str, Any]], **kw: Any) -> ValidationReport:
    task = task_cls()
    return validate_task(task, write_prepared(tmp_path / task.name, task.family, rows), **kw)


def assert_fails(report: ValidationReport, expectation: str, column: str, example: str) -> str:
    assert not report.success
    first = report.failures[0]
    assert (first["expectation"], first["column"]) == (expectation, column), report.failures
    message = report.message()
    assert message.startswith(f"{report.task}: {expectation} on {column} failed"), message
    assert example in message, message
    assert "\n" not in message
    return message


@pytest.mark.parametrize("task_cls", list(CLEAN), ids=lambda c: c.family.value)
def test_clean_fixture_passes(tmp_path, task_cls):
    report = check(tmp_path, task_cls, CLEAN[task_cls])
    assert report.success, report.message()
    assert report.failures == []
    assert report.statistics["evaluated_expectations"] > 10
    json.dumps(report.to_dict())  # the raw GE result is JSON-able


def test_duplicate_id(tmp_path):
    rows = CLEAN[TinyClassification] + [cls_row("c-1", "dev")]
    report = check(tmp_path, TinyClassification, rows)
    message = assert_fails(report, "expect_compound_columns_to_be_unique", "id, language", "c-1")
    assert "failed for 2 rows" in message
    assert report.failures[0]["split"] == "train, dev"
    # the same id in two splits is also a leak between splits
    assert [f["column"] for f in report.failures][1] == "id_in_one_split"


def test_translation_in_another_split_leaks(tmp_path):
    rows = CLEAN[TinyClassification] + [cls_row("c-1", "test", "de", text_a="Text eins")]
    report = check(tmp_path, TinyClassification, rows)
    assert_fails(report, "expect_column_values_to_be_in_set", "id_in_one_split", "c-1 (")


def test_empty_text(tmp_path):
    rows = CLEAN[TinyClassification] + [cls_row("c-9", "test", text_a="  ")]
    report = check(tmp_path, TinyClassification, rows)
    assert_fails(report, "expect_column_values_to_match_regex", "text_a", "c-9")


def test_missing_id(tmp_path):
    rows = CLEAN[TinyClassification] + [cls_row(None, "test")]
    report = check(tmp_path, TinyClassification, rows)
    assert not report.success
    assert (report.failures[0]["expectation"], report.failures[0]["column"]) == (
        "expect_column_values_to_not_be_null",
        "id",
    )


def test_label_outside_set(tmp_path):
    rows = CLEAN[TinyClassification] + [cls_row("c-9", "dev", label="maybe")]
    report = check(tmp_path, TinyClassification, rows)
    message = assert_fails(report, "expect_column_values_to_be_in_set", "label", "c-9")
    assert "in dev" in message


def test_split_column_disagrees_with_file(tmp_path):
    rows = CLEAN[TinyClassification] + [{**cls_row("c-9", "dev"), "_file": "train"}]
    report = check(tmp_path, TinyClassification, rows)
    assert_fails(report, "expect_column_pair_values_to_be_equal", "split, file_split", "c-9")


def test_qa_span_outside_context(tmp_path):
    rows = CLEAN[TinyQA] + [qa_row("q-9", "test", answers_start=[40])]
    report = check(tmp_path, TinyQA, rows)
    assert_fails(report, "expect_column_values_to_be_in_set", "answer_span_inside_context", "q-9")


def test_qa_span_text_mismatch(tmp_path):
    rows = CLEAN[TinyQA] + [qa_row("q-9", "test", answers_start=[11])]
    report = check(tmp_path, TinyQA, rows)
    message = assert_fails(report, "expect_column_values_to_be_in_set", "answer_span_matches", "q-9")
    assert "context[start:start+len(text)]" in message


def test_qa_answers_misaligned_and_missing(tmp_path):
    rows = CLEAN[TinyQA] + [
        qa_row("q-8", "test", answers_text=[], answers_start=[]),
        qa_row("q-9", "test", answers_start=[12, 3]),
    ]
    report = check(tmp_path, TinyQA, rows)
    failed = {f["column"]: f["examples"] for f in report.failures}
    assert failed == {"n_answers": ["q-8"], "answers_aligned": ["q-9"]}


def test_tags_misaligned_with_tokens(tmp_path):
    rows = CLEAN[TinyTagging] + [tag_row("t-9", "dev", tags=["DET", "NOUN"])]
    report = check(tmp_path, TinyTagging, rows)
    assert_fails(report, "expect_column_values_to_be_in_set", "tags_aligned", "t-9")


def test_unknown_tag(tmp_path):
    rows = CLEAN[TinyTagging] + [tag_row("t-9", "dev", tags=["DET", "NOUN", "VERB", "X"])]
    report = check(tmp_path, TinyTagging, rows)
    assert_fails(report, "expect_column_values_to_be_in_set", "tags_in_label_set", "t-9")


def test_empty_token(tmp_path):
    rows = CLEAN[TinyTagging] + [tag_row("t-9", "dev", tokens=["The", "", "sat", "."])]
    report = check(tmp_path, TinyTagging, rows)
    assert_fails(report, "expect_column_values_to_be_in_set", "no_empty_token", "t-9")


def test_identical_bitext_pair(tmp_path):
    rows = CLEAN[TinyBitext] + [bitext_row("b-de-9", "test", text="Same", en_text="Same")]
    report = check(tmp_path, TinyBitext, rows)
    assert_fails(report, "expect_column_values_to_be_in_set", "text_differs_from_en_text", "b-de-9")


def test_empty_choice(tmp_path):
    rows = CLEAN[TinyChoice] + [mc_row("m-9", "test", choices=["a cat", ""])]
    report = check(tmp_path, TinyChoice, rows)
    assert_fails(report, "expect_column_values_to_be_in_set", "no_empty_choice", "m-9")


def test_mc_label_out_of_range(tmp_path):
    rows = CLEAN[TinyChoice] + [mc_row("m-9", "test", label=2)]
    report = check(tmp_path, TinyChoice, rows)
    assert_fails(report, "expect_column_pair_values_a_to_be_greater_than_b", "n_choices, label", "m-9")


def test_mc_too_few_choices_and_no_text(tmp_path):
    rows = CLEAN[TinyChoice] + [mc_row("m-8", "test", choices=["only"]), mc_row("m-9", "dev", context="", question="")]
    report = check(tmp_path, TinyChoice, rows)
    failed = {f["column"]: f["examples"] for f in report.failures}
    assert failed["has_context_or_question"] == ["m-9"]
    assert failed["n_choices"] == ["m-8"]


def test_language_count_below_bounds(tmp_path):
    bounds = {"de": (3, None), "fr": (1, 5), "es": (1, None)}
    report = check(tmp_path, TinyBitext, CLEAN[TinyBitext], count_bounds=bounds)
    assert [f["examples"] for f in report.failures] == [["de", "es"]]
    message = assert_fails(report, "expect_column_pair_values_a_to_be_greater_than_b", "rows, min_rows", "de")
    assert "2 languages" in message and "es" in message


def test_language_count_above_bounds(tmp_path):
    report = check(tmp_path, TinyBitext, CLEAN[TinyBitext], count_bounds={"de": (1, 1)})
    assert_fails(report, "expect_column_pair_values_a_to_be_greater_than_b", "max_rows, rows", "de")
    assert check(tmp_path, TinyBitext, CLEAN[TinyBitext], count_bounds={"de": (2, 2), "fr": (1, 1)}).success


class DeclaredBitext(TinyBitext):
    """TinyBitext with declared bounds: 1 or 2 rows per language."""

    min_rows, max_rows = 1, 2


@pytest.mark.parametrize(
    ("defect", "column", "example"),
    [
        ("none", "", ""),
        ("missing fr", "rows, min_rows", "fr"),
        ("undeclared es", "max_rows, rows", "es"),
        ("3 de rows", "max_rows, rows", "de"),
    ],
)
def test_the_declared_languages_and_counts_are_expected(tmp_path, defect, column, example):
    """With the task's own bounds (closed), each declared language needs min..max rows and no other may appear."""
    rows = list(CLEAN[TinyBitext])  # de 2 rows, fr 1
    if defect == "missing fr":
        rows = [r for r in rows if r["language"] != "fr"]
    elif defect == "undeclared es":
        rows.append(bitext_row("b-es-1", "test", "es"))
    elif defect == "3 de rows":
        rows.append(bitext_row("b-de-3", "dev"))
    task = DeclaredBitext()
    assert task.count_bounds({}) == {"de": (1, 2), "fr": (1, 2)}
    report = check(tmp_path, DeclaredBitext, rows, count_bounds=task.count_bounds({}), closed=True)
    if defect == "none":
        assert report.success, report.failures
    else:
        assert_fails(report, "expect_column_pair_values_a_to_be_greater_than_b", column, example)


def test_the_languages_setting_chooses_the_expected_languages():
    """``data.<task>.languages`` narrows (or widens) what is expected; udhr's English is never a row's language."""
    multiemo, udhr = get_task("multiemo"), get_task("udhr")
    assert list(multiemo.count_bounds({})) == list(multiemo.languages)
    assert multiemo.count_bounds({"languages": ["en", "de", "de"]}) == {"en": (20, None), "de": (20, None)}
    assert list(udhr.count_bounds({"languages": ["en", "sw", "th"]})) == ["sw", "th"]
    assert all(get_task(n).count_bounds({}) for n in ("vitaminc", "brown_pos", "libreoffice_help", "pos_tr"))


def test_missing_column_and_missing_file(tmp_path):
    folder = tmp_path / "tinybitext"
    folder.mkdir()
    table = pa.Table.from_pylist([{"id": "x", "text": "a"}])
    for split in SPLITS:
        pq.write_table(table, folder / f"{split}.parquet")
    report = validate_task(TinyBitext(), folder)
    message = assert_fails(report, "expect_table_columns_to_match_set", "table columns", "en_text")
    assert "missing column" in message
    (folder / "dev.parquet").unlink()
    with pytest.raises(XstiltsError, match="dev.parquet is missing"):
        validate_task(TinyBitext(), folder)


def test_no_rows_at_all(tmp_path):
    report = check(tmp_path, TinyBitext, [])
    message = assert_fails(report, "expect_table_row_count_to_be_between", "table", "(0 rows in all splits)")
    assert message.endswith("a prepared task must hold at least one row."), message


# End to end: the `validate` phase with its MLflow runs, on the registered udhr task (one store: it is slow to make).


@pytest.fixture
def small_udhr(monkeypatch):
    """udhr's settings for fixture data: only de and fr, and 1 row per language is enough."""
    monkeypatch.setattr(type(get_task("udhr")), "min_rows", 1)
    return {"languages": ["de", "fr"]}


def test_run_validation_end_to_end(store, tmp_path, small_udhr):
    import mlflow

    prepared = tmp_path / "data" / "prepared" / "udhr"
    saved = tmp_path / "reports" / "validation" / "udhr.json"

    # A defect: the report is saved and logged, then the run ends FAILED with the reason.
    rows = CLEAN[TinyBitext] + [bitext_row("udhr-de-9-1", "dev", text="Same", en_text="Same")]
    write_prepared(prepared, Family.BITEXT, rows)
    with pytest.raises(XstiltsError) as err:
        run_validation(get_task("udhr"), small_udhr)
    assert "text_differs_from_en_text" in str(err.value) and "udhr-de-9-1" in str(err.value)
    report = json.loads(saved.read_text())
    assert report["success"] is False and report["failures"][0]["examples"] == ["udhr-de-9-1"]
    (failed,) = mlflow.search_runs(experiment_names=["xstilts-data"], output_format="list")  # a data stage's run
    assert failed.info.status == "FAILED" and failed.info.run_name == "validate udhr"
    assert not mlflow.search_runs(experiment_names=["xstilts"], output_format="list")  # training runs only there
    assert failed.data.tags["failure_reason"] == str(err.value)
    assert failed.data.tags["phase"] == "validate" and failed.data.tags["task"] == "udhr"
    assert failed.data.metrics["validation_success"] == 0
    assert failed.data.metrics["unexpected_expect_column_values_to_be_in_set"] == 1
    assert failed.data.metrics["unexpected_expect_compound_columns_to_be_unique"] == 0
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(failed.info.run_id, "validation")]
    assert artifacts == ["validation/udhr.json"]

    # Clean data: FINISHED, and the report is replaced.
    write_prepared(prepared, Family.BITEXT, CLEAN[TinyBitext])
    assert run_validation(get_task("udhr"), small_udhr).success
    assert json.loads(saved.read_text())["success"] is True
    runs = mlflow.search_runs(
        experiment_names=["xstilts-data"], output_format="list", order_by=["attributes.start_time"]
    )
    clean = runs[-1]
    assert len(runs) == 2 and clean.info.run_id != failed.info.run_id
    assert clean.info.status == "FINISHED"
    assert clean.data.metrics["validation_success"] == 1
    assert "failure_reason" not in clean.data.tags
    assert sorted(p.name for p in saved.parent.iterdir()) == ["udhr.json"]  # no temp file left behind


# The gate: training and retrieval refuse data whose validation report is missing, failed or of other data.


def test_validation_gates_training_and_retrieval(project, monkeypatch, small_udhr):
    from xstilts.pipeline.phases import run_intermediate
    from xstilts.pipeline.retrieve import run_retrieve

    udhr, report = project / "data/prepared/udhr", project / "reports/validation/udhr.json"

    def refused(run, match: str) -> None:
        with pytest.raises(XstiltsError, match=match) as err:
            run()
        (last,) = mlflow.search_runs(
            experiment_names=["xstilts"], filter_string="attributes.status = 'FAILED'", max_results=1,
            order_by=["attributes.start_time DESC"], output_format="list",
        )  # fmt: skip
        assert last.data.tags["failure_reason"] == str(err.value)

    report.unlink()
    refused(lambda: run_retrieve("udhr"), r"udhr has no validation report .*`dvc repro validate-udhr`")

    # a defect, found by a real validation run: the retrieval run refuses the data
    shutil.rmtree(udhr)
    write_prepared(udhr, Family.BITEXT, CLEAN[TinyBitext] + [bitext_row("udhr-de-9-1", "dev", text="S", en_text="S")])
    with pytest.raises(XstiltsError, match="text_differs_from_en_text"):
        run_validation(get_task("udhr"), small_udhr)
    refused(lambda: run_retrieve("udhr"), r"udhr failed validation \(expect_column_values_to_be_in_set\)")
    assert not (project / "metrics/retrieve/udhr-none.json").exists()

    # clean data passes, and the run goes ahead; then the data changes under the report
    shutil.rmtree(udhr)
    write_prepared(udhr, Family.BITEXT, CLEAN[TinyBitext])
    assert run_validation(get_task("udhr"), small_udhr).success
    assert "test_accuracy_zeroshot" in run_retrieve("udhr")
    write_prepared(udhr, Family.BITEXT, CLEAN[TinyBitext][1:])
    refused(lambda: run_retrieve("udhr"), "udhr changed since it was validated")

    # training: clean vitaminc data trains; the same data with a dev row leaked into train does not
    vitaminc = project / "data/prepared/vitaminc"
    shutil.rmtree(vitaminc)
    labels = ("entailment", "neutral", "contradiction")
    clean = [cls_row(f"v-{i}", split, label=labels[i % 3]) for i, split in enumerate(["train"] * 6 + ["dev", "test"])]
    write_prepared(vitaminc, Family.CLASSIFICATION, clean)
    monkeypatch.setattr(type(get_task("vitaminc")), "min_rows", 1)
    assert run_validation(get_task("vitaminc")).success
    leaked = clean + [{**clean[6], "split": "train"}]  # the dev row's id, again in train
    write_prepared(vitaminc, Family.CLASSIFICATION, leaked)
    with pytest.raises(XstiltsError, match="an id appears once per language"):
        run_validation(get_task("vitaminc"))
    refused(
        lambda: run_intermediate("vitaminc"), r"vitaminc failed validation \(expect_compound_columns_to_be_unique, "
    )
    assert not (project / "models/intermediate/vitaminc").exists()
