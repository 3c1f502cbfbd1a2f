"""A Markdown data card for the prepared tasks: where each comes from, its license, and what is in it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xstilts.data.splits import SPLITS, read_split
from xstilts.families.base import sort_key

if TYPE_CHECKING:
    from xstilts.tasks.base import Task

CARD_NOTE = (
    "Generated from the prepared Parquet splits by `xstilts.data.card`; do not edit by hand.\n"
    "Every dataset comes from a pinned registry package; licenses are quoted as the task modules state them."
)


def _cell(value: Any) -> str:
    """A value as a Markdown table cell (pipes escaped, missing as an em dash)."""
    if value is None or value == "":
        return "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _read_splits(prepared: Path) -> dict[str, list[dict[str, Any]]]:
    return {split: read_split(prepared, split).to_pylist() for split in SPLITS}


def task_section(task: Task, prepared: Path) -> list[str]:
    """The card's section for one task, as Markdown lines."""
    from xstilts.data.sources import PACKAGES

    data = _read_splits(Path(prepared))
    packages = [PACKAGES[k].spec if k in PACKAGES else f"{k} (unknown package)" for k in task.packages]
    lines = [f"## {task.name}", ""]
    if task.description:
        lines += [task.description, ""]
    lines += [
        f"- Family: {task.family.value}",
        f"- Role: {task.role.value}",
        f"- Metric: {task.metric}",
        f"- Source package(s): {', '.join(f'`{p}`' for p in packages) or '—'}",
        f"- License (as stated): {task.license or 'not stated'}",
        f"- Stands for: {task.stands_for or '—'}",
        f"- Languages: {', '.join(task.languages) or '—'}",
        f"- Domains: {', '.join(task.domains) or '—'}",
    ]
    if task.cleaned:
        lines.append(f"- Cleaned: {task.cleaned}")
    if task.labels:
        lines.append(f"- Labels: {', '.join(task.labels)}")
    lines.append("")

    counts: Counter = Counter()
    for split, rows in data.items():
        for r in rows:
            counts[(r.get("language"), r.get("domain"), split)] += 1
    empty = [s for s in SPLITS if not data[s]]
    if empty:
        plural = "s" if len(empty) > 1 else ""
        lines += [f"> Note: no rows in split{plural} {', '.join(empty)}.", ""]

    lines += ["### Rows per split, language and domain", ""]
    keys = sorted({(lang, dom) for lang, dom, _ in counts}, key=lambda k: (sort_key(k[0]), sort_key(k[1])))
    table_rows = []
    for lang, dom in keys:
        per = [counts[(lang, dom, s)] for s in SPLITS]
        table_rows.append([lang, dom, *per, sum(per)])
    totals = [len(data[s]) for s in SPLITS]
    table_rows.append(["**all**", "", *totals, sum(totals)])
    lines += _table(["language", "domain", *SPLITS, "total"], table_rows) + [""]

    title, first = task.spec.counts
    if not title:  # retrieval: no labels to count
        return lines
    per_split = {s: task.spec.label_counts(data[s]) for s in SPLITS}
    total: Counter = sum(per_split.values(), Counter())
    values = task.spec.count_order(total, task.labels)
    if len(values) < len(total):
        title += f" (top {len(values)}; {len(total) - len(values)} more {first}s not shown)"
    lines += [f"### {title}", ""]
    rows = [[v, *[per_split[s][v] for s in SPLITS], total[v]] for v in values]
    lines += _table([first, *SPLITS, "total"], rows) + [""]
    return lines


def task_card(task: Task, prepared: Path) -> str:
    """The data card of one task (``data/cards/<task>.md``, written by the validate stage)."""
    return "\n".join(["# Data card", "", CARD_NOTE, "", *task_section(task, Path(prepared))]).rstrip() + "\n"
