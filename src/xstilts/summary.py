"""The end-of-run summary: the slice's results side by side and how long each stage took."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from xstilts import hardware
from xstilts.paths import metrics_dir, repo_root
from xstilts.timing import record_pipeline, stage_times

if TYPE_CHECKING:
    from xstilts.params import Params


def _load(path: Path) -> dict[str, float]:
    return json.loads(path.read_text()) if path.exists() else {}


def _languages(*tables: dict[str, float], prefix: str) -> list[str]:
    langs = {k[len(prefix) :] for t in tables for k in t if k.startswith(prefix)}
    special = [x for x in ("en", "pl") if x in langs]
    return (
        special
        + sorted(langs - set(special) - {"zeroshot", "translated"})
        + [x for x in ("translated", "zeroshot") if x in langs]
    )


def comparison_table(title: str, columns: dict[str, dict[str, float]], prefix: str) -> str:
    """Rows = languages (plus averages), columns = runs; values in percent."""
    langs = _languages(*columns.values(), prefix=prefix)
    if not langs:
        return f"{title}: no results yet\n"
    names = list(columns)
    lines = [title, f"  {'language':12s}" + "".join(f"{n:>22s}" for n in names)]
    for lang in langs:
        cells = [columns[n].get(prefix + lang) for n in names]
        lines.append(f"  {lang:12s}" + "".join(f"{'-' if c is None else f'{100 * c:.1f}':>22s}" for c in cells))
    return "\n".join(lines) + "\n"


def _main_metric(task: str, source: str) -> str:
    """The main metric of a task's family (from :mod:`xstilts.families`)."""
    from xstilts.tasks import get_task

    return get_task(task, source=source).metric


def _grouped(folder: Path, label) -> dict[str, dict[str, dict[str, float]]]:
    """``<task>-<variant>.json`` files as {task: {label(variant): metrics}}."""
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted(folder.glob("*.json")):
        task, variant = path.stem.split("-", 1)
        tables.setdefault(task, {})[label(variant)] = _load(path)
    return tables


def english_scores(values: dict[str, float]) -> dict[str, dict[str, tuple[float, float]]]:
    """{task prefix ("" for a single-task run): {metric: (dev, test)}} from ``[<task>_]<split>_<metric>_en`` keys."""
    found: dict[str, dict[str, tuple[float, float]]] = {}
    for key, test in values.items():
        head, sep, rest = key.rpartition("test_")
        if not sep or not rest.endswith("_en") or (head and not head.endswith("_")):
            continue
        metric = rest[: -len("_en")]
        dev = values.get(f"{head}dev_{metric}_en", float("nan"))
        found.setdefault(head.rstrip("_"), {})[metric] = (dev, test)
    return found


def intermediate_lines(m: Path) -> list[str]:
    lines = []
    for path in sorted((m / "intermediate").glob("*.json")):
        scores = english_scores(_load(path))
        if not scores:
            lines.append(f"Intermediate {path.stem}: no English test metrics\n")
        for task, metrics in sorted(scores.items()):
            shown = ", ".join(
                f"{name} dev {100 * dev:.1f} / test {100 * test:.1f}" for name, (dev, test) in sorted(metrics.items())
            )
            where = f"{path.stem} ({task})" if task else path.stem
            lines.append(f"Intermediate {where}: English {shown}\n")
    return lines


def _baseline_column(columns: dict[str, dict[str, float]], metric: str) -> dict[str, dict[str, float]]:
    """The trivial baseline's scores (``test_baseline_<metric>_*``, as a target run logs them) as one more column."""
    head = f"test_baseline_{metric}_"
    for values in columns.values():
        baseline = {f"test_{metric}_{k[len(head) :]}": v for k, v in values.items() if k.startswith(head)}
        if baseline:
            return {"trivial baseline": baseline}
    return {}


def results_text(source: str = "offline") -> str:
    """The results of every metrics file, each target in its family's main metric beside its trivial baseline
    (tasks of ``source``)."""
    m = metrics_dir()
    parts = intermediate_lines(m)
    for task, columns in _grouped(m / "target", lambda init: f"init={init}").items():
        metric = _main_metric(task, source)
        columns = {**columns, **_baseline_column(columns, metric)}
        parts.append(
            comparison_table(f"{task}: test {metric} (%) by language, trained on English", columns, f"test_{metric}_")
        )
    retrieval = _grouped(m / "retrieve", lambda enc: "raw encoder" if enc == "none" else f"after {enc}")
    for task, columns in retrieval.items():
        parts.append(
            comparison_table(f"{task}: retrieval top-1 accuracy (%) on test, to English", columns, "test_accuracy_")
        )
        parts.append(comparison_table(f"{task}: bitext mining F1 (%) on test (margin)", columns, "test_bucc_f1_"))
    for target, board in sorted(_load(m / "champions.json").items()):
        version = board.pop("version", "?")
        shown = ", ".join(f"{name} {100 * value:.1f}" for name, value in board.items())
        parts.append(f"Registry: xstilts-{target}@champion is version {version} ({shown})\n")
    return "\n".join(parts)


