"""What every pyfunc model shares: input frames, one head's logits from the family's own features, logging.

A logged model carries its model folder as an artifact and the ``xstilts`` package as code (``code_paths``), so a
client needs only the pinned pip requirements, not xstilts itself. Features are the family's
(:meth:`~xstilts.families.base.FamilySpec.tokenize`), logits come from
:func:`xstilts.training.evaluation.model_outputs`, as in evaluation, so served predictions equal the run's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature

from xstilts.errors import XstiltsError

BATCH_SIZE = 32
DEFAULT_MAX_LENGTH = 256
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # src/xstilts, shipped with every model as code
SERVING_REQUIREMENTS = (
    "mlflow",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "pandas",
    "numpy",
    "pyarrow",
    "datasets",
)


def pip_requirements(extra: Sequence[str] = ()) -> list[str]:
    """The installed versions of the serving dependencies, pinned (local tags such as ``+cpu`` dropped)."""
    pins = []
    for name in (*SERVING_REQUIREMENTS, *extra):
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def text(value: Any) -> str:
    """A cell as a string; None and NaN are empty."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def strings(value: Any) -> list[str]:
    """A list cell (a list, tuple or array from a JSON request) as a list of strings."""
    if value is None or isinstance(value, str) or (isinstance(value, float) and value != value):
        raise XstiltsError(f"Expected a list of strings, got {value!r}; send a JSON list.")
    return [text(x) for x in value]


def frame(model_input: Any, single: str | None = None) -> pd.DataFrame:
    """The input as a DataFrame: a DataFrame or dict as is; a string, Series or list as the column ``single``."""
    if isinstance(model_input, pd.DataFrame):
        return model_input
    if isinstance(model_input, dict):
        return pd.DataFrame(model_input)
    if single is not None:
        if isinstance(model_input, str):
            model_input = [model_input]
        if isinstance(model_input, pd.Series | list | tuple | np.ndarray):
            return pd.DataFrame({single: list(model_input)})
    raise XstiltsError(f"Unsupported input type {type(model_input).__name__}; pass a DataFrame with named columns.")


def column(df: pd.DataFrame, name: str, why: str) -> list[str]:
    if name not in df.columns:
        raise XstiltsError(f"The input needs a `{name}` column ({why}); it has {list(df.columns)}.")
    return [text(x) for x in df[name]]


def head_task(meta: dict) -> str:
    """The task whose head a model folder serves: the one it names, else its only head."""
    tasks = [h["task"] for h in meta["heads"]]
    if meta.get("task"):
        if meta["task"] not in tasks:
            raise XstiltsError(f"The model folder names task {meta['task']!r} but has heads only for {tasks}.")
        return meta["task"]
    if len(tasks) != 1:
        raise XstiltsError(f"The model folder has {len(tasks)} heads ({tasks}); serving needs exactly one.")
    return tasks[0]


def batch_size(params: dict | None) -> int:
    return int((params or {}).get("batch_size", BATCH_SIZE))


class HeadModel(mlflow.pyfunc.PythonModel):
    """One head of an xstilts model folder; subclasses turn input rows into the family's columns and decode."""

    def load_context(self, context) -> None:
        import datasets
        import torch

        from xstilts.families import spec
        from xstilts.modeling import load_model
        from xstilts.training.features import Collator

        datasets.disable_progress_bars()
        self.tokenizer, self.model, self.meta = load_model(Path(context.artifacts["model_dir"]))
        self.model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        self.task = head_task(self.meta)
        head = self.model.specs[self.task]
        self.labels, self.family = list(head.labels), spec(head.family)
        self.max_length = int(self.meta.get("max_length") or DEFAULT_MAX_LENGTH)
        self.stride = self.meta.get("doc_stride")
        self.collator = Collator(self.tokenizer, head.family)
        self.config = dict(getattr(context, "model_config", None) or {})

    def outputs(self, rows: dict[str, list], params: dict | None) -> tuple[Any, list[np.ndarray]]:
        """The family's features of ``rows`` (its canonical columns) and the head's logits per feature row."""
        import datasets

        from xstilts.training.evaluation import model_outputs

        n = len(next(iter(rows.values())))
        keys = {"id": [str(i) for i in range(n)], "language": [""] * n, "domain": [""] * n}
        ds = datasets.Dataset.from_dict({**keys, **rows})
        features = self.family.tokenize(ds, self.tokenizer, self.labels, self.max_length, self.stride)
        return features, model_outputs(self.model, self.task, features, self.collator, batch_size(params))


@dataclass(frozen=True)
class Served:
    """How one family is served: its pyfunc class, signature (from the head's labels) and input example."""

    model: Callable[[], mlflow.pyfunc.PythonModel]
    signature: Callable[[list[str]], ModelSignature]
    example: pd.DataFrame
    requirements: tuple[str, ...] = ()


def log_pyfunc(
    served: Served,
    artifacts: dict[str, str],
    run_id: str,
    labels: list[str],
    metadata: dict,
    config: dict | None = None,
) -> str:
    """Log ``served`` as a pyfunc LoggedModel "model" of run ``run_id`` (finished or not; the run's metrics are
    linked to it) with its signature and input example; return its ``models:/<model_id>`` URI."""
    from mlflow.models import Model

    info = Model.log(
        artifact_path=None,
        flavor=mlflow.pyfunc,
        name="model",
        run_id=run_id,
        python_model=served.model(),
        artifacts=artifacts,
        code_paths=[str(PACKAGE_DIR)],
        pip_requirements=pip_requirements(served.requirements),
        signature=served.signature(labels),
        input_example=served.example,
        metadata=metadata,
        model_config=config or None,
    )
    return info.model_uri
