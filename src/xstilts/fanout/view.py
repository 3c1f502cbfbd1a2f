"""What ``xstilts fanout`` shows: a live table of stages on a terminal (elsewhere a line per change), a summary."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table

STATES = ("waiting", "running", "here", "restored", "done", "retried", "failed", "skipped")


@dataclass
class Row:
    stage: str
    where: str  # "cluster" or "here" (the coordinator)
    state: str = "waiting"
    node: str = ""
    gpus: str = ""
    attempts: int = 0
    seconds: float = 0.0
    started: float = 0.0


class View:
    """The rows, drawn live on a terminal, or printed as a line per change (logs, tests)."""

    def __init__(self, rows: dict[str, Row], links: dict[str, str]) -> None:
        self.rows, self.started = rows, time.time()
        self.console = Console(file=sys.stdout)
        self.live = Live(console=self.console, auto_refresh=False) if self.console.is_terminal else None
        for name, url in links.items():
            self.console.print(f"{name}: {url}", highlight=False)

    def __enter__(self) -> View:
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.update(self._table(), refresh=True)
            self.live.stop()

    def set(self, stage: str, state: str, **fields: object) -> None:
        row = self.rows[stage]
        row.state = state
        for key, value in fields.items():
            setattr(row, key, value)
        if self.live:
            self.live.update(self._table(), refresh=True)
        else:
            node = f" on {row.node[:12]}" if row.node else ""
            took = f" ({row.seconds:.0f} s)" if row.seconds else ""
            print(f"[{time.time() - self.started:6.0f} s] {stage}: {state}{node}{took}", flush=True)

    def tick(self) -> None:
        if self.live:
            self.live.update(self._table(), refresh=True)

    def _table(self) -> Table:
        table = Table("stage", "where", "state", "node", "GPUs", "tries", "seconds", title="xstilts fanout")
        now = time.time()
        for row in self.rows.values():
            seconds = now - row.started if row.state == "running" and row.started else row.seconds
            shown = (row.node[:12], row.gpus, str(row.attempts or ""), f"{seconds:.0f}" if seconds else "")
            table.add_row(row.stage, row.where, row.state, *shown)
        counts = defaultdict(int)
        for row in self.rows.values():
            counts[row.state] += 1
        table.caption = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
        return table


def summary(rows: dict[str, Row], wall: float) -> list[str]:
    """Wall time, busy time per node, and the speed-up over running the same stages one after another."""
    busy: dict[str, float] = defaultdict(float)
    for row in rows.values():
        if row.seconds and row.state in ("done", "here", "restored"):
            busy[row.node or "coordinator"] += row.seconds
    total = sum(busy.values())
    lines = [f"fanout: {len(rows)} stages in {wall:.0f} s of wall time; the stages' own times add up to {total:.0f} s"]
    for node, seconds in busy.items():
        lines.append(f"  {node[:12]}: busy {seconds:.0f} s ({seconds / wall:.0%} of the wall time)")
    if wall > 0 and total > 0:
        lines.append(f"  speed-up over one after another: {total / wall:.2f}x")
    return lines
