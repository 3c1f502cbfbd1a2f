"""Validation reports on disk, and the gate every training and retrieval run passes first.

:mod:`xstilts.data.validation` writes ``reports/validation/<task>.json`` (with the sha256 of the prepared data
it checked); :func:`require_validated` refuses data whose report is missing, failed, or of other data. This
module imports no Great Expectations, so the training stages read it and not the suites.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xstilts.atomic import write_text_atomic
from xstilts.digest import fingerprint
from xstilts.errors import XstiltsError


def report_path(task_name: str, root: Path | None = None) -> Path:
    """``reports/validation/<task>.json`` under ``root`` (default: the checkout)."""
    from xstilts.paths import repo_root

    return (root or repo_root()) / "reports" / "validation" / f"{task_name}.json"


def save_report(task_name: str, report: dict[str, Any], prepared: Path, root: Path | None = None) -> Path:
    """Write ``reports/validation/<task>.json``: the report and the fingerprint of the data it checked."""
    path = report_path(task_name, root)
    payload = {**report, "data_fingerprint": fingerprint(prepared)}
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))
    return path


def require_validated(task_name: str, prepared: Path) -> None:
    """Raise unless ``task_name``'s data under ``prepared`` passed validation as it is now."""
    path = report_path(task_name)
    fix = f"run `dvc repro validate-{task_name}` (or `xstilts validate --task {task_name}`)"
    if not path.exists():
        raise XstiltsError(f"The data of {task_name} has no validation report ({path}); {fix} before using it.")
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise XstiltsError(f"The validation report {path} is unreadable ({type(exc).__name__}); {fix}.") from exc
    if report.get("success") is not True:
        failed = ", ".join(f.get("expectation", "?") for f in report.get("failures", [])[:3]) or "no result"
        raise XstiltsError(f"The data of {task_name} failed validation ({failed}); fix it, then {fix}.")
    if report.get("data_fingerprint") != fingerprint(prepared):
        raise XstiltsError(f"The data of {task_name} changed since it was validated; {fix} before using it.")
