"""Two claims the study rests on: a run starts from the intermediate model's encoder, and the weights kept are
those of the best dev evaluation (early stopping fires after ``patience`` evaluations without a gain)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from test_families import _cfg, _dataset, _model, classification_rows
from xstilts.encoder.loading import load_bare_encoder
from xstilts.families import Family
from xstilts.pipeline import retrieve as pipeline_retrieve
from xstilts.pipeline import train_and_evaluate as pipeline_training
from xstilts.pipeline.phases import run_intermediate, run_target
from xstilts.pipeline.retrieve import run_retrieve
from xstilts.training import loop
from xstilts.training.evaluation import evaluate
from xstilts.training.features import Collator, tokenize
from xstilts.training.precision import FP32


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_target_and_retrieval_start_from_the_intermediate_encoder_bit_for_bit(project, monkeypatch, tiny_encoder_dir):
    run_intermediate("vitaminc")
    intermediate = _weights(load_bare_encoder(project / "models/intermediate/vitaminc/encoder"))
    base = _weights(load_bare_encoder(tiny_encoder_dir))
    assert not _same(intermediate, base)  # training moved the encoder, so the comparison below can tell them apart

    started: dict[str, dict[str, torch.Tensor]] = {}
    real_train, real_retrieve = pipeline_training.train_tasks, pipeline_retrieve.retrieve

    def train_spy(model, *args, **kwargs):
        started["target"] = _weights(model.encoder)
        return real_train(model, *args, **kwargs)

    def retrieve_spy(family, dev, test, embedder):
        started["retrieve"] = _weights(embedder.encoder)
        return real_retrieve(family, dev, test, embedder)

    monkeypatch.setattr(pipeline_training, "train_tasks", train_spy)
    monkeypatch.setattr(pipeline_retrieve, "retrieve", retrieve_spy)
    run_target("multiemo", "vitaminc")
    run_retrieve("udhr", "vitaminc")
    assert _same(started["target"], intermediate)
    assert _same(started["retrieve"], intermediate)
    run_target("multiemo", "none")  # init=none: the base encoder itself
    assert _same(started["target"], base)


def test_the_best_evaluation_is_kept_and_patience_stops_the_run(monkeypatch, tiny_encoder_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    labels = ("negative", "positive")
    examples = _dataset(classification_rows(16), Family.CLASSIFICATION)
    dev_examples = _dataset(classification_rows(8), Family.CLASSIFICATION)
    features = tokenize("classification", examples, tokenizer, labels, 32)
    dev = tokenize("classification", dev_examples, tokenizer, labels, 32)
    collator = Collator(tokenizer, "classification")
    model = _model(tiny_encoder_dir, "t", "classification", labels)

    # The selection sees a scripted score curve that peaks at the second evaluation; the real dev accuracy of
    # the weights at each evaluation is recorded alongside, to check what the kept weights really score.
    scripted = iter([0.5, 0.9, 0.6, 0.7, 0.4, 0.3, 0.2, 0.1])
    seen: list[tuple[int, float, dict[str, torch.Tensor]]] = []
    real_scores = loop._Loop.dev_scores

    def dev_scores(self):
        accuracy = real_scores(self)["t"]
        seen.append((self.step, accuracy, _weights(self.unwrapped)))
        return {"t": next(scripted)}

    monkeypatch.setattr(loop._Loop, "dev_scores", dev_scores)
    result = loop.train_task(model, "t", features, dev, collator, _cfg(eval_every=2, epochs=6, patience=3), seed=1)
    steps = [step for step, _, _ in seen]
    assert result.best_step == steps[1] and result.best_dev_score == 0.9
    # patience 3: the 3rd, 4th and 5th evaluations bring no gain over 0.9, so the run stops at the 5th
    assert result.stopped_early and result.steps == steps[-1] == steps[4] and len(seen) == 5
    assert result.steps < 6 * 16 // 4  # it did stop before the planned 24 steps
    assert _same(_weights(model), seen[1][2]) and not _same(_weights(model), seen[-1][2])
    kept = evaluate(model, "t", dev_examples, dev, collator, 8, FP32).score()["accuracy"]
    assert kept == pytest.approx(seen[1][1], abs=0) and not np.isnan(kept)
