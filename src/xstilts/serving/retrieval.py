"""A retrieval champion served: ``text`` in any language -> its L2-normalised mean-pooled ``embedding`` at the
``layer`` the run scored (``retrieve.layer``; -1 = last), from :func:`xstilts.retrieval.embedding.embed_layers`."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import Array

from xstilts.serving.base import Served, batch_size, column, frame


class EmbedderModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper around an encoder folder; model config ``layer`` and ``max_length`` are the run's."""

    def load_context(self, context) -> None:
        from transformers import AutoTokenizer

        from xstilts.encoder.loading import load_bare_encoder

        folder = Path(context.artifacts["encoder_dir"])
        self.tokenizer, self.encoder = AutoTokenizer.from_pretrained(folder), load_bare_encoder(folder)
        self.encoder.eval()
        self.layer = int(context.model_config["layer"])
        self.max_length = int(context.model_config["max_length"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from xstilts.retrieval.embedding import embed_layers

        df = frame(model_input, "text")
        texts = column(df, "text", "the sentences to embed")
        vectors = embed_layers(texts, self.tokenizer, self.encoder, (self.layer,), self.max_length, batch_size(params))
        rows = vectors[self.layer].astype("float64")
        return pd.DataFrame(
            {"embedding": [v.tolist() for v in rows], "layer": pd.Series([self.layer] * len(texts), dtype="int64")}
        )


def signature(labels: list[str]) -> ModelSignature:
    outputs = Schema([ColSpec(Array("double"), "embedding"), ColSpec("long", "layer")])
    return ModelSignature(inputs=Schema([ColSpec("string", "text")]), outputs=outputs)


SERVED = Served(
    EmbedderModel,
    signature,
    pd.DataFrame({"text": ["All human beings are born free.", "Alle Menschen sind frei geboren."]}),
    ("faiss-cpu",),
)
