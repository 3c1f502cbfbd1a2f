"""Zero-shot retrieval: mean-pooled sentence embeddings and faiss nearest neighbours (Tatoeba-style top-1)."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import faiss
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from xstilts.modeling import mean_pool


@torch.no_grad()
def embed(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    encoder: PreTrainedModel,
    layer: int = -1,
    max_length: int = 256,
    batch_size: int = 32,
) -> np.ndarray:
    """L2-normalised mean-pooled vectors from hidden layer ``layer`` (-1 = last), float32 ``[n, hidden]``."""
    encoder.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        hidden = encoder(**enc, output_hidden_states=True, return_dict=True).hidden_states[layer]
        out[idx] = mean_pool(hidden, enc["attention_mask"]).float().numpy()
    faiss.normalize_L2(out)
    return out


def top1_accuracy(queries: np.ndarray, candidates: np.ndarray, gold: np.ndarray) -> float:
    """Share of queries whose inner-product nearest candidate is their gold index."""
    index = faiss.IndexFlatIP(candidates.shape[1])
    index.add(candidates)
    _, nearest = index.search(queries, 1)
    return float((nearest[:, 0] == gold).mean())


def tatoeba_accuracy(
    ds: datasets.Dataset, tokenizer, encoder, prefix: str, layer: int, max_length: int, batch_size: int
) -> dict[str, float]:
    """For each language, find each sentence's English translation among all English sentences of the split."""
    english = sorted(set(ds["en_text"]))
    position = {text: i for i, text in enumerate(english)}
    english_vectors = embed(english, tokenizer, encoder, layer, max_length, batch_size)
    metrics: dict[str, float] = {}
    languages = np.asarray(ds["language"])
    texts, targets = np.asarray(ds["text"], dtype=object), np.asarray(ds["en_text"], dtype=object)
    for lang in sorted(set(languages)):
        mask = languages == lang
        vectors = embed(list(texts[mask]), tokenizer, encoder, layer, max_length, batch_size)
        gold = np.asarray([position[t] for t in targets[mask]])
        metrics[f"{prefix}_accuracy_{lang}"] = top1_accuracy(vectors, english_vectors, gold)
    if metrics:
        metrics[f"{prefix}_accuracy_zeroshot"] = float(np.mean(list(metrics.values())))
    return metrics
