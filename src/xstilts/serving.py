"""Serve a trained target classifier as an MLflow pyfunc model: raw text in any language -> label and probabilities.

The logged model carries the xstilts model folder as an artifact and the ``xstilts`` package as code, so a
client needs only the pinned pip requirements (not xstilts itself) to run
``mlflow.pyfunc.load_model("models:/xstilts-<task>@champion").predict(pd.DataFrame({"text": [...]}))``.
"""

from __future__ import annotations

import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from xstilts.errors import XstiltsError

BATCH_SIZE = 32
DEFAULT_MAX_LENGTH = 256
PACKAGE_DIR = Path(__file__).resolve().parent
SERVING_REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "pandas", "numpy")


class ClassifierModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper around one classification head of an xstilts model folder."""

    def load_context(self, context) -> None:
        from xstilts.modeling import load_model

        self.tokenizer, self.model, self.meta = load_model(Path(context.artifacts["model_dir"]))
        self.model.eval()
        self.task = _head_task(self.meta)
        self.labels = next(h["labels"] for h in self.meta["heads"] if h["task"] == self.task)
        self.max_length = int(self.meta.get("max_length") or DEFAULT_MAX_LENGTH)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        # The pd.DataFrame hint only tells MLflow not to infer a signature from it; lists of strings work too.
        import torch

        texts, texts_b = _texts(model_input)
        batch_size = int((params or {}).get("batch_size", BATCH_SIZE))
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                args = [texts[start : start + batch_size]]
                if texts_b is not None:
                    args.append(texts_b[start : start + batch_size])
                enc = self.tokenizer(
                    *args, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
                )
                logits = self.model(self.task, enc["input_ids"], enc["attention_mask"])
                chunks.append(torch.softmax(logits.float(), dim=-1))
        probs = torch.cat(chunks).numpy() if chunks else torch.empty(0, len(self.labels)).numpy()
        best = probs.argmax(-1)
        out = pd.DataFrame(
            {"label": [self.labels[i] for i in best], "score": probs.max(-1, initial=0.0).astype("float64")}
        )
        for j, label in enumerate(self.labels):
            out[f"prob_{label}"] = probs[:, j].astype("float64")
        return out


def _head_task(meta: dict) -> str:
    tasks = [h["task"] for h in meta["heads"]]
    if meta.get("task"):
        if meta["task"] not in tasks:
            raise XstiltsError(f"The model folder names task {meta['task']!r} but has heads only for {tasks}.")
        return meta["task"]
    if len(tasks) != 1:
        raise XstiltsError(f"The model folder has {len(tasks)} heads ({tasks}); serving needs exactly one.")
    return tasks[0]


def _texts(model_input) -> tuple[list[str], list[str] | None]:
    """``text`` (and optional ``text_b``) columns of a DataFrame, or a plain list/Series of strings."""
    if isinstance(model_input, str):
        return [model_input], None
    if isinstance(model_input, pd.Series):
        model_input = model_input.tolist()
    if isinstance(model_input, dict):
        model_input = pd.DataFrame(model_input)
    if isinstance(model_input, list | tuple):
        return [_str(x) for x in model_input], None
    if isinstance(model_input, pd.DataFrame):
        if "text" in model_input.columns:
            col_a = model_input["text"]
        elif len(model_input.columns) == 1:
            col_a = model_input.iloc[:, 0]
        else:
            raise XstiltsError("The input needs a `text` column (and `text_b` for sentence-pair tasks).")
        texts_b = None
        if "text_b" in model_input.columns and model_input["text_b"].notna().any():
            texts_b = [_str(x) for x in model_input["text_b"]]
        return [_str(x) for x in col_a], texts_b
    raise XstiltsError(f"Unsupported input type {type(model_input).__name__}; pass a DataFrame with a `text` column.")


def _str(value) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def pip_requirements() -> list[str]:
    """The installed versions of the serving dependencies, pinned (local tags such as ``+cpu`` dropped)."""
    pins = []
    for name in SERVING_REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def signature_for(labels: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("string", "text"), ColSpec("string", "text_b", required=False)])
    outputs = Schema(
        [ColSpec("string", "label"), ColSpec("double", "score")] + [ColSpec("double", f"prob_{x}") for x in labels]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def log_classifier(model_dir: Path, task: str, run_id: str) -> str:
    """Log ``model_dir`` as the pyfunc model "model" of run ``run_id`` (finished or not); return its model URI.

    The registry calls this for a run it promotes, so MLflow holds a copy of registered models only.
    """
    import tempfile

    from xstilts.modeling import read_meta

    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    heads = {h["task"]: h for h in meta["heads"]}
    if task not in heads:
        raise XstiltsError(f"The model folder {model_dir} has no head for task {task!r} (it has {sorted(heads)}).")
    if meta.get("task", task) != task or (len(heads) != 1 and "task" not in meta):
        raise XstiltsError(f"The model folder {model_dir} serves {_head_task(meta)!r}, not {task!r}.")
    with tempfile.TemporaryDirectory(prefix="xstilts-pyfunc-") as tmp, warnings.catch_warnings():
        # The signature is explicit; an input example would make MLflow load and run the model once more.
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        mlflow.pyfunc.save_model(
            str(Path(tmp) / "model"),
            python_model=ClassifierModel(),
            artifacts={"model_dir": str(model_dir)},
            code_paths=[str(PACKAGE_DIR)],
            pip_requirements=pip_requirements(),
            signature=signature_for(heads[task]["labels"]),
            metadata={"xstilts_task": task, "labels": heads[task]["labels"]},
        )
        mlflow.MlflowClient().log_artifacts(run_id, str(Path(tmp) / "model"), artifact_path="model")
    return f"runs:/{run_id}/model"
