"""Great Expectations checks on a prepared task: one suite per family, run on all its splits at once.

The Parquet files of the splits are concatenated (ids must be checked across splits), row-wise rules
that GE cannot state directly (a span inside its context, as many tags as tokens) become boolean or
count helper columns computed with pandas, and GE expects those to hold. Per-language row counts are
checked on a second, small table (one row per language). :func:`run_validation` is the pipeline's
``validate`` phase: it saves the report under ``reports/validation/`` and fails the MLflow run (and
so the DVC stage) when an expectation does not hold.

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
from typing import Any

import pyarrow.parquet as pq

from xstilts.atomic import write_text_atomic
from xstilts.errors import XstiltsError
from xstilts.tasks.base import SCHEMAS, SPLITS, Family, Task

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5  # offending ids (or languages) kept per failure
_PARTIAL = 20  # how many unexpected rows GE returns per expectation
FILE_SPLIT = "file_split"  # helper column: the split whose Parquet file the row came from
UNBOUNDED = 2**62

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


# --------------------------------------------------------------------------------------------- data


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def _list(value: Any) -> list | None:
    return list(value) if value is not None else None


def load_prepared(prepared: Path, family: Family) -> tuple[Any, list[str]]:
    """All splits of a prepared task as one pandas frame (plus ``file_split``), and the missing columns."""
    import pandas as pd
    import pyarrow as pa

    prepared = Path(prepared)
    expected = SCHEMAS[family]
    tables = []
    missing: list[str] = []
    for split in SPLITS:
        path = prepared / f"{split}.parquet"
        if not path.is_file():
            raise XstiltsError(f"Prepared data {path} is missing; run `dvc repro prepare-{prepared.name}` first.")
        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise XstiltsError(
                f"Prepared data {path} cannot be read ({type(exc).__name__}); prepare it again."
            ) from exc
        missing += [n for n in expected.names if n not in table.schema.names and n not in missing]
        tables.append((split, table))
    if missing:
        return pd.DataFrame({n: pd.Series(dtype=object) for n in expected.names if n not in missing}), missing
    frames = []
    for split, table in tables:
        table = table.select(expected.names)
        try:
            table = table.cast(expected)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise XstiltsError(
                f"Prepared data {prepared / (split + '.parquet')} does not have the {family.value} schema ({exc})."
            ) from exc
        df = pd.DataFrame({n: pd.Series(table.column(n).to_pylist(), dtype=object) for n in expected.names})
        df[FILE_SPLIT] = split
        frames.append(df)
    return pd.concat(frames, ignore_index=True), []


def add_helpers(df: Any, task: Task) -> Any:
    """Add the helper columns of ``task``'s family (row-wise rules) and drop the list-valued columns."""
    family = task.family
    ids = df["id"].tolist()
    splits_of: dict[Any, set] = {}
    for i, s in zip(ids, df[FILE_SPLIT].tolist(), strict=True):
        splits_of.setdefault(i, set()).add(s)
    df["id_in_one_split"] = [len(splits_of[i]) == 1 for i in ids]

    if family == Family.CLASSIFICATION:
        pass  # all its rules are on plain columns
    elif family == Family.MULTIPLE_CHOICE:
        choices = [_list(c) for c in df["choices"].tolist()]
        df["n_choices"] = [len(c) if c is not None else 0 for c in choices]
        df["no_empty_choice"] = [c is not None and all(not _blank(x) for x in c) for c in choices]
        df["has_context_or_question"] = [
            not (_blank(c) and _blank(q)) for c, q in zip(df["context"].tolist(), df["question"].tolist(), strict=True)
        ]
    elif family == Family.EXTRACTIVE_QA:
        texts = [_list(t) or [] for t in df["answers_text"].tolist()]
        starts = [_list(s) or [] for s in df["answers_start"].tolist()]
        contexts = [_s(c) or "" for c in df["context"].tolist()]
        df["n_answers"] = [len(t) for t in texts]
        df["answers_aligned"] = [len(t) == len(s) for t, s in zip(texts, starts, strict=True)]

        def inside(c: str, ts: list, ss: list) -> bool:
            return all(
                isinstance(t, str) and t and s is not None and 0 <= s and s + len(t) <= len(c)
                for t, s in zip(ts, ss, strict=False)
            )

        def matches(c: str, ts: list, ss: list) -> bool:
            return all(
                isinstance(t, str) and s is not None and s >= 0 and c[s : s + len(t)] == t
                for t, s in zip(ts, ss, strict=False)
            )

        df["answer_span_inside_context"] = [inside(*x) for x in zip(contexts, texts, starts, strict=True)]
        df["answer_span_matches"] = [matches(*x) for x in zip(contexts, texts, starts, strict=True)]
    elif family == Family.TAGGING:
        tokens = [_list(t) for t in df["tokens"].tolist()]
        tags = [_list(t) for t in df["tags"].tolist()]
        df["n_tokens"] = [len(t) if t is not None else 0 for t in tokens]
        df["tags_aligned"] = [
            a is not None and b is not None and len(a) == len(b) for a, b in zip(tokens, tags, strict=True)
        ]
        df["no_empty_token"] = [t is not None and all(not _blank(x) for x in t) for t in tokens]
        if task.labels:
            known = set(task.labels)
            df["tags_in_label_set"] = [t is not None and all(x in known for x in t) for t in tags]
    elif family == Family.BITEXT:
        df["text_differs_from_en_text"] = [
            _s(a) is None or _s(b) is None or a.strip() != b.strip()
            for a, b in zip(df["text"].tolist(), df["en_text"].tolist(), strict=True)
        ]
    list_columns = [f.name for f in SCHEMAS[family] if str(f.type).startswith("list")]
    return df.drop(columns=list_columns)


