"""Every trained model as an MLflow 3 LoggedModel, without a second copy of what DVC stores.

:func:`record_trained_model` tags the active run with the model folder and its fingerprint
(:attr:`~xstilts.tracking.Tag.MODEL_DIR`, :attr:`~xstilts.tracking.Tag.FINGERPRINT`) and creates an *external*
LoggedModel (``mlflow.create_external_model``: no artifacts in MLflow's store) naming the same folder, linked to
the run as its output; metrics logged with the returned ``model_id`` belong to both the run and the model. The
servable pyfunc copy is logged by :mod:`xstilts.registry` for registered versions only.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities import LoggedModelOutput

from xstilts.digest import fingerprint
from xstilts.errors import XstiltsError
from xstilts.paths import repo_root
from xstilts.tracking import Tag

MODEL_TYPE = "xstilts-{phase}"  # model_type of the LoggedModel: xstilts-intermediate, xstilts-target


def model_dir_tag(model_dir: Path) -> str:
    """The folder as runs name it: relative to the checkout when inside it, else absolute."""
    model_dir = Path(model_dir).resolve()
    root = repo_root().resolve()
    return str(model_dir.relative_to(root)) if model_dir.is_relative_to(root) else str(model_dir)


def record_trained_model(model_dir: Path, phase: str, name: str) -> str:
    """Tag the active run with ``model_dir`` and its fingerprint and record the folder as an external LoggedModel
    named ``name`` (a run's folder name; ``+`` and ``-`` are kept, ``/ : .`` become ``_``); return its model id."""
    run = mlflow.active_run()
    if run is None:
        raise XstiltsError("Recording a trained model needs its training run active; call it inside the run.")
    tags = {Tag.MODEL_DIR: model_dir_tag(model_dir), Tag.FINGERPRINT: fingerprint(model_dir)}
    mlflow.set_tags(tags)
    model = mlflow.create_external_model(
        name="".join("_" if c in "/:.%\"'" else c for c in name),
        source_run_id=run.info.run_id,
        tags={**tags, Tag.PHASE: phase},
        params={"model_dir": tags[Tag.MODEL_DIR], "model_fingerprint": tags[Tag.FINGERPRINT]},
        model_type=MODEL_TYPE.format(phase=phase),
        experiment_id=run.info.experiment_id,
    )
    mlflow.MlflowClient().log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id
