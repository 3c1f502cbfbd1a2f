"""The prepared data a run read, as MLflow datasets: digest from dvc.lock when it describes the folder."""

from __future__ import annotations

import json

import mlflow
import yaml

from xstilts.digest import fingerprint
from xstilts.lineage import EVALUATION, TRAINING, dvc_md5, log_prepared_inputs, prepared_inputs

READS = [("multiemo", "train", TRAINING), ("multiemo", "dev", EVALUATION), ("udhr", "train", TRAINING)]


def _write_lock(project, md5: str) -> None:
    stage = {
        "cmd": "python -m xstilts prepare --task multiemo",
        "outs": [{"path": "data/prepared/multiemo", "md5": md5}],
    }
    (project / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"prepare-multiemo": stage}}))


def _logged(reads) -> list:
    with mlflow.start_run() as run:
        log_prepared_inputs(prepared_inputs(reads))
    return mlflow.get_run(run.info.run_id).inputs.dataset_inputs


def test_each_split_read_is_a_dataset_with_its_languages_rows_and_context(project, store):
    folder = project / "data/prepared/multiemo"
    train, dev = _logged(READS)  # udhr has no train rows: nothing read, nothing logged
    assert [train.dataset.name, dev.dataset.name] == ["multiemo train", "multiemo dev"]
    assert [t.value for t in train.tags] == [TRAINING] and [t.value for t in dev.tags] == [EVALUATION]
    profile = json.loads(dev.dataset.profile)
    assert profile["task"] == "multiemo" and profile["split"] == "dev"
    assert profile["languages"] == ["de", "en", "pl"] and profile["rows"] > 0
    assert json.loads(train.dataset.profile)["languages"] == ["en"]
    assert json.loads(dev.dataset.source) == {"uri": str(folder / "dev.parquet")}  # where it is, not a copy
    # no dvc.lock: xstilts' own fingerprint, and the profile says so
    assert profile["digest"] == fingerprint(folder) and dev.dataset.digest == fingerprint(folder)[:10]
    assert "xstilts fingerprint" in profile["digest_of"] and "dvc.lock does not list it" in profile["digest_of"]


def test_the_digest_is_dvc_locks_hash_when_it_describes_the_folder(project, store):
    folder = project / "data/prepared/multiemo"
    md5 = dvc_md5(folder)
    assert md5.endswith(".dir") and len(md5) == 36
    _write_lock(project, md5)
    (train, _) = _logged(READS[:2])
    assert train.dataset.digest == md5[:10] and json.loads(train.dataset.profile)["digest"] == md5.removesuffix(".dir")
    assert json.loads(train.dataset.profile)["digest_of"] == "DVC md5 of data/prepared/multiemo in dvc.lock"

    # a dvc.lock of other files (the folder changed since): not its digest
    _write_lock(project, "0" * 32 + ".dir")
    (train,) = _logged(READS[:1])
    profile = json.loads(train.dataset.profile)
    assert train.dataset.digest == fingerprint(folder)[:10]
    assert f"dvc.lock's md5 {'0' * 32}.dir is of other files" in profile["digest_of"]
