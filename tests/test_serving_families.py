"""Every family's champion as a pyfunc model: the run's own decoding, loadable without xstilts, and served over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import datasets
import mlflow
import numpy as np
import pandas as pd
import pytest

from test_registry import build_model_dir, fake_target_run
from test_registry_families import POS_LABELS
from test_serving import predict_without_xstilts
from tiny import mean_pooled
from xstilts.families import spec
from xstilts.modeling import load_model
from xstilts.registry import promote
from xstilts.training.evaluation import evaluate
from xstilts.training.features import Collator

CONTEXT = "the hotel was clean and the staff were friendly . the room was dirty"
QA = {"question": ["was the hotel clean", "who were friendly"], "context": [CONTEXT, "the staff were friendly"]}
MC = {
    "context": ["the product arrived broken", ""],
    "question": ["what happened", "the room was dirty"],
    "choices": [["i waited three hours", "nobody helped me", "it works fine"], ["the service was terrible", "good"]],
}
WORDS = [["the", "hotel", "was", "clean"], ["pokój", "był", "brudny", "."]]
TEXTS = ["the hotel was clean", "das hotel war sauber und das personal freundlich"]


def own_evaluation(model_dir: Path, task: str, columns: dict, allow_no_answer: bool = False):
    """What the run's own evaluation decodes for these rows (as :mod:`xstilts.training.evaluation` does)."""
    tokenizer, model, meta = load_model(model_dir)
    head = model.specs[task]
    n = len(next(iter(columns.values())))
    rows = datasets.Dataset.from_dict(
        {"id": [str(i) for i in range(n)], "language": ["en"] * n, "domain": [""] * n, **columns}
    )
    features = spec(head.family).tokenize(rows, tokenizer, head.labels, meta["max_length"], meta.get("doc_stride"))
    return evaluate(model, task, rows, features, Collator(tokenizer, head.family), 4, allow_no_answer=allow_no_answer)


@pytest.fixture
def champions(store, tiny_encoder_dir, tmp_path) -> dict[str, Path]:
    """A promoted champion per family: multiple choice, extractive QA, tagging and retrieval."""
    folders = {
        "parsinlu_mc": build_model_dir(tiny_encoder_dir, tmp_path / "mc", "parsinlu_mc", "multiple_choice", []),
        "parsinlu_rc": build_model_dir(
            tiny_encoder_dir, tmp_path / "qa", "parsinlu_rc", "extractive_qa", [], doc_stride=4
        ),
        "pos_tr": build_model_dir(tiny_encoder_dir, tmp_path / "pos", "pos_tr", "tagging", POS_LABELS),
        "udhr": tiny_encoder_dir,
    }
    for task, folder in folders.items():
        phase = "retrieve" if task == "udhr" else "target"
        metric = "dev_f1_zeroshot" if task == "parsinlu_rc" else "dev_accuracy_zeroshot"
        fake_target_run(folder, 0.5, task=task, metric=metric, phase=phase)
        assert promote(task, phase=phase).promoted
    return folders


def check_qa(out: pd.DataFrame, model_dir: Path) -> None:
    own = own_evaluation(model_dir, "parsinlu_rc", {**QA, "answers_text": [[]] * 2, "answers_start": [[]] * 2})
    assert list(out["text"]) == own.prediction and all(out["text"])  # no null answer without allow_no_answer
    np.testing.assert_allclose(out["score"], own.confidence, atol=1e-6)
    for text, start, context in zip(out["text"], out["start"], QA["context"], strict=True):
        assert context[start : start + len(text)] == text if text else start == -1


def check_mc(out: pd.DataFrame, model_dir: Path) -> None:
    own = own_evaluation(model_dir, "parsinlu_mc", {**MC, "label": [0, 0]})
    assert list(out["index"].astype(str)) == own.prediction
    assert list(out["choice"]) == [c[i] for c, i in zip(MC["choices"], out["index"], strict=True)]
    np.testing.assert_allclose(out["score"], own.confidence, atol=1e-6)
    assert [len(p) for p in out["probs"]] == [3, 2] and np.allclose([sum(p) for p in out["probs"]], 1.0)


def check_tags(out: pd.DataFrame, model_dir: Path) -> None:
    own = own_evaluation(model_dir, "pos_tr", {"tokens": WORDS, "tags": [["NOUN"] * len(w) for w in WORDS]})
    assert [list(t) for t in out["tokens"]] == WORDS
    assert [list(t) for t in out["tags"]] == own.pred_tags and all(set(t) <= set(POS_LABELS) for t in out["tags"])


def check_embeddings(out: pd.DataFrame, encoder_dir: Path) -> None:
    vectors = np.stack([np.asarray(v) for v in out["embedding"]])
    np.testing.assert_allclose(vectors, mean_pooled(encoder_dir, TEXTS), atol=1e-5)  # plain transformers' vectors
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert list(out["layer"]) == [-1, -1]


CHECKS = {
    "parsinlu_rc": (QA, check_qa),
    "parsinlu_mc": (MC, check_mc),
    "pos_tr": ({"tokens": WORDS}, check_tags),
    "udhr": ({"text": TEXTS}, check_embeddings),
}


def test_every_family_round_trip(champions, tmp_path):
    uris = {task: f"models:/xstilts-{task}@champion" for task in CHECKS}
    for task, (columns, check) in CHECKS.items():
        model = mlflow.pyfunc.load_model(uris[task])
        assert model.metadata.get_input_schema() is not None and model.metadata.saved_input_example_info
        check(model.predict(pd.DataFrame(columns)), champions[task])
    tagged = mlflow.pyfunc.load_model(uris["pos_tr"]).predict(pd.DataFrame({"text": ["the hotel, was clean"]}))
    assert list(tagged["tokens"][0]) == ["the", "hotel", ",", "was", "clean"] and len(tagged["tags"][0]) == 5
    # the same predictions from a process that cannot import xstilts
    served = predict_without_xstilts({uris[t]: columns for t, (columns, _) in CHECKS.items()}, tmp_path)
    for (task, (_, check)), result in zip(CHECKS.items(), served, strict=True):
        check(pd.DataFrame(result), champions[task])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_http(champions, tmp_path):
    """``mlflow models serve`` on the QA champion answers a POST to /invocations on localhost."""
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/xstilts-parsinlu_rc@champion"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as ping:
                    if ping.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in time"
            time.sleep(1)
        body = json.dumps({"dataframe_split": {"columns": list(QA), "data": list(zip(*QA.values(), strict=True))}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        check_qa(pd.DataFrame(answer["predictions"]), champions["parsinlu_rc"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
