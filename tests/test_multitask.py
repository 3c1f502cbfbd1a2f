"""Multi-task intermediate training: the task sampler, gradient accumulation, groups and task lists."""

from __future__ import annotations

import json
from collections import Counter

import datasets
import mlflow
import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModel, AutoTokenizer

from project import write_task
from xstilts.errors import XstiltsError
from xstilts.modeling import HeadSpec, MultiTaskModel, load_model
from xstilts.params import TrainParams
from xstilts.pipeline.phases import run_intermediate, run_target
from xstilts.tasks.base import Family
from xstilts.training.features import Collator, tokenize
from xstilts.training.loop import TaskData, train_tasks
from xstilts.training.sampling import MultiTaskSampler, SamplingConfig, shard, task_probabilities

WORDS = "the hotel was clean and staff were friendly room dirty service terrible doctor very good care".split()


def test_probabilities_by_hand():
    sizes = {"a": 100, "b": 25}
    assert task_probabilities(sizes, SamplingConfig("proportional")) == pytest.approx({"a": 0.8, "b": 0.2})
    # T = 2: weights sqrt(100) = 10 and sqrt(25) = 5
    assert task_probabilities(sizes, SamplingConfig("temperature", 2.0)) == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert task_probabilities(sizes, SamplingConfig("uniform")) == pytest.approx({"a": 0.5, "b": 0.5})
    capped = task_probabilities(sizes, SamplingConfig("proportional", examples_cap=25))
    assert capped == pytest.approx({"a": 0.5, "b": 0.5})
    with pytest.raises(XstiltsError, match="Unknown sampling method"):
        task_probabilities(sizes, SamplingConfig("random"))
    with pytest.raises(XstiltsError, match="none for: b"):
        task_probabilities({"a": 3, "b": 0}, SamplingConfig())


def test_sampler_draws_one_task_per_batch_in_proportion_and_resumes():
    lengths = {"a": [5] * 300, "b": [3, 4, 5] * 33 + [6]}
    sampler = MultiTaskSampler(lengths, 8, seed=1, cfg=SamplingConfig("proportional"))
    assert sampler.batches_per_epoch() == 38 + 13
    drawn = [sampler.next() for _ in range(400)]
    for task, indices in drawn:
        assert 1 <= len(indices) <= 8 and max(indices) < len(lengths[task])
    share = Counter(task for task, _ in drawn)["a"] / len(drawn)
    assert share == pytest.approx(0.75, abs=0.06)
    # every row of a task comes once per pass over it
    first = MultiTaskSampler({"a": [5] * 20}, 8, seed=3, cfg=SamplingConfig())
    assert sorted(i for _ in range(3) for i in first.next()[1]) == list(range(20))
    # the state after some draws continues the exact same sequence in a fresh sampler
    state = sampler.state_dict()
    expected = [sampler.next() for _ in range(60)]
    again = MultiTaskSampler(lengths, 8, seed=99, cfg=SamplingConfig("proportional"))
    again.load_state_dict(state)
    assert [again.next() for _ in range(60)] == expected


