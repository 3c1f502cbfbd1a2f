"""What a prepared task must satisfy: its splits as one frame with helper columns, and its family's expectations.

Row-wise rules that Great Expectations cannot state directly (a span inside its context, as many tags as tokens)
become boolean or count helper columns computed with pandas, and GE expects those to hold; per-language row
counts are checked on a second, small table (one row per language). :mod:`xstilts.data.validation` runs them.
Great Expectations and pandas are imported inside the functions (they take seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xstilts.data.splits import SPLITS, read_split
from xstilts.errors import XstiltsError
from xstilts.families import Family, spec
from xstilts.families.base import all_true, non_empty

if TYPE_CHECKING:
    from xstilts.tasks.base import Task

FILE_SPLIT = "file_split"  # helper column: the split whose Parquet file the row came from
UNBOUNDED = 2**62


# --------------------------------------------------------------------------------------------- data


def load_prepared(prepared: Path, family: Family) -> tuple[Any, list[str]]:
    """All splits of a prepared task as one pandas frame (plus ``file_split``), and the missing columns."""
    import pandas as pd
    import pyarrow as pa

    prepared = Path(prepared)
    expected = spec(family).schema
    tables = []
    missing: list[str] = []
    for split in SPLITS:
        table = read_split(prepared, split)
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
    ids = df["id"].tolist()
    splits_of: dict[Any, set] = {}
    for i, s in zip(ids, df[FILE_SPLIT].tolist(), strict=True):
        splits_of.setdefault(i, set()).add(s)
    df["id_in_one_split"] = [len(splits_of[i]) == 1 for i in ids]

    task.spec.add_helpers(df, task)
    list_columns = [f.name for f in task.schema if str(f.type).startswith("list")]
    return df.drop(columns=list_columns)


def language_counts(df: Any, count_bounds: dict[str, tuple[int | None, int | None]] | None, closed: bool) -> Any:
    """One row per language (present, or bounded): its row count over all splits and its bounds.

    A present language without bounds needs one row, or (``closed``: the bounds list every language the task
    expects) none: it is not the task's."""
    import pandas as pd

    present = df["language"].dropna().value_counts().to_dict() if len(df) else {}
    bounds = dict(count_bounds) if count_bounds is not None else {}
    rows = []
    for lang in sorted(set(present) | set(bounds), key=str):
        lo, hi = bounds.get(lang, (0, 0) if closed else (1, None))
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


def row_expectations(task: Task, missing: list[str]) -> list:
    """The expectations on the rows of ``task`` (its family's suite), in the order failures are reported."""
    import great_expectations as gx

    E = gx.expectations
    columns = task.schema.names
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
        *non_empty(gx, "id", "every row has an id"),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["id", "language"], description="an id appears once per language, over all splits"
        ),
        all_true(gx, "id_in_one_split", "rows sharing an id (translations) must all be in one split"),
        *non_empty(gx, "language", "the language of the row"),
        *non_empty(gx, "source", "the registry package the row comes from"),
        E.ExpectColumnValuesToNotBeNull(column="split", description="split must be given"),
        E.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS), description="split is train/dev/test"),
        E.ExpectColumnPairValuesToBeEqual(
            column_A="split", column_B=FILE_SPLIT, description="split must name the Parquet file the row is in"
        ),
    ]
    return exps + task.spec.expectations(gx, task)


def count_expectations() -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="rows",
            column_B="min_rows",
            or_equal=True,
            description="every language the task expects has at least its min_rows rows (a missing one has 0)",
        ),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="max_rows",
            column_B="rows",
            or_equal=True,
            description="no language has more than its max_rows rows (0 for a language the task does not expect)",
        ),
    ]
