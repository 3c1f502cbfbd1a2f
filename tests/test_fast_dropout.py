"""The CPU dropout used during training: its masks' rate and reproducibility, its attention path, and the swap."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from xstilts.training import fast_dropout
from xstilts.training.fast_dropout import FastDropout, cpu_dropout, drop, keep_mask


def test_mask_drops_at_the_rate_asked_and_repeats_under_a_seed():
    n = 300_001  # not a multiple of the lanes per draw
    torch.manual_seed(3)
    first = keep_mask(torch.Size([n]), 0.1, torch.device("cpu"))
    torch.manual_seed(3)
    again = keep_mask(torch.Size([n]), 0.1, torch.device("cpu"))
    assert torch.equal(first, again)
    rate = 6554 / 65536
    dropped = int((~first).sum())
    assert abs(dropped - n * rate) < 5 * math.sqrt(n * rate * (1 - rate))  # five standard deviations
    # neighbouring lanes of one draw are independent: pairs of drops occur at rate**2
    pairs = int((~first[0::4][: n // 4] & ~first[1::4][: n // 4]).sum())
    assert abs(pairs - (n // 4) * rate**2) < 5 * math.sqrt((n // 4) * rate**2)
    assert keep_mask(torch.Size([2, 3, 5]), 0.5, torch.device("cpu")).shape == (2, 3, 5)


def test_drop_scales_what_it_keeps_and_passes_gradients_through_the_same_mask():
    x = torch.randn(4, 1000, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x, 0.25)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)
    assert drop(x, 0.25, training=False) is x and drop(x, 0.0) is x


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2))
        self.out = nn.Dropout(0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drop_gives_the_bits_of_x_times_the_scaled_float_mask(dtype):
    """Scaling x and multiplying by the bool mask (no float copy of it) is bit for bit x * (mask * scale)."""
    x = torch.randn(4, 6, 32, 32, dtype=dtype, requires_grad=True)
    upstream = torch.randn(4, 6, 32, 32, dtype=dtype)
    bits = torch.int16 if dtype == torch.bfloat16 else torch.int32
    results = []
    for fast in (True, False):
        torch.manual_seed(5)
        if fast:
            y = drop(x, 0.1)
        else:
            y = x * keep_mask(x.shape, 0.1, x.device).to(dtype).mul_(1.0 / 0.9)
        y.backward(upstream)
        results.append((y.detach().view(bits), x.grad.view(bits).clone()))
        x.grad = None
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_cpu_dropout_swaps_every_dropout_and_the_attention_then_puts_them_back():
    model = _Tiny()
    originals = (model.inner[1], model.out, ALL_ATTENTION_FUNCTIONS["sdpa"])
    with cpu_dropout(model):
        assert isinstance(model.inner[1], FastDropout) and model.inner[1].p == 0.2
        assert isinstance(model.out, FastDropout) and model.out.p == 0.1
        assert ALL_ATTENTION_FUNCTIONS["sdpa"] is not originals[2]
    assert (model.inner[1], model.out, ALL_ATTENTION_FUNCTIONS["sdpa"]) == originals
    with pytest.raises(RuntimeError), cpu_dropout(model):
        raise RuntimeError("a failed run")
    assert (model.inner[1], model.out, ALL_ATTENTION_FUNCTIONS["sdpa"]) == originals


@pytest.mark.parametrize("mask_kind", ["bool", "additive", "none"])
def test_attention_with_dropout_is_sdpa_on_the_kept_probabilities(monkeypatch, mask_kind):
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 6, 8) for _ in range(3))
    allowed = torch.ones(2, 1, 6, 6, dtype=torch.bool)
    allowed[0, :, :, 4:] = False  # the first row's last two keys are padding
    mask = {"bool": allowed, "additive": torch.zeros(2, 1, 6, 6).masked_fill(~allowed, -1e9), "none": None}[mask_kind]
    module = nn.Module()
    module.is_causal = False
    original = ALL_ATTENTION_FUNCTIONS["sdpa"]
    expected, _ = original(module, q, k, v, mask, dropout=0.0, scaling=0.3)
    # every element kept: the output is sdpa's, scaled by 1 / (1 - p)
    monkeypatch.setattr(fast_dropout, "keep_mask", lambda shape, p, device: torch.ones(shape, dtype=torch.bool))
    with cpu_dropout(nn.Module()):
        got, _ = ALL_ATTENTION_FUNCTIONS["sdpa"](module, q, k, v, mask, dropout=0.2, scaling=0.3)
    assert got.shape == expected.shape == (2, 6, 4, 8)
    assert torch.allclose(got, expected / 0.8, atol=1e-5)


def test_causal_attention_is_left_to_sdpa():
    torch.manual_seed(2)
    q, k, v = (torch.randn(1, 2, 5, 4) for _ in range(3))
    module = nn.Module()
    module.is_causal = True
    calls = []
    original = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def spy(*args, **kwargs):
        calls.append(kwargs["dropout"])
        return original(*args, **kwargs)

    ALL_ATTENTION_FUNCTIONS.register("sdpa", spy)
    try:
        with cpu_dropout(nn.Module()):
            ALL_ATTENTION_FUNCTIONS["sdpa"](module, q, k, v, None, dropout=0.1)
    finally:
        ALL_ATTENTION_FUNCTIONS.register("sdpa", original)
    assert calls == [0.1]