def language_counts(df: Any, count_bounds: dict[str, tuple[int | None, int | None]] | None) -> Any:
    """One row per language (present, or bounded): its row count over all splits and its bounds."""
    import pandas as pd

    present = df["language"].dropna().value_counts().to_dict() if len(df) else {}
    bounds = dict(count_bounds) if count_bounds is not None else {}
    rows = []
    for lang in sorted(set(present) | set(bounds), key=str):
        lo, hi = bounds.get(lang, (1, None))
        rows.append(
            {
                "language": str(lang),
                "rows": int(present.get(lang, 0)),
                "min_rows": int(lo if lo is not None else 0),
                "max_rows": int(hi if hi is not None else UNBOUNDED),
            }
        )
    return pd.DataFrame(rows, columns=["language", "rows", "min_rows", "max_rows"])


# ------------------------------------------------------------------------------------------- suites


def _non_empty(gx: Any, column: str, why: str) -> list:
    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=column, description=f"{column} must be given ({why})"),
        gx.expectations.ExpectColumnValuesToMatchRegex(
            column=column, regex=r"\S", description=f"{column} must not be empty or blank ({why})"
        ),
    ]


def _all_true(gx: Any, column: str, why: str) -> Any:
    return gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=[True], description=why)


def row_expectations(task: Task, missing: list[str]) -> list:
    """The expectations on the rows of ``task`` (its family's suite), in the order failures are reported."""
    import great_expectations as gx

    E = gx.expectations
    columns = SCHEMAS[task.family].names
    if missing:
        return [
            E.ExpectTableColumnsToMatchSet(
                column_set=columns,
                exact_match=False,
                description=f"the {task.family.value} schema needs {', '.join(columns)}",
            )
        ]
    exps = [
        E.ExpectTableRowCountToBeBetween(min_value=1, description="a prepared task must hold at least one row"),
        *_non_empty(gx, "id", "every row has an id"),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["id", "language"], description="an id appears once per language, over all splits"
        ),
        _all_true(gx, "id_in_one_split", "rows sharing an id (translations) must all be in one split"),
        *_non_empty(gx, "language", "the language of the row"),
        *_non_empty(gx, "source", "the registry package the row comes from"),
        E.ExpectColumnValuesToNotBeNull(column="split", description="split must be given"),
        E.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS), description="split is train/dev/test"),
        E.ExpectColumnPairValuesToBeEqual(
            column_A="split", column_B=FILE_SPLIT, description="split must name the Parquet file the row is in"
        ),
    ]
    family = task.family
    if family == Family.CLASSIFICATION:
        exps += _non_empty(gx, "text_a", "the text to classify")
        exps.append(
            E.ExpectColumnValuesToMatchRegex(
                column="text_b", regex=r"\S", description="text_b, when given, must not be empty or blank"
            )
        )
        exps.append(E.ExpectColumnValuesToNotBeNull(column="label", description="every row has a label"))
        if task.labels:
            exps.append(
                E.ExpectColumnValuesToBeInSet(
                    column="label", value_set=list(task.labels), description=f"labels are {', '.join(task.labels)}"
                )
            )
    elif family == Family.MULTIPLE_CHOICE:
        exps += [
            E.ExpectColumnValuesToNotBeNull(column="context", description="context must be a string"),
            E.ExpectColumnValuesToNotBeNull(column="question", description="question must be a string"),
            _all_true(gx, "has_context_or_question", "question may be empty only when the context is not"),
            E.ExpectColumnValuesToBeBetween(
                column="n_choices", min_value=2, description="choices must hold at least 2 options"
            ),
            _all_true(gx, "no_empty_choice", "no choice may be empty or blank"),
            E.ExpectColumnValuesToNotBeNull(column="label", description="every row has a label"),
            E.ExpectColumnValuesToBeBetween(column="label", min_value=0, description="label is a choice index >= 0"),
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="n_choices", column_B="label", description="label must index into choices (< n_choices)"
            ),
        ]
    elif family == Family.EXTRACTIVE_QA:
        exps += [
            *_non_empty(gx, "context", "the passage answers are taken from"),
            *_non_empty(gx, "question", "the question asked"),
            E.ExpectColumnValuesToBeBetween(
                column="n_answers",
                min_value=0 if getattr(task, "unanswerable", False) else 1,
                description="every row has an answer (SQuAD 2.0-style tasks may have none)",
            ),
            _all_true(gx, "answers_aligned", "answers_text and answers_start must have the same length"),
            _all_true(gx, "answer_span_inside_context", "every answer span must be non-empty and inside its context"),
            _all_true(gx, "answer_span_matches", "context[start:start+len(text)] must equal the answer text"),
        ]
    elif family == Family.TAGGING:
        exps += [
            E.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=1, description="every row has tokens"),
            _all_true(gx, "tags_aligned", "tags must have one tag per token"),
            _all_true(gx, "no_empty_token", "no token may be empty or blank"),
        ]
        if task.labels:
            exps.append(_all_true(gx, "tags_in_label_set", f"every tag must be one of the {len(task.labels)} labels"))
    elif family == Family.BITEXT:
        exps += [
            *_non_empty(gx, "text", "the sentence in its language"),
            *_non_empty(gx, "en_text", "its English translation"),
            _all_true(gx, "text_differs_from_en_text", "text must differ from en_text (not an untranslated copy)"),
        ]
    return exps


