"""VitaminC preparation on a few examples in the BIG-bench format (tests/fixtures/bigbench)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family

FIXTURES = Path(__file__).parent / "fixtures"
N_EXAMPLES = 14


def _read(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def _prepare(out: Path, **params) -> dict[str, int]:
    return get_task("vitaminc").prepare(FIXTURES, out, {"dev_fraction": 0.3, "test_fraction": 0.3, **params})


def test_schema_labels_and_counts(tmp_path):
    counts = _prepare(tmp_path)
    assert sum(counts.values()) == N_EXAMPLES
    assert all(counts[s] > 0 for s in SPLITS), counts  # with these fractions and seed every split gets a group
    rows = _read(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.CLASSIFICATION])
        assert len(rows[split]) == counts[split]
        assert {r["split"] for r in rows[split]} == {split}
    every = [r for split in SPLITS for r in rows[split]]
    assert {r["label"] for r in every} == {"entailment", "contradiction", "neutral"}
    assert {(r["language"], r["domain"], r["source"]) for r in every} == {("en", "wikipedia", "bigbench==1.0.0")}
    westlife = [r for r in every if r["text_b"] == "Westlife sold over 20 million records in the UK ."]
    assert sorted(r["label"] for r in westlife) == ["contradiction", "entailment"]
    assert all(r["text_a"].startswith("Westlife: Westlife has sold") for r in westlife)
    assert not any(list(Path(tmp_path).glob(".*")))  # no temporary files left


def test_split_is_grouped_by_claim_and_evidence(tmp_path):
    for seed in range(6):
        out = tmp_path / str(seed)
        _prepare(out, seed=seed)
        rows = _read(out)
        claim_split, evidence_split = {}, {}
        for split in SPLITS:
            for r in rows[split]:
                assert claim_split.setdefault(r["text_b"], split) == split, r
                assert evidence_split.setdefault(r["text_a"], split) == split, r


def test_deterministic_and_subsampled(tmp_path):
    _prepare(tmp_path / "a", train_size=3, dev_size=1)
    _prepare(tmp_path / "b", train_size=3, dev_size=1)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()
    rows = _read(tmp_path / "a")
    assert len(rows["train"]) == 3 and len(rows["dev"]) == 1
    _prepare(tmp_path / "full")
    full = _read(tmp_path / "full")
    assert {r["id"] for r in rows["train"]} <= {r["id"] for r in full["train"]}


def test_bad_input_fails_clearly(tmp_path):
    with pytest.raises(XstiltsError, match="train_size"):
        _prepare(tmp_path, train_size=-1)
    with pytest.raises(XstiltsError, match="extract stage"):
        get_task("vitaminc").prepare(tmp_path / "nowhere", tmp_path / "out", {})
    raw = tmp_path / "raw"
    (raw / "bigbench" / "vitaminc_fact_verification").mkdir(parents=True)
    bad = {"examples": [{"input": "T: e\nClaim: c", "target_scores": {"True": 1, "False": 1, "Neither": 0}}]}
    (raw / "bigbench" / "vitaminc_fact_verification" / "task.json").write_text(json.dumps(bad))
    with pytest.raises(XstiltsError, match="single gold label"):
        get_task("vitaminc").prepare(raw, tmp_path / "out", {})
