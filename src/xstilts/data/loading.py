"""Prepared Parquet splits, loaded through ``datasets``."""

from __future__ import annotations

import datasets

from xstilts.data.splits import read_split
from xstilts.errors import XstiltsError
from xstilts.paths import prepared_dir


def load_split(task: str, split: str) -> datasets.Dataset:
    """One split of a prepared task (all languages); fails clearly when it was not prepared."""
    table = read_split(prepared_dir(task), split)  # fails with one sentence when missing or unreadable
    if table.num_rows == 0:  # datasets' parquet builder fails on a file without rows
        return datasets.Dataset(table)
    path = prepared_dir(task) / f"{split}.parquet"
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset("parquet", data_files=str(path), split="train")
    except Exception as exc:
        raise XstiltsError(
            f"Prepared data at {path} cannot be read ({type(exc).__name__}); run `dvc repro prepare-{task}`."
        ) from exc