def count_expectations() -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="rows",
            column_B="min_rows",
            or_equal=True,
            description="every language needs at least its min_rows rows (count_bounds; default 1)",
        ),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="max_rows",
            column_B="rows",
            or_equal=True,
            description="no language may have more than its max_rows rows (count_bounds)",
        ),
    ]


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
    task: Task, prepared: Path, count_bounds: dict[str, tuple[int, int]] | None = None
) -> ValidationReport:
    """Run ``task``'s family suite on the Parquet splits under ``prepared``; nothing is written.

    ``count_bounds`` maps a language to the (min, max) number of rows it must have over all splits
    (``None`` for an open end); a language it names that has no row fails. Without it, every language
    present needs at least one row.
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
        tables.append(("language_counts", language_counts(df, count_bounds), count_expectations(), ["language"]))
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


def report_path(task_name: str) -> Path:
    from xstilts.paths import repo_root

    return repo_root() / "reports" / "validation" / f"{task_name}.json"


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))


def run_validation(
    task_name: str, count_bounds: dict[str, tuple[int, int]] | None = None, source: str = "offline"
) -> ValidationReport:
    """The ``validate`` phase: validate, save ``reports/validation/<task>.json``, log it to an MLflow run.

    Bounds come from ``count_bounds``, else from a ``count_bounds`` attribute of the task if it has one.
    Raises :class:`XstiltsError` with :meth:`ValidationReport.message` when an expectation fails, after the
    report is saved and logged, so the run ends FAILED with that reason and the DVC stage fails.
    """
    import mlflow

    from xstilts.paths import prepared_dir
    from xstilts.tasks import get_task
    from xstilts.tracking import phase_run

    task = get_task(task_name, source=source)
    bounds = count_bounds if count_bounds is not None else getattr(task, "count_bounds", None)
    with phase_run("validate", {"task": task_name}, {"task": task_name}):
        report = validate_task(task, prepared_dir(task_name), bounds)
        path = report_path(task_name)
        _write_json_atomic(path, report.to_dict())
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
