"""Vocabulary trimming is exact on the data, maps other ids to <unk>, and untrims into an ordinary model."""

from __future__ import annotations

import datasets
import pytest
import torch
from transformers import AutoTokenizer, BertModel

from xstilts.encoder.loading import load_bare_encoder
from xstilts.errors import XstiltsError
from xstilts.modeling import HeadSpec, MultiTaskModel
from xstilts.params import TrainParams
from xstilts.training.features import Collator, tokenize
from xstilts.training.loop import train_task
from xstilts.training.trim import TrimmedEmbedding, trim_embeddings, trimmed, untrim, used_token_ids

TRAIN = [
    ("the hotel was clean", "positive"),
    ("the room was dirty", "negative"),
    ("the staff were friendly", "positive"),
    ("the service was terrible", "negative"),
]
DEV = [("the hotel was dirty", "negative"), ("the staff were clean", "positive")]
LABELS = ["negative", "positive"]


def rows(pairs: list[tuple[str, str]]) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {
            "id": [f"r{i}" for i in range(len(pairs))],
            "language": ["en"] * len(pairs),
            "domain": ["hotels"] * len(pairs),
            "text_a": [t for t, _ in pairs],
            "text_b": [None] * len(pairs),
            "label": [y for _, y in pairs],
        }
    )


@pytest.fixture
def parts(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    encoder = load_bare_encoder(tiny_encoder_dir).eval()
    train = tokenize("classification", rows(TRAIN), tokenizer, LABELS, 32)
    dev = tokenize("classification", rows(DEV), tokenizer, LABELS, 32)
    return tokenizer, encoder, train, dev


def hidden(encoder, tokenizer, texts: list[str]) -> torch.Tensor:
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state


def test_used_token_ids_flat_nested_and_selected() -> None:
    flat = datasets.Dataset.from_dict({"input_ids": [[0, 7, 2], [0, 5, 5, 2], [0, 40, 2]]})
    nested = datasets.Dataset.from_dict({"input_ids": [[[0, 9, 2], [0, 11, 2]], [[0, 3, 2]]]})
    assert used_token_ids(flat, nested) == [0, 2, 3, 5, 7, 9, 11, 40]
    assert used_token_ids(flat.select([0, 1])) == [0, 2, 5, 7]  # indices mapping respected, row 2 excluded
    with pytest.raises(XstiltsError, match="input_ids"):
        used_token_ids(datasets.Dataset.from_dict({"text": ["a"]}))
    with pytest.raises(XstiltsError, match="at least one"):
        used_token_ids()


def test_outputs_unchanged_on_data_and_parameters_drop(parts) -> None:
    tokenizer, encoder, train, dev = parts
    texts = [t for t, _ in TRAIN + DEV]
    before = hidden(encoder, tokenizer, texts)  # padded batch: padding positions must match too
    n_before = sum(p.numel() for p in encoder.parameters())
    positions = encoder.embeddings.position_embeddings
    with trimmed(encoder, used_token_ids(train, dev), tokenizer) as trim:
        assert isinstance(encoder.get_input_embeddings(), TrimmedEmbedding)
        assert encoder.embeddings.position_embeddings is positions
        assert torch.equal(hidden(encoder, tokenizer, texts), before)
        n_trimmed = sum(p.numel() for p in encoder.parameters())
        dim = encoder.config.hidden_size
        assert n_before - n_trimmed == (encoder.config.vocab_size - trim.trimmed.num_embeddings) * dim
        assert trim.trimmed.num_embeddings < encoder.config.vocab_size // 2
    assert type(encoder.get_input_embeddings()) is torch.nn.Embedding
    assert torch.equal(hidden(encoder, tokenizer, texts), before)


def test_out_of_data_token_reads_as_unk(parts) -> None:
    tokenizer, encoder, train, _ = parts
    full_weight = encoder.get_input_embeddings().weight.detach().clone()
    outside = tokenizer.convert_tokens_to_ids("hours")  # in the vocabulary, not in the data
    assert outside not in used_token_ids(train)
    with_unk = hidden(encoder, tokenizer, ["the hotel was <unk>"])
    trim = trim_embeddings(encoder, used_token_ids(train), tokenizer)
    vector = trim.trimmed(torch.tensor([outside]))[0]
    assert torch.equal(vector, full_weight[tokenizer.unk_token_id])
    assert not torch.equal(vector, full_weight[outside])
    assert torch.equal(hidden(encoder, tokenizer, ["the hotel was hours"]), with_unk)
    untrim(trim)
    assert not torch.equal(hidden(encoder, tokenizer, ["the hotel was hours"]), with_unk)


def test_training_updates_only_used_rows_and_untrims(parts, tmp_path) -> None:
    tokenizer, encoder, train, dev = parts
    original = encoder.get_input_embeddings().weight.detach().clone()
    model = MultiTaskModel(encoder, [HeadSpec("toy", "classification", LABELS)])
    cfg = TrainParams(
        tasks=["toy"],
        lr=0.05,
        epochs=3,
        batch_size=2,
        max_length=32,
        warmup_ratio=0.0,
        eval_every=100,
        patience=3,
        precision="fp32",
    )
    used = used_token_ids(train, dev)
    with trimmed(encoder, used, tokenizer) as trim:
        batch = Collator(tokenizer)([train[0], train[1]])
        model("toy", batch["input_ids"], batch["attention_mask"]).sum().backward()
        assert trim.trimmed.weight.grad.shape == (trim.trimmed.num_embeddings, encoder.config.hidden_size)
        assert trim.full.weight.grad is None  # the full matrix is outside the model: no gradient, no optimizer
        assert all(p is not trim.full.weight for p in model.parameters())
        model.zero_grad(set_to_none=True)
        train_task(model, "toy", train, None, Collator(tokenizer), cfg, seed=0)
        trained = trim.trimmed.weight.detach().clone()
        kept = trim.trimmed.kept_ids.clone()
    full = encoder.get_input_embeddings().weight.detach()
    assert torch.equal(full[kept], trained)
    assert not torch.equal(full[used], original[used])  # training moved the used rows
    unused = torch.ones(len(original), dtype=torch.bool)
    unused[kept] = False
    assert unused.any() and torch.equal(full[unused], original[unused])
    encoder.save_pretrained(tmp_path / "saved")
    reloaded = BertModel.from_pretrained(tmp_path / "saved", add_pooling_layer=False).eval()
    encoder.eval()
    texts = [t for t, _ in TRAIN]
    assert torch.equal(hidden(reloaded, tokenizer, texts), hidden(encoder, tokenizer, texts))


def test_frozen_embeddings_stay_frozen(parts) -> None:
    tokenizer, encoder, train, _ = parts
    encoder.get_input_embeddings().weight.requires_grad_(False)
    with trimmed(encoder, used_token_ids(train), tokenizer) as trim:
        assert not trim.trimmed.weight.requires_grad
    assert not encoder.get_input_embeddings().weight.requires_grad


def test_bad_use_fails_clearly(parts) -> None:
    tokenizer, encoder, train, _ = parts
    vocab = encoder.config.vocab_size
    with pytest.raises(XstiltsError, match=r"\[0, \d+\)"):
        trim_embeddings(encoder, [vocab], tokenizer)
    trim = trim_embeddings(encoder, used_token_ids(train), tokenizer)
    with pytest.raises(XstiltsError, match="already trimmed"):
        trim_embeddings(encoder, used_token_ids(train), tokenizer)
    encoder.set_input_embeddings(trim.full)
    with pytest.raises(XstiltsError, match="changed since"):
        untrim(trim)
