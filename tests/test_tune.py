"""Optuna tuning: one parent run per study and one child per trial, trial 0 untuned, pruning, the result used by
phase 2, several workers on one journal, a killed worker's trial failed and the study completed, bad input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from conftest import postgres_server
from test_resume import SRC, _set_params, write_unseen_dev_vitaminc
from xstilts.cli import main
from xstilts.errors import XstiltsError
from xstilts.pipeline.phases import run_intermediate
from xstilts.pipeline.tune import run_tune
from xstilts.tuning.study import REASON_ATTR, UNTUNED_ATTR

UNTUNED = {"lr": 1e-3, "epochs": 2}  # tests/project.py's intermediate settings
TUNE = {"tasks": ["vitaminc"], "n_trials": 3, "evaluations": 2, "pruner": "none", "lr": {"low": 1e-4, "high": 3e-3}}


def _tune(project: Path, **changes) -> dict:
    tune = {**TUNE, **changes}
    _set_params(project, tune=tune)
    return tune


def _runs(phase: str) -> list:
    return mlflow.search_runs(
        experiment_names=["xstilts"],
        filter_string=f"tags.phase = '{phase}'",
        output_format="list",
        order_by=["attributes.start_time"],
    )


def _study(project: Path, name: str) -> optuna.Study:
    path = project / "tuning" / "studies" / f"{name}.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name=name, storage=storage)


def test_a_study_logs_a_parent_run_and_one_child_per_trial(project):
    write_unseen_dev_vitaminc(project)
    _tune(project)
    result = run_tune("vitaminc")
    (parent,) = _runs("tune")
    children = _runs("tune-trial")
    assert len(children) == 3
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert [c.data.tags["state"] for c in children] == ["COMPLETE"] * 3
    assert parent.info.run_name == "tune vitaminc"
    assert [c.info.run_name for c in children] == ["tune vitaminc #0", "tune vitaminc #1", "tune vitaminc #2"]
    for run in (parent, children[0]):  # the study's subsets of these: its settings say how many rows
        contexts = {i.dataset.name: [t.value for t in i.tags] for i in run.inputs.dataset_inputs}
        assert contexts == {"vitaminc train": ["training"], "vitaminc dev": ["evaluation"]}
    assert all(float(c.data.metrics["duration_seconds"]) > 0 for c in children)
    assert all(len(mlflow.MlflowClient().get_metric_history(c.info.run_id, "dev_value")) == 2 for c in children)
    first = children[0]  # trial 0: the untuned values
    assert (float(first.data.params["lr"]), int(first.data.params["epochs"])) == (UNTUNED["lr"], UNTUNED["epochs"])
    assert first.data.tags["untuned"] == "True"
    assert parent.data.tags["tuning_study"] == result["study"] and parent.data.metrics["trials_complete"] == 3
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "plots")}
    assert plots == {"plots/optimization_history.png", "plots/param_importances.png", "plots/lr_x_epochs.png"}

    values = {int(c.data.params["trial"]): c.data.metrics["value"] for c in children}
    best = max(values, key=lambda n: (values[n], -n))
    assert result["best_trial"] == best and result["value"] == values[best] >= values[0] == result["untuned"]["value"]
    written = yaml.safe_load((project / "tuning/vitaminc.yaml").read_text())
    assert written == result and written["trials"] == {"COMPLETE": 3, "PRUNED": 0, "FAIL": 0}

    # phase 2 trains with the tuned values and names the study
    run_intermediate("vitaminc")
    (trained,) = _runs("intermediate")
    assert (float(trained.data.params["lr"]), float(trained.data.params["epochs"])) == (
        result["lr"],
        float(result["epochs"]),
    )
    assert trained.data.tags["tuning_study"] == result["study"]
    # whatever the file holds (here values no trial had, so they cannot be the untuned ones by chance)
    (project / "tuning/vitaminc.yaml").write_text(yaml.safe_dump({**written, "lr": 7.7e-4, "epochs": 3}))
    run_intermediate("vitaminc")
    again = _runs("intermediate")[-1]
    assert (again.data.params["lr"], again.data.params["epochs"]) == ("0.00077", "3.0")

    # a result for other settings (a changed search space) is refused, and so is a missing one
    _tune(project, lr={"low": 2e-4, "high": 3e-3})
    with pytest.raises(XstiltsError, match=r"was tuned for other settings .*`dvc repro tune-vitaminc`"):
        run_intermediate("vitaminc")
    (project / "tuning/vitaminc.yaml").unlink()
    with pytest.raises(XstiltsError, match="tuning/vitaminc.yaml does not exist"):
        run_intermediate("vitaminc")


def test_a_hopeless_learning_rate_is_pruned(project):
    """Grid over two lrs after trial 0: 1e-8 barely moves the weights and trails the others at evaluation 1."""
    _tune(
        project,
        n_trials=3,
        evaluations=3,
        sampler="grid",
        grid={"lr": [3e-3, 1e-8], "epochs": [4]},
        lr={"low": 1e-9, "high": 1e-2},
        pruner="median",
        startup_trials=1,
        warmup_evaluations=0,
    )
    result = run_tune("vitaminc")
    children = {float(c.data.params["lr"]): c.data.tags["state"] for c in _runs("tune-trial")}
    assert children == {1e-3: "COMPLETE", 3e-3: "COMPLETE", 1e-8: "PRUNED"}
    assert result["trials"] == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 0}


def test_the_same_seed_picks_the_same_values_twice(project, tmp_path):
    _tune(project, n_trials=3)
    run_tune("vitaminc")
    once = (project / "tuning/vitaminc.yaml").read_bytes()
    (project / "tuning").rename(tmp_path / "once")  # the journal too: the second study starts afresh
    run_tune("vitaminc")
    assert (project / "tuning/vitaminc.yaml").read_bytes() == once


def test_the_study_key_follows_the_datas_contents_not_its_file_times(project):
    from xstilts.params import load_params
    from xstilts.pipeline.phases import plan_run
    from xstilts.tuning.key import study_key

    def key() -> str:
        params = load_params()
        return study_key(plan_run("intermediate", "vitaminc", "none", params, tuned=False), params.tune)

    _tune(project)
    before = key()
    for path in (project / "data/prepared/vitaminc").iterdir():
        os.utime(path, (1, 1))  # another clone: same bytes, other modification times
    assert key() == before
    write_unseen_dev_vitaminc(project, train_pairs=15)
    assert key() != before


def test_more_trials_continue_the_study_with_new_points(project):
    """A rerun with more trials adds to the same study (one parent run) and does not repeat earlier points."""
    _tune(project, n_trials=3)
    run_tune("vitaminc")
    result = run_tune("vitaminc", n_trials=5)
    assert result["trials"] == {"COMPLETE": 5, "PRUNED": 0, "FAIL": 0}
    points = [(c.data.params["lr"], c.data.params["epochs"]) for c in _runs("tune-trial")]
    assert len(points) == len(set(points)) == 5
    assert len(_runs("tune")) == 1


def _command(project: Path, store: str, *extra: str) -> tuple[list[str], dict]:
    env = {**os.environ, "XSTILTS_ROOT": str(project), "MLFLOW_TRACKING_URI": store}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.pop("MLFLOW_RUN_ID", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    return [sys.executable, "-m", "xstilts", "tune", "--task", "vitaminc", *extra], env


def _journal_trials(project: Path) -> list:
    [path] = (project / "tuning" / "studies").glob("*.journal")
    return _study(project, path.stem).get_trials(deepcopy=False)


@pytest.mark.slow
def test_two_workers_share_one_journal(project, store):
    """Two processes on one study end with exactly n_trials finished trials, each number once."""
    write_unseen_dev_vitaminc(project)
    _tune(project, n_trials=6, epochs={"low": 8, "high": 10, "step": 1})  # trials of seconds: both workers get some
    command, env = _command(project, store)
    first, second = (
        subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    )
    outputs = [p.communicate(timeout=600)[0].decode() for p in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    trials = _journal_trials(project)
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, "both workers ran trials"
    mlflow.set_tracking_uri(store)
    assert len(_runs("tune")) == 1 and len(_runs("tune-trial")) == 6  # one parent: the second worker attached


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_a_failed_trial_and_the_study_completes(project, store):
    write_unseen_dev_vitaminc(project)
    _tune(project, n_trials=3, epochs={"low": 4, "high": 4, "step": 1}, evaluations=4)
    command, env = _command(project, store)
    process = subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    running = []
    while time.time() < deadline and process.poll() is None:
        studies = list((project / "tuning" / "studies").glob("*.journal"))
        if studies:
            trials = _journal_trials(project)
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.number == 1]
            if running and running[0].intermediate_values:
                break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL and running, "the worker finished before it could be killed"
    mlflow.set_tracking_uri(store)
    (parent,) = _runs("tune")

    again = subprocess.run(command, env=env, cwd=project, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    trials = _journal_trials(project)
    states = {t.number: t.state.name for t in trials}
    assert states[1] == "FAIL" and "died mid-trial" in trials[1].user_attrs[REASON_ATTR]
    finished = [n for n, s in states.items() if s in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3 and trials[0].user_attrs.get(UNTUNED_ATTR)
    result = yaml.safe_load((project / "tuning/vitaminc.yaml").read_text())
    assert result["trials"] == {"COMPLETE": 3, "PRUNED": 0, "FAIL": 1}
    (continued,) = _runs("tune")  # the killed run was continued, not duplicated
    assert continued.info.run_id == parent.info.run_id and continued.info.status == "FINISHED"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": ["nope"]}, "Unknown task 'nope'"),
        ({"lr": {"low": 3e-4, "high": 1e-5}}, r"tune.lr: low 0.0003 is above high 1e-05"),
        ({"lr": {"low": 0.0, "high": 1e-5}}, r"tune.lr.low: Input should be greater than 0"),
        ({"epochs": {"low": 4, "high": 1}}, r"tune.epochs: low 4.0 is above high 1.0"),
        ({"n_trials": 0}, r"tune.n_trials: Input should be greater than or equal to 1"),
        ({"storage": "postgresql://nobody@127.0.0.1:1/none"}, r"tune.storage postgresql://nobody@127.0.0.1:1/none "
                                                               r"cannot be reached \(OperationalError"),
    ],
)  # fmt: skip
def test_bad_input_fails_in_one_sentence_and_touches_nothing(project, capsys, change, message):
    _tune(project, **change)
    task = change.get("tasks", ["vitaminc"])[0]
    assert main(["tune", "--task", task]) == 2
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("xstilts: error:")]
    assert len(ours) == 1 and "Traceback" not in err, err
    assert re.search(message, ours[0]), ours[0]
    assert not (project / "tuning").exists()
    (failed,) = _runs("tune")
    assert failed.info.status == "FAILED" and failed.data.tags["failure_reason"] in ours[0]


def test_n_trials_on_the_command_line_is_checked(project, capsys):
    _tune(project)
    assert main(["tune", "--task", "vitaminc", "--n-trials", "0"]) == 2
    assert "--n-trials must be a positive integer, got 0" in capsys.readouterr().err
    assert not (project / "tuning").exists()


def test_a_study_on_postgresql(project, postgres_url):
    """tune.storage: a PostgreSQL URL (workers on several machines): the study and its trials live there."""
    _tune(project, n_trials=2, storage=postgres_url)
    result = run_tune("vitaminc")
    study = optuna.load_study(study_name=result["study"], storage=postgres_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"] and study.trials[0].user_attrs[UNTUNED_ATTR]
    assert not (project / "tuning" / "studies").exists()  # nothing in a journal file
    assert result["trials"]["COMPLETE"] == 2


DIES_MID_TRIAL = """
import os, socket, sys, time
import optuna
from xstilts.params import TuneParams
from xstilts.tuning import study as studies
socket.gethostname = lambda: "another-machine"  # a remote worker: no pid of it to check on this host
tune = TuneParams(storage=sys.argv[1], heartbeat=1, n_trials=3)
study = optuna.load_study(study_name="hb", storage=studies.open_storage(tune, "hb"))
trial = studies.next_trial(study, tune, "hb")
trial.suggest_float("lr", 1e-5, 1e-3, log=True)
with studies.heartbeat(study, trial):
    time.sleep(1.5)  # two heartbeats, then the machine is gone
    os._exit(1)
