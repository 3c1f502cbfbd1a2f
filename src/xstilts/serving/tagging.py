"""Tagging served (POS, NER): ``text`` (split into words and punctuation) or pre-split ``tokens`` -> ``tokens``,
``tags`` and each tag's probability ``scores``; a word cut off by the model's ``max_length`` has tag None."""

from __future__ import annotations

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import Array

from xstilts.errors import XstiltsError
from xstilts.families.base import softmax
from xstilts.families.tagging import words_from_tokens
from xstilts.serving.base import HeadModel, Served, column, frame, strings


def split_words(value: str) -> list[str]:
    """Words and runs of punctuation, as tokenizers' ``Whitespace`` pre-tokenizer splits them (``\\w+|[^\\w\\s]+``)."""
    from tokenizers.pre_tokenizers import Whitespace

    return [word for word, _ in Whitespace().pre_tokenize_str(value)]


class TaggerModel(HeadModel):
    """Pyfunc wrapper around one tagging head: one tag per word, from the word's first sub-token."""

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        df = frame(model_input, "text")
        if "tokens" in df.columns and df["tokens"].notna().all():
            words = [strings(t) for t in df["tokens"]]
        else:
            words = [split_words(t) for t in column(df, "text", "the sentence; or pre-split `tokens`")]
        if empty := [i for i, w in enumerate(words) if not w]:
            raise XstiltsError(f"Input row {empty[0]} has no words; send text with at least one word.")
        tags, scores = [], []
        if words:
            features, outputs = self.outputs(
                {"tokens": words, "tags": [[self.labels[0]] * len(w) for w in words]}, params
            )
            probs = [softmax(o) for o in outputs]
            tags, scores = words_from_tokens(features["word_index"], probs, [len(w) for w in words], self.labels)
        return pd.DataFrame({"tokens": words, "tags": tags, "scores": scores})


def signature(labels: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("string", "text", required=False), ColSpec(Array("string"), "tokens", required=False)])
    outputs = Schema(
        [ColSpec(Array("string"), "tokens"), ColSpec(Array("string"), "tags"), ColSpec(Array("double"), "scores")]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


SERVED = Served(TaggerModel, signature, pd.DataFrame({"text": ["The hotel was clean .", "Otel temizdi ."]}))
