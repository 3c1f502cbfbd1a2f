"""Promote the best target run to the model registry: ``xstilts-<task>`` with alias ``champion``.

A new version is registered only when a finished target run beats the current champion on the chosen metric
(strictly). The champion's metric name and value are kept as version tags, so the comparison needs no run lookup.
Training runs leave their model in DVC's cache (tags ``model_dir`` and ``model_fingerprint``); only a run that
is promoted gets the pyfunc model logged to it, so MLflow's store holds the registered models and no others.
A run whose model folder has since been overwritten by another run (its fingerprint differs) is no candidate.
Runs compete only within one setting (base model, data source, profile: :func:`xstilts.tracking.setting`),
since other settings score on other dev sets; a champion from another setting, or one whose value of the metric
cannot be found, is never replaced silently: promotion refuses with the way out.
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
from xstilts.paths import repo_root
from xstilts.serving import log_classifier
from xstilts.tracking import Tag, configure, tracking_uri

PREFIX = "xstilts-"
ALIAS = "champion"
DEFAULT_METRIC = "dev_accuracy_zeroshot"
COPIED_RUN_TAGS = (Tag.INTERMEDIATE, Tag.DATA_SOURCE, Tag.MODEL, Tag.PROFILE, Tag.SEED)
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


def registered_name(target_task: str) -> str:
    return f"{PREFIX}{target_task}"


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
    client: MlflowClient, exp_id: str, target_task: str, metric: str, setting: Mapping[str, str]
) -> list[Run]:
    if "'" in target_task:
        raise XstiltsError(f"Invalid task name {target_task!r}.")
    query = f"tags.{Tag.PHASE} = 'target' AND tags.{Tag.TASK} = '{target_task}' AND attributes.status = 'FINISHED'"
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    scored = [r for r in runs if metric in r.data.metrics and not math.isnan(r.data.metrics[metric])]
    scored = [r for r in scored if all(r.data.tags.get(k) == v for k, v in setting.items())]
    on_disk: dict[str, str | None] = {}  # model folder -> fingerprint of what it holds now (hashed once)
    for folder in {r.data.tags[Tag.MODEL_DIR] for r in scored if r.data.tags.get(Tag.MODEL_DIR)}:
        path = repo_root() / folder
        on_disk[folder] = fingerprint(path) if path.is_dir() else None
    # a run is a candidate while the folder it names still holds the files it fingerprinted
    return [
        r
        for r in scored
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


def promote(
    target_task: str, metric: str = DEFAULT_METRIC, setting: Mapping[str, str] | None = None
) -> PromotionResult:
    """Register the best finished target run of ``target_task`` and make it champion if it beats the current one.

    ``setting``: the tags a candidate must carry (see :func:`xstilts.tracking.setting`); None: any run.
    """
    name = registered_name(target_task)
    setting = dict(setting or {})
    with _registry_errors():
        exp_id = configure()
        client = MlflowClient()
        runs = _candidates(client, exp_id, target_task, metric, setting)
        if not runs:
            within = f" in the setting {setting}" if setting else ""
            raise XstiltsError(
                f"No finished target runs for {target_task} with metric {metric}{within}; "
                f"run `mlflow run . -e target -P task={target_task}` first."
            )
        # highest metric wins; on a tie the earlier run (it was there first)
        best = min(runs, key=lambda r: (-r.data.metrics[metric], r.info.start_time or 0, r.info.run_id))
        value = float(best.data.metrics[metric])
        run_id = best.info.run_id

        def kept(version: int, previous: float | None, reason: str) -> PromotionResult:
            return PromotionResult(target_task, name, False, version, run_id, value, previous, reason)

        champion = _champion(client, name)
        previous = None
        if champion is not None:
            previous = _champion_value(client, champion, metric)
            _check_champion(champion, name, previous, metric, setting)
            version = int(champion.version)
            if (champion.tags or {}).get("source_run", champion.run_id) == run_id:
                return kept(version, previous, f"run {run_id} is already the champion (version {version}).")
            if value <= previous:
                return kept(
                    version,
                    previous,
                    f"best run {run_id} has {metric}={value:.4f}, not better than champion version {version} "
                    f"({previous:.4f}).",
                )
        tags = {k: best.data.tags[k] for k in COPIED_RUN_TAGS if k in best.data.tags}
        tags.update({"metric": metric, "metric_value": repr(value), "source_run": run_id, Tag.TASK: target_task})
        model_uri = log_classifier(repo_root() / best.data.tags[Tag.MODEL_DIR], target_task, run_id)
        created = mlflow.register_model(model_uri, name, tags=tags)
        new_version = int(created.version)
        client.set_registered_model_alias(name, ALIAS, str(new_version))
        if champion is None:
            reason = f"no champion yet; version {new_version} from run {run_id} ({metric}={value:.4f}) is champion."
        else:
            reason = (
                f"run {run_id} ({metric}={value:.4f}) beats champion version {champion.version} ({previous:.4f}); "
                f"version {new_version} is champion."
            )
        return PromotionResult(target_task, name, True, new_version, run_id, value, previous, reason)


def champions() -> list[dict]:
    """One row per ``xstilts-*`` registered model that has a champion, sorted by target task."""
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
        return "No champions registered yet; run `xstilts promote` after a target run."
    header = ["target", "version", "metric", "value", "intermediate_tasks", "source_run"]
    body = [
        [
            str(r["target"]),
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
