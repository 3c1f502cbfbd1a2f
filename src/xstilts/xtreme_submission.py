"""Checking and zipping XTREME-format test predictions for a leaderboard submission (layout:
:mod:`xstilts.xtreme_format`): each file read the way XTREME's ``evaluate.py`` reads it, the missing tasks and
languages of a benchmark listed, the folder zipped."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.xtreme_format import BENCHMARKS, KIND, XCOPA_CHOICES, check_values, prediction_path

log = logging.getLogger(__name__)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise XstiltsError(f"{path} is not valid JSON ({exc}); write it again with write_xtreme_predictions.") from exc


def check_prediction_file(path: Path, folder: str) -> int:
    """Read ``path`` the way ``evaluate.py`` does and check its shape; returns the number of examples."""
    kind = KIND[folder][0]
    fix = "write it again with xstilts.xtreme_format"
    if kind in ("answer", "ranking"):
        data = _read_json(path)
        want = str if kind == "answer" else list
        if not isinstance(data, dict) or not data or not all(isinstance(v, want) for v in data.values()):
            shape = "{question id: answer text}" if kind == "answer" else "{query id: [candidate ids]}"
            raise XstiltsError(f"{path} is not a non-empty {shape} object; {fix}.")
        return len(data)
    lines = path.read_text(encoding="utf-8").splitlines()
    if kind == "tags":
        sentences, current = [], []
        for line in lines:
            if line.strip():
                current.append(line.strip())
            elif current:
                sentences.append(current)
                current = []
            else:
                raise XstiltsError(f"{path} has an empty sentence (two blank lines in a row, or a leading one); {fix}.")
        sentences += [current] if current else []
        if not sentences:
            raise XstiltsError(f"{path} holds no tags; {fix}.")
        check_values(folder, [t for s in sentences for t in s], str(path))
        return len(sentences)
    if kind == "pairs":
        if any(len(line.split("\t")) != 2 or not all(line.split("\t")) for line in lines):
            raise XstiltsError(f"{path} has a line that is not `source id<TAB>target id`; {fix}.")
        return len(lines)
    if not lines:
        raise XstiltsError(f"{path} is empty; {fix}.")
    if kind == "label":
        check_values(folder, [line.strip() for line in lines], str(path))
    elif kind == "index" and not all(line.strip().isascii() and line.strip().isdigit() for line in lines):
        raise XstiltsError(f"{path} has a line that is not a 0-based index; {fix}.")
    elif kind == "choice":
        for line in lines:
            try:
                label = json.loads(line).get("label")
            except (json.JSONDecodeError, AttributeError) as exc:
                raise XstiltsError(f"{path} has a line that is not a JSON object; {fix}.") from exc
            if isinstance(label, bool) or label not in range(XCOPA_CHOICES):
                raise XstiltsError(f"{path} has a line whose label is not 0 or 1; {fix}.")
    return len(lines)


def missing_predictions(pred_root: Path, benchmark: str = "xtreme-r") -> dict[str, list[str]]:
    """Per task of ``benchmark``, the languages whose prediction file is not under ``pred_root``."""
    if benchmark not in BENCHMARKS:
        raise XstiltsError(f"Unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}.")
    missing = {}
    for folder, languages in BENCHMARKS[benchmark].items():
        absent = [lang for lang in languages if not prediction_path(pred_root, folder, lang).is_file()]
        if absent:
            missing[folder] = absent
    return missing


def describe_missing(missing: Mapping[str, Sequence[str]], benchmark: str = "xtreme-r") -> str:
    """``xnli (sw); mewslix (all 11 languages)``."""
    return "; ".join(
        f"{folder} (all {len(langs)} languages)"
        if len(langs) == len(BENCHMARKS[benchmark][folder])
        else f"{folder} ({', '.join(langs)})"
        for folder, langs in missing.items()
    )


def bundle_submission(pred_root: Path, out_zip: Path, benchmark: str = "xtreme-r", allow_missing: bool = False) -> Path:
    """Check every prediction file of ``benchmark`` under ``pred_root`` and zip them as ``<task>/test-<lang>.<ext>``.

    Files of other tasks or languages are left out (and logged). Fails, naming what is missing, unless every
    task has every language or ``allow_missing`` asks for a partial zip (what is missing is then logged).
    The zip is reproducible (fixed timestamps, sorted entries).
    """
    pred_root, out_zip = Path(pred_root), Path(out_zip)
    if not pred_root.is_dir():
        raise XstiltsError(
            f"No predictions folder at {pred_root}; run the target and retrieve phases first (or pass --predictions)."
        )
    missing = missing_predictions(pred_root, benchmark)
    if missing and not allow_missing:
        raise XstiltsError(
            f"The {benchmark} submission is incomplete, predictions missing under {pred_root} for: "
            f"{describe_missing(missing, benchmark)}; run those tasks' target/retrieve phases first "
            "(or pass --allow-missing for a partial zip)."
        )
    if missing:
        log.warning("partial %s submission, missing: %s", benchmark, describe_missing(missing, benchmark))
    entries = [
        (folder, lang, prediction_path(pred_root, folder, lang))
        for folder, languages in sorted(BENCHMARKS[benchmark].items())
        for lang in sorted(languages)
        if lang not in missing.get(folder, ())
    ]
    if not entries:
        raise XstiltsError(f"No {benchmark} prediction files under {pred_root}; run the target/retrieve phases first.")
    for folder, _, path in entries:
        check_prediction_file(path, folder)
    expected = {path.resolve() for _, _, path in entries}
    extra = sorted(str(p.relative_to(pred_root)) for p in pred_root.glob("*/test-*.*") if p.resolve() not in expected)
    if extra:
        log.warning("left out of the %s submission: %s", benchmark, ", ".join(extra))
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_zip.parent, prefix=f".{out_zip.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for folder, _, path in entries:
                info = zipfile.ZipInfo(f"{folder}/{path.name}", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_zip)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out_zip
