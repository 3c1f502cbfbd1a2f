"""Prepared Parquet splits, loaded through ``datasets``."""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq

from xstilts.errors import XstiltsError
from xstilts.paths import prepared_dir


def load_split(task: str, split: str) -> datasets.Dataset:
    """One split of a prepared task (all languages); fails clearly when it was not prepared."""
    path = prepared_dir(task) / f"{split}.parquet"
    if not path.exists():
        raise XstiltsError(f"Prepared data for {task}/{split} is missing at {path}; run `dvc repro prepare-{task}`.")
    datasets.disable_progress_bars()
    try:
        if pq.ParquetFile(path).metadata.num_rows == 0:  # datasets' parquet builder fails on a file without rows
            return datasets.Dataset(pq.read_table(path))
        return datasets.load_dataset("parquet", data_files=str(path), split="train")
    except Exception as exc:
        raise XstiltsError(
            f"Prepared data at {path} cannot be read ({type(exc).__name__}); run `dvc repro prepare-{task}`."
        ) from exc
