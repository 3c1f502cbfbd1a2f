"""Retrieval metrics on hand-made vectors, and the bitext evaluation end to end on a tiny random encoder."""

from __future__ import annotations

import datasets
import numpy as np
import pandas as pd
import pytest

from tiny import CORPUS, mean_pooled
from xstilts.encoder.loading import load_encoder
from xstilts.errors import XstiltsError
from xstilts.retrieval import embedding
from xstilts.retrieval.bitext import Mining, bitext_retrieval
from xstilts.retrieval.embedding import Embedder
from xstilts.retrieval.search import (
    distractor_mask,
    map_at_k,
    mine,
    pair_margins,
    precision_recall_f1,
    top1_correct,
    tune_threshold,
)


def _unit(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


# 2-d unit vectors whose cosines are easy by hand (rows: x, columns: y):
#        y0=(.8,.6) y1=(0,1) y2=(1,0)
# x0=(1,0)    .8       0        1
# x1=(0,1)    .6       1        0
# x2=(.6,.8)  .96      .8       .6
X = _unit([[1, 0], [0, 1], [0.6, 0.8]])
Y = _unit([[0.8, 0.6], [0, 1], [1, 0]])


def test_top1_hits_with_known_nearest_neighbours():
    assert top1_correct(X, Y, np.asarray([2, 1, 0])).tolist() == [True, True, True]
    assert top1_correct(X, Y, np.asarray([0, 1, 1])).tolist() == [False, True, False]


def test_ratio_margin_matches_hand_computation_k2():
    # mean of the 2 best cosines: x0 (1+.8)/2=.9, x1 (1+.6)/2=.8, x2 (.96+.8)/2=.88;
    # y0 (.96+.8)/2=.88, y1 (1+.8)/2=.9, y2 (1+.6)/2=.8
    mx, my = [0.9, 0.8, 0.88], [0.88, 0.9, 0.8]
    cos = [[0.8, 0.0, 1.0], [0.6, 1.0, 0.0], [0.96, 0.8, 0.6]]
    src, tgt = np.repeat(np.arange(3), 3), np.tile(np.arange(3), 3)
    got = pair_margins(X, Y, src, tgt, k=2).reshape(3, 3)
    expected = [[cos[i][j] / ((mx[i] + my[j]) / 2) for j in range(3)] for i in range(3)]
    assert got == pytest.approx(np.asarray(expected), abs=1e-6)
    assert got[0, 2] == pytest.approx(1 / 0.85, abs=1e-6)


def test_mine_max_strategy_on_hand_example():
    found = mine(X, Y, k=2)
    assert sorted(zip(found.source.tolist(), found.target.tolist(), strict=True)) == [(0, 2), (1, 1), (2, 0)]
    assert list(found.score) == sorted(found.score, reverse=True)
    assert found.score[-1] == pytest.approx(0.96 / 0.88, abs=1e-6)


def test_mine_is_one_to_one_and_uses_backward_candidates():
    # x1's best target is y0 (taken by x0 at margin 1); y1's best source x1 comes from the backward direction.
    x, y = _unit([[1, 0], [0.8, 0.6]]), _unit([[1, 0], [0, 1]])
    found = mine(x, y, k=1)
    assert list(zip(found.source.tolist(), found.target.tolist(), strict=True)) == [(0, 0), (1, 1)]
    assert found.score[1] == pytest.approx(0.6 / 0.7, abs=1e-6)


def test_mine_caps_k_at_the_pool_size():
    small, large = mine(X[:2], Y[:2], k=2), mine(X[:2], Y[:2], k=50)
    assert np.array_equal(small.source, large.source) and np.allclose(small.score, large.score)
    with pytest.raises(XstiltsError):
        mine(X, Y, k=0)


def test_tune_threshold_picks_the_f1_optimal_cut():
    scores = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.asarray([True, False, True, True, False])
    # F1 by cut (4 gold): .4, .333, .571, .75, .667 -> keep the top 4, threshold midway to the 5th
    threshold = tune_threshold(scores, correct, 4)
    assert threshold == pytest.approx(0.55)
    assert precision_recall_f1(scores, correct, 4, threshold) == pytest.approx((0.75, 0.75, 0.75))
    cuts = [*((scores[:-1] + scores[1:]) / 2), 0.5]
    assert max(precision_recall_f1(scores, correct, 4, t)[2] for t in cuts) == pytest.approx(0.75)


def test_tune_threshold_never_splits_ties_and_handles_no_hit():
    scores = np.asarray([0.9, 0.9, 0.5])
    assert tune_threshold(scores, np.asarray([True, False, False]), 1) == pytest.approx(0.7)
    above = tune_threshold(scores, np.zeros(3, dtype=bool), 2)
    assert above > 0.9
    assert precision_recall_f1(scores, np.zeros(3, dtype=bool), 2, above) == (0.0, 0.0, 0.0)
    with pytest.raises(XstiltsError):
        tune_threshold(np.asarray([]), np.asarray([], dtype=bool), 1)


def test_distractor_mask_is_seeded_and_keeps_one():
    ids = [f"udhr-de-{i}" for i in range(2000)]
    drop = distractor_mask(ids, 0.2)
    assert 0.17 < drop.mean() < 0.23
    assert np.array_equal(drop, distractor_mask(ids, 0.2))
    assert not np.array_equal(drop, distractor_mask(ids, 0.2, seed=1))
    assert not distractor_mask(ids, 0.0).any()
    assert distractor_mask(["a"], 0.99).tolist() == [False]
    with pytest.raises(XstiltsError):
        distractor_mask(ids, 1.0)


def test_map_at_k_on_a_hand_worked_ranking():
    # candidates are the unit axes, so a query's inner products are its own coordinates: ranking 0, 2, 4, 3, 1
    candidates = np.eye(5, dtype=np.float32)
    queries = np.tile(_unit([[0.9, 0.1, 0.8, 0.3, 0.5]]), (3, 1))
    # {2, 3}: hit at rank 2 -> (1/2) / min(2, 3); {1}: not in the top 3 -> 0; {0}: hit at rank 1 -> 1
    assert map_at_k(queries, candidates, [{2, 3}, {1}, {0}], k=3) == pytest.approx((0.25 + 0 + 1) / 3)
    # k=5: {2, 3} hits at ranks 2 and 4 -> (1/2 + 2/4) / 2
    assert map_at_k(queries[:1], candidates, [{2, 3}], k=5) == pytest.approx(0.5)
    with pytest.raises(XstiltsError):
        map_at_k(queries, candidates, [{0}, set(), {1}])
    with pytest.raises(XstiltsError):
        map_at_k(queries, candidates, [{0}])


ENGLISH = CORPUS[:8]


def _bitext(split: str, languages: list[str]) -> datasets.Dataset:
    rows = []
    for lang in languages:
        for i, en in enumerate(ENGLISH):
            # "xx" copies the English (its translation is exact); the others reverse the word order
            text = en if lang == "xx" else " ".join(reversed(en.split()))
            rows.append({"id": f"{split}-{lang}-{i}", "language": lang, "text": text, "en_text": en})
    return datasets.Dataset.from_list(rows)


def test_bitext_retrieval_end_to_end(tiny_encoder_dir, monkeypatch):
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    calls = []
    original = embedding.embed_layers
    monkeypatch.setattr(embedding, "embed_layers", lambda texts, *a: calls.append(len(texts)) or original(texts, *a))
    dev, test = _bitext("dev", ["xx", "de"]), _bitext("test", ["xx", "de", "ru"])
    embedder = Embedder(tokenizer, encoder, -1, 32, 4, also=(1,))
    result = bitext_retrieval(dev, test, embedder, Mining(share=0.25, k=3))
    metrics = result.metrics
    assert calls == [2 * 8 + 8, 3 * 8 + 8]  # each split embedded once: its sentences plus its distinct English
    hits = pd.DataFrame(result.examples)
    for (split, lang), rows in hits.groupby(["split", "language"]):
        assert rows["score"].sum() / rows["weight"].sum() == metrics[f"{split}_accuracy_{lang}"]  # the study's parts
    swept = bitext_retrieval(dev, test, embedder.at(1), Mining(share=0.25, k=3)).metrics
    assert len(calls) == 2  # layer 1 came from the same forward passes
    monkeypatch.setattr(embedding, "embed_layers", original)
    assert swept == bitext_retrieval(dev, test, Embedder(tokenizer, encoder, 1, 32, 4), Mining(share=0.25, k=3)).metrics
    english = mean_pooled(tiny_encoder_dir, ENGLISH)
    for split, langs in (("dev", ["xx", "de"]), ("test", ["xx", "de", "ru"])):
        for lang in langs:
            # top-1 accuracy, counted here with plain transformers and numpy: row i's English is ENGLISH[i]
            rows = [r for r in (dev if split == "dev" else test) if r["language"] == lang]
            found = (mean_pooled(tiny_encoder_dir, [r["text"] for r in rows]) @ english.T).argmax(1)
            assert metrics[f"{split}_accuracy_{lang}"] == pytest.approx(np.mean(found == np.arange(8)), abs=1e-9)
            p, r = metrics[f"{split}_bucc_precision_{lang}"], metrics[f"{split}_bucc_recall_{lang}"]
            assert metrics[f"{split}_bucc_f1_{lang}"] == pytest.approx(0.0 if p + r == 0 else 2 * p * r / (p + r))
        for name in ("accuracy", "bucc_f1"):
            mean = np.mean([metrics[f"{split}_{name}_{lang}"] for lang in langs])
            assert metrics[f"{split}_{name}_zeroshot"] == pytest.approx(mean)
    assert metrics["test_accuracy_xx"] == 1.0  # identical text and translation embed identically
    assert metrics["bucc_threshold_ru"] == metrics["bucc_threshold_pooled"]  # ru is missing from dev
    assert metrics["bucc_threshold_xx"] != metrics["bucc_threshold_de"]
    again = bitext_retrieval(dev, test, Embedder(tokenizer, encoder, -1, 32, 4), Mining(share=0.25, k=3)).metrics
    assert again == pytest.approx(metrics)


def test_bitext_retrieval_rejects_bad_splits(tiny_encoder_dir):
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    good = _bitext("dev", ["de"])
    with pytest.raises(XstiltsError):
        bitext_retrieval(good.remove_columns("en_text"), good, Embedder(tokenizer, encoder, -1, 32, 4))
    with pytest.raises(XstiltsError):
        bitext_retrieval(good, good.select([]), Embedder(tokenizer, encoder, -1, 32, 4))


@pytest.mark.parametrize("layer", [-1, 1])
def test_embeddings_are_the_chosen_layers_mean_pooled_vectors(tiny_encoder_dir, layer):
    """Embedder's vectors equal a mean-pool of hidden_states[layer] computed here with plain transformers."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = list(CORPUS[:6])
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    mine = Embedder(tokenizer, encoder, layer, 32, 4)(texts)
    plain_tokenizer, plain = (
        AutoTokenizer.from_pretrained(tiny_encoder_dir),
        AutoModel.from_pretrained(tiny_encoder_dir),
    )
    enc = plain_tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        hidden = plain(**enc, output_hidden_states=True).hidden_states[layer]
    mask = enc["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert mine.shape == expected.shape and np.abs(mine - expected).max() < 1e-5
