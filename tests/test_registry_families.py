"""A champion per family (classification, multiple choice, QA, tagging, retrieval) on its own main metric; the
registered versions' descriptions and data tags; every trained model as an external LoggedModel."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from test_registry import LABELS, build_model_dir, fake_target_run
from xstilts.digest import fingerprint
from xstilts.logged_models import record_trained_model
from xstilts.registry import champions, format_champions, main_metric, promote
from xstilts.tasks import Role, get_task
from xstilts.tracking import configure

POS_LABELS = list(get_task("pos_tr", Role.TARGET).labels)
# task, family, head labels (None: retrieval, the encoder itself), phase, the metric its family promotes on
FAMILIES = [
    ("multiemo", "classification", LABELS, "target", "dev_accuracy_zeroshot"),
    ("parsinlu_mc", "multiple_choice", [], "target", "dev_accuracy_zeroshot"),
    ("parsinlu_rc", "extractive_qa", [], "target", "dev_f1_zeroshot"),
    ("pos_tr", "tagging", POS_LABELS, "target", "dev_accuracy_zeroshot"),
    ("udhr", "bitext", None, "retrieve", "dev_accuracy_zeroshot"),
]


def family_model(encoder_dir: Path, folder: Path, task: str, family: str, labels) -> Path:
    if labels is None:
        return encoder_dir  # a retrieval run serves the encoder it scored with
    return build_model_dir(encoder_dir, folder, task, family, labels)


@pytest.mark.parametrize(("task", "family", "labels", "phase", "metric"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_family_promotes_on_its_own_metric(store, tiny_encoder_dir, tmp_path, task, family, labels, phase, metric):
    role = Role.RETRIEVAL if phase == "retrieve" else Role.TARGET
    assert main_metric(get_task(task, role)) == metric
    folder = family_model(tiny_encoder_dir, tmp_path / "model", task, family, labels)
    run = lambda value: fake_target_run(folder, value, task=task, metric=metric, phase=phase)  # noqa: E731
    fake_target_run(folder, 0.99, task=task, metric="dev_other_zeroshot", phase=phase)  # another metric: ignored
    first = run(0.50)
    result = promote(task, phase=phase)
    assert (result.promoted, result.version, result.run_id, result.metric) == (True, 1, first, metric)
    tie, worse = run(0.50), run(0.40)
    kept = promote(task, phase=phase)  # the champion's run is still the best (and ties keep it)
    assert (kept.promoted, kept.version) == (False, 1) and kept.run_id == first and tie != worse
    MlflowClient().delete_run(first)
    kept = promote(task, phase=phase)  # now the tie is the best run: equal is not better
    assert (kept.promoted, kept.version, kept.run_id, kept.previous_value) == (False, 1, tie, 0.5)
    better = run(0.70)
    result = promote(task, phase=phase)
    assert (result.promoted, result.version, result.run_id) == (True, 2, better)

    client = MlflowClient()
    name = f"xstilts-{task}"
    version = client.get_model_version_by_alias(name, "champion")
    assert version.tags["metric"] == metric and version.tags["family"] == family and version.tags["phase"] == phase
    assert version.tags["data_md5." + task] == "no dvc.lock"
    assert f"init xnli_en,paws_en (intermediate tasks), {metric}=0.7000" in version.description
    assert (
        task in client.get_registered_model(name).description
        and metric in client.get_registered_model(name).description
    )
    (row,) = champions()
    assert (row["target"], row["family"], row["metric"], row["source_run"]) == (task, family, metric, better)
    assert family in format_champions([row]) and "0.7000" in format_champions([row])


def test_data_versions_come_from_dvc_lock(store, tiny_encoder_dir, tmp_path):
    lock = {
        "schema": "2.0",
        "stages": {
            "prepare@parsinlu_rc": {"outs": [{"path": "data/prepared/parsinlu_rc", "md5": "aaa.dir"}]},
            "prepare@squadshifts": {"outs": [{"path": "data/prepared/squadshifts", "md5": "bbb.dir"}]},
        },
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))  # the store fixture's root is tmp_path
    folder = build_model_dir(tiny_encoder_dir, tmp_path / "qa", "parsinlu_rc", "extractive_qa", [])
    fake_target_run(folder, 0.3, task="parsinlu_rc", metric="dev_f1_zeroshot")
    promote("parsinlu_rc")
    version = MlflowClient().get_model_version_by_alias("xstilts-parsinlu_rc", "champion")
    # the target's own data and the English data it trains on (train_from)
    assert (version.tags["data_md5.parsinlu_rc"], version.tags["data_md5.squadshifts"]) == ("aaa.dir", "bbb.dir")
    assert "parsinlu_rc aaa.dir, squadshifts bbb.dir" in version.description


def test_retrieval_without_dev_promotes_on_test(store, tiny_encoder_dir):
    """Tatoeba-style tasks log only test metrics: their runs compete on the test metric, named in the tags."""
    fake_target_run(tiny_encoder_dir, 0.4, task="udhr", metric="test_accuracy_zeroshot", phase="retrieve")
    result = promote("udhr", phase="retrieve")
    assert result.promoted and result.metric == "test_accuracy_zeroshot"
    version = MlflowClient().get_model_version_by_alias("xstilts-udhr", "champion")
    assert version.tags["metric"] == "test_accuracy_zeroshot"


def test_trained_models_are_external_logged_models(store, tiny_encoder_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    folder = build_model_dir(tiny_encoder_dir, tmp_path / "models" / "target" / "multiemo-none")
    with mlflow.start_run(experiment_id=configure()) as run:
        model_id = record_trained_model(folder, "target", "multiemo-none")
        mlflow.log_metrics({"dev_accuracy_zeroshot": 0.5, "test_accuracy_de": 0.25}, model_id=model_id)
    client = MlflowClient()
    model = client.get_logged_model(model_id)
    assert model.tags["mlflow.model.isExternal"] == "true" and model.model_type == "xstilts-target"
    assert model.name == "multiemo-none" and model.source_run_id == run.info.run_id
    assert model.params == {"model_dir": "models/target/multiemo-none", "model_fingerprint": fingerprint(folder)}
    assert {m.key: m.value for m in model.metrics} == {"dev_accuracy_zeroshot": 0.5, "test_accuracy_de": 0.25}
    stored = client.get_run(run.info.run_id)
    assert stored.data.tags["model_dir"] == "models/target/multiemo-none"
    assert stored.data.metrics == {"dev_accuracy_zeroshot": 0.5, "test_accuracy_de": 0.25}
    assert [o.model_id for o in stored.outputs.model_outputs] == [model_id]
    assert client.list_artifacts(run.info.run_id) == []  # nothing of the folder copied into MLflow's store
