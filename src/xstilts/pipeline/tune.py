"""The ``tune`` entry point: one Optuna study per intermediate task spec, one MLflow parent run per study.

``xstilts tune --task vitaminc [--n-trials 12]`` (or ``mlflow run . -e tune -P task=vitaminc``) opens or
continues the study, runs trials until the study has ``tune.n_trials`` finished ones (several such commands on
one machine share it), logs each trial as a nested run, and writes ``tuning/<task>.yaml`` for phase 2.
"""

from __future__ import annotations

import os
import time
from typing import Any

import mlflow
import optuna

from xstilts import hardware
from xstilts.errors import XstiltsError
from xstilts.lineage import PreparedSplit, log_prepared_inputs, prepared_inputs
from xstilts.params import Params, TuneParams, load_params
from xstilts.pipeline.phases import plan_run, training_reads
from xstilts.pipeline.run_names import NO_INIT
from xstilts.tracking import Tag, configure, fanout_tags, log_settings, phase_run, run_name, temporary_environ
from xstilts.training.loop import process_state
from xstilts.training.precision import resolve as resolve_precision
from xstilts.tuning import key, objective, results
from xstilts.tuning import study as studies

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _with_trials(params: Params, n_trials: int | None) -> Params:
    if n_trials is None:
        return params
    try:
        tune = TuneParams.model_validate({**params.tune.model_dump(), "n_trials": n_trials})
    except ValueError as exc:
        raise XstiltsError(f"--n-trials must be a positive integer, got {n_trials}.") from exc
    return params.model_copy(update={"tune": tune})


def _parent_run(study: optuna.Study, name: str, tune: TuneParams, label: str) -> str:
    """The study's parent run, chosen once under the study's lock: the one it names (when it is in this store),
    else the run ``mlflow run`` made for this command, else a new one (named ``label``); every worker logs into it."""
    exp_id = configure()
    client = mlflow.MlflowClient()
    with studies.locked(tune, name):
        run_id = study.user_attrs.get(studies.RUN_ATTR)
        if run_id is not None:
            try:
                client.get_run(run_id)
            except mlflow.exceptions.MlflowException:
                run_id = None  # another tracking store: a new parent here
        ours = os.environ.get("MLFLOW_RUN_ID")
        if run_id is not None:
            if ours and ours != run_id:  # the run `mlflow run` made for this command: point it at the study's
                client.set_tag(ours, Tag.STUDY, name)
                client.set_tag(ours, "continued_in", run_id)
                client.update_run(ours, name=label)
                client.set_terminated(ours, "FINISHED")
            return run_id
        run_id = ours or client.create_run(exp_id, run_name=label).info.run_id
        study.set_user_attr(studies.RUN_ATTR, run_id)
        return run_id


def run_tune(task_spec: str, n_trials: int | None = None, params: Params | None = None) -> dict[str, Any] | None:
    """Tune ``task_spec``; the result written to ``tuning/<task>.yaml`` (None while other workers still run)."""
    try:  # what cannot be planned still gets its run, which ends FAILED with the reason
        params = _with_trials(params or load_params(), n_trials)
        plan = plan_run("intermediate", task_spec, NO_INIT, params, tuned=False)
        study, name = studies.open_study(plan, params)
        failure = None
    except XstiltsError as exc:
        plan = study = name = None
        failure = exc
    label = run_name("tune", task_spec)
    parent = _parent_run(study, name, params.tune, label) if study is not None else None
    tags = {Tag.TASK: task_spec, **({Tag.STUDY: name} if name else {})}
    with (
        temporary_environ({"MLFLOW_RUN_ID": parent} if parent else {}),
        phase_run("tune", {"task": task_spec}, tags, label),
    ):
        if failure is not None:
            raise failure
        return _tune(plan, params, study, name)


def _tune(plan, params: Params, study: optuna.Study, name: str) -> dict[str, Any] | None:
    tune = params.tune
    space, budget = key.search_space(tune), key.budget(tune)
    precision = resolve_precision(plan.cfg.precision, process_state().device).tags()  # trials train in it
    inputs = prepared_inputs(training_reads(plan.tasks, evaluated=False))  # the study's subsets of these
    with studies.locked(tune, name):  # every worker logs into the study's one parent run: one at a time
        settings = {"space": space, "storage": tune.storage or "journal"}
        log_settings(params, settings, {"n_trials": str(tune.n_trials), **precision})
        log_prepared_inputs(inputs)
    data = objective.study_data(plan, tune)
    while True:
        for trial in studies.trials(study, tune, name):
            with studies.heartbeat(study, trial):
                _run_trial(study, trial, data, tune, name, inputs, precision)
        state = studies.counts(study)
        if not os.environ.get(studies.WAIT_ENV) or not (state.get("RUNNING") or state.get("WAITING")):
            break
        time.sleep(2)  # the DVC stage's worker writes the result: it waits for (or retries) the others' trials
    print(f"[tune {plan.out_name}] study {name}: trials by state {state}", flush=True)
    result = None
    if not state.get("RUNNING") and not state.get("WAITING"):  # the last worker to finish writes the result
        metric = (
            f"dev {data.key} (best evaluation, {tune.train_rows or 'all'} train / {tune.dev_rows or 'all'} dev rows)"
        )
        result = results.summary(study, name, key.study_key(plan, tune), space, budget, metric)
        path = results.write_result(plan.out_name, result)
        print(f"[tune {plan.out_name}] lr {result['lr']:.3g}, epochs {result['epochs']}: dev {result['value']} "
              f"(untuned: {result['untuned']['value']}) -> {path}", flush=True)  # fmt: skip
    results.log_summary(study, result)
    return result


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    data: objective.StudyData,
    tune: TuneParams,
    name: str,
    inputs: list[tuple[PreparedSplit, str]],
    precision: dict[str, str],
) -> None:
    started = time.time()
    with mlflow.start_run(nested=True, run_name=run_name("tune", data.plan.out_name, trial=trial.number)):
        log_prepared_inputs(inputs)
        lr = trial.suggest_float("lr", tune.lr.low, tune.lr.high, log=True)
        if tune.epochs.step is not None:
            epochs = trial.suggest_int("epochs", int(tune.epochs.low), int(tune.epochs.high), step=tune.epochs.step)
        else:
            epochs = trial.suggest_float("epochs", tune.epochs.low, tune.epochs.high)
        untuned = bool(trial.user_attrs.get(studies.UNTUNED_ATTR))
        mlflow.log_params({"lr": lr, "epochs": epochs, "trial": trial.number})
        tags = {Tag.PHASE: "tune-trial", Tag.STUDY: name, "untuned": str(untuned), **precision}
        mlflow.set_tags({**tags, **hardware.describe(), **fanout_tags()})

        def report(k: int, value: float, values: dict[str, float]) -> None:
            mlflow.log_metrics({"dev_value": value, **values}, step=k)
            trial.report(value, k)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at evaluation {k}")

        state = optuna.trial.TrialState.COMPLETE
        try:
            result = objective.run_trial(data, lr, epochs, tune.evaluations, report)
            study.tell(trial, result.best_score)
        except optuna.TrialPruned:
            state = optuna.trial.TrialState.PRUNED
            study.tell(trial, state=state)
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            mlflow.set_tag("state", "FAIL")
            raise
        finally:
            mlflow.log_metric("duration_seconds", time.time() - started)
        mlflow.set_tag("state", state.name)
        if state == optuna.trial.TrialState.COMPLETE:
            mlflow.log_metric("value", result.best_score)
            mlflow.set_tags(result.compilation.tags() if result.compilation else {})
