"""The English intermediate hub tasks on fixture files in each Hub dataset's real schema, validated by GE."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xstilts.data import hub
from xstilts.data.hub import local_copy_loader
from xstilts.data.splits import SPLITS
from xstilts.data.validation import validate_task
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS
from xstilts.tasks.ccg import parse_auto

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
# task -> rows per split from the fixtures (unlabelled rows left out)
COUNTS = {
    "mnli": {"train": 4, "dev": 2, "test": 2},
    "anli": {"train": 3 + 4 + 6, "dev": 6, "test": 3},  # SNLI (one -1 left out) + MNLI + ANLI r1-r3
    "qqp": {"train": 3, "dev": 2, "test": 0},
    "sst2": {"train": 3, "dev": 2, "test": 0},
    "squad": {"train": 2, "dev": 1, "test": 0},
    "hellaswag": {"train": 2, "dev": 2, "test": 0},
    "cosmosqa": {"train": 2, "dev": 1, "test": 0},
    "commonsenseqa": {"train": 2, "dev": 1, "test": 0},
    "socialiqa": {"train": 2, "dev": 1, "test": 0},
}


@pytest.fixture(autouse=True)
def fixture_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no probe; the loader below never touches the network
    monkeypatch.setattr(hub, "_load_dataset", local_copy_loader(FIXTURES))


def _prepare(name: str, out: Path, **params) -> dict[str, list[dict]]:
    task = get_task(name, source="hub")
    counts = task.prepare(out, out, params)
    rows = {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}
    assert {s: len(r) for s, r in rows.items()} == counts
    for split in SPLITS:
        assert pq.read_schema(out / f"{split}.parquet").equals(SCHEMAS[task.family])
    return rows


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_converted_rows_pass_the_validation_suite(name, tmp_path):
    rows = _prepare(name, tmp_path)
    assert {s: len(r) for s, r in rows.items()} == COUNTS[name]
    every = [r for split in SPLITS for r in rows[split]]
    assert all(r["language"] == "en" and r["source"].count("@") == 1 for r in every)
    report = validate_task(get_task(name, source="hub"), tmp_path)
    assert report.success, report.message()


def test_values_follow_the_hub_encodings(tmp_path):
    mnli = _prepare("mnli", tmp_path / "mnli")
    assert mnli["test"][0] == {
        "id": "mnli-validation_mismatched-0000000",
        "language": "en",
        "domain": "multi_genre",
        "source": "nyu-mll/glue:mnli@bcdcba79d07b",
        "split": "test",
        "text_a": "The report covers the fiscal year.",
        "text_b": "The report is about finances.",
        "label": "neutral",  # ClassLabel index 1
    }
    anli = _prepare("anli", tmp_path / "anli")
    ids = [r["id"] for r in anli["train"]]
    assert ids[:3] == ["anli-snli-0000000", "anli-snli-0000001", "anli-snli-0000003"]  # SNLI row 2 is -1
    assert "anli-anli_r2-tr-r2-0001" in ids and anli["dev"][0]["id"] == "anli-anli_r1-dv-r1-0000"
    assert {r["source"] for r in anli["train"]} == {
        "stanfordnlp/snli:plain_text@cdb5c3d5eed6",
        "nyu-mll/glue:mnli@bcdcba79d07b",
        "facebook/anli:plain_text@8e4813d81f46",
    }
    assert [r["label"] for r in anli["test"]] == ["entailment"] * 3
    squad = _prepare("squad", tmp_path / "squad")["dev"][0]
    assert squad["answers_text"] == ["The Denver Broncos", "Denver Broncos"] and squad["answers_start"] == [45, 49]
    hs = _prepare("hellaswag", tmp_path / "hs")
    wikihow, activitynet = hs["train"][1], hs["train"][0]
    assert (wikihow["domain"], activitynet["domain"]) == ("wikihow", "activitynet")
    assert wikihow["context"] == "Home and Garden: How to paint a fence 1. Buy paint." and wikihow["label"] == 0
    assert activitynet["choices"][3] == "ending 0-3 done." and activitynet["label"] == 3
    csqa = _prepare("commonsenseqa", tmp_path / "csqa")["train"][1]
    assert csqa["context"] == "" and csqa["choices"][csqa["label"]] == "avoid"  # answerKey E
    siqa = _prepare("socialiqa", tmp_path / "siqa")["train"][1]
    assert siqa["label"] == 2 and siqa["choices"][2] == "a good friend to have"  # label "3"
    cosmos = _prepare("cosmosqa", tmp_path / "cosmos")["train"][1]
    assert cosmos["label"] == 3 and cosmos["choices"][3] == "Other Bands is not on tour ."


def test_squad_v2_keeps_unanswerable_questions_as_empty_answer_lists(tmp_path):
    rows = _prepare("squad_v2", tmp_path / "all")
    assert {s: len(r) for s, r in rows.items()} == {"train": 2, "dev": 2, "test": 0}
    empty = [r for split in SPLITS for r in rows[split] if not r["answers_text"]]
    assert [r["id"] for r in empty] == [
        "squad_v2-train-5a8d7bf7df8bba001a0f9ab1",
        "squad_v2-validation-5ad39d53604f3c001a3fe8d1",
    ]
    assert all(r["answers_start"] == [] for r in empty)
    assert get_task("squad_v2", source="hub").unanswerable and not get_task("squad", source="hub").unanswerable
    # the answerable rows pass the QA suite as they are
    answerable = tmp_path / "answerable"
    answerable.mkdir()
    for split in SPLITS:
        table = pq.read_table(tmp_path / "all" / f"{split}.parquet")
        keep = [i for i, a in enumerate(table.column("answers_text").to_pylist()) if a]
        pq.write_table(table.take(pa.array(keep, type=pa.int64())), answerable / f"{split}.parquet")
    report = validate_task(get_task("squad_v2", source="hub"), answerable)
    assert report.success, report.message()


def test_sizes_subsample_deterministically(tmp_path):
    a = _prepare("anli", tmp_path / "a", train_size=5, dev_size=2, seed=3)
    b = _prepare("anli", tmp_path / "b", train_size=5, dev_size=2, seed=3)
    assert a == b and len(a["train"]) == 5 and len(a["dev"]) == 2 and len(a["test"]) == 3
    with pytest.raises(XstiltsError, match="train_size"):
        _prepare("mnli", tmp_path / "c", train_size=-1)


def test_a_label_outside_the_class_names_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "hub"
    shutil.copytree(FIXTURES / "nyu-mll", bad / "nyu-mll")
    path = bad / "nyu-mll" / "glue" / "qqp" / "train.jsonl"
    row = json.loads(path.read_text().splitlines()[0])
    path.write_text(json.dumps({**row, "label": 7}) + "\n")
    monkeypatch.setattr(hub, "_load_dataset", local_copy_loader(bad))
    with pytest.raises(Exception, match="label|ClassLabel|7"):
        _prepare("qqp", tmp_path / "out")


def test_ccg_reads_a_local_ccgbank(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    out = tmp_path / "data" / "prepared" / "ccg"
    task = get_task("ccg", source="hub")
    counts = task.prepare(tmp_path, out, {"path": str(FIXTURES / "ccgbank"), "min_tag_count": 2})
    assert counts == {"train": 2, "dev": 1, "test": 1}
    train = pq.read_table(out / "train.parquet").to_pylist()
    assert train[0]["tokens"] == ["Rolls", "made", "cars"] and train[0]["id"] == "ccg-wsj_0201.1"
    assert train[0]["tags"] == ["N", "UNK", "N"]  # (S[dcl]\NP)/NP is seen once: below min_tag_count
    assert task.labels == ("N", "UNK")  # S[dcl]\NP too is seen once in train
    report = validate_task(task, out)
    assert report.success, report.message()


def test_ccg_without_a_path_says_ccgbank_is_ldc_licensed(tmp_path):
    with pytest.raises(XstiltsError, match=r"^CCG supertagging needs CCGbank, which is LDC-licensed.*data\.ccg\.path"):
        get_task("ccg", source="hub").prepare(tmp_path, tmp_path / "out", {})
    with pytest.raises(XstiltsError, match="does not exist"):
        get_task("ccg", source="hub").prepare(tmp_path, tmp_path / "out", {"path": str(tmp_path / "nowhere")})
    with pytest.raises(XstiltsError, match="not a CCGbank AUTO header"):
        parse_auto("(S (NP John) (VP runs))\n", "bad.auto")
