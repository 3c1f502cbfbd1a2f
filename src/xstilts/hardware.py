"""The machine a run lands on: what it is (recorded on every run), how many threads torch gets, and how fast it
multiplies matrices in each precision (a short probe, cached per machine).

Machines differ: a CPU with AMX or AVX-512 BF16 multiplies bf16 matrices 2-15 times faster than fp32, an
AVX2-only CPU 40-70 times slower (it emulates bf16). :mod:`xstilts.training.precision` decides from these
rates; this module only measures and describes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PROBE_SHAPE = (256, 384, 1536)  # rows x hidden @ hidden x ffn: one feed-forward matmul of a small encoder
PROBE_SECONDS = 0.1  # per precision, after one warm-up product
RATES_FILE = "cpu-matmul-rates.json"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


# How long torch's OpenMP threads spin at a barrier before they sleep. With libgomp's default (300,000 spins),
# while a niced program in another login session held one core of two, the training step slowed 9.8x: the thread
# that shares the busy core burns its scheduler share spinning, then misses its turn at the next op. Fewer spins
# trade a little idle speed for a busy machine (benchmarks/README.md#a-busy-machine measures 3,000 to 30,000).
SPIN_COUNT = "5000"
_openmp_wait = "libgomp default"


def quiet_openmp() -> None:
    """Set the OpenMP spin count before torch loads its OpenMP runtime (which reads it once): the package calls this
    on import. A user's own ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` wins; after torch is loaded it is too late,
    and :func:`describe` says so."""
    global _openmp_wait
    chosen = {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if k in os.environ}
    if chosen:
        _openmp_wait = ", ".join(f"{k}={v}" for k, v in chosen.items())
    elif "torch" in sys.modules:
        _openmp_wait = "libgomp default (torch was loaded before xstilts)"
    else:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
        _openmp_wait = f"GOMP_SPINCOUNT={SPIN_COUNT}"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which cgroups and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def use_all_cores() -> int:
    """Give torch every core this process may use (divided among the processes of one machine under DDP), and
    keep the tokenizers' own thread pool from fighting it; returns torch's thread count."""
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    threads = max(1, usable_cores() // max(1, local))
    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def gpu_name() -> str | None:
    """``<count> x <name>`` of the visible CUDA devices, None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    count = torch.cuda.device_count()
    return f"{count} x {torch.cuda.get_device_name(0)}"


def describe() -> dict[str, str]:
    """The machine as MLflow tags: CPU model, usable cores, torch's threads and CPU capability, the GPUs."""
    import torch

    tags = {
        "machine_cpu": cpu_model(),
        "machine_cores": str(usable_cores()),
        "torch_threads": str(torch.get_num_threads()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "openmp_wait": _openmp_wait,
    }
    if gpu := gpu_name():
        tags["machine_gpu"] = gpu
    return tags


def machine() -> str:
    """What a result depends on beyond its inputs, as metrics files record it: the CPU model and the kernels torch
    uses on it (``get_cpu_capability()``), and the GPUs: ``Intel(R) Xeon(R) Processor (AVX512)``."""
    import torch

    gpu = gpu_name()
    return f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})" + (f", {gpu}" if gpu else "")


def summary() -> str:
    """One line naming the machine, for logs and timing summaries."""
    tags = describe()
    line = f"{tags['machine_cpu']} ({tags['cpu_capability']}, {tags['machine_cores']} cores"
    line += f", torch {tags['torch_threads']} threads, OpenMP {tags['openmp_wait']})"
    return line + (f", {tags['machine_gpu']}" if "machine_gpu" in tags else "")


def matmul_rate(dtype: torch.dtype, seconds: float = PROBE_SECONDS) -> float:
    """GFLOP/s of ``torch.matmul`` in ``dtype`` on the CPU over :data:`PROBE_SHAPE` (at least one product)."""
    import torch

    m, k, n = PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=generator).to(dtype)
    b = torch.randn(k, n, generator=generator).to(dtype)
    torch.matmul(a, b)  # warm-up: kernel selection, allocation
    count, started = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return 2 * m * k * n * count / elapsed / 1e9


def machine_key() -> str:
    """What the CPU probe's result depends on: the CPU, the kernels torch may use, the thread count."""
    import torch

    parts = [
        cpu_model(),
        platform.machine(),
        torch.__version__,
        torch.backends.cpu.get_cpu_capability(),
        os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        str(torch.get_num_threads()),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where per-machine probe results live: ``$XDG_CACHE_HOME/xstilts`` (``~/.cache/xstilts``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xstilts"


def read_cache(name: str) -> dict:
    """The JSON object in ``cache_dir() / name`` ({} when missing or unreadable)."""
    try:
        found = json.loads((cache_dir() / name).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_cache(name: str, key: str, value) -> None:
    """Set ``key`` in ``cache_dir() / name`` (atomically; a read-only home only means probing again next time)."""
    cached = read_cache(name)
    cached[key] = value
    path = cache_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


@functools.cache
def cpu_rates() -> dict[str, float]:
    """This CPU's fp32 and bf16 matmul GFLOP/s, probed once (about 0.2 s) and cached per machine in
    ``~/.cache/xstilts`` (``$XDG_CACHE_HOME``), so every run on the machine decides alike."""
    import torch

    key = machine_key()
    cached = read_cache(RATES_FILE).get(key)
    if isinstance(cached, dict):
        return cached
    rates = {name: round(matmul_rate(dtype), 1) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    write_cache(RATES_FILE, key, rates)
    return rates
