"""Each MLflow entry point, called as a function on tiny fixtures with a tiny model."""

from __future__ import annotations

import json

import mlflow
import pytest

from xstilts.digest import fingerprint
from xstilts.pipeline.phases import run_intermediate, run_target
from xstilts.pipeline.retrieve import run_retrieve


def _last_run(phase: str):
    runs = mlflow.search_runs(
        experiment_names=["xstilts"], filter_string=f"tags.phase = '{phase}'", output_format="list"
    )
    return max(runs, key=lambda r: r.info.start_time)


def test_intermediate_logs_metrics_tags_and_artifacts(project):
    metrics = run_intermediate("vitaminc")
    assert 0.0 <= metrics["dev_accuracy_en"] <= 1.0
    assert (project / "models/intermediate/vitaminc/encoder/config.json").exists()
    saved = json.loads((project / "metrics/intermediate/vitaminc.json").read_text())
    assert saved["test_accuracy_en"] == pytest.approx(metrics["test_accuracy_en"])
    run = _last_run("intermediate")
    assert run.info.status == "FINISHED"
    assert run.data.tags["intermediate_tasks"] == "vitaminc"
    assert run.data.tags["seed"] == "13"
    assert run.data.params["lr"] == "0.001"
    assert "vitaminc_train_loss" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"predictions", "vitaminc.json"} <= artifacts
    assert "model" not in artifacts  # the model stays in DVC's cache; MLflow holds registered models only
    assert run.data.tags["model_dir"] == "models/intermediate/vitaminc"
    assert run.data.tags["model_fingerprint"] == fingerprint(project / "models/intermediate/vitaminc")
    assert run.info.run_name == "intermediate vitaminc"
    assert _inputs(run) == {"vitaminc train": "training", "vitaminc dev": "evaluation", "vitaminc test": "evaluation"}
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs table


def _inputs(run) -> dict[str, str]:
    """The run's datasets: name -> context."""
    return {
        i.dataset.name: next(t.value for t in i.tags if t.key == "mlflow.data.context")
        for i in run.inputs.dataset_inputs
    }


def test_target_reports_every_language_and_is_reproducible(project):
    first = run_target("multiemo", "none")
    assert {"test_accuracy_en", "test_accuracy_de", "test_accuracy_pl", "dev_accuracy_zeroshot"} <= set(first)
    zero_shot = (first["dev_accuracy_de"] + first["dev_accuracy_pl"]) / 2
    assert first["dev_accuracy_zeroshot"] == pytest.approx(zero_shot)
    second = run_target("multiemo", "none")
    for key in first:
        if "accuracy" in key:
            assert second[key] == pytest.approx(first[key]), key
    run = _last_run("target")
    assert run.data.tags["task"] == "multiemo"
    assert run.data.tags["intermediate_tasks"] == "none"
    assert run.info.run_name == "target multiemo <- none"
    assert _inputs(run) == {"multiemo train": "training", "multiemo dev": "evaluation", "multiemo test": "evaluation"}
    assert run.data.tags["model_dir"] == "models/target/multiemo-none"
    # the trivial baseline beside it: train's majority class, scored on each language's test rows
    from collections import Counter

    import pyarrow.parquet as pq

    prepared = project / "data/prepared/multiemo"
    train = Counter(r["label"] for r in pq.read_table(prepared / "train.parquet").to_pylist())
    majority = min(train, key=lambda k: (-train[k], k))
    test = pq.read_table(prepared / "test.parquet").to_pylist()
    for lang in ("en", "de", "pl"):
        gold = [r["label"] for r in test if r["language"] == lang]
        assert first[f"test_baseline_accuracy_{lang}"] == pytest.approx(gold.count(majority) / len(gold)), lang


def test_target_from_intermediate_is_tagged_with_it(project):
    """That its encoder is the intermediate one, bit for bit: tests/test_claims.py."""
    run_intermediate("vitaminc")
    metrics = run_target("multiemo", "vitaminc")
    assert "test_accuracy_pl" in metrics
    assert _last_run("target").data.tags["intermediate_tasks"] == "vitaminc"