def precision_text(params: Params) -> str:
    """What each training phase's precision setting is on this machine (the runs' ``precision`` tags say the same)."""
    from xstilts.training.precision import resolve

    parts = []
    for phase in ("intermediate", "target"):
        chosen = resolve(getattr(params, phase).precision)
        parts.append(f"{phase} {chosen.requested} -> {chosen.name} ({chosen.reason})")
    return "Precision on this machine: " + "; ".join(parts) + "\n"


def timings_text(since: float, now: float | None = None) -> str:
    """Per stage: the work and the whole stage command; then the pipeline's wall time and its overhead."""
    rows = stage_times(since)
    if not rows:
        return "Per-stage timings: no stage ran (DVC found everything up to date).\n"
    lines = [f"Per-stage timings (this run, seconds):  {'work':>8s} {'start-up':>8s} {'stage':>8s}"]
    for r in rows:
        lines.append(
            f"  {r.stage:38s} {r.work:8.1f} {r.command - r.work:8.1f} {r.command:8.1f}{'' if r.ok else '  FAILED'}"
        )
    work, commands = sum(r.work for r in rows), sum(r.command for r in rows)
    lines.append(f"  {'total in stages':38s} {work:8.1f} {commands - work:8.1f} {commands:8.1f}")
    lines.append(f"  machine: {hardware.summary()}")
    if since > 0:
        wall = (now or time.time()) - since
        lines.append(
            f"  pipeline wall time {wall:.0f} s: work {work:.0f} s, overhead {wall - work:.0f} s "
            f"({100 * (wall - work) / wall:.0f}%: stage commands {commands - work:.0f} s, DVC {wall - commands:.0f} s)"
        )
        from xstilts.pipeline.plan import estimate_line

        if line := estimate_line(wall):
            lines.append(line)
    return "\n".join(lines) + "\n"


def tuning_text(specs: list[str]) -> str:
    """Per tuned task: untuned vs tuned lr and epochs, their dev values, and the trials by state."""
    import yaml

    from xstilts.tuning.key import result_path

    lines = ["Tuning (Optuna; dev values on each study's own subset of rows):"]
    for spec in specs:
        path = result_path(spec)
        if not path.exists():
            lines.append(f"  {spec}: not tuned yet ({path} missing)")
            continue
        r = yaml.safe_load(path.read_text())
        u = r["untuned"]

        def shown(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:.1f}"

        states = ", ".join(f"{n} {k.lower()}" for k, n in r["trials"].items())
        lines.append(
            f"  {spec}: untuned lr {u['lr']:.2g} x {u['epochs']} ep -> dev {shown(u['value'])}; "
            f"tuned lr {r['lr']:.2g} x {r['epochs']} ep -> dev {shown(r['value'])} ({states})"
        )
    return "\n".join(lines)


def study_text() -> str:
    """The study's main table and its answer (``reports/study.json``, written by the ``report`` stage)."""
    from xstilts.study.document import terminal_text

    path = repo_root() / "reports" / "study.json"
    if not path.is_file():
        return "The study: no reports/study.json yet (the report stage runs last in `dvc repro`).\n"
    return terminal_text(json.loads(path.read_text()))


def print_summary() -> None:
    since = float(os.environ.get("XSTILTS_RUN_STARTED", "0"))
    from xstilts.params import load_params
    from xstilts.pipeline.run_names import intermediate_tasks

    params = load_params()
    print(study_text())
    print(results_text(params.data.source))
    if params.tune.tasks:
        print(tuning_text([intermediate_tasks(spec, params)[0] for spec in params.tune.tasks]))
    print(precision_text(params))
    print(timings_text(since))
    if since > 0 and (rows := stage_times(since)):  # a whole `make run`: what the next plan learns DVC's share from
        wall = time.time() - since
        record_pipeline(wall, sum(r.work for r in rows), sum(r.command for r in rows), len(rows))
