"""Per-stage timings: the work inside a stage's MLflow runs against the whole stage command."""

from __future__ import annotations

import json

from xstilts import hardware, timing
from xstilts.summary import timings_text


def test_work_and_command_lines_join_per_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    clock = iter([100.0, 130.0, 155.0, 160.0])
    monkeypatch.setattr(timing.time, "time", lambda: next(clock))
    monkeypatch.setenv("DVC_STAGE", "target-multiemo-none")
    timing.record("work", 25.0, ok=True)  # the entry point's MLflow run, at t=100
    timing.record("command", 40.0, ok=True)  # `xstilts run`, started at t=90, ended at t=130
    monkeypatch.setenv("DVC_STAGE", "validate-udhr")
    timing.record("work", 4.0, ok=False)
    timing.record("command", 9.0, ok=False)
    monkeypatch.delenv("DVC_STAGE")
    timing.record("work", 99.0, ok=True)  # a run by hand (not under DVC): not part of the pipeline's table

    rows = timing.stage_times(since=0)
    assert [(r.stage, r.work, r.command, r.ok) for r in rows] == [
        ("target-multiemo-none", 25.0, 40.0, True),
        ("validate-udhr", 4.0, 9.0, False),
    ]
    assert timing.stage_times(since=150) == [rows[1]]
    text = timings_text(since=60.0, now=160.0)  # 100 s of wall time, 29 s of work
    assert "validate-udhr" in text and "FAILED" in text
    row = [line.split()[1:] for line in text.splitlines() if "target-multiemo-none" in line]
    assert row == [["25.0", "15.0", "40.0"]]  # work, start-up (the command outside its work), the whole command
    assert "pipeline wall time 100 s: work 29 s, overhead 71 s (71%: stage commands 20 s, DVC 51 s)" in text
    assert f"machine: {hardware.cpu_model()} (" in text  # the numbers above are this machine's
    (tmp_path / "logs/plan.json").write_text(json.dumps({"seconds": 80.0, "stages": 2, "at": 0}))
    assert "plan estimated 80 s for 2 stages; actual 100 s (1.25x the estimate)" in timings_text(60.0, now=160.0)
