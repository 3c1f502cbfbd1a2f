"""Test-split retrieval predictions in XTREME's layout: Tatoeba indices, BUCC pairs, LAReQA/Mewsli-X rankings.

Hand-built vectors (``embed`` replaced by a lookup) pin the exact predictions; rows in the tasks' real formats
(converted by the real code) run end to end on the tiny random encoder, and the written files, read back the way
XTREME's ``evaluate.py`` reads them, score what the metrics say.
"""

from __future__ import annotations

import json
import shutil

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from test_retrieval_hub import _lookup_layers, _near_axes, _ranking_rows, _table
from test_xtreme_tasks import FIXTURES
from tiny import CORPUS
from xstilts.data import google_releases
from xstilts.encoder.loading import load_encoder
from xstilts.errors import XstiltsError
from xstilts.retrieval import RetrievalResult, embedding, retrieve, write_retrieval_predictions
from xstilts.retrieval.embedding import Embedder
from xstilts.retrieval.search import distractor_mask
from xstilts.tasks import get_task
from xstilts.tasks.base import Family
from xstilts.xtreme_format import prediction_path
from xstilts.xtreme_submission import check_prediction_file

EMPTY_BITEXT = _table(Family.BITEXT, [])


def _bitext_rows(language: str, pairs: list[tuple[str, str]]) -> list[dict]:
    """Tatoeba rows as google/xtreme's ``tatoeba.<code>`` configs hold them, converted by the task."""
    records = [
        {"source_sentence": s, "target_sentence": t, "source_lang": language, "target_lang": "eng"} for s, t in pairs
    ]
    return get_task("tatoeba", source="hub").convert(records, language, "test", "s")


def test_tatoeba_indices_search_each_language_and_map_to_its_rows(monkeypatch, tmp_path):
    # de's English side is A, B, A, B (A repeated); fr's is C. d1 lies nearer C (fr's) than B, d3 nearest A.
    vectors = {
        "A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1],
        "d0": [1, 0, 0], "d1": [0, 0.6, 0.8], "d2": [1, 0, 0], "d3": [0.9, 0.1, 0], "f0": [0, 0, 1],
    }  # fmt: skip
    rows = _bitext_rows("de", [("d0", "A"), ("d1", "B"), ("d2", "A"), ("d3", "B")]) + _bitext_rows("fr", [("f0", "C")])
    monkeypatch.setattr(embedding, "embed_layers", _lookup_layers(vectors))
    result = retrieve("bitext", EMPTY_BITEXT, _table(Family.BITEXT, rows), Embedder(None, None, -1, 32, 4))
    # the metric searches the whole split's English: d1 finds C, d3 finds A
    assert result.metrics == pytest.approx(
        {"test_accuracy_de": 0.5, "test_accuracy_fr": 1.0, "test_accuracy_zeroshot": 0.75}
    )
    # predictions search de's own English only: d1 finds B (row 1); d2 is A's second row (its own); d3's A is row 0
    assert result.predictions == {"de": [0, 1, 2, 0], "fr": [0]}
    paths = write_retrieval_predictions("tatoeba", result, tmp_path)
    assert paths == [prediction_path(tmp_path, "tatoeba", lang) for lang in ("de", "fr")]
    assert paths[0].read_text() == "0\n1\n2\n0\n" and check_prediction_file(paths[1], "tatoeba") == 1


def test_tatoeba_end_to_end_on_the_tiny_encoder(tiny_encoder_dir, tmp_path):
    english = CORPUS[:8]
    rows = _bitext_rows("de", [(" ".join(reversed(e.split())), e) for e in english[:6]])
    rows += _bitext_rows("xx", [(e, e) for e in english[2:8]])  # xx copies its English: every prediction right
    test = _table(Family.BITEXT, rows)
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    result = retrieve(Family.BITEXT, EMPTY_BITEXT, test, Embedder(tokenizer, encoder, -1, 32, 4))
    assert result.metrics["test_accuracy_xx"] == 1.0
    assert not any(name.startswith(("dev_", "bucc_")) for name in result.metrics)  # no dev: nothing to tune on
    paths = write_retrieval_predictions("tatoeba", result, tmp_path / "xtreme")
    for path, lang in zip(paths, ("de", "xx"), strict=True):
        assert check_prediction_file(path, "tatoeba") == 6  # one line per source sentence
        lines = path.read_text().splitlines()
        assert all(0 <= int(i) < 6 for i in lines)
        if lang == "xx":
            assert lines == [str(i) for i in range(6)]  # XTREME's gold is the line number
    # a dev split adds the mining metrics and leaves the test accuracies as they were
    dev = _table(Family.BITEXT, _bitext_rows("de", [(e, e) for e in english[:4]]))
    both = retrieve("bitext", dev, test, Embedder(tokenizer, encoder, -1, 32, 4))
    accuracies = {k: v for k, v in result.metrics.items() if k.startswith("test_accuracy_")}
    assert accuracies and {k: both.metrics[k] for k in accuracies} == accuracies
    assert both.predictions == result.predictions and "bucc_threshold_de" in both.metrics


