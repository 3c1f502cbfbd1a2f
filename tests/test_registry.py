"""Promotion to the model registry: champion alias, strict improvement, no-ops, listing and clear errors."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from xstilts.digest import fingerprint
from xstilts.encoder.loading import load_encoder
from xstilts.errors import XstiltsError
from xstilts.modeling import HeadSpec, MultiTaskModel, save_model
from xstilts.registry import champions, format_champions, promote
from xstilts.tracking import configure

LABELS = ["negative", "neutral", "positive", "ambivalent"]
METRIC = "dev_accuracy_zeroshot"


def build_model_dir(
    encoder_dir: Path, out_dir: Path, task: str = "multiemo", family: str = "classification", labels=LABELS, **extra
) -> Path:
    tokenizer, encoder = load_encoder(str(encoder_dir))
    model = MultiTaskModel(encoder, [HeadSpec(task, family, list(labels))])
    return save_model(model, tokenizer, out_dir, extra={"max_length": 32, **extra})


SETTING = {"model": "tiny-bert", "data_source": "offline", "profile": "default"}


def fake_target_run(
    model_dir: Path,
    value: float | None,
    task: str = "multiemo",
    status: str = "FINISHED",
    log_model: bool = True,
    metric: str = METRIC,
    phase: str = "target",
    **setting: str,
) -> str:
    """A target-phase run as the pipeline leaves it: tags, the zero-shot metric, its model folder and fingerprint."""
    with mlflow.start_run(experiment_id=configure()) as run:
        tags = {"phase": phase, "task": task, "intermediate_tasks": "xnli_en,paws_en", "seed": "13"}
        mlflow.set_tags({**tags, **SETTING, **setting})
        if phase == "retrieve":  # what run_retrieve logs of its settings
            mlflow.log_params({"layer": -1, "max_length": 32})
        if value is not None:
            mlflow.log_metric(metric, value)
        if log_model:  # what the target phase leaves: the model folder and the fingerprint of its files
            mlflow.set_tags({"model_dir": str(model_dir), "model_fingerprint": fingerprint(model_dir)})
    if status != "FINISHED":
        MlflowClient().set_terminated(run.info.run_id, status=status)
    return run.info.run_id


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir, tmp_path_factory) -> Path:
    return build_model_dir(tiny_encoder_dir, tmp_path_factory.mktemp("target") / "model")


def test_promotion_lifecycle(store, model_dir):
    client = MlflowClient()
    first = fake_target_run(model_dir, 0.50)
    fake_target_run(model_dir, 0.60, status="FAILED")  # failed runs never count
    fake_target_run(model_dir, 0.90, log_model=False)  # nor runs without a model
    fake_target_run(model_dir, 0.95, task="xnli")  # nor other targets

    result = promote("multiemo")
    assert (result.promoted, result.version, result.run_id, result.previous_value) == (True, 1, first, None)
    assert result.registered_name == "xstilts-multiemo" and result.metric_value == pytest.approx(0.5)
    champion = client.get_model_version_by_alias("xstilts-multiemo", "champion")
    assert champion.version in (1, "1")
    assert champion.tags["source_run"] == first
    assert champion.tags["metric"] == METRIC and float(champion.tags["metric_value"]) == pytest.approx(0.5)
    assert champion.tags["intermediate_tasks"] == "xnli_en,paws_en"
    assert (champion.tags["data_source"], champion.tags["model"]) == ("offline", "tiny-bert")

    # the same best run again: nothing happens
    again = promote("multiemo")
    assert not again.promoted and again.version == 1 and "already the champion" in again.reason

    # a worse (and an equal) run while the champion's run is gone from the candidates: not strictly better
    client.delete_run(first)
    fake_target_run(model_dir, 0.40)
    tie = fake_target_run(model_dir, 0.50)
    worse = promote("multiemo")
    assert (worse.promoted, worse.version, worse.run_id) == (False, 1, tie)
    assert worse.previous_value == pytest.approx(0.5)
    assert len(client.search_model_versions("name = 'xstilts-multiemo'")) == 1

    # a better run is registered as version 2 and takes the alias
    better = fake_target_run(model_dir, 0.70)
    result = promote("multiemo")
    assert (result.promoted, result.version, result.run_id) == (True, 2, better)
    assert result.previous_value == pytest.approx(0.5)
    assert client.get_model_version_by_alias("xstilts-multiemo", "champion").tags["source_run"] == better
    assert not promote("multiemo").promoted

    rows = champions()
    assert [(r["target"], r["version"], r["metric"], r["source_run"]) for r in rows] == [
        ("multiemo", 2, METRIC, better)
    ]
    assert rows[0]["metric_value"] == pytest.approx(0.7) and rows[0]["intermediate_tasks"] == "xnli_en,paws_en"
    table = format_champions(rows)
    assert "multiemo" in table and "0.7000" in table and better in table


def test_a_run_whose_model_was_overwritten_is_no_candidate(store, tiny_encoder_dir, tmp_path):
    client = MlflowClient()
    folder = build_model_dir(tiny_encoder_dir, tmp_path / "model")
    stale = fake_target_run(folder, 0.90)
    tokenizer, encoder = load_encoder(str(tiny_encoder_dir))  # the same stage trains again into the same folder
    save_model(MultiTaskModel(encoder, [HeadSpec("multiemo", "classification", LABELS)]), tokenizer, folder, {})
    fresh = fake_target_run(folder, 0.50)
    result = promote("multiemo")
    assert (result.promoted, result.run_id) == (True, fresh)  # 0.90 was another model, gone from disk
    # a pyfunc LoggedModel, linked to the run and its metrics, is logged when promoted...
    (output,) = client.get_run(fresh).outputs.model_outputs
    served = client.get_logged_model(output.model_id)
    assert served.source_run_id == fresh and [m.key for m in served.metrics] == [METRIC]
    assert "mlflow.model.isExternal" not in served.tags  # the servable copy, not the DVC-backed record
    assert client.get_run(stale).outputs.model_outputs == []  # ...and never for a run that was not
    assert client.list_artifacts(fresh) == []  # no copy among the run's artifacts


def test_no_candidates(store, model_dir):
    assert champions() == []
    assert "No champions" in format_champions([])
    with pytest.raises(XstiltsError, match=r"No finished target runs for multiemo .*-e target -P task=multiemo"):
        promote("multiemo")
    fake_target_run(model_dir, None)  # finished, but without the metric
    with pytest.raises(XstiltsError, match="No finished target runs"):
        promote("multiemo")


def test_runs_compete_only_within_their_setting(store, model_dir):
    hub = fake_target_run(model_dir, 0.99, data_source="hub")  # scored on another dev set
    fake_target_run(model_dir, 0.98, model="xlm-roberta-large")
    fake_target_run(model_dir, 0.97, profile="paper")
    ours = fake_target_run(model_dir, 0.50)
    result = promote("multiemo", METRIC, SETTING)
    assert (result.promoted, result.run_id) == (True, ours)
    champion = MlflowClient().get_model_version_by_alias("xstilts-multiemo", "champion")
    assert champion.tags["profile"] == "default"
    # the hub runs' own promotion may not compare its 0.99 with an offline champion
    with pytest.raises(XstiltsError, match=r"comes from another setting \(data_source 'offline'; these runs: "):
        promote("multiemo", METRIC, {**SETTING, "data_source": "hub"})
    assert MlflowClient().get_model_version_by_alias("xstilts-multiemo", "champion").tags["source_run"] == ours
    assert hub != ours


def test_a_champion_without_the_metric_is_never_replaced_silently(store, model_dir):
    first = fake_target_run(model_dir, 0.50)
    promote("multiemo")
    fake_target_run(model_dir, 0.9, metric="dev_f1_zeroshot")  # the champion's run has no dev_f1_zeroshot
    with pytest.raises(XstiltsError, match=r"has no dev_f1_zeroshot .* chosen by \(dev_accuracy_zeroshot\)"):
        promote("multiemo", "dev_f1_zeroshot")
    champion = MlflowClient().get_model_version_by_alias("xstilts-multiemo", "champion")
    assert champion.tags["source_run"] == first and champion.version in (1, "1")


def test_unreachable_registry(monkeypatch):
    uri = "http://127.0.0.1:9"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "")
    try:
        for call in (lambda: promote("multiemo"), champions):
            started = time.time()
            with pytest.raises(XstiltsError, match=r"at http://127\.0\.0\.1:9 failed") as info:
                call()
            assert time.time() - started < 10
            assert "\n" not in str(info.value)
    finally:
        mlflow.set_tracking_uri(None)
