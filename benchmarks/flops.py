"""The machine's matmul rate on an encoder's own shapes, and the FLOPs one training step of that encoder does.

FLOPs of the trained body (a BERT-style encoder; embeddings and head excluded: a lookup and a tiny matmul):
per layer and per token of a batch padded to ``length`` tokens, the forward pass multiplies

* 4 x ``hidden x hidden`` (query, key, value, attention output): ``2 * 4 * hidden**2``;
* ``hidden x ffn`` and ``ffn x hidden`` (the feed-forward block): ``2 * 2 * hidden * ffn``;
* scores ``Q K^T`` and ``softmax(.) V`` over the ``length`` positions: ``2 * 2 * length * hidden``;

and training does three times the forward FLOPs (the backward pass computes the gradients of the inputs and
of the weights, each as many FLOPs as the forward pass; embeddings are trained, so layer 0 needs both too).
Layer norms, GELU, softmax and dropout are not counted: they are bandwidth-bound and no FLOP-rate yardstick
applies to them, which is exactly why a step reaches only part of the matmul rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    ffn: int

    @classmethod
    def of(cls, config) -> Shape:
        return cls(config.num_hidden_layers, config.hidden_size, config.intermediate_size)

    def forward_flops(self, tokens: int, length: int) -> float:
        """Forward FLOPs of ``tokens`` tokens in sequences of ``length`` (see the module docstring)."""
        h, f = self.hidden, self.ffn
        per_token = 2 * 4 * h * h + 2 * 2 * h * f + 2 * 2 * length * h
        return float(self.layers * tokens * per_token)

    def train_flops(self, tokens: int, length: int) -> float:
        return 3 * self.forward_flops(tokens, length)

    def forward_matmuls(self, tokens: int) -> list[tuple[int, int, int, int, int]]:
        """(batch, m, k, n, how many per layer) of the forward pass's weight matmuls of ``tokens`` rows."""
        h, f = self.hidden, self.ffn
        return [(1, tokens, h, h, 4), (1, tokens, h, f, 1), (1, tokens, f, h, 1)]

    def training_matmuls(self, rows: int, length: int, heads: int) -> list[tuple[int, int, int, int, int]]:
        """Every matmul of one layer's training step, forward and backward, for ``rows`` sequences of ``length``.

        A forward ``X[m, k] @ W[k, n]`` comes back in the backward pass as ``dY[m, n] @ W^T[n, k]`` (the input's
        gradient) and ``X^T[k, m] @ dY[m, n]`` (the weight's); attention's two batched products per head (scores
        and their weighted sum of values) each have two such partners too.
        """
        out = []
        for _, m, k, n, count in self.forward_matmuls(rows * length):
            out += [(1, m, k, n, count), (1, m, n, k, count), (1, k, m, n, count)]
        d = self.hidden // heads
        scores, values = (rows * heads, length, d, length), (rows * heads, length, length, d)
        for b, m, k, n in (scores, values):
            out += [(b, m, k, n, 1), (b, m, n, k, 1), (b, k, m, n, 1)]
        return out


def matmul_rate(matmuls: list[tuple[int, int, int, int, int]], dtype: torch.dtype, repeats: int = 5) -> float:
    """The best of ``repeats`` timings of ``torch.matmul`` over the mix ``matmuls`` (b, m, k, n, count), in FLOP/s.

    Each shape runs twice untimed, then ``count`` x 3 times per repeat; a repeat's rate is the mix's FLOPs over
    its time. The best repeat is the machine's rate (the others lost time to something else on the machine).
    """
    pairs = [(torch.randn(b, m, k, dtype=dtype), torch.randn(b, k, n, dtype=dtype)) for b, m, k, n, _ in matmuls]
    pairs = [(a[0], w[0]) if a.shape[0] == 1 else (a, w) for a, w in pairs]  # plain mm where there is no batch
    for a, w in pairs:
        for _ in range(2):
            a @ w
    flops = sum(count * 2.0 * b * m * k * n for b, m, k, n, count in matmuls)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for (a, w), (*_, count) in zip(pairs, matmuls, strict=True):
            for _ in range(3 * count):
                a @ w
        best = max(best, 3 * flops / (time.perf_counter() - started))
    return best


class CountingCollator:
    """Wraps a collator and sums what its batches cost: padded tokens and the body's training FLOPs."""

    def __init__(self, collator, shape: Shape) -> None:
        self.collator, self.shape = collator, shape
        self.padded_tokens, self.flops = 0, 0.0

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.collator(rows)
        ids = batch["input_ids"]
        self.padded_tokens += ids.numel()
        self.flops += self.shape.train_flops(ids.numel(), ids.shape[-1])
        return batch


# torch.profiler op names -> where a training step's time goes
KINDS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear"),
    "dropout masks": ("aten::random_", "aten::bernoulli_", "aten::ge", "aten::native_dropout"),
    "dtype casts and copies": ("aten::copy_", "aten::_to_copy", "aten::to"),
    "optimizer": ("aten::lerp_", "aten::addcdiv_", "aten::addcmul_", "aten::sqrt", "aten::_foreach"),
}


def time_by_kind(profile) -> dict[str, float]:
    """Self CPU seconds of a ``torch.profiler`` run by kind of op (:data:`KINDS`; the rest is "other ops")."""
    out = dict.fromkeys([*KINDS, "other ops"], 0.0)
    for event in profile.key_averages():
        kind = next((k for k, names in KINDS.items() if event.key.startswith(names)), "other ops")
        out[kind] += event.self_cpu_time_total / 1e6
    return out
