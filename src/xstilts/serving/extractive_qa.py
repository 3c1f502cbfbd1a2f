"""Extractive QA served: ``question`` and ``context`` -> the answer ``text``, its character ``start`` in the context
(-1 for no answer) and its ``score`` (probability among the candidate spans), decoded as in evaluation."""

from __future__ import annotations

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from xstilts.families.extractive_qa import decode_qa_spans
from xstilts.serving.base import HeadModel, Served, column, frame


class QAModel(HeadModel):
    """Pyfunc wrapper around one extractive-QA head; ``allow_no_answer`` (model config): SQuAD 2.0 decoding."""

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        df = frame(model_input)
        questions = column(df, "question", "what is asked")
        contexts = column(df, "context", "the passage the answer is taken from")
        texts, starts, scores = [], [], []
        if questions:
            n = len(questions)
            rows = {"question": questions, "context": contexts, "answers_text": [[]] * n, "answers_start": [[]] * n}
            features, outputs = self.outputs(rows, params)
            texts, starts, scores = decode_qa_spans(
                contexts,
                features["example_index"],
                features["offsets"],
                outputs,
                allow_no_answer=bool(self.config.get("allow_no_answer", False)),
            )
        return pd.DataFrame(
            {"text": texts, "start": pd.Series(starts, dtype="int64"), "score": pd.Series(scores, dtype="float64")}
        )


def signature(labels: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("string", "question"), ColSpec("string", "context")])
    outputs = Schema([ColSpec("string", "text"), ColSpec("long", "start"), ColSpec("double", "score")])
    return ModelSignature(inputs=inputs, outputs=outputs)


EXAMPLE = pd.DataFrame(
    {
        "question": ["Where was the hotel?"],
        "context": ["The hotel was in the old town, near the river. The staff were friendly."],
    }
)
SERVED = Served(QAModel, signature, EXAMPLE)
