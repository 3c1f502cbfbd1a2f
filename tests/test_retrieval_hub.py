"""Retrieval evaluation of the XTREME-R mining (BUCC) and ranking (LAReQA, Mewsli-X) families.

Hand-built vectors (``embed`` replaced by a lookup) give answers known in advance; fixture rows converted by the
real code run end to end on the tiny random encoder.
"""

from __future__ import annotations

import shutil

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from test_xtreme_tasks import FIXTURES, _dataset
from xstilts.data import google_releases
from xstilts.encoder.loading import load_encoder
from xstilts.errors import XstiltsError
from xstilts.retrieval import bitext, embedding, retrieve
from xstilts.retrieval.embedding import Embedder
from xstilts.retrieval.ranking import mention_in_context
from xstilts.retrieval.search import distractor_mask
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family


def _table(family: Family, rows: list[dict]) -> datasets.Dataset:
    """Rows in the family's canonical schema, as the retrieve phase loads them from Parquet."""
    names = [f.name for f in SCHEMAS[family]]
    full = [{n: r.get(n, "x" if n in ("domain", "source", "split") else None) for n in names} for r in rows]
    return datasets.Dataset(pa.Table.from_pylist(full, schema=SCHEMAS[family]))


def _lookup(vectors: dict[str, list[float]], calls: list | None = None):
    """A stand-in for ``embed`` serving L2-normalised hand-built vectors by text (pairs: by first segment)."""

    def embed(texts, tokenizer, encoder, layer=-1, max_length=256, batch_size=32, second=None):
        if calls is not None:
            calls.append((list(texts), second))
        out = np.asarray([vectors[t] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    return embed


def _lookup_layers(vectors: dict[str, list[float]], calls: list | None = None):
    """The same stand-in for ``embed_layers`` (what :class:`Embedder` calls): every layer gets the same vectors."""
    embed = _lookup(vectors, calls)

    def embed_layers(texts, tokenizer, encoder, layers=(-1,), max_length=256, batch_size=32, second=None):
        out = embed(texts, tokenizer, encoder, second=second)
        return {layer: out for layer in layers}

    return embed_layers


def _near_axes(n: int, offset: float) -> list[list[float]]:
    """Unit axis i plus ``offset`` on every axis: all cosines positive, each vector nearest to its own axis."""
    return [[1.0 + offset if j == i else offset for j in range(n)] for i in range(n)]


def _bucc(split: str, lang: str, pairs: list[tuple[list[float], list[float]]], vectors: dict) -> list[dict]:
    rows = []
    for i, (src, tgt) in enumerate(pairs):
        en_id, src_text, en_text = f"{split}-{lang}-en-{i}", f"{split} {lang} {i}", f"{split} en-{lang} {i}"
        vectors[src_text], vectors[en_text] = src, tgt
        base = {"corpus": f"{lang}-en", "split": split}
        rows.append({**base, "id": f"{split}-{lang}-{i}", "language": lang, "text": src_text, "gold_id": en_id})
        rows.append({**base, "id": en_id, "language": "en", "text": en_text, "gold_id": None})
    return rows


def test_mining_on_hand_built_vectors(monkeypatch):
    vectors: dict[str, list[float]] = {}
    dev_axes, test_axes = _near_axes(3, 0.5), _near_axes(3, 0.1)
    dev = _bucc("dev", "de", list(zip(dev_axes, dev_axes, strict=True)), vectors)
    swapped = [test_axes[1], test_axes[0], test_axes[2]]  # de 0 and de 1 look like each other's English
    test = _bucc("test", "de", list(zip(swapped, test_axes, strict=True)), vectors)
    test += _bucc("test", "fr", list(zip(test_axes, test_axes, strict=True)), vectors)
    monkeypatch.setattr(embedding, "embed_layers", _lookup_layers(vectors))
    metrics = retrieve(
        "mining", _table(Family.MINING, dev), _table(Family.MINING, test), Embedder(None, None, -1, 32, 4)
    ).metrics
    assert metrics["dev_bucc_f1_de"] == 1.0
    # every test pair scores above the dev threshold (tighter clusters): de finds 1 of its 3 pairs, fr all
    assert metrics["test_bucc_precision_de"] == pytest.approx(1 / 3)
    assert metrics["test_bucc_f1_de"] == pytest.approx(1 / 3)
    assert metrics["test_bucc_f1_fr"] == 1.0
    assert metrics["test_bucc_f1_zeroshot"] == pytest.approx((1 / 3 + 1) / 2)
    assert metrics["bucc_threshold_fr"] == metrics["bucc_threshold_pooled"]  # fr is missing from dev


def test_mining_keeps_unlinked_sentences_and_drops_a_share_of_linked(monkeypatch):
    vectors: dict[str, list[float]] = {}
    axes = _near_axes(12, 0.2)
    rows = _bucc("dev", "de", list(zip(axes[:10], axes[:10], strict=True)), vectors)
    rows.append({"corpus": "de-en", "id": "lonely", "language": "de", "text": "lonely", "gold_id": None})
    vectors["lonely"] = axes[11]
    embed = _lookup(vectors)
    mined = bitext._mined_split(
        _table(Family.MINING, rows), "dev", lambda t: embed(t, None, None), bitext.Mining(share=0.5, k=2, seed=0)
    )
    scores, correct, n_gold = mined["de"].scores, mined["de"].correct, mined["de"].n_gold
    kept = int((~distractor_mask([f"dev-de-{i}" for i in range(10)], 0.5)).sum())
    assert n_gold == kept and correct.sum() == kept  # every kept sentence finds its own English
    assert len(scores) == kept + 1  # the unlinked sentence is mined too (to a dropped sentence's English)


def _ranking_rows() -> tuple[list[dict], dict[str, list[float]]]:
    # candidates are the unit axes, so a query ranks them by its own coordinates
    vectors = {f"c{i}": [float(i == j) for j in range(4)] for i in range(4)}
    rows = [
        {"id": f"c{i}", "language": "en" if i < 2 else "de", "kind": "candidate", "text": f"c{i}", "relevant_ids": []}
        for i in range(4)
    ]
    rows[0]["context"], rows[0]["text_start"] = "c0 and more", 0  # a sentence in its paragraph
    queries = {
        "q-en": ("en", [0.9, 0.1, 0.8, 0.3], ["c0", "c2"]),  # ranks c0, c2 first: AP 1
        "q-de": ("de", [0.9, 0.1, 0.8, 0.3], ["c1"]),  # c1 is fourth: AP 1/4
        "q-fr": ("fr", [0.1, 0.9, 0.2, 0.3], ["c3"]),  # c3 is second: AP 1/2
    }
    for qid, (lang, vector, relevant) in queries.items():
        rows.append({"id": qid, "language": lang, "kind": "query", "text": qid, "relevant_ids": relevant})
        vectors[qid] = vector
    rows[-1]["context"], rows[-1]["text_start"] = "Heute q-fr {und} morgen", 6  # a mention in its article
    vectors["Heute {q-fr} (und) morgen"] = vectors.pop("q-fr")
    return rows, vectors


def test_ranking_on_hand_built_vectors(monkeypatch):
    rows, vectors = _ranking_rows()
    calls: list = []
    monkeypatch.setattr(embedding, "embed_layers", _lookup_layers(vectors, calls))
    empty = _table(Family.RANKING, [])
    metrics = retrieve("ranking", empty, _table(Family.RANKING, rows), Embedder(None, None, -1, 32, 4)).metrics
    assert metrics == pytest.approx(
        {"test_map20_en": 1.0, "test_map20_de": 0.25, "test_map20_fr": 0.5, "test_map20_zeroshot": 0.375}
    )
    (query_texts, no_pair), (candidate_texts, pairs) = calls
    assert no_pair is None and query_texts[2] == "Heute {q-fr} (und) morgen"
    assert pairs == ["c0 and more", "", "", ""] and candidate_texts == ["c0", "c1", "c2", "c3"]


def test_mention_window_cuts_at_words():
    context = "one two three four five Paris six seven eight nine ten"
    start = context.index("Paris")
    assert mention_in_context(context, start, "Paris", window=12) == "four five {Paris} six seven"
    assert mention_in_context(context, start, "Paris") == context.replace("Paris", "{Paris}")
    with pytest.raises(XstiltsError):
        mention_in_context(context, 0, "Paris")


def test_bad_splits_and_families_raise(monkeypatch):
    rows, vectors = _ranking_rows()
    monkeypatch.setattr(embedding, "embed_layers", _lookup_layers(vectors))
    test = _table(Family.RANKING, rows)
    only_queries = test.filter(lambda r: r["kind"] == "query")
    with pytest.raises(XstiltsError, match="'query' and 'candidate'"):
        retrieve("ranking", test, only_queries, Embedder(None, None, -1, 32, 4))
    with pytest.raises(XstiltsError, match="ranking rows"):
        retrieve("ranking", test, test.select([]), Embedder(None, None, -1, 32, 4))
    broken = [dict(r, relevant_ids=["nowhere"]) if r["kind"] == "query" else r for r in rows]
    with pytest.raises(XstiltsError, match="names no candidate"):
        retrieve("ranking", test, _table(Family.RANKING, broken), Embedder(None, None, -1, 32, 4))
    with pytest.raises(XstiltsError, match="mining"):
        retrieve("mining", test, test, Embedder(None, None, -1, 32, 4))  # ranking rows lack corpus and gold_id
    with pytest.raises(XstiltsError, match="not 'tagging'"):
        retrieve("tagging", test, test, Embedder(None, None, -1, 32, 4))


def test_bucc_fixture_end_to_end(tiny_encoder_dir):
    task = get_task("bucc", source="hub")
    dev = task.convert(_dataset("google/xtreme", "bucc18.de", "validation"), "de", "dev", "s")
    test = task.convert(_dataset("google/xtreme", "bucc18.de", "test"), "de", "test", "s")
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    metrics = retrieve(
        Family.MINING, _table(Family.MINING, dev), _table(Family.MINING, test), Embedder(tokenizer, encoder, -1, 32, 4)
    ).metrics
    for split in ("dev", "test"):
        for name in ("f1", "precision", "recall"):
            assert 0.0 <= metrics[f"{split}_bucc_{name}_de"] <= 1.0
        assert metrics[f"{split}_bucc_f1_zeroshot"] == metrics[f"{split}_bucc_f1_de"]
    assert "bucc_threshold_de" in metrics


def test_lareqa_and_mewslix_fixtures_end_to_end(tiny_encoder_dir, tmp_path, monkeypatch):
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    lareqa_dir = google_releases.google_dir(tmp_path) / "lareqa" / google_releases.LAREQA_COMMIT[:12]
    shutil.copytree(FIXTURES / "lareqa", lareqa_dir)
    lareqa = get_task("lareqa", source="hub")
    monkeypatch.setattr(type(lareqa), "languages", ("en", "de"))
    lareqa.prepare(tmp_path, tmp_path / "lareqa", {})
    shutil.copytree(FIXTURES / "mewslix", google_releases.mewslix_dir(tmp_path))
    get_task("mewslix", source="hub").prepare(tmp_path, tmp_path / "mewslix", {})

    def split(task: str, name: str) -> datasets.Dataset:
        return datasets.Dataset(pq.read_table(tmp_path / task / f"{name}.parquet"))

    found = retrieve(
        "ranking", split("lareqa", "dev"), split("lareqa", "test"), Embedder(tokenizer, encoder, -1, 32, 4)
    ).metrics
    assert set(found) == {"test_map20_en", "test_map20_de", "test_map20_zeroshot"}
    assert all(0.0 < v <= 1.0 for v in found.values())
    found = retrieve(
        "ranking", split("mewslix", "dev"), split("mewslix", "test"), Embedder(tokenizer, encoder, -1, 32, 4)
    ).metrics
    assert found["dev_map20_en"] == 1.0  # the dev pool holds only the gold entity
    assert 0.5 <= found["test_map20_de"] <= 1.0 and found["test_map20_zeroshot"] == found["test_map20_de"]
