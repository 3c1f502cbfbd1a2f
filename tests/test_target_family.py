"""A target family: targets that share their English training data train once, are evaluated on each."""

from __future__ import annotations

import json

import mlflow
import pytest

from project import write_task
from xstilts.modeling import load_model
from xstilts.pipeline.phases import run_target
from xstilts.pipeline.promote import run_promote
from xstilts.tasks.base import Family

SENTENCES = [(["the", "hotel", "was", "clean"], ["DET", "NOUN", "VERB", "ADJ"]), (["staff", "were"], ["NOUN", "VERB"])]


def _rows(language: str, split: str, n: int) -> list[dict]:
    common = {"language": language, "domain": "d", "source": "fixture"}
    return [{"id": f"{split}{i}", **common, "tokens": w, "tags": t} for i, (w, t) in enumerate(SENTENCES * n)]


@pytest.fixture
def pos_family(project):
    write_task(project, "brown_pos", Family.TAGGING, {s: _rows("en", s, n) for s, n in (("train", 4), ("dev", 1))})
    for task, language in (("pos_tr", "tr"), ("pos_he", "he")):
        write_task(project, task, Family.TAGGING, {s: _rows(language, s, 1) for s in ("dev", "test")})
    return project


def _target_runs() -> list:
    return mlflow.search_runs(experiment_names=["xstilts"], filter_string="tags.phase = 'target'", output_format="list")


def test_one_training_is_evaluated_on_every_target_of_the_family(pos_family):
    run_target("pos_tr,pos_he", "none")
    _, model, meta = load_model(pos_family / "models/target/brown_pos-none")
    assert set(model.specs) == {"brown_pos"} and meta["evaluated_on"] == ["pos_tr", "pos_he"]
    files = {t: json.loads((pos_family / f"metrics/target/{t}-none.json").read_text()) for t in ("pos_tr", "pos_he")}
    assert "test_accuracy_tr" in files["pos_tr"] and "test_accuracy_he" in files["pos_he"]
    assert files["pos_tr"]["train_steps"] == files["pos_he"]["train_steps"]  # one training
    assert {"machine", "precision", "compile"} <= set(files["pos_he"])
    for task in ("pos_tr", "pos_he"):
        assert (pos_family / f"predictions/target/{task}-none.csv").stat().st_size > 0
    runs = {r.data.tags["task"]: r for r in _target_runs()}
    assert set(runs) == {"pos_tr,pos_he", "pos_tr", "pos_he"}  # the training and a nested run per target
    parent = runs["pos_tr,pos_he"].info.run_id
    for task in ("pos_tr", "pos_he"):
        child = runs[task]
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert child.data.tags["model_dir"] == "models/target/brown_pos-none"
        assert child.data.metrics[f"test_accuracy_{task[-2:]}"] == files[task][f"test_accuracy_{task[-2:]}"]
    promoted = {r.target: r for r in run_promote(["pos_tr", "pos_he"])}  # a champion per target, one head serves it
    assert promoted["pos_he"].promoted and promoted["pos_he"].run_id == runs["pos_he"].info.run_id

    before = files["pos_tr"]
    assert run_target("pos_tr", "none")["test_accuracy_tr"] == before["test_accuracy_tr"]  # a one-language subset


def test_targets_of_different_families_do_not_train_together(pos_family):
    with pytest.raises(Exception, match="train on different English data"):
        run_target("pos_tr,multiemo", "none")
    failed = [r for r in _target_runs() if r.info.status == "FAILED"]
    assert len(failed) == 1 and "different English data" in failed[0].data.tags["failure_reason"]