"""


def _stale_trial_is_failed_and_retried(url: str) -> None:
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from xstilts.params import TuneParams
    from xstilts.tuning import study as studies

    tune = TuneParams(storage=url, heartbeat=1, n_trials=3)
    study = optuna.create_study(study_name="hb", storage=studies.open_storage(tune, "hb"), direction="maximize")
    subprocess.run([sys.executable, "-c", DIES_MID_TRIAL, url], check=False, timeout=120)
    [dead] = study.get_trials(deepcopy=False)
    assert dead.state.name == "RUNNING" and dead.user_attrs["worker"].startswith("another-machine:")
    time.sleep(2.5)  # past the grace period (twice the heartbeat)
    retry = studies.next_trial(study, tune, "hb")
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    assert states == ["FAIL", "RUNNING"]
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(study.trials[1]) == dead.number
    assert retry.suggest_float("lr", 1e-5, 1e-3, log=True) == dead.params["lr"]  # the same setting, again


def test_a_trial_whose_remote_worker_died_is_failed_and_retried_by_its_heartbeat(tmp_path):
    """RDB storage: a trial records heartbeats while it runs; once they stop, the next worker fails it and
    retries its setting (here an SQLite file; PostgreSQL below)."""
    _stale_trial_is_failed_and_retried(f"sqlite:///{tmp_path / 'study.db'}")


def test_heartbeats_on_postgresql(postgres_url):
    _stale_trial_is_failed_and_retried(postgres_url)


OPENS_AT = """
import sys, time
from xstilts.params import TuneParams
from xstilts.tuning import study as studies
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # every worker opens the storage at the same moment
studies.open_storage(TuneParams(storage=sys.argv[1]), "together")
"""


def test_workers_opening_a_fresh_postgresql_database_together_all_start():
    """Tune workers that a fanout starts together on an empty database: each would create Optuna's tables, and
    PostgreSQL fails all but one (a duplicate key in pg_type) unless one worker at a time creates them. Three
    fresh databases, three workers each (without the lock, most such rounds failed here)."""
    with postgres_server(databases=("fresh0", "fresh1", "fresh2"), port=54332) as url:
        for name in ("fresh0", "fresh1", "fresh2"):
            at = str(time.time() + 8)  # past the workers' imports
            url_here = url.replace("/fresh0?", f"/{name}?")
            workers = [
                subprocess.Popen([sys.executable, "-c", OPENS_AT, url_here, at], stderr=subprocess.PIPE, text=True)
                for _ in range(3)
            ]
            said = [w.communicate(timeout=120)[1].strip() for w in workers]
            failed = [
                text.splitlines()[-1] if text else "no message"
                for w, text in zip(workers, said, strict=True)
                if w.returncode
            ]
            assert not failed, f"{name}: {failed}"
