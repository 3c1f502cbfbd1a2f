"""Multiple choice served: ``context``, ``question`` and a list of ``choices`` -> the ``choice``, its ``index``,
its ``score`` and every choice's probability (``probs``), scored as in evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import Array

from xstilts.families.base import softmax
from xstilts.serving.base import HeadModel, Served, column, frame, strings


class ChoiceModel(HeadModel):
    """Pyfunc wrapper around one multiple-choice head: one score per (context + question, choice) pair."""

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        df = frame(model_input)
        contexts = column(df, "context", "the situation or passage; may be empty when the question is not")
        questions = column(df, "question", "what is asked; may be empty when the context is not")
        choices = [strings(c) for c in df["choices"]] if "choices" in df.columns else None
        if choices is None:
            column(df, "choices", "a list of at least two options")
        probs: list[np.ndarray] = []
        if contexts:
            rows = {"context": contexts, "question": questions, "choices": choices, "label": [0] * len(contexts)}
            probs = [softmax(o) for o in self.outputs(rows, params)[1]]
        best = [int(p.argmax()) for p in probs]
        return pd.DataFrame(
            {
                "choice": [c[i] for c, i in zip(choices, best, strict=True)],
                "index": pd.Series(best, dtype="int64"),
                "score": pd.Series([float(p[i]) for p, i in zip(probs, best, strict=True)], dtype="float64"),
                "probs": [p.astype("float64").tolist() for p in probs],
            }
        )


def signature(labels: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("string", "context"), ColSpec("string", "question"), ColSpec(Array("string"), "choices")])
    outputs = Schema(
        [
            ColSpec("string", "choice"),
            ColSpec("long", "index"),
            ColSpec("double", "score"),
            ColSpec(Array("double"), "probs"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


EXAMPLE = pd.DataFrame(
    {
        "context": ["The man broke his toe."],
        "question": ["What was the cause?"],
        "choices": [["He dropped a hammer on his foot.", "He got a hole in his sock."]],
    }
)
SERVED = Served(ChoiceModel, signature, EXAMPLE)
