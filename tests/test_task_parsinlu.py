"""ParsiNLU reading comprehension / multiple choice and Hindi QA on tiny BIG-bench-format task.json files."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family
from xstilts.tasks.hindi_qa import anchors, split_input
from xstilts.tasks.parsinlu import locate

FIXTURES = Path(__file__).parent / "fixtures"


def _rows(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def _check(out: Path, counts: dict[str, int], family: Family) -> list[dict]:
    rows = _rows(out)
    for split in SPLITS:
        assert pq.read_schema(out / f"{split}.parquet").equals(SCHEMAS[family])
        assert len(rows[split]) == counts[split]
        assert all(r["split"] == split for r in rows[split])
    assert counts["train"] == 0
    assert not {r["id"] for r in rows["dev"]} & {r["id"] for r in rows["test"]}
    every = rows["dev"] + rows["test"]
    if family == Family.EXTRACTIVE_QA:
        for r in every:
            assert r["answers_text"] and len(r["answers_text"]) == len(r["answers_start"])
            for t, s in zip(r["answers_text"], r["answers_start"], strict=True):
                assert r["context"][s : s + len(t)] == t
    return every


def test_locate():
    assert locate("a  b c", "b c") == ("b c", 3)
    assert locate("آب و هوای  خنک", "آب و هوای خنک") == ("آب و هوای  خنک", 0)  # whitespace-insensitive
    assert locate("abc", "x") is None and locate("abc", " ") is None


def test_parsinlu_rc(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        counts = get_task("parsinlu_rc").prepare(FIXTURES, tmp_path, {"dev_fraction": 0.5})
    every = {r["id"]: r for r in _check(tmp_path, counts, Family.EXTRACTIVE_QA)}
    assert set(every) == {"parsinlu_rc-0", "parsinlu_rc-1", "parsinlu_rc-2"}  # 3's answer is not in its passage
    assert every["parsinlu_rc-1"]["answers_text"] == ["در دامنه کوه البرز", "کوه البرز"]  # "کنار دریا" not found
    assert every["parsinlu_rc-0"]["question"] == "پایتخت ایران کجاست؟"
    assert "2 answers not found" in caplog.text and "1 questions dropped" in caplog.text
    # the two questions on one passage share a split
    split_of = {r["id"]: r["split"] for r in every.values()}
    assert split_of["parsinlu_rc-0"] == split_of["parsinlu_rc-1"]


def test_parsinlu_mc(tmp_path):
    counts = get_task("parsinlu_mc").prepare(FIXTURES, tmp_path, {"dev_fraction": 0.5})
    every = {r["id"]: r for r in _check(tmp_path, counts, Family.MULTIPLE_CHOICE)}
    assert len(every) == 5
    assert every["parsinlu_mc-0"]["choices"] == ["2", "1", "3"]  # the empty wrong choice is left out
    assert every["parsinlu_mc-1"]["label"] == 1 and every["parsinlu_mc-1"]["choices"][1] == "تهران"
    assert all(r["context"] == "" and r["question"] and 0 <= r["label"] < len(r["choices"]) for r in every.values())
    assert {r["language"] for r in every.values()} == {"fa"}


def test_deterministic(tmp_path):
    for name in ("parsinlu_rc", "parsinlu_mc"):
        for run in ("a", "b"):
            get_task(name).prepare(FIXTURES, tmp_path / name / run, {"seed": 5})
        for split in SPLITS:
            a, b = (tmp_path / name / run / f"{split}.parquet" for run in ("a", "b"))
            assert a.read_bytes() == b.read_bytes()


def test_hindi_split_and_anchors():
    assert split_input("पहला वाक्य है। दूसरा? प्रश्न क्या है?") == ("पहला वाक्य है। दूसरा?", "प्रश्न क्या है?")
    assert split_input("संदर्भ 1.5 है। यह कहाँ है") == ("संदर्भ 1.5 है।", "यह कहाँ है")
    assert split_input("केवल प्रश्न?") is None
    assert anchors("नदी ५०० किलोमीटर, 3,000 Drogo और 7 in") == {"500", "3000", "drogo"}


@pytest.fixture
def hindi_raw(tmp_path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURES / "bigbench/hindi_question_answering", raw / "bigbench/hindi_question_answering")
    shutil.copytree(FIXTURES / "hindi_squad", raw / "bigbench/squad_shifts")
    return raw


def test_hindi_qa_drops_squad_dev_overlap(hindi_raw, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        counts = get_task("hindi_qa").prepare(
            hindi_raw, tmp_path / "out", {"overlap_min_score": 5, "dev_fraction": 0.5}
        )
    every = {r["id"]: r for r in _check(tmp_path / "out", counts, Family.EXTRACTIVE_QA)}
    # 2: translated SQuAD dev paragraph (anchors), 4: answer not in context, 5: exact SQuAD dev context, 6: no question
    assert set(every) == {"hindi_qa-0", "hindi_qa-1", "hindi_qa-3"}
    assert "1 SQuAD v1.1 dev (anchors)" in caplog.text and "1 SQuAD v1.1 dev (exact)" in caplog.text
    assert "1 answer not in context" in caplog.text and "1 no question/answer" in caplog.text
    assert every["hindi_qa-3"]["question"] == "यह नदी कहाँ स्थित है"
    assert every["hindi_qa-0"]["split"] == every["hindi_qa-1"]["split"]  # same context, same split
    assert {r["language"] for r in every.values()} == {"hi"}
    # with the default (stricter) score the 7-anchor match in this tiny reference set is not enough
    counts = get_task("hindi_qa").prepare(hindi_raw, tmp_path / "default", {})
    assert counts["dev"] + counts["test"] == 4


def test_missing_files(tmp_path):
    for name in ("parsinlu_rc", "parsinlu_mc", "hindi_qa"):
        with pytest.raises(XstiltsError, match="extract stage"):
            get_task(name).prepare(tmp_path, tmp_path / "out", {})
