"""XTREME-format prediction files, the submission zip and its CLI command, and seqeval NER scoring."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from seqeval.metrics import f1_score as seqeval_f1

from xstilts.cli import main
from xstilts.errors import XstiltsError
from xstilts.families import Evaluation
from xstilts.families.tagging import is_entity_tagset, tagging_scores
from xstilts.xtreme_format import (
    BENCHMARKS,
    KIND,
    XTREME_FOLDER,
    XTREME_LANGUAGES,
    XTREME_R_LANGUAGES,
    log_xtreme_artifacts,
    prediction_path,
    read_predictions_table,
    write_bucc_predictions,
    write_ranking_predictions,
    write_tatoeba_predictions,
    write_xtreme_predictions,
    xtreme_folder,
)
from xstilts.xtreme_submission import bundle_submission, check_prediction_file

NER_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
POS_TAGS = ("DET", "NOUN", "VERB", "ADJ", "CONJ")


def table(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """Evaluation.table()-shaped rows from (split, id, language, prediction)."""
    return pd.DataFrame(
        {
            "split": [r[0] for r in rows],
            "id": [r[1] for r in rows],
            "language": [r[2] for r in rows],
            "domain": "wiki",
            "gold": "",
            "prediction": [r[3] for r in rows],
            "confidence": 0.5,
        }
    )


# ---- one file per language, per task ---------------------------------------------------------------------------


def test_classification_one_label_per_line_in_table_order(tmp_path):
    rows = [
        ("dev", "d1", "de", "neutral"),
        ("test", "t2", "de", "entailment"),
        ("test", "t1", "de", "contradiction"),
        ("test", "t1", "sw", "neutral"),
    ]
    paths = write_xtreme_predictions("xnli", table(rows), tmp_path)
    assert paths == [tmp_path / "xnli" / "test-de.tsv", tmp_path / "xnli" / "test-sw.tsv"]
    assert paths[0].read_text().splitlines() == ["entailment", "contradiction"]  # dev rows left out
    assert paths[1].read_text() == "neutral\n"
    pawsx = write_xtreme_predictions("pawsx", table([("test", "a", "ja", "1"), ("test", "b", "ja", "0")]), tmp_path)
    assert pawsx[0].read_text() == "1\n0\n" and check_prediction_file(pawsx[0], "pawsx") == 2
    named = table([("test", "a", "ko", "paraphrase"), ("test", "b", "ko", "not_paraphrase")])  # the hub task's names
    assert write_xtreme_predictions("pawsx", named, tmp_path)[0].read_text() == "1\n0\n"


def test_tagging_one_tag_per_word_blank_line_between_sentences(tmp_path):
    rows = [
        ("test", "s1", "de", "B-PER I-PER O"),
        ("test", "s2", "de", "O _"),  # the second word's sub-token was cut off by max_length
        ("test", "s3", "de", "B-LOC"),
    ]
    [path] = write_xtreme_predictions("wikiann", table(rows), tmp_path)
    assert path == tmp_path / "panx" / "test-de.tsv"
    lines = path.read_text().splitlines()
    assert len(lines) == 6 + 2  # one per word plus a blank line between sentences
    assert lines == ["B-PER", "I-PER", "O", "", "O", "O", "", "B-LOC"]
    assert check_prediction_file(path, "panx") == 3
    [pos] = write_xtreme_predictions("udpos", table([("test", "s", "tr", "NOUN _ VERB")]), tmp_path)
    assert pos.read_text().splitlines() == ["NOUN", "X", "VERB"]


def test_qa_is_a_question_id_to_answer_object(tmp_path):
    for task in ("xquad", "mlqa", "tydiqa"):
        # the hub tasks' ids are "<task>-<question id>"; the file is keyed by the question id
        rows = [("test", f"{task}-q1", "hi", "दिल्ली"), ("test", f"{task}-q2", "hi", ""), ("test", "q3", "en", "Paris")]
        paths = write_xtreme_predictions(task, table(rows), tmp_path)
        assert [p.name for p in paths] == ["test-en.json", "test-hi.json"]
        # ASCII-escaped: the official evaluate.py reads it with the locale's encoding, even an ASCII one (LC_ALL=C)
        assert json.loads(paths[1].read_text(encoding="ascii")) == {"q1": "दिल्ली", "q2": ""}
        assert json.loads(paths[0].read_text(encoding="utf-8")) == {"q3": "Paris"}
        assert check_prediction_file(paths[0], task) == 1


def test_xcopa_is_jsonl_with_an_integer_label(tmp_path):
    [path] = write_xtreme_predictions("xcopa", table([("test", "0", "qu", "1"), ("test", "1", "qu", "0")]), tmp_path)
    assert path == tmp_path / "xcopa" / "test-qu.jsonl"
    assert [json.loads(line)["label"] for line in path.read_text().splitlines()] == [1, 0]


def test_retrieval_writers(tmp_path):
    [tatoeba] = write_tatoeba_predictions({"kk": [3, 0, np.int64(7)]}, tmp_path)
    assert tatoeba == tmp_path / "tatoeba" / "test-kk.tsv" and tatoeba.read_text() == "3\n0\n7\n"
    [bucc] = write_bucc_predictions({"de": [("de-000001", "en-000042"), ("de-000007", "en-000003")]}, tmp_path)
    assert bucc.read_text().splitlines() == ["de-000001\ten-000042", "de-000007\ten-000003"]
    assert check_prediction_file(bucc, "bucc2018") == 2
    ranked = {"pl": {"m1": ["Q42", "Q1", "Q5"], "m2": ["Q7"]}}
    [mewslix] = write_ranking_predictions("mewslix", ranked, tmp_path)
    assert json.loads(mewslix.read_text()) == ranked["pl"]
    [lareqa] = write_ranking_predictions("lareqa", {"el": {"q": ["a3", "a1"]}}, tmp_path)
    assert lareqa == tmp_path / "lareqa" / "test-el.json"


def test_predictions_csv_round_trip_keeps_labels_and_empty_answers(tmp_path):
    evaluation = Evaluation(
        family="classification",
        labels=["0", "1"],
        ids=["a", "b"],
        languages=["fr", "fr"],
        domains=["wiki", "wiki"],
        gold=["0", "1"],
        prediction=["1", "0"],
        confidence=[0.6, 0.7],
        correct={"accuracy": np.zeros(2)},
    )
    evaluation.table("test").to_csv(tmp_path / "run.csv", index=False)
    [path] = write_xtreme_predictions("pawsx", read_predictions_table(tmp_path / "run.csv"), tmp_path / "out")
    assert path.read_text() == "1\n0\n"
    table([("test", "q", "ar", "")]).to_csv(tmp_path / "qa.csv", index=False)
    [qa] = write_xtreme_predictions("mlqa", read_predictions_table(tmp_path / "qa.csv"), tmp_path / "out")
    assert json.loads(qa.read_text()) == {"q": ""}


def test_files_are_logged_to_the_active_run(tmp_path, mlflow_store):
    import mlflow

    paths = write_xtreme_predictions(
        "xnli", table([("test", "a", "de", "neutral"), ("test", "b", "fr", "neutral")]), tmp_path
    )
    with pytest.raises(XstiltsError, match="active MLflow run"):
        log_xtreme_artifacts(paths)
    with mlflow.start_run() as run:
        log_xtreme_artifacts(paths)
    logged = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="xtreme", dst_path=tmp_path / "dl"
    )
    assert sorted(p.name for p in (Path(logged) / "xnli").iterdir()) == ["test-de.tsv", "test-fr.tsv"]


# ---- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "rows", "message"),
    [
        ("xnli", [("test", "a", "de", "yes")], "labels do not include"),
        ("wikiann", [("test", "a", "de", "B-PER B-MISC")], "labels do not include"),
        ("xcopa", [("test", "a", "et", "2")], "0 or 1"),
        ("xnli", [("dev", "a", "de", "neutral")], "no test rows"),
        ("xnli", [("test", "a", "de", "neutral"), ("test", "a", "de", "neutral")], "ids repeat"),
        ("mlqa", [("test", "a", "de", None)], "has no prediction"),
        ("tatoeba", [("test", "a", "de", "1")], "retrieval task"),
        ("xnli", [("test", "a", "de", "neutral")], "several tasks"),
        ("squad", [("test", "a", "de", "x")], "not an XTREME task"),
    ],
)
def test_bad_tables_fail_with_one_sentence(tmp_path, task, rows, message):
    frame = table(rows)
    if message == "several tasks":
        frame = pd.concat([frame.assign(task="xnli"), frame.assign(task="mnli", id="b")], ignore_index=True)
    with pytest.raises(XstiltsError, match=message):
        write_xtreme_predictions(task, frame, tmp_path)


def test_bad_retrieval_input_fails(tmp_path):
    with pytest.raises(XstiltsError, match="0-based indices"):
        write_tatoeba_predictions({"de": [1, -1]}, tmp_path)
    with pytest.raises(XstiltsError, match="without tabs"):
        write_bucc_predictions({"de": [("a\tb", "c")]}, tmp_path)
    with pytest.raises(XstiltsError, match="not rankings"):
        write_ranking_predictions("tatoeba", {"de": {"q": ["a"]}}, tmp_path)


def test_malformed_files_are_caught(tmp_path):
    bad = {
        "panx": "B-PER\n\n\nO\n",  # an empty sentence would shift every later sentence
        "tatoeba": "3\nx\n",
        "xquad": '{"q": ["not", "text"]}',
        "mewslix": '{"q": "Q1"}',
        "xcopa": '{"label": true}\n',
        "xnli": "",
    }
    for folder, text in bad.items():
        path = tmp_path / f"{folder}.txt"
        path.write_text(text)
        with pytest.raises(XstiltsError):
            check_prediction_file(path, folder)


# ---- the submission ----------------------------------------------------------------------------------------------


def write_everything(root: Path, benchmark: str = "xtreme-r") -> None:
    """One or two tiny predictions per language of every task of ``benchmark``."""
    for folder, languages in BENCHMARKS[benchmark].items():
        kind = KIND[folder][0]
        for lang in languages:
            if kind == "index":
                write_tatoeba_predictions({lang: [1, 0]}, root)
            elif kind == "pairs":
                write_bucc_predictions({lang: [(f"{lang}-1", "en-2")]}, root)
            elif kind == "ranking":
                write_ranking_predictions(folder, {lang: {"q1": ["c2", "c1"]}}, root)
            else:
                value = {
                    "label": "0" if folder == "pawsx" else "neutral",
                    "tags": "O B-LOC" if folder == "panx" else "NOUN VERB",
                    "answer": "an answer",
                    "choice": "1",
                }[kind]
                write_xtreme_predictions(folder, table([("test", f"{lang}-1", lang, value)]), root)


def test_bundle_zips_every_task_and_language(tmp_path):
    root = tmp_path / "predictions"
    write_everything(root)
    write_tatoeba_predictions({"xx": [0]}, root)  # not an XTREME-R language: left out
    out = bundle_submission(root, tmp_path / "submission.zip")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        expected = {
            f"{folder}/test-{lang}.{KIND[folder][1]}" for folder, langs in XTREME_R_LANGUAGES.items() for lang in langs
        }
        assert names == expected
        assert archive.read("panx/test-qu.tsv").decode() == "O\nB-LOC\n"
        assert json.loads(archive.read("xquad/test-ro.json")) == {"ro-1": "an answer"}
    assert len(names) == sum(len(v) for v in XTREME_R_LANGUAGES.values())
    again = bundle_submission(root, tmp_path / "again.zip")
    assert again.read_bytes() == out.read_bytes()  # reproducible


def test_bundle_names_what_is_missing(tmp_path):
    root = tmp_path / "predictions"
    write_everything(root)
    prediction_path(root, "xnli", "sw").unlink()
    for path in (root / "mewslix").iterdir():
        path.unlink()
    with pytest.raises(XstiltsError, match=r"xnli \(sw\); mewslix \(all 11 languages\)") as caught:
        bundle_submission(root, tmp_path / "s.zip")
    assert "tatoeba" not in str(caught.value) and not (tmp_path / "s.zip").exists()
    with pytest.raises(XstiltsError, match="No predictions folder"):
        bundle_submission(tmp_path / "nowhere", tmp_path / "s.zip")


def test_bundle_rejects_a_malformed_file(tmp_path):
    root = tmp_path / "predictions"
    write_everything(root)
    prediction_path(root, "udpos", "wo").write_text("NOUN\nnot-a-tag\n")
    with pytest.raises(XstiltsError, match="not-a-tag"):
        bundle_submission(root, tmp_path / "s.zip")


def test_xtreme_v1_languages_and_folders():
    sizes = {task: len(XTREME_LANGUAGES[task]) for task in ("panx", "udpos", "tatoeba", "xquad")}
    assert sizes == {"panx": 40, "udpos": 33, "tatoeba": 36, "xquad": 11}
    assert XTREME_LANGUAGES["panx"][-1] == "hu" and XTREME_LANGUAGES["udpos"][-1] == "zh"
    assert XTREME_LANGUAGES["tatoeba"][-1] == "hu" and XTREME_LANGUAGES["xquad"][-1] == "hi"
    assert xtreme_folder("wikiann") == "panx" and xtreme_folder("bucc") == "bucc2018"
    assert xtreme_folder("panx") == "panx"
    assert set(XTREME_FOLDER.values()) == set(KIND)


def test_cli_submission(tmp_path, capsys):
    root = tmp_path / "predictions"
    write_everything(root, "xtreme")
    out = tmp_path / "v1.zip"
    assert main(["submission", "--predictions", str(root), "--out", str(out), "--benchmark", "xtreme"]) == 0
    assert "bucc2018/test-zh.tsv" in zipfile.ZipFile(out).namelist()
    assert main(["submission", "--predictions", str(root), "--out", str(tmp_path / "r.zip")]) == 2
    assert "xcopa (all 11 languages)" in capsys.readouterr().err and not (tmp_path / "r.zip").exists()
    partial = tmp_path / "partial.zip"
    assert main(["submission", "--predictions", str(root), "--out", str(partial), "--allow-missing"]) == 0
    assert "partial submission, missing: xcopa (all 11 languages)" in capsys.readouterr().out
    names = zipfile.ZipFile(partial).namelist()
    assert "xnli/test-sw.tsv" in names and "pawsx/test-de.tsv" not in names and "udpos/test-wo.tsv" not in names


# ---- NER scoring (seqeval) -------------------------------------------------------------------------------------


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", None, "O"]]  # None: the word's sub-token was truncated
    scores = tagging_scores(gold, pred, NER_TAGS)
    # gold entities PER, LOC, ORG[0:2]; predicted PER and ORG[0:1] (None reads as O): 1 right
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["accuracy"] == pytest.approx(5 / 7)  # the B-LOC and the missing word are wrong
    assert scores["f1"] == pytest.approx(seqeval_f1(gold, [["O" if t is None else t for t in r] for r in pred]))


def test_entity_scores_follow_conll_chunking_and_none_is_not_an_entity():
    # default (CoNLL) mode, as XTREME's evaluate.py: an I- tag after O opens an entity
    assert tagging_scores([["B-PER", "I-PER"]], [["I-PER", "I-PER"]], NER_TAGS)["f1"] == 1.0
    scores = tagging_scores([["O", "B-LOC"]], [[None, "B-LOC"]], NER_TAGS)
    assert scores["f1"] == 1.0 and scores["accuracy"] == 0.5
    assert tagging_scores([["B-ORG"]], [["B-LOC"]], NER_TAGS)["f1"] == 0.0


def test_ner_metrics_per_language_and_pos_unchanged():
    assert is_entity_tagset(NER_TAGS) and not is_entity_tagset(POS_TAGS) and not is_entity_tagset(("O", "X"))
    evaluation = Evaluation(
        family="tagging",
        labels=list(NER_TAGS),
        ids=["1", "2"],
        languages=["de", "sw"],
        domains=["wiki", "wiki"],
        gold=["", ""],
        prediction=["", ""],
        confidence=[1.0, 1.0],
        gold_tags=[["B-PER", "O"], ["B-LOC"]],
        pred_tags=[["B-PER", "O"], ["O"]],
    )
    metrics = evaluation.per_language("test")
    assert metrics["test_f1_de"] == 1.0 and metrics["test_f1_sw"] == 0.0 and metrics["test_f1_zeroshot"] == 0.5
    assert {"test_precision_de", "test_recall_sw", "test_accuracy_de"} <= set(metrics)
    pos = tagging_scores([["DET", "NOUN", "NOUN"]], [["DET", "NOUN", None]], POS_TAGS)
    assert set(pos) == {"accuracy", "macro_f1"}
    assert pos["accuracy"] == pytest.approx(2 / 3) and pos["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
