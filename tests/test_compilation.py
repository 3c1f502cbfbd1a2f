"""``compile``: the choice from a probe (pure), the probe's per-machine cache, and a compiled training run."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from test_multitask import cfg, dropout_model, task_data
from xstilts import hardware
from xstilts.training import compilation
from xstilts.training.compilation import Probe, Shape, choose
from xstilts.training.loop import train_tasks
from xstilts.training.precision import FP32

FASTER = Probe(eager=0.5, compiled=0.25, compile_seconds=25.0)  # saves 0.25 s per layer-step
SLOWER = Probe(eager=0.13, compiled=0.14, compile_seconds=22.0)  # what the AMX Xeon measured


def test_auto_compiles_only_where_the_probe_is_faster_and_the_run_pays_for_it():
    assert not choose("auto", SLOWER, steps=100_000, layers=12).enabled
    assert "0.93x eager" in choose("auto", SLOWER, steps=100_000, layers=12).reason
    short = choose("auto", FASTER, steps=100, layers=4)  # saves 100 * 4 * 0.25 = 100 s, costs 4 * 25 s
    assert not short.enabled and "100 steps would save ~100 s; compiling costs ~100 s" in short.reason
    assert choose("auto", FASTER, steps=101, layers=4).enabled
    assert not choose("auto", None, steps=10**6, layers=12).enabled  # nothing measured: eager


@pytest.mark.parametrize("forced", ["on", "off"])
def test_on_and_off_are_forced_without_a_probe(forced):
    chosen = choose(forced, None, steps=1, layers=1)
    assert chosen.enabled == (forced == "on")
    assert chosen.tags() == {"compile": forced, "compile_requested": forced, "compile_reason": "forced in params.yaml"}


def test_the_probe_is_measured_once_per_machine_and_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    compilation.probe.cache_clear()
    calls = []

    def fake(shape, precision, device):
        calls.append(shape)
        return Probe(1.0, 0.5, 3.0)

    monkeypatch.setattr(compilation, "measure", fake)
    shape = Shape(hidden=32, ffn=64, heads=2)
    try:
        assert compilation.probe(shape, FP32, "cpu") == Probe(1.0, 0.5, 3.0)
        compilation.probe.cache_clear()  # a new process: read back from the file
        assert compilation.probe(shape, FP32, "cpu") == Probe(1.0, 0.5, 3.0)
        assert calls == [shape]
        assert any(hardware.machine_key() in key for key in hardware.read_cache(compilation.PROBES_FILE))
        compilation.probe(Shape(hidden=64, ffn=64, heads=2), FP32, "cpu")
        assert len(calls) == 2
    finally:
        compilation.probe.cache_clear()


@pytest.mark.slow
def test_a_compiled_run_trains_and_gives_the_same_bits_twice(tiny_encoder_dir):
    """compile: on (with dropout, which inductor draws itself): the loss falls and a rerun is bit-identical."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    runs = []
    for _ in range(2):
        torch._dynamo.reset()
        model = dropout_model(tiny_encoder_dir, {"t": ("a", "b")})
        evals = []
        result = train_tasks(
            model,
            [task_data(tokenizer, "t", 32, 0)],
            cfg(compile="on", epochs=3),
            seed=5,
            on_eval=lambda step, values, evals=evals: evals.append(values["t_train_loss"]),
        )
        assert result.compilation is not None and result.compilation.enabled
        runs.append((evals, torch.cat([p.detach().flatten() for p in model.parameters()])))
    (losses, weights), (losses_again, weights_again) = runs
    assert losses[-1] < losses[0]
    assert losses == losses_again and torch.equal(weights, weights_again)
