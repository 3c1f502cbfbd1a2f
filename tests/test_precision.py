"""``precision: auto`` picks bf16 where the machine runs it fast, fp32 (or fp16 on CUDA) otherwise; runs record it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import pytest
import torch

from xstilts import hardware
from xstilts.errors import XstiltsError
from xstilts.params import load_params
from xstilts.pipeline.phases import run_intermediate
from xstilts.training import precision
from xstilts.training.precision import Capabilities, choose, resolve

AMX = Capabilities("cpu", cpu_rates={"fp32": 125.0, "bf16": 1800.0})
AVX512_BF16 = Capabilities("cpu", cpu_rates={"fp32": 90.0, "bf16": 400.0})
AVX2 = Capabilities("cpu", cpu_rates={"fp32": 51.0, "bf16": 1.1})
H100 = Capabilities("cuda", cuda_bf16=True)
V100 = Capabilities("cuda", cuda_bf16=False)


@pytest.mark.parametrize(
    ("caps", "expected", "accelerate"),
    [
        (AMX, "bf16", "bf16"),
        (AVX512_BF16, "bf16", "bf16"),
        (AVX2, "fp32", "no"),
        (H100, "bf16", "bf16"),
        (V100, "fp16", "fp16"),  # accelerate scales the loss for fp16
        (Capabilities("mps"), "fp32", "no"),
    ],
)
def test_auto_picks_what_the_machine_runs_fast(caps, expected, accelerate):
    chosen = choose("auto", caps)
    assert (chosen.name, chosen.mixed_precision, chosen.requested) == (expected, accelerate, "auto")
    assert chosen.tags()["precision"] == expected


def test_a_forced_choice_is_kept_and_fp16_needs_cuda():
    assert choose("fp32", AMX).name == "fp32"
    assert choose("bf16", AVX2).name == "bf16"
    assert choose("fp16", V100).name == "fp16"
    with pytest.raises(XstiltsError, match="fp16 needs a CUDA device"):
        choose("fp16", AVX2)
    with pytest.raises(XstiltsError, match="Unknown precision 'fp8'"):
        choose("fp8", AMX)


def test_forced_bf16_on_a_slow_cpu_warns_once_with_the_ratio(monkeypatch, capsys):
    monkeypatch.setattr(precision, "detect", lambda device: AVX2)
    monkeypatch.setattr(precision, "_warned", set())
    assert resolve("bf16").name == "bf16"
    assert resolve("bf16").name == "bf16"
    assert resolve("auto").name == "fp32"
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "0.022x its fp32 rate (1.1 vs 51 GFLOP/s)" in lines[0] and "auto would pick fp32" in lines[0]


def test_forced_bf16_on_a_fast_cpu_says_nothing(monkeypatch, capsys):
    monkeypatch.setattr(precision, "detect", lambda device: AMX)
    monkeypatch.setattr(precision, "_warned", set())
    assert resolve("bf16").name == "bf16"
    assert capsys.readouterr().err == ""


def test_the_cpu_probe_is_cached_per_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    hardware.cpu_rates.cache_clear()
    try:
        rates = hardware.cpu_rates()
        assert set(rates) == {"fp32", "bf16"} and min(rates.values()) > 0
        cache = tmp_path / "xstilts" / "cpu-matmul-rates.json"
        (key,) = json.loads(cache.read_text())
        cache.write_text(json.dumps({key: {"fp32": 1.0, "bf16": 2.0}}))  # what an earlier process measured
        hardware.cpu_rates.cache_clear()
        precision._shared_cpu_rates.cache_clear()
        assert hardware.cpu_rates() == {"fp32": 1.0, "bf16": 2.0}  # read back, not probed again
        assert choose("auto", precision.detect("cpu")).name == "bf16"
    finally:
        hardware.cpu_rates.cache_clear()
        precision._shared_cpu_rates.cache_clear()


def test_torch_gets_every_usable_core(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    try:
        torch.set_num_threads(1)
        assert hardware.use_all_cores() == len(os.sched_getaffinity(0))
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * len(os.sched_getaffinity(0))))  # more processes than cores
        assert hardware.use_all_cores() == 1
    finally:
        torch.set_num_threads(before)


def _last_run(phase: str):
    runs = mlflow.search_runs(
        experiment_names=["xstilts"], filter_string=f"tags.phase = '{phase}'", output_format="list"
    )
    return max(runs, key=lambda r: r.info.start_time)


def test_a_run_records_what_auto_became_and_the_machine(project):
    params = load_params()
    params = params.model_copy(update={"intermediate": params.intermediate.model_copy(update={"precision": "auto"})})
    run_intermediate("vitaminc", params=params)
    expected = resolve("auto").name  # bf16 or fp32, whichever this machine runs faster
    run = _last_run("intermediate")
    assert run.data.params["precision"] == "auto"  # what params.yaml (and so dvc.lock) holds
    tags = run.data.tags
    assert (tags["precision"], tags["precision_requested"]) == (expected, "auto")
    assert tags["machine_cpu"] == hardware.cpu_model()
    assert tags["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert int(tags["torch_threads"]) == torch.get_num_threads() >= 1
    saved = json.loads((project / "metrics/intermediate/vitaminc.json").read_text())
    assert saved["precision"] == expected
    assert saved["machine"] == hardware.machine() and hardware.cpu_model() in saved["machine"]  # the study's key


@pytest.mark.parametrize(
    ("env", "first", "expected_env", "recorded"),
    [
        ({}, "xstilts", hardware.SPIN_COUNT, f"GOMP_SPINCOUNT={hardware.SPIN_COUNT}"),
        ({"GOMP_SPINCOUNT": "300000"}, "xstilts", "300000", "GOMP_SPINCOUNT=300000"),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, "xstilts", "None", "OMP_WAIT_POLICY=PASSIVE"),
        ({}, "torch", "None", "libgomp default (torch was loaded before xstilts)"),
    ],
)
def test_openmp_threads_spin_briefly_unless_the_user_says_otherwise(env, first, expected_env, recorded):
    """A fresh interpreter: importing xstilts first sets a short OpenMP spin (a user's setting wins) and records what
    torch's threads run with; torch loaded first keeps libgomp's default, and the record says so."""
    code = (
        f"import {first}, os, xstilts\nfrom xstilts import hardware\n"
        "print(os.environ.get('GOMP_SPINCOUNT'), hardware.describe()['openmp_wait'], sep='|')"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{expected_env}|{recorded}"
