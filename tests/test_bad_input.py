"""Bad input: one clear sentence, a non-zero exit, the MLflow run FAILED with the reason, earlier outputs intact."""

from __future__ import annotations

import shutil

import mlflow
import pytest
import yaml

from xstilts.cli import main
from xstilts.errors import XstiltsError
from xstilts.pipeline.phases import run_intermediate, run_target


def _last_run():
    runs = mlflow.search_runs(experiment_names=["xstilts"], output_format="list")
    return max(runs, key=lambda r: r.info.start_time)


def _set_params(root, section, key, value):
    params = yaml.safe_load((root / "params.yaml").read_text())
    if key is None:
        params[section] = value
    else:
        params.setdefault(section, {})[key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _assert_failed_run(fragment: str) -> None:
    run = _last_run()
    assert run.info.status == "FAILED"
    assert fragment in run.data.tags["failure_reason"]


def test_unknown_task(project):
    with pytest.raises(XstiltsError, match="Unknown task 'nope'.*vitaminc"):
        run_intermediate("nope")
    _assert_failed_run("Unknown task")


def test_hub_task_names_its_offline_stand_in(project):
    with pytest.raises(XstiltsError, match="MNLI needs the Hugging Face Hub.*`rte`"):
        run_intermediate("mnli")
    _assert_failed_run("`rte`")


def test_task_in_the_wrong_phase(project):
    with pytest.raises(XstiltsError, match="is a target task, not a intermediate task|not a intermediate"):
        run_intermediate("multiemo")


def test_missing_model_folder(project):
    _set_params(project, "model", "name", str(project / "no-such-model"))
    with pytest.raises(XstiltsError, match="does not exist"):
        run_intermediate("vitaminc")
    _assert_failed_run("does not exist")


def test_corrupt_model_folder(project, tiny_encoder_dir):
    broken = project / "broken-model"
    shutil.copytree(tiny_encoder_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    _set_params(project, "model", "name", str(broken))
    with pytest.raises(XstiltsError, match="corrupt"):
        run_intermediate("vitaminc")
    _assert_failed_run("corrupt")


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("intermediate", "lr", "fast", "intermediate.lr"),
        ("target", "batch_size", 0, "target.batch_size"),
        ("seed", None, "thirteen", "seed"),
        ("intermediate", "unknown_setting", 1, "intermediate.unknown_setting"),
        ("target", "precision", "fp8", "target.precision"),
        ("intermediate", "bf16", True, "intermediate: bf16 was replaced by precision: auto"),
        ("fanout", "gpus", 2.5, "fanout: gpus above 1 must be a whole number"),
    ],
)
def test_malformed_params(project, section, key, value, message):
    _set_params(project, section, key, value)
    with pytest.raises(XstiltsError, match=f"params.yaml: {message}"):
        run_intermediate("vitaminc")
    _assert_failed_run(message)


def test_failure_keeps_earlier_outputs(project):
    run_target("multiemo", "none")
    model_file = project / "models/target/multiemo-none/heads.safetensors"
    metrics_file = project / "metrics/target/multiemo-none.json"
    before = (model_file.read_bytes(), metrics_file.read_text())
    _set_params(project, "model", "name", str(project / "no-such-model"))
    with pytest.raises(XstiltsError):
        run_target("multiemo", "none")
    assert (model_file.read_bytes(), metrics_file.read_text()) == before
    _assert_failed_run("no-such-model")


def test_missing_intermediate_model(project):
    with pytest.raises(XstiltsError, match="No intermediate model for 'vitaminc'"):
        run_target("multiemo", "vitaminc")
    _assert_failed_run("No intermediate model for 'vitaminc'")


def test_cli_exits_non_zero_with_one_line(project, capsys):
    assert main(["intermediate", "--task", "nope"]) == 2
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("xstilts:")]
    assert len(ours) == 1 and ours[0].startswith("xstilts: error: Unknown task 'nope'")
    assert "Traceback" not in err and "XstiltsError" not in err  # one sentence, not a stack
    _assert_failed_run("Unknown task 'nope'")


def test_max_length_beyond_the_encoders_positions(project):
    import yaml

    from xstilts.errors import XstiltsError
    from xstilts.pipeline.phases import run_target

    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["target"]["per_task"] = {"multiemo": {"max_length": 4096}}
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(XstiltsError, match="exceeds the encoder's"):
        run_target("multiemo", "none")
    _assert_failed_run("exceeds the encoder's")
