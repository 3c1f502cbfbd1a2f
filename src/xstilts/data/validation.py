"""Great Expectations checks on a prepared task: one suite per family, run on all its splits at once.

The Parquet files of the splits are concatenated (ids must be checked across splits) and checked against
the family's expectations (:mod:`xstilts.data.expectations`), per-language row counts on a second, small
table. :func:`run_validation` is the pipeline's ``validate`` phase: it saves the report under
``reports/validation/`` (with the sha256 of the data it checked, :mod:`xstilts.data.reports`, where the gate of
every training and retrieval run is) and fails the MLflow run (and so the DVC stage) when an expectation does
not hold.

Ids: rows that are translations of each other may share an id (MultiEmo does), so an id must be
unique per language, and all rows with one id must be in the same split (no translation leaks from
dev/test into train).

Great Expectations is imported lazily (it takes seconds), so importing this module is cheap.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xstilts.data.expectations import (
    FILE_SPLIT,
    add_helpers,
    count_expectations,
    language_counts,
    load_prepared,
    row_expectations,
)
from xstilts.data.reports import save_report
from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError

if TYPE_CHECKING:
    from xstilts.tasks.base import Task

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5  # offending ids (or languages) kept per failure
_PARTIAL = 20  # how many unexpected rows GE returns per expectation

_GX: dict[str, Any] = {}  # the one ephemeral context and its batch definitions, made on first use


@dataclass
class ValidationReport:
    """What :func:`validate_task` found: ``failures`` in suite order, and GE's own result (JSON-able).

    A failure is a dict: ``expectation`` (GE's name), ``column`` (or "a, b" for a column pair, "table"),
    ``table`` ("rows" or "language_counts"), ``split`` (the splits of the first 20 offending rows, comma
    separated), ``unexpected_count``, ``unit`` ("row", "language", ...), ``examples`` (up to 5 offending
    ids, "id (lang)" where languages share ids, or languages), ``description`` (the rule, in words),
    and ``error`` when GE could not evaluate the expectation.
    """

    task: str
    success: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    ge_result: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """One sentence: the first failing expectation, its column and up to 3 offending ids."""
        if self.success:
            n = self.statistics.get("evaluated_expectations", 0)
            return f"{self.task}: all {n} expectations hold."
        first = self.failures[0]
        count = first.get("unexpected_count")
        unit = first.get("unit", "row")
        what = f" for {count} {unit}{'' if count == 1 else 's'}" if isinstance(count, int) else ""
        if first.get("observed"):
            what = f" ({first['observed']})"
        examples = [str(e) for e in first.get("examples", [])][:3]
        more = len(first.get("examples", [])) > 3 or (len(examples) == 3 and isinstance(count, int) and count > 3)
        more = ", ..." if more else ""
        eg = f" (e.g. {', '.join(examples)}{more})" if examples else ""
        where = f" in {first['split']}" if first.get("split") else ""
        why = f": {first['description']}" if first.get("description") else ""
        if first.get("error"):
            why += f" (Great Expectations could not evaluate it: {first['error'][:200]})"
        others = len(self.failures) - 1
        tail = f"; {others} more expectation{'' if others == 1 else 's'} failed" if others else ""
        return f"{self.task}: {first['expectation']} on {first['column']} failed{what}{where}{eg}{why}{tail}."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------- validation


def _batch_definitions() -> dict[str, Any]:
    """One ephemeral GE context for the process, with a pandas asset for rows and one for language counts."""
    if not _GX:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("xstilts_prepared")
        _GX["context"] = context
        for name in ("rows", "language_counts"):
            asset = source.add_dataframe_asset(name=name)
            _GX[name] = asset.add_batch_definition_whole_dataframe(f"{name}_whole")
    return _GX


def _validate(name: str, df: Any, expectations: list, suite_name: str, index_columns: list[str]) -> Any:
    import great_expectations as gx

    definition = _batch_definitions()[name]  # first: a suite needs an active context to add expectations to
    suite = gx.ExpectationSuite(name=suite_name)
    for order, exp in enumerate(expectations):
        exp.meta = {**(exp.meta or {}), "order": order}
        suite.add_expectation(exp)
    batch = definition.get_batch(batch_parameters={"dataframe": df})
    result_format = {
        "result_format": "SUMMARY",
        "unexpected_index_column_names": index_columns,
        "partial_unexpected_count": _PARTIAL,
    }
    return batch.validate(suite, result_format=result_format)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _failure(result: dict[str, Any], table: str, df: Any, missing: list[str], shared: set) -> dict[str, Any]:
    """One failed expectation as a plain dict; ids that several languages share get their language appended."""
    config = result.get("expectation_config") or {}
    kind = config.get("type", "?")
    kwargs = config.get("kwargs") or {}
    if "column" in kwargs:
        column = kwargs["column"]
    elif "column_A" in kwargs:
        column = f"{kwargs['column_A']}, {kwargs['column_B']}"
    elif "column_list" in kwargs:
        column = ", ".join(kwargs["column_list"])
    else:
        column = "table"
    res = result.get("result") or {}
    key = "language" if table == "language_counts" else "id"
    examples: list[Any] = []
    split_names: list[str] = []
    for row in res.get("partial_unexpected_index_list") or []:
        if isinstance(row, dict):
            example = row.get(key)
            if key == "id" and example in shared and row.get("language") is not None:
                example = f"{example} ({row['language']})"
            if example not in examples and len(examples) < MAX_EXAMPLES:
                examples.append(example)
            if row.get(FILE_SPLIT) and row[FILE_SPLIT] not in split_names:
                split_names.append(row[FILE_SPLIT])
    count = res.get("unexpected_count")
    if kind == "expect_table_columns_to_match_set":
        examples, count = list(missing)[:MAX_EXAMPLES], len(missing)
        column = "table columns"
    elif kind == "expect_table_row_count_to_be_between":
        count = res.get("observed_value", len(df))
    failure = {
        "expectation": kind,
        "column": column,
        "table": table,
        "split": ", ".join(s for s in SPLITS if s in split_names),
        "unexpected_count": int(count) if count is not None else None,
        "unit": "language" if table == "language_counts" else "row",
        "examples": [str(e) for e in examples],
        "description": config.get("description") or "",
    }
    if kind == "expect_table_row_count_to_be_between":
        failure.update(unexpected_count=None, examples=[], observed=f"{count} rows in all splits")
    if kind == "expect_table_columns_to_match_set":
        failure["unit"] = "missing column"
    errors = [v.get("exception_message") for v in (result.get("exception_info") or {}).values() if isinstance(v, dict)]
    errors = [e for e in errors if e]
    if errors:
        failure["error"] = errors[0]
    return failure


def validate_task(
    task: Task, prepared: Path, count_bounds: dict[str, tuple[int, int | None]] | None = None, closed: bool = False
) -> ValidationReport:
    """Run ``task``'s family suite on the Parquet splits under ``prepared``; nothing is written.

    ``count_bounds`` maps a language to the (min, max) number of rows it must have over all splits
    (``None`` for an open end); a language it names that has no row fails. Other languages present need at
    least one row, or, ``closed``, fail (the bounds name every language the task expects).
    """
    df, missing = load_prepared(Path(prepared), task.family)
    if not missing:
        df = add_helpers(df, task)
    results: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    evaluated = successful = 0
    tables = [("rows", df, row_expectations(task, missing), ["id", "language", FILE_SPLIT] if not missing else [])]
    shared: set = set()
    if not missing and len(df):
        per_id = df.dropna(subset=["id"]).groupby("id")["language"].nunique(dropna=False)
        shared = set(per_id[per_id > 1].index)
    if not missing:
        counts = language_counts(df, count_bounds, closed)
        tables.append(("language_counts", counts, count_expectations(), ["language"]))
    for name, frame, expectations, index in tables:
        suite_name = f"{task.name}.{task.family.value}.{name}"
        result = _strip_volatile(_jsonable(_validate(name, frame, expectations, suite_name, index).to_json_dict()))
        results[name] = result
        ordered = sorted(
            result.get("results", []), key=lambda r: (r.get("expectation_config") or {}).get("meta", {}).get("order", 0)
        )
        for r in ordered:
            evaluated += 1
            if r.get("success"):
                successful += 1
            else:
                failures.append(_failure(r, name, frame, missing, shared))
    statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "rows": int(len(df)),
    }
    return ValidationReport(
        task=task.name, success=not failures, failures=failures, statistics=statistics, ge_result=results
    )


VOLATILE_KEYS = ("ge_load_time",)  # GX's batch marker with the wall-clock time of the load


def _strip_volatile(value: Any) -> Any:
    """``value`` without GX's timestamps, so that the same data gives a byte-identical report (a DVC out)."""
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    return value


def run_validation(
    task: Task, settings: dict[str, Any] | None = None, count_bounds: dict[str, tuple[int, int | None]] | None = None
) -> ValidationReport:
    """The ``validate`` phase: validate, save ``reports/validation/<task>.json``, log it to an MLflow run.

    The data must hold exactly the languages the task expects with its data ``settings`` (``data.<task>`` in
    params.yaml), each within the task's row bounds (:meth:`Task.count_bounds`), unless ``count_bounds`` is given.
    Raises :class:`XstiltsError` with :meth:`ValidationReport.message` when an expectation fails, after the
    report is saved and logged, so the run ends FAILED with that reason and the DVC stage fails.
    """
    import mlflow

    from xstilts.paths import prepared_dir
    from xstilts.tracking import Tag, phase_run

    task_name = task.name
    bounds = count_bounds if count_bounds is not None else task.count_bounds(settings or {})
    with phase_run("validate", {"task": task_name}, {Tag.TASK: task_name}):
        report = validate_task(task, prepared_dir(task_name), bounds, closed=count_bounds is None)
        path = save_report(task_name, report.to_dict(), prepared_dir(task_name))
        mlflow.log_artifact(str(path), artifact_path="validation")
        metrics: dict[str, float] = {"validation_success": 1.0 if report.success else 0.0}
        for result in (r for table in report.ge_result.values() for r in table.get("results", [])):
            kind = (result.get("expectation_config") or {}).get("type", "unknown")
            count = (result.get("result") or {}).get("unexpected_count")
            key = f"unexpected_{kind}"
            metrics[key] = metrics.get(key, 0.0) + float(count or 0)
        for failure in report.failures:  # table-level expectations (row count, columns) have no unexpected_count
            key = f"unexpected_{failure['expectation']}"
            if not metrics.get(key):
                metrics[key] = float(failure.get("unexpected_count") or 1)
        mlflow.log_metrics(metrics)
        if not report.success:
            raise XstiltsError(report.message())
    log.info("%s", report.message())
    return report
