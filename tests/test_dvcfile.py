"""dvc.yaml is written from params.yaml: each stage depends on exactly the data, model, params and code it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from xstilts.errors import XstiltsError
from xstilts.params import Params, load_params
from xstilts.pipeline.code import source_files, write_fingerprints
from xstilts.pipeline.dvcfile import build_stages, check_pipeline, render, write_pipeline

REPO = Path(__file__).resolve().parents[1]
DESIGN = ["vitaminc", "squadshifts", "all"]  # NLI + extractive QA (writing dvc.yaml reads no data)


def design_params() -> Params:
    """params.yaml with the study design of NLI and QA members and a MultiEmo target (stages of every kind)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["tasks"] = ["vitaminc", "squadshifts", "multiemo", "udhr"]
    raw["intermediate"].update(
        tasks=DESIGN,
        groups={"all": DESIGN[:2]},
        per_task={"squadshifts": {"max_length": 256}, "all": {"examples_cap": 1000}},
    )
    raw["tune"]["tasks"] = DESIGN
    raw["target"].update(tasks=["multiemo"], inits=["none", *DESIGN])
    raw["retrieve"]["encoders"] = ["none", *DESIGN]
    return Params.model_validate(raw)


@pytest.fixture
def stages(monkeypatch) -> dict[str, dict]:
    monkeypatch.setenv("XSTILTS_ROOT", str(REPO))
    return {name: stage for section in build_stages(design_params()).values() for name, stage in section.items()}


def test_the_committed_dvc_yaml_is_the_one_params_yaml_asks_for(monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(REPO))
    assert (REPO / "dvc.yaml").read_text() == render(load_params(REPO / "params.yaml")), "run `xstilts pipeline`"
    parsed = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(parsed)[:4] == ["code", "fetch", "extract", "encoder"] and list(parsed)[-2:] == ["promote", "report"]


def test_a_group_reads_its_members_only(stages):
    group = stages["intermediate-all"]
    data = [d for d in group["deps"] if not d.startswith("reports/code/")]
    members = ("vitaminc", "squadshifts")
    expected = [p for m in members for p in (f"data/prepared/{m}", f"reports/validation/{m}.json")]
    assert data == [*expected, "models/multilingual-e5-small", "tuning/all.yaml"]  # tune.tasks holds all
    assert "intermediate.groups.all" in group["params"] and "intermediate.per_task.all" in group["params"]
    assert "intermediate.sampling" in group["params"]
    alone = stages["intermediate-squadshifts"]["params"]
    assert "intermediate.per_task.squadshifts" in alone and "intermediate.per_task.all" not in alone
    assert "intermediate.sampling" not in alone  # a single task never reads the sampler's settings
    assert not any(p.endswith((".tasks", ".inits")) or p == "intermediate" for p in alone)


def test_a_tune_stage_reads_what_its_study_depends_on(stages):
    """tune-<spec>: the members' data, the encoder, the tuning code; the space, budget, seed and the phase-2
    settings (trial 0); never tune.tasks or tune.storage. Its result is the intermediate stage's dependency."""
    tune = stages["tune-all"]
    assert tune["cmd"] == "python -m xstilts run tune -P task=all"
    assert tune["deps"][-1] == "reports/code/tuning.json" and "models/multilingual-e5-small" in tune["deps"]
    assert tune["outs"] == ["tuning/all.yaml"]  # cached: a fan-out node hands it back through the run cache
    params = tune["params"]
    assert {"seed", "tune.lr", "tune.epochs", "tune.n_trials", "tune.train_rows", "intermediate.lr"} <= set(params)
    assert {"intermediate.groups.all", "intermediate.per_task.all", "intermediate.sampling"} <= set(params)
    assert not {"tune.tasks", "tune.storage", "tune.grid"} & set(params)
    assert "tuning/squadshifts.yaml" in stages["intermediate-squadshifts"]["deps"]


