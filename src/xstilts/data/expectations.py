"""What a prepared task must satisfy: its splits as one frame with helper columns, and its family's expectations.

Row-wise rules that Great Expectations cannot state directly (a span inside its context, as many tags as tokens)
become boolean or count helper columns computed with pandas, and GE expects those to hold; per-language row
counts are checked on a second, small table (one row per language). :mod:`xstilts.data.validation` runs them.
Great Expectations and pandas are imported inside the functions (they take seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.data.splits import SPLITS, read_split
from xstilts.errors import XstiltsError
from xstilts.tasks.base import SCHEMAS, Family, Task

FILE_SPLIT = "file_split"  # helper column: the split whose Parquet file the row came from
UNBOUNDED = 2**62


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