def test_shards_cover_the_global_batch():
    assert [shard(range(8), r, 2) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [shard([1, 2, 3], r, 2) for r in range(2)] == [[1, 2], [3]]
    assert [shard([7], r, 2) for r in range(2)] == [[7], [7]]


def equal_length_rows(n: int, seed: int, labels=("a", "b")) -> datasets.Dataset:
    """``n`` classification rows of six words each (one token per word), labels at random."""
    rng = np.random.default_rng(seed)
    return datasets.Dataset.from_list(
        [
            {"id": f"r{i}", "language": "en", "domain": "d", "text_a": " ".join(rng.choice(WORDS, 6)), "text_b": None}
            | {"label": str(rng.choice(labels))}
            for i in range(n)
        ]
    )


def no_dropout_model(encoder_dir, heads: dict[str, tuple[str, ...]]) -> MultiTaskModel:
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(encoder_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return MultiTaskModel(encoder, [HeadSpec(t, "classification", list(lab)) for t, lab in heads.items()], dropout=0.0)


def dropout_model(encoder_dir, heads: dict[str, tuple[str, ...]]) -> MultiTaskModel:
    """The tiny encoder with its own dropout (0.1 in every layer) and 0.1 dropout in the heads."""
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(encoder_dir)
    assert encoder.config.hidden_dropout_prob == encoder.config.attention_probs_dropout_prob == 0.1
    return MultiTaskModel(encoder, [HeadSpec(t, "classification", list(lab)) for t, lab in heads.items()])


def task_data(tokenizer, task: str, n: int, seed: int, labels=("a", "b")) -> TaskData:
    train = tokenize("classification", equal_length_rows(n, seed, labels), tokenizer, labels, 32)
    dev = tokenize("classification", equal_length_rows(8, seed + 100, labels), tokenizer, labels, 32)
    return TaskData(task, train, dev, Collator(tokenizer))


def cfg(**overrides) -> TrainParams:
    values = dict(tasks=["x"], lr=3e-3, epochs=2, batch_size=8, max_length=32, warmup_ratio=0.0, precision="fp32")
    return TrainParams(**{**values, "eval_every": 2, "patience": 100, **overrides})


def test_gradient_accumulation_equals_the_larger_batch(tiny_encoder_dir):
    """bs 4 x 2 accumulation steps and bs 8 see the same rows per optimizer step (equal lengths): same weights."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    results = []
    for batch_size, accumulate in ((8, 1), (4, 2)):
        model = no_dropout_model(tiny_encoder_dir, {"t": ("a", "b")})
        evals = []
        result = train_tasks(
            model,
            [task_data(tokenizer, "t", 16, 0)],
            cfg(batch_size=batch_size, grad_accum=accumulate),
            seed=5,
            on_eval=lambda step, values, evals=evals: evals.append((step, values)),
        )
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        results.append((result, evals, weights))
    (one, evals_one, w_one), (two, evals_two, w_two) = results
    assert one.steps == two.steps == 4
    assert [s for s, _ in evals_one] == [s for s, _ in evals_two] == [2, 4]
    for (_, a), (_, b) in zip(evals_one, evals_two, strict=True):
        assert a["t_train_loss"] == pytest.approx(b["t_train_loss"], abs=1e-5)
    assert torch.allclose(w_one, w_two, atol=1e-5)


def test_two_tasks_share_the_encoder_and_log_per_task(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = no_dropout_model(tiny_encoder_dir, {"x": ("a", "b"), "y": ("p", "q", "r")})
    heads_before = {t: model.heads[t][1].weight.detach().clone() for t in ("x", "y")}
    evals = []
    result = train_tasks(
        model,
        [task_data(tokenizer, "x", 24, 1), task_data(tokenizer, "y", 8, 2, ("p", "q", "r"))],
        cfg(batch_size=4, epochs=3),
        seed=3,
        sampling=SamplingConfig("uniform"),
        on_eval=lambda step, values: evals.append(values),
    )
    assert result.steps == 3 * (6 + 2)
    assert set(result.dev_scores) == {"x", "y"}
    assert result.best_score == pytest.approx(np.mean(list(result.dev_scores.values())))
    assert {"x_dev_accuracy_train_language", "y_dev_accuracy_train_language", "dev_main_metric_mean"} <= set(evals[0])
    assert any("x_train_loss" in v for v in evals) and any("y_train_loss" in v for v in evals)
    for t in ("x", "y"):
        assert not torch.equal(model.heads[t][1].weight, heads_before[t]), f"head {t} never trained"


BROWN = [(["the", "hotel", "was", "clean"], ["DET", "NOUN", "VERB", "ADJ"]), (["staff", "were"], ["NOUN", "VERB"])]
SST = [("the hotel was clean", "positive"), ("the room was dirty", "negative")]


def _write_extra_tasks(root) -> None:
    def common(i, split):
        return {"id": f"{split}{i}", "language": "en", "domain": "d", "source": "fixture"}

    write_task(
        root,
        "brown_pos",
        Family.TAGGING,
        {
            s: [common(i, s) | {"tokens": w, "tags": t} for i, (w, t) in enumerate(BROWN * n)]
            for s, n in (("train", 4), ("dev", 1), ("test", 1))
        },
    )
    write_task(
        root,
        "sst2",
        Family.CLASSIFICATION,
        {
            s: [common(i, s) | {"text_a": a, "text_b": None, "label": lab} for i, (a, lab) in enumerate(SST * n)]
            for s, n in (("train", 4), ("dev", 1), ("test", 1))
        },
    )


def _set_intermediate(root, **values) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["intermediate"].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _last_run(phase: str):
    runs = mlflow.search_runs(
        experiment_names=["xstilts"], filter_string=f"tags.phase = '{phase}'", output_format="list"
    )
    return max(runs, key=lambda r: r.info.start_time)


def test_a_group_trains_together_and_a_target_starts_from_it(project):
    _write_extra_tasks(project)
    _set_intermediate(project, groups={"mix": ["vitaminc", "brown_pos"]}, sampling="temperature", temperature=2.0)
    metrics = run_intermediate("mix")
    assert {"vitaminc_dev_accuracy_en", "brown_pos_test_macro_f1_en", "dev_main_metric_mean"} <= set(metrics)
    folder = project / "models/intermediate/mix"
    _, model, meta = load_model(folder)
    assert meta["intermediate_tasks"] == "vitaminc,brown_pos"
    assert set(model.specs) == {"vitaminc", "brown_pos"}
    run = _last_run("intermediate")
    assert run.data.tags["intermediate_tasks"] == "vitaminc,brown_pos"
    assert {"vitaminc_train_loss", "brown_pos_dev_accuracy_train_language", "dev_main_metric_mean"} <= set(
        run.data.metrics
    )
    assert json.loads((project / "metrics/intermediate/mix.json").read_text())["dev_main_metric_mean"] >= 0
    assert not (project / "checkpoints/intermediate/mix").exists(), "a finished run keeps no checkpoint"
    target = run_target("multiemo", "mix")
    assert "test_accuracy_pl" in target
    assert _last_run("target").data.tags["intermediate_tasks"] == "vitaminc,brown_pos"
    _, target_model, _ = load_model(project / "models/target/multiemo-mix")
    assert set(target_model.specs) == {"multiemo"}


def test_a_comma_list_names_its_folder_with_plus(project):
    _write_extra_tasks(project)
    metrics = run_intermediate("vitaminc,sst2")
    assert {"vitaminc_test_accuracy_en", "sst2_test_accuracy_en"} <= set(metrics)
    assert (project / "models/intermediate/vitaminc+sst2/heads.safetensors").exists()
    assert "test_accuracy_de" in run_target("multiemo", "vitaminc,sst2")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("vitaminc,nope", "Unknown task 'nope'"),
        ("vitaminc,multiemo", "not a intermediate task"),
        ("vitaminc,vitaminc", "names a task twice"),
        ("vitaminc,", "empty name"),
        ("nogroup", "Unknown task 'nogroup'.*or a group \\(mix\\)"),
    ],
)
def test_bad_task_lists_and_groups_fail_clearly(project, spec, message):
    _set_intermediate(project, groups={"mix": ["vitaminc", "sst2"]})
    with pytest.raises(XstiltsError, match=message):
        run_intermediate(spec)
    assert _last_run("intermediate").info.status == "FAILED"


def test_sampler_settings_are_checked(project):
    _set_intermediate(project, sampling="random")
    with pytest.raises(XstiltsError, match="params.yaml: intermediate.sampling"):
        run_intermediate("vitaminc")


def test_per_task_is_read_by_the_folder_name(project):
    """``task=a,b`` and ``task=a+b`` write the same folder, so both read ``per_task["a+b"]``."""
    _write_extra_tasks(project)
    _set_intermediate(project, per_task={"vitaminc+brown_pos": {"lr": 0.0031}})
    for spec in ("vitaminc,brown_pos", "vitaminc+brown_pos"):
        run_intermediate(spec)
        run = _last_run("intermediate")
        assert run.data.params["lr"] == "0.0031"
        assert run.data.tags["model_dir"] == "models/intermediate/vitaminc+brown_pos"
