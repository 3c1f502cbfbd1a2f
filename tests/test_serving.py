"""The pyfunc classifier: registry round trip, same numbers as the model itself, loadable without xstilts installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from test_registry import LABELS, build_model_dir, fake_target_run
from xstilts.errors import XstiltsError
from xstilts.modeling import load_model
from xstilts.registry import promote
from xstilts.serving import ClassifierModel, log_head_model

TEXTS = ["the hotel was clean", "pokój był brudny", "人人生而自由"]
CHAMPION = "models:/xstilts-multiemo@champion"


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir, tmp_path_factory) -> Path:
    return build_model_dir(tiny_encoder_dir, tmp_path_factory.mktemp("serving") / "model")


def expected_probs(model_dir: Path, texts: list[str], texts_b: list[str] | None = None) -> np.ndarray:
    tokenizer, model, meta = load_model(model_dir)
    args = [texts] if texts_b is None else [texts, texts_b]
    enc = tokenizer(*args, truncation=True, max_length=meta["max_length"], padding=True, return_tensors="pt")
    with torch.no_grad():
        return torch.softmax(model("multiemo", enc["input_ids"], enc["attention_mask"]), -1).numpy()


def check(out: pd.DataFrame, probs: np.ndarray) -> None:
    assert list(out.columns) == ["label", "score"] + [f"prob_{x}" for x in LABELS]
    assert len(out) == len(probs)
    assert set(out["label"]) <= set(LABELS)
    assert out["score"].between(0, 1).all()
    np.testing.assert_allclose(out[[f"prob_{x}" for x in LABELS]].to_numpy(), probs, atol=1e-5)
    np.testing.assert_allclose(out["score"], out[[f"prob_{x}" for x in LABELS]].max(axis=1))
    assert list(out["label"]) == [LABELS[i] for i in probs.argmax(-1)]


def test_champion_round_trip(store, model_dir, tmp_path):
    fake_target_run(model_dir, 0.6)
    assert promote("multiemo").promoted
    probs = expected_probs(model_dir, TEXTS)

    loaded = mlflow.pyfunc.load_model(CHAMPION)
    check(loaded.predict(pd.DataFrame({"text": TEXTS})), probs)
    assert [c.name for c in loaded.metadata.get_input_schema().inputs] == ["text", "text_b"]
    pairs = loaded.predict(pd.DataFrame({"text": TEXTS, "text_b": ["the room was dirty"] * 3}))
    check(pairs, expected_probs(model_dir, TEXTS, ["the room was dirty"] * 3))
    # the python model itself also takes a plain list of strings
    check(loaded.unwrap_python_model().predict(None, TEXTS), probs)
    assert len(loaded.predict(pd.DataFrame({"text": pd.Series([], dtype=str)}))) == 0

    # a client without xstilts on its path loads the champion from the packaged code
    (result,) = predict_without_xstilts({CHAMPION: {"text": TEXTS}}, tmp_path)
    check(pd.DataFrame(result), probs)


def predict_without_xstilts(requests: dict[str, dict], cwd: Path) -> list[dict]:
    """Each model URI's predictions for its input columns, from a fresh Python process that cannot import xstilts
    (the checkout and an editable install dropped from its path, as on a client machine)."""
    script = f"""
import importlib.util, json, os, sys
sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "xstilts"))]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
assert importlib.util.find_spec("xstilts") is None, importlib.util.find_spec("xstilts")
import mlflow, pandas as pd
for uri, columns in {requests!r}.items():
    out = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame(columns))
    print("RESULT" + json.dumps(out.to_dict("list")))
assert "xstilts" in sys.modules  # the packaged copy, imported by the models
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XSTILTS_ROOT")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line.removeprefix("RESULT")) for line in proc.stdout.splitlines() if line.startswith("RESULT")]


def test_log_head_model_errors(model_dir):
    with pytest.raises(XstiltsError, match="no head for task 'xnli'"):
        log_head_model(model_dir, "xnli", "no-such-run")


def test_predict_without_registry(model_dir):
    model = ClassifierModel()
    model.load_context(type("Context", (), {"artifacts": {"model_dir": str(model_dir)}, "model_config": {}})())
    texts = TEXTS * 30  # several batches
    check(
        model.predict(None, pd.DataFrame({"text": texts}), params={"batch_size": 7}), expected_probs(model_dir, texts)
    )


def test_served_predictions_equal_the_runs_own(project):
    """The champion served through pyfunc gives the labels and confidences the target run wrote for its test rows."""
    import pyarrow.parquet as pq

    from xstilts.pipeline.phases import run_target
    from xstilts.pipeline.promote import run_promote

    run_target("multiemo", "none")
    assert [r.promoted for r in run_promote(["multiemo"])] == [True]
    table = pd.read_csv(project / "predictions/target/multiemo-none.csv")
    rows = pq.read_table(project / "data/prepared/multiemo/test.parquet").to_pandas()
    merged = table[table["split"] == "test"].merge(rows, on=["id", "language"], validate="one_to_one")
    assert len(merged) == len(rows) > 0
    out = mlflow.pyfunc.load_model(CHAMPION).predict(pd.DataFrame({"text": merged["text_a"].tolist()}))
    assert list(out["label"]) == list(merged["prediction"])
    np.testing.assert_allclose(out["score"].to_numpy(), merged["confidence"].to_numpy(), atol=1e-5)
