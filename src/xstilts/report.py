"""The end-of-run summary: the slice's results side by side and how long each stage took."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from xstilts.paths import main_root, metrics_dir

TIMINGS = "logs/timings.jsonl"


def record_timing(command: str, seconds: float, ok: bool) -> None:
    """Append one stage's wall time to ``logs/timings.jsonl`` (git-ignored; read by :func:`print_summary`)."""
    path = main_root() / TIMINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps({"command": command, "seconds": round(seconds, 1), "ok": ok, "at": time.time()}) + "\n")


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


def results_text() -> str:
    m = metrics_dir()
    parts = []
    for nli in sorted((m / "intermediate").glob("*.json")):
        values = _load(nli)
        parts.append(
            f"Intermediate {nli.stem}: English dev accuracy {100 * values.get('dev_accuracy_en', float('nan')):.1f}, "
            f"test {100 * values.get('test_accuracy_en', float('nan')):.1f}\n"
        )
    targets: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted((m / "target").glob("*.json")):
        task, init = path.stem.split("-", 1)
        targets.setdefault(task, {})[f"init={init}"] = _load(path)
    for task, columns in targets.items():
        parts.append(
            comparison_table(f"{task}: test accuracy (%) by language, trained on English", columns, "test_accuracy_")
        )
    retrieval: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted((m / "retrieve").glob("*.json")):
        task, encoder = path.stem.split("-", 1)
        retrieval.setdefault(task, {})["raw encoder" if encoder == "none" else f"after {encoder}"] = _load(path)
    for task, columns in retrieval.items():
        parts.append(
            comparison_table(f"{task}: retrieval top-1 accuracy (%) on test, to English", columns, "test_accuracy_")
        )
    for target, board in sorted(_load(m / "champions.json").items()):
        version = board.pop("version", "?")
        shown = ", ".join(f"{name} {100 * value:.1f}" for name, value in board.items())
        parts.append(f"Registry: xstilts-{target}@champion is version {version} ({shown})\n")
    return "\n".join(parts)


def timings_text(since: float) -> str:
    path = main_root() / TIMINGS
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    rows = [r for r in rows if r["at"] >= since]
    if not rows:
        return "Per-stage timings: no stage ran (DVC found everything up to date).\n"
    lines = ["Per-stage timings (this run):"]
    for r in rows:
        lines.append(f"  {r['command']:45s} {r['seconds']:8.1f} s{'' if r['ok'] else '  FAILED'}")
    lines.append(f"  {'total in stages':45s} {sum(r['seconds'] for r in rows):8.1f} s")
    return "\n".join(lines) + "\n"


def print_summary() -> None:
    since = float(os.environ.get("XSTILTS_RUN_STARTED", "0"))
    print(results_text())
    print(timings_text(since))
