"""Saved encoders: the embedding matrix in a shard of its own, linked (stored once) while it is unchanged."""

from __future__ import annotations

import torch
from transformers import AutoModel

from xstilts.encoder.loading import load_encoder
from xstilts.encoder.weights import BODY_FILE, EMBEDDINGS_FILE, INDEX_FILE, save_encoder
from xstilts.modeling import HeadSpec, MultiTaskModel, load_model, save_model


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_saved_tokenizer_does_not_depend_on_its_last_call(tiny_encoder_dir, tmp_path):
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    model = MultiTaskModel(encoder, [HeadSpec("t", "classification", ["a", "b"])])
    fresh = save_model(model, tokenizer, tmp_path / "fresh") / "encoder" / "tokenizer.json"
    tokenizer(["a few words", "more"], truncation=True, max_length=8, padding=True)  # training tokenizes like this
    used = save_model(model, tokenizer, tmp_path / "used") / "encoder" / "tokenizer.json"
    assert used.read_bytes() == fresh.read_bytes()
    assert tokenizer(["a few words and more"], truncation=True, max_length=4)["input_ids"][0].__len__() == 4


def test_a_saved_encoder_loads_standalone_and_shares_an_unchanged_matrix(tiny_encoder_dir, tmp_path):
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))
    base = tmp_path / "base"
    save_encoder(encoder, base)
    assert {BODY_FILE, EMBEDDINGS_FILE, INDEX_FILE, "config.json"} <= {p.name for p in base.iterdir()}
    assert _states_equal(AutoModel.from_pretrained(base, add_pooling_layer=False), encoder)

    model = MultiTaskModel(encoder, [HeadSpec("t", "classification", ["a", "b"])])
    same = save_model(model, tokenizer, tmp_path / "same", base=base) / "encoder"
    assert (same / EMBEDDINGS_FILE).stat().st_ino == (base / EMBEDDINGS_FILE).stat().st_ino  # one file on disk
    again = save_model(model, tokenizer, tmp_path / "again") / "encoder"  # no base: written, byte-identical
    assert (again / EMBEDDINGS_FILE).read_bytes() == (base / EMBEDDINGS_FILE).read_bytes()
    assert (again / BODY_FILE).read_bytes() == (same / BODY_FILE).read_bytes()

    with torch.no_grad():
        encoder.get_input_embeddings().weight[5] += 1.0  # trained embeddings: a shard of its own
    changed = save_model(model, tokenizer, tmp_path / "changed", base=base)
    assert (changed / "encoder" / EMBEDDINGS_FILE).stat().st_ino != (base / EMBEDDINGS_FILE).stat().st_ino
    _, reloaded, _ = load_model(changed)
    assert _states_equal(reloaded.encoder, encoder)
    assert not torch.equal(
        reloaded.encoder.get_input_embeddings().weight, load_model(same.parent)[1].encoder.get_input_embeddings().weight
    )