def _bucc_rows(split: str, language: str, pairs: list[tuple[str, str]]) -> list[dict]:
    """BUCC rows from google/xtreme ``bucc18.<lang>`` records, converted by the task."""
    records = [
        {"source_sentence": s, "target_sentence": t, "source_lang": f"{language}-{i:09d}", "target_lang": f"en-{i:09d}"}
        for i, (s, t) in enumerate(pairs)
    ]
    return get_task("bucc", source="hub").convert(records, language, split, "s")


def _xtreme_bucc_f1(predicted: list[str], gold: set[tuple[str, str]]) -> float:
    """F1 of predicted ``src<TAB>tgt`` lines against gold pairs, as evaluate.py's bucc_f1."""
    found = {tuple(line.split("\t")) for line in predicted}
    hits = len(found & gold)
    return 0.0 if not hits else 2 * (hits / len(found)) * (hits / len(gold)) / (hits / len(found) + hits / len(gold))


def test_bucc_pairs_above_the_tuned_threshold(monkeypatch, tmp_path):
    vectors: dict[str, list[float]] = {}
    dev_axes, test_axes = _near_axes(5, 0.5), _near_axes(5, 0.1)
    perm = [1, 0, 2, 4, 3]  # test source i looks like English perm[i]
    for i in range(5):
        vectors[f"dev de {i}"], vectors[f"dev en {i}"] = dev_axes[i], dev_axes[i]
        vectors[f"test de {i}"], vectors[f"test en {i}"] = test_axes[perm[i]], test_axes[i]
    dev = _bucc_rows("dev", "de", [(f"dev de {i}", f"dev en {i}") for i in range(5)])
    test = _bucc_rows("test", "de", [(f"test de {i}", f"test en {i}") for i in range(5)])
    monkeypatch.setattr(embedding, "embed_layers", _lookup_layers(vectors))
    result = retrieve(
        "mining", _table(Family.MINING, dev), _table(Family.MINING, test), Embedder(None, None, -1, 32, 4)
    )
    kept = [i for i, drop in enumerate(distractor_mask([f"bucc-de-en-de-{i:09d}" for i in range(5)], 0.2)) if not drop]
    # every test pair scores above the dev threshold (tighter clusters): each kept source with its nearest English
    expected = {(f"bucc-de-en-de-{i:09d}", f"bucc-de-en-en-{perm[i]:09d}") for i in kept}
    assert set(result.predictions["de"]) == expected and len(result.predictions["de"]) == len(kept)
    assert result.metrics["test_bucc_precision_de"] == pytest.approx(sum(perm[i] == i for i in kept) / len(kept))
    (path,) = write_retrieval_predictions("bucc", result, tmp_path)
    assert path == prediction_path(tmp_path, "bucc2018", "de")
    assert set(path.read_text().splitlines()) == {f"de-{i:09d}\ten-{perm[i]:09d}" for i in kept}  # BUCC's own ids
    assert check_prediction_file(path, "bucc2018") == len(kept)


def test_bucc_end_to_end_file_scores_the_metric(tiny_encoder_dir, tmp_path):
    sentences = CORPUS[:10]
    dev = _bucc_rows("dev", "de", [(" ".join(reversed(s.split())), s) for s in sentences[:5]])
    test = _bucc_rows("test", "de", [(" ".join(reversed(s.split())), s) for s in sentences[3:10]])
    dev, test = _table(Family.MINING, dev), _table(Family.MINING, test)
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    result = retrieve("mining", dev, test, Embedder(tokenizer, encoder, -1, 32, 4))
    (path,) = write_retrieval_predictions("bucc", result, tmp_path)
    lines = path.read_text().splitlines()
    assert check_prediction_file(path, "bucc2018") == len(lines) == len(result.predictions["de"])
    # the metric scores the sentences kept after dropping the distractor share: their gold pairs, in BUCC ids
    drop = distractor_mask([f"bucc-de-en-de-{i:09d}" for i in range(7)], 0.2)
    gold = {(f"de-{i:09d}", f"en-{i:09d}") for i in range(7) if not drop[i]}
    assert _xtreme_bucc_f1(lines, gold) == pytest.approx(result.metrics["test_bucc_f1_de"])


def test_ranking_predictions_on_hand_built_vectors(monkeypatch):
    rows, vectors = _ranking_rows()
    monkeypatch.setattr(embedding, "embed_layers", _lookup_layers(vectors))
    result = retrieve(
        "ranking", _table(Family.RANKING, []), _table(Family.RANKING, rows), Embedder(None, None, -1, 32, 4)
    )
    assert result.predictions == {
        "de": {"q-de": ["c0", "c2", "c3", "c1"]},
        "en": {"q-en": ["c0", "c2", "c3", "c1"]},
        "fr": {"q-fr": ["c1", "c3", "c2", "c0"]},
    }
    assert result.metrics["test_map20_de"] == 0.25  # c1, its one relevant candidate, is fourth


