"""MultiEmo preparation on two domains x three languages in the BIG-bench format (tests/fixtures/bigbench)."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family

FIXTURES = Path(__file__).parent / "fixtures"
ROWS = {"hotels": 10, "medicine": 8}
BASE = {
    "train_domains": ["hotels", "medicine"],
    "eval_domains": ["hotels", "medicine"],
    "languages": ["en", "pl", "de"],
    "dev_fraction": 0.25,
    "test_fraction": 0.25,
}


def _prepare(out: Path, raw: Path = FIXTURES, **params) -> dict[str, int]:
    return get_task("multiemo").prepare(raw, out, {**BASE, **params})


def _read(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def _row_number(text: str) -> int:
    return int(re.search(r"\((?:row|wiersz|Zeile) (\d+)\)", text).group(1))


def test_schema_languages_and_alignment(tmp_path):
    counts = _prepare(tmp_path)
    rows = _read(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.CLASSIFICATION])
        assert len(rows[split]) == counts[split] > 0
    assert {r["language"] for r in rows["train"]} == {"en"}
    n_ids = len({r["id"] for split in SPLITS for r in rows[split]})
    assert n_ids == sum(ROWS.values())  # sizes null: every row is in exactly one split
    for split in ("dev", "test"):
        by_lang = {lang: [r for r in rows[split] if r["language"] == lang] for lang in BASE["languages"]}
        ids = [[r["id"] for r in by_lang[lang]] for lang in BASE["languages"]]
        assert ids[0] == ids[1] == ids[2]  # the same rows, in the same order, in every language
        for en, pl, de in zip(*by_lang.values(), strict=True):
            assert _row_number(en["text_a"]) == _row_number(pl["text_a"]) == _row_number(de["text_a"])
            assert int(en["id"].rsplit("-", 1)[1]) == _row_number(en["text_a"])
            assert en["label"] == pl["label"] == de["label"]
    every = [r for split in SPLITS for r in rows[split]]
    assert {r["label"] for r in every} <= {"negative", "neutral", "positive", "ambivalent"}
    assert {r["text_b"] for r in every} == {None}
    assert {r["source"] for r in every} == {"bigbench==1.0.0"}


def test_no_translation_of_dev_or_test_in_train(tmp_path):
    for seed in range(5):
        out = tmp_path / str(seed)
        _prepare(out, seed=seed)
        rows = _read(out)
        train = {r["id"] for r in rows["train"]}
        train_rows = {(r["domain"], _row_number(r["text_a"])) for r in rows["train"]}
        for split in ("dev", "test"):
            assert not train & {r["id"] for r in rows[split]}
            assert not train_rows & {(r["domain"], _row_number(r["text_a"])) for r in rows[split]}
        assert not {r["id"] for r in rows["dev"]} & {r["id"] for r in rows["test"]}


def test_sizes_domains_and_determinism(tmp_path):
    params = {"train_size": 2, "dev_size": 2, "test_size": 3, "train_domains": ["hotels"]}
    counts = _prepare(tmp_path / "a", **params)
    assert counts == {"train": 2, "dev": 2 * 3, "test": 3 * 3}
    _prepare(tmp_path / "b", **params)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()
    rows = _read(tmp_path / "a")
    assert {r["domain"] for r in rows["train"]} == {"hotels"}
    counts = _prepare(tmp_path / "c", languages=["pl"], eval_domains=["medicine"])
    rows = _read(tmp_path / "c")
    assert {r["language"] for r in rows["dev"] + rows["test"]} == {"pl"}
    assert {r["domain"] for r in rows["dev"] + rows["test"]} == {"medicine"}


def test_misaligned_language_is_cut_or_refused(tmp_path, caplog):
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURES / "bigbench", raw / "bigbench")
    path = raw / "bigbench" / "multiemo" / "hotels_sentence_de" / "task.json"
    task = json.loads(path.read_text())
    del task["examples"][6]  # German loses row 6: rows 6.. are shifted by one
    path.write_text(json.dumps(task))
    with pytest.raises(XstiltsError, match="not row-aligned"):
        _prepare(tmp_path / "strict", raw=raw, strict_alignment=True)
    with caplog.at_level(logging.WARNING):
        _prepare(tmp_path / "out", raw=raw, dev_fraction=0.45, test_fraction=0.45)
    assert "hotels_sentence: de has 9 rows" in caplog.text
    rows = _read(tmp_path / "out")
    hotels_eval = [r for r in rows["dev"] + rows["test"] if r["domain"] == "hotels"]
    assert hotels_eval and all(_row_number(r["text_a"]) < 6 for r in hotels_eval)
    for r in hotels_eval:
        assert int(r["id"].rsplit("-", 1)[1]) == _row_number(r["text_a"])  # German rows still match their ids
    assert any(r["domain"] == "medicine" and _row_number(r["text_a"]) >= 6 for r in rows["dev"] + rows["test"])


def test_bad_params(tmp_path):
    with pytest.raises(XstiltsError, match="languages"):
        _prepare(tmp_path, languages=["xx"])
    with pytest.raises(XstiltsError, match="level"):
        _prepare(tmp_path, level="paragraph")
    with pytest.raises(XstiltsError, match="extract stage"):
        _prepare(tmp_path, level="text")  # the fixture has no text-level files
