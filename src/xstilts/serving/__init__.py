"""Serve a champion as an MLflow pyfunc model, one module per family (see each module for its columns).

``mlflow.pyfunc.load_model("models:/xstilts-<task>@champion").predict(pd.DataFrame(...))`` works in a process
without xstilts installed: the package travels with the model as code (:mod:`xstilts.serving.base`).
"""

from __future__ import annotations

from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.families import Family
from xstilts.serving import classification, extractive_qa, multiple_choice, retrieval, tagging
from xstilts.serving.base import Served, head_task, log_pyfunc, pip_requirements
from xstilts.serving.classification import ClassifierModel
from xstilts.serving.extractive_qa import QAModel
from xstilts.serving.multiple_choice import ChoiceModel
from xstilts.serving.retrieval import EmbedderModel
from xstilts.serving.tagging import TaggerModel

SERVED: dict[str, Served] = {
    Family.CLASSIFICATION: classification.SERVED,
    Family.MULTIPLE_CHOICE: multiple_choice.SERVED,
    Family.EXTRACTIVE_QA: extractive_qa.SERVED,
    Family.TAGGING: tagging.SERVED,
}


def log_head_model(model_dir: Path, task: str, run_id: str, config: dict | None = None) -> str:
    """Log ``task``'s head in the trained model folder ``model_dir`` as the pyfunc model of run ``run_id``; return
    its model URI. ``config``: the model config (extractive QA: ``allow_no_answer``)."""
    from xstilts.modeling import read_meta

    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    heads = {h["task"]: h for h in meta["heads"]}
    evaluated = meta.get("evaluated_on", [])  # a target family's model: one head, named for its training data
    if task not in heads and task not in evaluated:
        raise XstiltsError(f"The model folder {model_dir} has no head for task {task!r} (it has {sorted(heads)}).")
    served = head_task(meta)
    if served != task and task not in evaluated:
        raise XstiltsError(f"The model folder {model_dir} serves {served!r}, not {task!r}.")
    family, labels = heads[served]["family"], list(heads[served]["labels"])
    metadata = {"xstilts_task": task, "family": family, "labels": labels}
    return log_pyfunc(SERVED[family], {"model_dir": str(model_dir)}, run_id, labels, metadata, config)


def log_encoder_model(encoder_dir: Path, task: str, run_id: str, layer: int, max_length: int) -> str:
    """Log the encoder folder ``encoder_dir`` as the sentence-embedding pyfunc model of retrieval run ``run_id``."""
    config = {"layer": int(layer), "max_length": int(max_length)}
    metadata = {"xstilts_task": task, "family": "retrieval", **config}
    return log_pyfunc(retrieval.SERVED, {"encoder_dir": str(encoder_dir)}, run_id, [], metadata, config)


__all__ = [
    "SERVED",
    "ChoiceModel",
    "ClassifierModel",
    "EmbedderModel",
    "QAModel",
    "TaggerModel",
    "log_encoder_model",
    "log_head_model",
    "pip_requirements",
]
