"""Promote the best run per task to the model registry: ``xstilts-<task>`` with alias ``champion``.

Every family has champions: target runs (``phase=target``: classification, multiple choice, extractive QA,
tagging) compete on their family's main zero-shot dev metric, ``dev_<main metric>_zeroshot`` (:func:`main_metric`;
NER tag sets: entity F1), retrieval runs (``phase=retrieve``: the best encoder per retrieval task) on theirs
(``dev_accuracy_zeroshot`` for bitext, ``dev_bucc_f1_zeroshot`` for mining, ``dev_map20_zeroshot`` for ranking).
A retrieval task whose runs have no dev split (Tatoeba: test only) promotes on the same metric of its **test**
split (``test_...``), a target whose dev set is English only (XQuAD, trained and selected on SQuAD) on the English
dev score (``best_dev_score``, as XTREME selects); the version's ``metric`` tag names the one used.

A new version is registered only when a finished run beats the current champion on that metric (strictly: ties
keep the champion). The champion's metric name and value are kept as version tags, so the comparison needs no run
lookup. Runs leave their model in DVC's cache (tags ``model_dir`` and ``model_fingerprint``); only a run that is
promoted gets a pyfunc LoggedModel (:mod:`xstilts.serving`), so MLflow's store holds copies of registered models
only. A run whose model folder has since been overwritten by another run (its fingerprint differs) is no candidate.
Runs compete only within one setting (base model, data source, profile: :func:`xstilts.tracking.setting`),
since other settings score on other dev sets; a champion from another setting, or one whose value of the metric
cannot be found, is never replaced silently: promotion refuses with the way out. Registered models and versions
carry a description (the task, its data source, the init, the metric) and the md5 of each prepared data folder
they were trained and scored on, from ``dvc.lock`` (``data_md5.<task>``; "no dvc.lock" without one).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from xstilts.digest import fingerprint
from xstilts.errors import XstiltsError
from xstilts.lineage import locked_md5
from xstilts.paths import prepared_dir, repo_root
from xstilts.tasks import Role, Task, get_task
from xstilts.tracking import Tag, configure, tracking_uri

PREFIX = "xstilts-"
ALIAS = "champion"
PHASES = {"target": Role.TARGET, "retrieve": Role.RETRIEVAL}  # the run phase whose runs compete -> the task role
RETRIEVAL_METRICS = {"bitext": "accuracy_zeroshot", "mining": "bucc_f1_zeroshot", "ranking": "map{k}_zeroshot"}
COPIED_RUN_TAGS = (Tag.INTERMEDIATE, Tag.DATA_SOURCE, Tag.MODEL, Tag.PROFILE, Tag.SEED, Tag.MODEL_DIR, Tag.FINGERPRINT)
NETWORK_HINTS = ("Connection refused", "timed out", "Name or service not known", "Failed to resolve", "SSLError")


@dataclass
class PromotionResult:
    target: str
    registered_name: str
    promoted: bool
    version: int | None
    run_id: str
    metric_value: float
    previous_value: float | None
    reason: str
    metric: str = ""


def registered_name(target_task: str) -> str:
    return f"{PREFIX}{target_task}"


def main_metric(task: Task, split: str = "dev") -> str:
    """The metric ``task``'s runs compete on: ``<split>_<family main metric>_zeroshot`` (retrieval: the name its
    family logs, :data:`RETRIEVAL_METRICS`)."""
    if task.role == Role.RETRIEVAL:
        from xstilts.retrieval.ranking import RANKING_K

        return f"{split}_{RETRIEVAL_METRICS[task.family.value].format(k=RANKING_K)}"
    return f"{split}_{task.metric}_zeroshot"


def fallback_metrics(task: Task) -> tuple[str, ...]:
    """The metrics ``task``'s runs compete on, in order, the first one its runs log winning: the zero-shot dev
    metric; for a target whose dev set is English only (XQuAD: SQuAD's dev), the kept model's English dev score
    (``best_dev_score``), as XTREME selects; for retrieval without a dev split, its test metric."""
    if task.role == Role.RETRIEVAL:
        return main_metric(task), main_metric(task, "test")
    return main_metric(task), "best_dev_score"


def data_versions(task: Task) -> dict[str, str]:
    """``data_md5.<task>``: the md5 DVC recorded for ``data/prepared/<task>`` (and its ``train_from`` task's) in
    ``dvc.lock``; "no dvc.lock" or "not in dvc.lock" where there is none."""
    names = [n for n in (task.name, task.train_from) if n]
    lock = repo_root() / "dvc.lock"
    if not lock.exists():
        return {f"data_md5.{n}": "no dvc.lock" for n in names}
    return {f"data_md5.{n}": locked_md5(prepared_dir(n), lock) or "not in dvc.lock" for n in names}


@contextmanager
def _registry_errors() -> Iterator[None]:
    """Turn tracking-server / registry failures into one user-facing sentence naming the tracking URI."""
    try:
        yield
    except XstiltsError:
        raise
    except (MlflowException, OSError) as exc:  # requests' ConnectionError is an OSError
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        known = [hint for hint in NETWORK_HINTS if hint.lower() in detail.lower()]
        if known:
            detail = known[0].lower()
        elif len(detail) > 200:
            detail = detail[:197] + "..."
        raise XstiltsError(
            f"The MLflow tracking server/registry at {tracking_uri()} failed ({detail}); "
            "check MLFLOW_TRACKING_URI and that the server is running."
        ) from exc


def _candidates(
    client: MlflowClient, exp_id: str, phase: str, task: str, metrics: tuple[str, ...], setting: Mapping[str, str]
) -> tuple[str, list[Run]]:
    """The first of ``metrics`` that some finished run of ``task`` in ``setting`` logged, and the runs that did and
    whose model folder still holds what they fingerprinted."""
    if "'" in task:
        raise XstiltsError(f"Invalid task name {task!r}.")
    query = f"tags.{Tag.PHASE} = '{phase}' AND tags.{Tag.TASK} = '{task}' AND attributes.status = 'FINISHED'"
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    runs = [r for r in runs if all(r.data.tags.get(k) == v for k, v in setting.items())]
    scored = {m: [r for r in runs if m in r.data.metrics and not math.isnan(r.data.metrics[m])] for m in metrics}
    metric = next((m for m in metrics if scored[m]), metrics[0])
    on_disk: dict[str, str | None] = {}  # model folder -> fingerprint of what it holds now (hashed once)
    for folder in {r.data.tags[Tag.MODEL_DIR] for r in scored[metric] if r.data.tags.get(Tag.MODEL_DIR)}:
        path = repo_root() / folder
        on_disk[folder] = fingerprint(path) if path.is_dir() else None
    # a run is a candidate while the folder it names still holds the files it fingerprinted
    return metric, [
        r
        for r in scored[metric]
        if r.data.tags.get(Tag.FINGERPRINT)
        and on_disk.get(r.data.tags.get(Tag.MODEL_DIR, "")) == r.data.tags[Tag.FINGERPRINT]
    ]


def _champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _champion_value(client: MlflowClient, champion: ModelVersion, metric: str) -> float | None:
    """The champion's value of ``metric``: from its version tags, else (other metric) from its source run."""
    tags = champion.tags or {}
    if tags.get("metric") == metric and "metric_value" in tags:
        return float(tags["metric_value"])
    run_id = tags.get("source_run") or champion.run_id
    if not run_id:
        return None
    return client.get_run(run_id).data.metrics.get(metric)


def _check_champion(champion: ModelVersion, name: str, previous: float | None, metric: str, setting) -> None:
    """Refuse to compare with a champion of another setting, or one whose value of ``metric`` is unknown."""
    tags = champion.tags or {}
    other = {k: tags.get(k) for k, v in setting.items() if tags.get(k) != v}
    drop = f"MlflowClient().delete_registered_model_alias({name!r}, {ALIAS!r})"
    if other:
        theirs = ", ".join(f"{k} {v!r}" for k, v in other.items())
        ours = ", ".join(f"{k} {setting[k]!r}" for k in other)
        raise XstiltsError(
            f"Champion version {champion.version} of {name} comes from another setting ({theirs}; these runs: "
            f"{ours}), scored on other dev data; promote under that setting, or drop its alias ({drop}) first."
        )
    if previous is None:
        raise XstiltsError(
            f"Champion version {champion.version} of {name} has no {metric} (neither tagged nor on its source "
            f"run), so it cannot be compared; promote with the metric it was chosen by ({tags.get('metric')}), "
            f"or drop its alias ({drop}) first."
        )


def _log_servable(task: Task, phase: str, run: Run) -> str:
    """The pyfunc model of ``run``'s model folder (:mod:`xstilts.serving`), logged to the run; its model URI."""
    from xstilts.serving import log_encoder_model, log_head_model

    folder = repo_root() / run.data.tags[Tag.MODEL_DIR]
    if phase == "retrieve":
        params = run.data.params
        return log_encoder_model(folder, task.name, run.info.run_id, int(params["layer"]), int(params["max_length"]))
    config = {"allow_no_answer": task.unanswerable} if task.family.value == "extractive_qa" else None
    return log_head_model(folder, task.name, run.info.run_id, config)


def _register(client: MlflowClient, task: Task, phase: str, best: Run, metric: str, value: float) -> int:
    """A new version of ``xstilts-<task>`` from ``best`` (pyfunc logged now), with its description and tags."""
    name, run_id, run_tags = registered_name(task.name), best.info.run_id, best.data.tags
    source = run_tags.get(Tag.DATA_SOURCE, "?")
    what = task.description or task.stands_for or task.name
    about = (
        f"{task.name} ({task.family.value}, {phase} runs): {what}. Data source {source}. Champion: the best "
        f"{metric} (higher is better)."
    )
    try:
        client.get_registered_model(name)
        client.update_registered_model(name, description=about)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, tags={Tag.TASK: task.name, "family": task.family.value}, description=about)
    tags = {k: run_tags[k] for k in COPIED_RUN_TAGS if k in run_tags}
    tags.update({"metric": metric, "metric_value": repr(value), "source_run": run_id, Tag.TASK: task.name})
    tags.update({Tag.PHASE: phase, "family": task.family.value, **data_versions(task)})
    created = mlflow.register_model(_log_servable(task, phase, best), name, tags=tags)
    init = run_tags.get(Tag.INTERMEDIATE, "?")
    client.update_model_version(
        name,
        created.version,
        description=(
            f"{task.name} from run {run_id}: init {init} (intermediate tasks), {metric}={value:.4f}, data source "
            f"{source}, model folder {run_tags.get(Tag.MODEL_DIR)} (DVC); data md5 "
            + ", ".join(f"{k.removeprefix('data_md5.')} {v}" for k, v in data_versions(task).items())
            + "."
        ),
    )
    return int(created.version)


def promote(
    target_task: str, metric: str | None = None, setting: Mapping[str, str] | None = None, phase: str = "target"
) -> PromotionResult:
    """Register the best finished run of ``target_task`` and make it champion if it beats the current one.

    ``phase``: "target" (trained targets) or "retrieve" (retrieval tasks: the best encoder). ``metric``: None for
    the task's own (:func:`main_metric`; retrieval without dev: its test metric, see the module docstring).
    ``setting``: the tags a candidate must carry (see :func:`xstilts.tracking.setting`); None: any run.
    """
    if phase not in PHASES:
        raise XstiltsError(f"Promotion compares {' or '.join(PHASES)} runs, not {phase!r} runs.")
    name = registered_name(target_task)
    setting = dict(setting or {})
    task = get_task(target_task, PHASES[phase], source=setting.get(Tag.DATA_SOURCE, "offline"))
    metrics = (metric,) if metric else fallback_metrics(task)
    with _registry_errors():
        exp_id = configure()
        client = MlflowClient()
        metric, runs = _candidates(client, exp_id, phase, target_task, metrics, setting)
        if not runs:
            within = f" in the setting {setting}" if setting else ""
            raise XstiltsError(
                f"No finished {phase} runs for {target_task} with metric {' or '.join(metrics)} and their model "
                f"folder on disk{within}; run `mlflow run . -e {phase} -P task={target_task}` first."
            )
        # highest metric wins; on a tie the earlier run (it was there first)
        best = min(runs, key=lambda r: (-r.data.metrics[metric], r.info.start_time or 0, r.info.run_id))
        value = float(best.data.metrics[metric])
        run_id = best.info.run_id

        def result(promoted: bool, version: int, previous: float | None, reason: str) -> PromotionResult:
            return PromotionResult(target_task, name, promoted, version, run_id, value, previous, reason, metric)

        champion = _champion(client, name)
        previous = None
        if champion is not None:
            previous = _champion_value(client, champion, metric)
            _check_champion(champion, name, previous, metric, setting)
            version = int(champion.version)
            if (champion.tags or {}).get("source_run", champion.run_id) == run_id:
                return result(False, version, previous, f"run {run_id} is already the champion (version {version}).")
            if value <= previous:
                return result(
                    False,
                    version,
                    previous,
                    f"best run {run_id} has {metric}={value:.4f}, not better than champion version {version} "
                    f"({previous:.4f}).",
                )
        new_version = _register(client, task, phase, best, metric, value)
        client.set_registered_model_alias(name, ALIAS, str(new_version))
        if champion is None:
            reason = f"no champion yet; version {new_version} from run {run_id} ({metric}={value:.4f}) is champion."
        else:
            reason = (
                f"run {run_id} ({metric}={value:.4f}) beats champion version {champion.version} ({previous:.4f}); "
                f"version {new_version} is champion."
            )
        return result(True, new_version, previous, reason)


def champions() -> list[dict]:
    """One row per ``xstilts-*`` registered model that has a champion, sorted by task."""
    rows = []
    with _registry_errors():
        configure()
        client = MlflowClient()
        models, token = [], None
        while True:
            page = client.search_registered_models(f"name LIKE '{PREFIX}%'", max_results=100, page_token=token)
            models.extend(page)
            token = page.token
            if not token:
                break
        for rm in models:
            version = (rm.aliases or {}).get(ALIAS)
            if version is None:
                continue
            mv = client.get_model_version(rm.name, str(version))
            tags = mv.tags or {}
            value = tags.get("metric_value")
            rows.append(
                {
                    "target": rm.name[len(PREFIX) :],
                    "registered_name": rm.name,
                    "family": tags.get("family", ""),
                    "version": int(mv.version),
                    "metric": tags.get("metric", ""),
                    "metric_value": float(value) if value is not None else None,
                    "source_run": tags.get("source_run") or mv.run_id or "",
                    "intermediate_tasks": tags.get(Tag.INTERMEDIATE, ""),
                }
            )
    return sorted(rows, key=lambda r: r["target"])


def format_champions(rows: list[dict]) -> str:
    """An aligned text table of :func:`champions` rows (or a one-line note when there are none)."""
    if not rows:
        return "No champions registered yet; run `xstilts promote` after target or retrieval runs."
    header = ["task", "family", "version", "metric", "value", "init", "source_run"]
    body = [
        [
            str(r["target"]),
            str(r["family"]) or "-",
            str(r["version"]),
            str(r["metric"]),
            "" if r["metric_value"] is None else f"{r['metric_value']:.4f}",
            str(r["intermediate_tasks"]) or "-",
            str(r["source_run"]),
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
