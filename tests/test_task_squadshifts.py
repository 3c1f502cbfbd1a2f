"""SQuADShifts preparation on tiny made-up files in the BIG-bench squad_shifts layout (tests/fixtures/bigbench)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family

FIXTURES = Path(__file__).parent / "fixtures"
QUESTIONS = {"new_wiki": 16, "nyt": 9, "reddit": 8, "amazon": 12}  # nyt: 10 questions, 1 without a valid span
TEST_QUESTIONS = 8
BASE = {"dev_fraction": 0.3}


def _prepare(out: Path, raw: Path = FIXTURES, **params) -> dict[str, int]:
    return get_task("squadshifts").prepare(raw, out, {**BASE, **params})


def _read(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def test_schema_domains_and_spans(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        counts = _prepare(tmp_path)
    assert "nyt: dropped 2 answers" in caplog.text and "1 questions left without an answer" in caplog.text
    rows = _read(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.EXTRACTIVE_QA])
        assert len(rows[split]) == counts[split] > 0
    assert counts["train"] + counts["dev"] == sum(QUESTIONS.values())
    assert counts["test"] == TEST_QUESTIONS
    every = [r for split in SPLITS for r in rows[split]]
    assert len({r["id"] for r in every}) == len(every)
    for r in every:
        assert r["answers_text"] and len(r["answers_text"]) == len(r["answers_start"])
        for text, start in zip(r["answers_text"], r["answers_start"], strict=True):
            assert r["context"][start : start + len(text)] == text
        assert (r["language"], r["source"]) == ("en", "bigbench==1.0.0")
        assert r["domain"] in r["id"]
    assert {r["domain"] for r in rows["test"]} == {"wikipedia"}
    train_dev = rows["train"] + rows["dev"]
    assert {d: sum(r["domain"] == d for r in train_dev) for d in QUESTIONS} == QUESTIONS
    # contexts are kept verbatim (new_wiki's start with a space), so offsets stay valid
    assert all(r["context"].startswith(" Town") for r in train_dev if r["domain"] == "new_wiki")
    # the question whose answers all had wrong spans is gone; the one with one wrong answer keeps the other
    ids = {r["id"]: r for r in train_dev}
    assert "squadshifts-nyt-ny2b" not in ids
    assert ids["squadshifts-nyt-ny1a"]["answers_text"] == ["4 to 2"]
    squaddev = json.loads((FIXTURES / "bigbench" / "squad_shifts" / "squaddev_v1.1.json").read_text())
    assert {c["context"] for r in squaddev["data"] for c in r["paragraphs"]} == {r["context"] for r in rows["test"]}


def test_no_context_or_article_in_two_splits(tmp_path):
    for seed in range(6):
        out = tmp_path / str(seed)
        _prepare(out, seed=seed, dev_fraction=0.4)
        rows = _read(out)
        contexts = {split: {r["context"] for r in rows[split]} for split in SPLITS}
        assert not contexts["train"] & contexts["dev"]
        assert not (contexts["train"] | contexts["dev"]) & contexts["test"]
        # articles: every new_wiki town / amazon product is in one split only (reddit: per comment)
        for domain, word in [("new_wiki", "Town "), ("amazon", "lamp model ")]:
            where = {}
            for split in ("train", "dev"):
                for r in rows[split]:
                    if r["domain"] == domain:
                        article = r["context"].split(word)[1][0]
                        assert where.setdefault(article, split) == split


def test_sizes_domains_and_determinism(tmp_path):
    params = {"train_size": 5, "dev_size": 3, "test_size": 4, "seed": 7}
    assert _prepare(tmp_path / "a", **params) == {"train": 5, "dev": 3, "test": 4}
    _prepare(tmp_path / "b", **params)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()
    _prepare(tmp_path / "c", **{**params, "seed": 8})
    assert any(
        (tmp_path / "a" / f"{s}.parquet").read_bytes() != (tmp_path / "c" / f"{s}.parquet").read_bytes() for s in SPLITS
    )
    counts = _prepare(tmp_path / "d", domains=["reddit", "amazon"])
    rows = _read(tmp_path / "d")
    assert counts["train"] + counts["dev"] == QUESTIONS["reddit"] + QUESTIONS["amazon"]
    assert {r["domain"] for r in rows["train"] + rows["dev"]} == {"reddit", "amazon"}


def test_bad_params_and_missing_files(tmp_path):
    with pytest.raises(XstiltsError, match="domains"):
        _prepare(tmp_path, domains=["wikipedia"])
    with pytest.raises(XstiltsError, match="dev_fraction"):
        _prepare(tmp_path, dev_fraction=1.5)
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURES / "bigbench" / "squad_shifts", raw / "bigbench" / "squad_shifts")
    (raw / "bigbench" / "squad_shifts" / "squaddev_v1.1.json").unlink()
    with pytest.raises(XstiltsError, match="extract stage"):
        _prepare(tmp_path / "out", raw=raw)
