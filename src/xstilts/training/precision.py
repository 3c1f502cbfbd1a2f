"""Which precision a run trains and evaluates in: ``precision: auto`` picks what the machine runs fastest.

* CUDA: bf16 autocast where the device supports it, else fp16 autocast with loss scaling (``accelerate``'s
  ``GradScaler``).
* CPU: bf16 autocast where this CPU multiplies bf16 matrices faster than fp32 (AMX, AVX-512 BF16: measured by
  :func:`xstilts.hardware.cpu_rates`, a 0.2 s probe cached per machine), else fp32. "Supported" is not "fast": an
  AVX2-only CPU runs bf16 autocast, emulated, tens of times slower than fp32.
* Other devices (Apple's MPS): fp32.

``bf16``, ``fp16`` and ``fp32`` force a choice; a forced bf16 that this machine runs slowly says so once, with the
measured ratio, and goes on. fp16 needs a CUDA device.
"""

from __future__ import annotations

import functools
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

import torch

from xstilts import hardware
from xstilts.errors import XstiltsError
from xstilts.progress import process_state

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # what each name runs in


@dataclass(frozen=True)
class Capabilities:
    """What the choice depends on: the device type, CUDA's bf16 support, the CPU's bf16/fp32 matmul rates."""

    device: str  # "cpu", "cuda", "mps", ...
    cuda_bf16: bool = False
    cpu_rates: dict[str, float] | None = None  # GFLOP/s per precision ("fp32", "bf16"); CPU only

    @property
    def bf16_speedup(self) -> float | None:
        """bf16 over fp32 matmul rate on this CPU (None off the CPU)."""
        if not self.cpu_rates:
            return None
        return self.cpu_rates["bf16"] / self.cpu_rates["fp32"]


@dataclass(frozen=True)
class Precision:
    name: Literal["bf16", "fp16", "fp32"]  # what runs
    requested: str  # what params.yaml asked for
    reason: str  # why, in a few words (logged with the run)

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    @property
    def mixed_precision(self) -> str:
        """The ``accelerate.Accelerator`` setting: ``bf16``, ``fp16`` (with loss scaling) or ``no``."""
        return "no" if self.name == "fp32" else self.name

    def autocast(self, device_type: str) -> AbstractContextManager:
        """Autocast to this precision on ``device_type`` (a no-op for fp32)."""
        return torch.autocast(device_type, dtype=self.dtype, enabled=self.name != "fp32")

    def tags(self) -> dict[str, str]:
        return {"precision": self.name, "precision_requested": self.requested, "precision_reason": self.reason}


FP32 = Precision("fp32", "fp32", "forced in params.yaml")


def choose(requested: str, caps: Capabilities) -> Precision:
    """The precision for ``requested`` on a machine with ``caps`` (pure: tests fake ``caps``)."""
    speedup = caps.bf16_speedup
    if requested == "fp16" and caps.device != "cuda":
        raise XstiltsError(f"precision fp16 needs a CUDA device, not {caps.device}; set precision: auto, bf16 or fp32.")
    if requested in ("bf16", "fp16", "fp32"):
        return Precision(requested, requested, "forced in params.yaml")  # type: ignore[arg-type]
    if requested != "auto":
        raise XstiltsError(f"Unknown precision {requested!r}; use auto, bf16, fp16 or fp32.")
    if caps.device == "cuda":
        if caps.cuda_bf16:
            return Precision("bf16", "auto", "CUDA device with bf16")
        return Precision("fp16", "auto", "CUDA device without bf16: fp16 with loss scaling")
    if caps.device == "cpu" and speedup is not None:
        if speedup >= 1.0:
            return Precision("bf16", "auto", f"CPU bf16 matmul {speedup:.2g}x fp32")
        return Precision("fp32", "auto", f"CPU bf16 matmul only {speedup:.2g}x fp32")
    return Precision("fp32", "auto", f"no fast bf16 known on {caps.device}")


def detect(device: torch.device | str) -> Capabilities:
    """This machine's :class:`Capabilities` for ``device`` (the CPU probe is cached per machine)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return Capabilities("cuda", cuda_bf16=torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return Capabilities("cpu", cpu_rates=_shared_cpu_rates())
    return Capabilities(kind)


@functools.cache
def _shared_cpu_rates() -> dict[str, float]:
    """The CPU probe, run by the main process first: under DDP the others read its cached result, so every process
    of a run decides alike (the first call is one that every process makes: planning or the loop's start)."""
    with process_state().main_process_first():
        return hardware.cpu_rates()


_warned: set[str] = set()


def resolve(requested: str, device: torch.device | str = "cpu") -> Precision:
    """:func:`choose` on this machine; a forced bf16 on a CPU where it is slower than fp32 warns once per process."""
    caps = detect(device)
    chosen = choose(requested, caps)
    speedup = caps.bf16_speedup
    if chosen.name == "bf16" and speedup is not None and speedup < 1.0 and caps.device not in _warned:
        _warned.add(caps.device)
        rates = caps.cpu_rates or {}
        print(
            f"xstilts: precision bf16 is forced, but this CPU ({hardware.cpu_model()}) multiplies bf16 matrices at "
            f"{speedup:.2g}x its fp32 rate ({rates['bf16']:g} vs {rates['fp32']:g} GFLOP/s): training will be "
            "slow; precision: auto would pick fp32.",
            file=sys.stderr,
            flush=True,
        )
    return chosen