def test_a_target_reads_its_own_and_its_train_from_data_and_one_init(monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(REPO))
    params = design_params()
    params.target.tasks.append("parsinlu_rc")
    params.target.per_task["parsinlu_rc"] = {"max_length": 256}
    stages = {name: stage for section in build_stages(params).values() for name, stage in section.items()}
    none, qa = stages["target-squadshifts-none"], stages["target-squadshifts-squadshifts"]
    data = ["data/prepared/parsinlu_rc", "reports/validation/parsinlu_rc.json"]
    data += ["data/prepared/squadshifts", "reports/validation/squadshifts.json"]  # train_from
    assert [d for d in none["deps"] if not d.startswith("reports/code/")] == [*data, "models/multilingual-e5-small"]
    assert [d for d in qa["deps"] if not d.startswith("reports/code/")] == [*data, "models/intermediate/squadshifts"]
    assert "target.per_task.parsinlu_rc" in none["params"]
    assert "target.per_task.parsinlu_rc" not in stages["target-multiemo-none"]["params"]
    retrieve = stages["retrieve-udhr-none"]
    assert [d for d in retrieve["deps"] if not d.startswith("reports/code/")] == [
        "data/prepared/udhr",
        "reports/validation/udhr.json",
        "models/multilingual-e5-small",
    ]


def test_data_stages_read_their_own_package_folder(stages):
    assert stages["prepare-udhr"]["deps"] == ["data/raw/extracted/udhr", "reports/code/data.json"]
    assert stages["prepare-udhr"]["params"] == ["seed", "data.source", "data.udhr"]
    assert stages["validate-udhr"]["deps"][0] == "data/prepared/udhr"


def test_each_kind_of_stage_reads_the_code_its_entry_imports(stages, tmp_path):
    training = source_files("training")
    assert {"src/xstilts/tasks/udhr.py", "src/xstilts/tasks/tagmaps/ud_upos.tsv"} <= set(training)  # the registry
    assert {"src/xstilts/training/loop.py", "src/xstilts/modeling.py", "src/xstilts/cli.py"} <= set(training)
    assert "src/xstilts/data/reports.py" in training  # the validation gate, without the suites
    for unread in (
        "summary.py",
        "pipeline/report.py",
        "study/document.py",
        "registry.py",
        "profiles.py",
        "data/validation.py",
        "pipeline/dvcfile.py",
    ):
        assert f"src/xstilts/{unread}" not in training, unread
    data = source_files("data")
    assert "src/xstilts/data/validation.py" in data and "src/xstilts/training/loop.py" not in data
    assert "src/xstilts/registry.py" in source_files("promote")
    assert all(
        "report.py" not in f and "study/" not in f
        for kind in ("data", "training", "promote")
        for f in source_files(kind)
    )
    assert stages["target-multiemo-none"]["deps"][-1] == "reports/code/training.json"
    assert stages["prepare-udhr"]["deps"][-1] == "reports/code/data.json"
    assert stages["promote"]["deps"][-1] == "reports/code/promote.json"
    written = write_fingerprints(tmp_path)
    before = {k: p.read_bytes() for k, p in written.items()}
    write_fingerprints(tmp_path)
    assert {k: p.read_bytes() for k, p in written.items()} == before  # the same code: the same bytes
    assert "src/xstilts/training/loop.py" in json.loads(before["training"])["files"]


def test_a_stale_dvc_yaml_fails_in_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    with pytest.raises(XstiltsError, match=r"dvc.yaml is out of date with params.yaml; run `xstilts pipeline`"):
        check_pipeline(tmp_path)
    write_pipeline(tmp_path)
    check_pipeline(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["target"]["inits"].append("sst2+socialiqa")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(XstiltsError, match="out of date"):
        check_pipeline(tmp_path)
    write_pipeline(tmp_path)
    assert "target-brown_pos-sst2-socialiqa:" in (tmp_path / "dvc.yaml").read_text()


def test_several_seeds_repeat_every_training_run_and_its_consumers(monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(REPO))
    params = design_params()
    params.study.seeds = [1, 2]
    stages = {name: stage for section in build_stages(params).values() for name, stage in section.items()}
    assert {"intermediate-all-s1", "intermediate-all-s2", "target-multiemo-all-s2", "retrieve-udhr-all-s1"} <= set(
        stages
    )
    assert "retrieve-udhr-none" in stages and "retrieve-udhr-none-s1" not in stages  # the pretrained encoder
    assert "tune-all" in stages and "tune-all-s1" not in stages  # tuning and data use `seed`
    target = stages["target-multiemo-all-s2"]
    assert target["cmd"].endswith("-P init=all -P run_seed=2") and "models/intermediate/all-s2" in target["deps"]
    assert target["outs"] == ["models/target/multiemo-all-s2", "predictions/target/multiemo-all-s2.csv"]
    report = stages["report"]["deps"]
    assert {"predictions/target/multiemo-none-s1.csv", "predictions/retrieve/udhr-none.csv"} <= set(report)
    assert "metrics/intermediate/vitaminc-s2.json" in report
