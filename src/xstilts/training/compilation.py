"""Whether a training run compiles its model (``torch.compile``, inductor): ``compile: auto`` measures first.

Compiling fuses the elementwise work between the matmuls (GELU, dropout, layer norm, softmax, residual adds) but
costs a compilation before the first step (about 100 s for multilingual-e5-small's training step on 2 cores of an
Intel Xeon with AMX, where the compiled step was also 12% *slower* than eager: benchmarks/README.md). So:

* ``auto``: a probe, run once per machine, model shape and precision and cached in ``~/.cache/xstilts``, times one
  encoder layer of the model's shape (``nn.TransformerEncoderLayer``, forward and backward, in the run's precision)
  eagerly and compiled, and how long compiling it took. The run compiles only when the probe's compiled layer is
  at least 5% faster *and* the run's steps save more than compiling costs (both scaled to the model's layers).
* ``on`` / ``off`` force it.

Only training is compiled (evaluation runs eagerly: a no-grad graph would be a second compilation). A compiled
run draws its dropout masks with inductor's generator, not :mod:`xstilts.training.fast_dropout`'s, so its bits
differ from an eager run's. Inductor's CPU kernels accumulate some gradients (the embeddings') with atomic adds
across threads, whose order varies: a compiled run therefore trains under ``torch.use_deterministic_algorithms``
(:func:`reproducible`), and then its reruns on the same machine give the same bits (tested). The choice is
recorded on the run (tags ``compile``, ``compile_reason``) and in its metrics file.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from xstilts import hardware
from xstilts.training.precision import Precision

MIN_SPEEDUP = 1.05  # a compiled probe step must be this much faster than eager to be worth compiling
PROBE_ROWS, PROBE_LENGTH, PROBE_REPEATS = 16, 128, 5


@dataclass(frozen=True)
class Probe:
    """One encoder layer's training step (seconds), eager and compiled, and the seconds compiling it took."""

    eager: float
    compiled: float
    compile_seconds: float

    @property
    def speedup(self) -> float:
        return self.eager / self.compiled


@dataclass(frozen=True)
class Compilation:
    enabled: bool
    requested: str
    reason: str

    def tags(self) -> dict[str, str]:
        state = "on" if self.enabled else "off"
        return {"compile": state, "compile_requested": self.requested, "compile_reason": self.reason}


def choose(requested: str, probe: Probe | None, steps: int, layers: int) -> Compilation:
    """The choice for ``requested`` given this machine's ``probe`` and a run of ``steps`` optimizer steps (pure)."""
    if requested in ("on", "off"):
        return Compilation(requested == "on", requested, "forced in params.yaml")
    if probe is None:
        return Compilation(False, requested, "no probe on this device")
    if probe.speedup < MIN_SPEEDUP:
        return Compilation(False, requested, f"compiled layer step {probe.speedup:.2f}x eager on this machine")
    saves = steps * layers * (probe.eager - probe.compiled)
    costs = layers * probe.compile_seconds
    if saves <= costs:
        return Compilation(False, requested, f"{steps} steps would save ~{saves:.0f} s; compiling costs ~{costs:.0f} s")
    return Compilation(True, requested, f"compiled layer step {probe.speedup:.2f}x eager; saves ~{saves - costs:.0f} s")


@dataclass(frozen=True)
class Shape:
    """An encoder layer's sizes: hidden, feed-forward, attention heads."""

    hidden: int
    ffn: int
    heads: int

    @classmethod
    def of(cls, config) -> Shape:
        return cls(config.hidden_size, config.intermediate_size, config.num_attention_heads)


def measure(shape: Shape, precision: Precision, device: torch.device) -> Probe:
    """Time one layer of ``shape`` training eagerly and compiled (the RNG state is left as found)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(
            shape.hidden, shape.heads, shape.ffn, dropout=0.1, activation="gelu", batch_first=True
        )
        layer = layer.to(device).train()
        x = torch.randn(PROBE_ROWS, PROBE_LENGTH, shape.hidden, device=device, requires_grad=True)

        def step(module) -> None:
            with precision.autocast(device.type):
                out = module(x)
            out.float().sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()

        def timed(module) -> float:
            step(module)  # warm-up
            started = time.perf_counter()
            for _ in range(PROBE_REPEATS):
                step(module)
            return (time.perf_counter() - started) / PROBE_REPEATS

        eager = timed(layer)
        compiled = torch.compile(layer, dynamic=True)
        started = time.perf_counter()
        step(compiled)
        compile_seconds = time.perf_counter() - started
        return Probe(eager, timed(compiled), compile_seconds)


PROBES_FILE = "compile-probes.json"


@functools.cache
def probe(shape: Shape, precision: Precision, device_type: str) -> Probe:
    """:func:`measure`, once per machine, shape and precision (cached on disk like the matmul probe)."""
    where = hardware.gpu_name() if device_type == "cuda" else hardware.machine_key()
    key = f"{where}|{shape.hidden}x{shape.ffn}x{shape.heads}|{precision.name}"
    cached = hardware.read_cache(PROBES_FILE).get(key)
    if isinstance(cached, dict):
        return Probe(**cached)
    result = measure(shape, precision, torch.device(device_type))
    hardware.write_cache(PROBES_FILE, key, asdict(result))
    return result


@contextmanager
def reproducible(compiled: bool) -> Iterator[None]:
    """Deterministic algorithms while a compiled run trains (without them its last bits vary between reruns)."""
    before = torch.are_deterministic_algorithms_enabled()
    if compiled:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def resolve(requested: str, config, precision: Precision, device: torch.device, steps: int) -> Compilation:
    """:func:`choose` for a model with ``config`` on this machine, probing only when ``requested`` is ``auto``."""
    layers = config.num_hidden_layers
    if requested != "auto" or device.type not in ("cpu", "cuda"):
        return choose(requested, None, steps, layers)
    return choose(requested, probe(Shape.of(config), precision, device.type), steps, layers)
