"""Classification served: ``text`` (and ``text_b`` for pairs) in any language -> ``label``, ``score``, ``prob_<x>``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from xstilts.families.base import softmax
from xstilts.serving.base import HeadModel, Served, column, frame, text


class ClassifierModel(HeadModel):
    """Pyfunc wrapper around one classification head of an xstilts model folder."""

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        # The pd.DataFrame hint only tells MLflow not to infer a signature from it; lists of strings work too.
        df = frame(model_input, "text")
        if "text" not in df.columns and len(df.columns) == 1:
            df = df.rename(columns={df.columns[0]: "text"})
        texts = column(df, "text", "the text to classify; `text_b` for sentence-pair tasks")
        pair = "text_b" in df.columns and df["text_b"].notna().any()
        probs = np.zeros((0, len(self.labels)))
        if texts:
            rows = {"text_a": texts, "text_b": [text(x) for x in df["text_b"]] if pair else [None] * len(texts)}
            _, outputs = self.outputs({**rows, "label": [self.labels[0]] * len(texts)}, params)
            probs = softmax(np.stack(outputs))
        best = probs.argmax(-1)
        out = pd.DataFrame(
            {"label": [self.labels[i] for i in best], "score": probs.max(-1, initial=0.0).astype("float64")}
        )
        for j, label in enumerate(self.labels):
            out[f"prob_{label}"] = probs[:, j].astype("float64")
        return out


def signature(labels: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("string", "text"), ColSpec("string", "text_b", required=False)])
    outputs = Schema(
        [ColSpec("string", "label"), ColSpec("double", "score")] + [ColSpec("double", f"prob_{x}") for x in labels]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


SERVED = Served(ClassifierModel, signature, pd.DataFrame({"text": ["The staff were friendly.", "Pokój był brudny."]}))