def _map_at_20(ranking: dict[str, list[str]], gold: dict[str, list[str]]) -> float:
    """mAP@20 of a prediction file's rankings against gold ids (AP divided by min(|relevant|, 20))."""
    scores = []
    for query, relevant in gold.items():
        hits, total = 0, 0.0
        for rank, candidate in enumerate(ranking[query][:20], start=1):
            if candidate in relevant:
                hits += 1
                total += hits / rank
        scores.append(total / min(len(relevant), 20))
    return float(np.mean(scores))


def _prepared(tmp_path, monkeypatch) -> dict[str, tuple[datasets.Dataset, datasets.Dataset]]:
    """LAReQA (en, de) and Mewsli-X prepared from the release fixtures: (dev, test) per task."""
    lareqa_dir = google_releases.google_dir(tmp_path) / "lareqa" / google_releases.LAREQA_COMMIT[:12]
    shutil.copytree(FIXTURES / "lareqa", lareqa_dir)
    lareqa = get_task("lareqa", source="hub")
    monkeypatch.setattr(type(lareqa), "languages", ("en", "de"))
    lareqa.prepare(tmp_path, tmp_path / "lareqa", {})
    shutil.copytree(FIXTURES / "mewslix", google_releases.mewslix_dir(tmp_path))
    get_task("mewslix", source="hub").prepare(tmp_path, tmp_path / "mewslix", {})
    return {
        task: tuple(datasets.Dataset(pq.read_table(tmp_path / task / f"{s}.parquet")) for s in ("dev", "test"))
        for task in ("lareqa", "mewslix")
    }


@pytest.mark.parametrize(
    ("task", "query_prefix", "candidate_prefix"),
    [("lareqa", "lareqa-q-", "lareqa-"), ("mewslix", "mewslix-m-", "mewslix-test-e-")],
)
def test_ranking_end_to_end_file_scores_the_metric(
    task, query_prefix, candidate_prefix, tiny_encoder_dir, tmp_path, monkeypatch
):
    dev, test = _prepared(tmp_path / "data", monkeypatch)[task]
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    result = retrieve("ranking", dev, test, Embedder(tokenizer, encoder, -1, 32, 4))
    paths = write_retrieval_predictions(task, result, tmp_path / "xtreme")
    queries = test.filter(lambda r: r["kind"] == "query")
    pool = len(test) - len(queries)
    assert [p.name for p in paths] == [f"test-{lang}.json" for lang in sorted(set(queries["language"]))]
    for path in paths:
        lang = path.stem.removeprefix("test-")
        ranking = json.loads(path.read_text())
        mine = queries.filter(lambda r, lang=lang: r["language"] == lang)
        gold = {
            q.removeprefix(query_prefix): [c.removeprefix(candidate_prefix) for c in rel]
            for q, rel in zip(mine["id"], mine["relevant_ids"], strict=True)
        }
        assert check_prediction_file(path, task) == len(gold) and set(ranking) == set(gold)
        assert all(len(cands) == min(20, pool) and len(set(cands)) == len(cands) for cands in ranking.values())
        assert _map_at_20(ranking, gold) == pytest.approx(result.metrics[f"test_map20_{lang}"])


def test_offline_tasks_write_nothing_and_mismatches_raise(monkeypatch, tmp_path):
    rows, vectors = _ranking_rows()
    monkeypatch.setattr(embedding, "embed_layers", _lookup_layers(vectors))
    ranking = retrieve(
        "ranking", _table(Family.RANKING, []), _table(Family.RANKING, rows), Embedder(None, None, -1, 32, 4)
    )
    bitext = RetrievalResult("bitext", {}, {"de": [0]})
    assert write_retrieval_predictions("udhr", bitext, tmp_path) == []
    assert write_retrieval_predictions("libreoffice_help", bitext, tmp_path) == []
    assert not any(tmp_path.iterdir())
    with pytest.raises(XstiltsError, match="not ranking retrieval"):
        write_retrieval_predictions("tatoeba", ranking, tmp_path)
    with pytest.raises(XstiltsError, match="takes label predictions"):
        write_retrieval_predictions("xnli", bitext, tmp_path)
    with pytest.raises(XstiltsError, match="does not start with 'mewslix-m-'"):
        write_retrieval_predictions("mewslix", ranking, tmp_path)  # hand-built ids are no Mewsli-X ids
    with pytest.raises(XstiltsError, match="no test predictions"):
        write_retrieval_predictions("tatoeba", RetrievalResult("bitext", {}, {}), tmp_path)