def test_a_seeded_run_trains_with_its_seed_from_the_model_of_that_seed(project):
    """study.seeds: each run of a seed is named by it, trains with it, and starts from the same seed's model."""
    from xstilts.errors import XstiltsError

    run_intermediate("vitaminc", seed=5)
    assert _last_run("intermediate").data.tags["seed"] == "5"
    assert _last_run("intermediate").info.run_name == "intermediate vitaminc s5"
    assert (project / "models/intermediate/vitaminc-s5/encoder/config.json").exists()
    assert not (project / "models/intermediate/vitaminc").exists()
    seeded = run_target("multiemo", "vitaminc", seed=5)
    run = _last_run("target")
    assert run.data.tags["model_dir"] == "models/target/multiemo-vitaminc-s5" and run.data.tags["seed"] == "5"
    assert run.info.run_name == "target multiemo <- vitaminc s5"
    assert (project / "plots/target/multiemo-vitaminc-s5.json").exists()
    meta = json.loads((project / "models/target/multiemo-vitaminc-s5/xstilts.json").read_text())
    assert meta["seed"] == 5
    with pytest.raises(XstiltsError, match=r"No intermediate model for 'vitaminc' at .*vitaminc-s6; .*-P run_seed=6"):
        run_target("multiemo", "vitaminc", seed=6)
    with pytest.raises(XstiltsError, match="the same for every seed"):
        run_retrieve("udhr", "none", seed=5)
    unseeded = run_target("multiemo", "none")
    assert seeded["dev_accuracy_en"] >= 0 and "dev_accuracy_en" in unseeded


def test_retrieve_finds_translations(project, tiny_encoder_dir):
    """Top-1 accuracy per language equals a count made here with plain transformers and numpy."""
    import numpy as np
    import pyarrow.parquet as pq

    from tiny import mean_pooled

    metrics = run_retrieve("udhr", "none")
    run = _last_run("retrieve")
    assert run.info.run_name == "retrieve udhr <- none"
    assert _inputs(run) == {"udhr dev": "evaluation", "udhr test": "evaluation"}  # no train rows: none logged
    rows = pq.read_table(project / "data/prepared/udhr/test.parquet").to_pylist()

    def vectors(texts: list[str]) -> np.ndarray:
        return mean_pooled(tiny_encoder_dir, texts)

    english = sorted({r["en_text"] for r in rows})
    pool = vectors(english)
    for lang in ("de", "pl"):
        mine = [r for r in rows if r["language"] == lang]
        found = (vectors([r["text"] for r in mine]) @ pool.T).argmax(1)
        expected = np.mean([english[j] == r["en_text"] for j, r in zip(found, mine, strict=True)])
        assert metrics[f"test_accuracy_{lang}"] == pytest.approx(expected, abs=1e-9), lang
    assert metrics["test_accuracy_zeroshot"] == pytest.approx(
        (metrics["test_accuracy_de"] + metrics["test_accuracy_pl"]) / 2
    )


def _set_params(project, update) -> None:
    import yaml

    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    update(params)
    path.write_text(yaml.safe_dump(params))


def test_per_task_overrides_reach_the_run(project):
    _set_params(project, lambda p: p["target"].update(per_task={"multiemo": {"epochs": 1, "lr": 0.002}}))
    run_target("multiemo", "none")
    params = _last_run("target").data.params
    assert params["epochs"] == "1.0" and params["lr"] == "0.002"


def test_entry_points_take_params_without_a_params_file(project):
    """``run_*(..., params=)`` runs with the given settings (as lightning-hydra's ``train(cfg)``), not the file's."""
    from xstilts.params import load_params

    given = load_params()
    given = given.model_copy(update={"target": given.target.model_copy(update={"lr": 0.0042})})
    (project / "params.yaml").unlink()  # nothing to read: the settings can only come from the argument
    run_target("multiemo", "none", params=given)
    assert _last_run("target").data.params["lr"] == "0.0042"
    run_retrieve("udhr", "none", params=given)
    assert _last_run("retrieve").info.status == "FINISHED"


def test_per_task_override_with_a_bad_value_fails_the_run(project):
    from xstilts.errors import XstiltsError

    _set_params(project, lambda p: p["target"].update(per_task={"multiemo": {"epochs": -1}}))
    with pytest.raises(XstiltsError, match="per_task.multiemo"):
        run_target("multiemo", "none")
    assert _last_run("target").info.status == "FAILED"


def test_trimmed_training_saves_a_full_encoder(project):
    """With trim_embeddings the run trains the used rows only; the saved encoder has every row again."""
    from transformers import AutoModel

    _set_params(project, lambda p: p["target"].update(trim_embeddings=True, freeze_embeddings=False))
    before = AutoModel.from_pretrained(_encoder(project))
    run_target("multiemo", "none")
    after = AutoModel.from_pretrained(str(project / "models/target/multiemo-none/encoder"))
    old, new = before.get_input_embeddings().weight, after.get_input_embeddings().weight
    assert old.shape == new.shape
    changed = (old != new).any(dim=1)
    assert 0 < int(changed.sum()) < old.shape[0]  # the rows the data uses moved, the others did not


def _encoder(project) -> str:
    import yaml

    return yaml.safe_load((project / "params.yaml").read_text())["model"]["name"]
