"""Progress bars: tqdm's bar on a terminal, plain lines at an interval in logs, silence off the main process."""

from __future__ import annotations

import io
import json
import os
import re
from types import SimpleNamespace

import datasets
import optuna
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from xstilts import progress as progress_module
from xstilts.data import sources
from xstilts.errors import XstiltsError
from xstilts.modeling import HeadSpec, MultiTaskModel
from xstilts.params import TrainParams, TuneParams
from xstilts.progress import SECONDS_ENV, progress
from xstilts.retrieval.embedding import embed_layers
from xstilts.training.features import Collator, tokenize
from xstilts.training.loop import TaskData, train_tasks
from xstilts.tuning import study as studies


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """tqdm's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def log_lines(text: str) -> list[str]:
    assert "\r" not in text and "\x1b" not in text
    assert text == "" or text.endswith("\n")
    return text.splitlines()


@pytest.fixture
def log(monkeypatch, capsys) -> pytest.CaptureFixture:
    """stderr captured as a log file (not a terminal), with a plain line at every update."""
    monkeypatch.setenv(SECONDS_ENV, "0")
    return capsys


def test_a_log_gets_one_plain_line_per_interval(monkeypatch):
    stream, clock = io.StringIO(), Clock()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setenv(SECONDS_ENV, "30")
    monkeypatch.setattr("tqdm.std.time", clock)
    with progress(total=10, desc="work", unit="row") as bar:
        for _ in range(10):
            clock.now += 10
            bar.update()
    lines = log_lines(stream.getvalue())
    assert [re.search(r"(\d+)/10", line).group(1) for line in lines] == ["3", "6", "9", "10"]
    assert all(line.startswith("work:") and "10.00s/row" in line for line in lines)  # the rate (10 s a row)
    assert "[00:30<01:10," in lines[0]  # elapsed and time left
    assert "100%" in lines[-1] and "#" in lines[-1]  # an ASCII bar


def test_a_step_shorter_than_the_interval_prints_nothing(monkeypatch):
    stream, clock = io.StringIO(), Clock()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.delenv(SECONDS_ENV, raising=False)  # the default, 30 s
    monkeypatch.setattr("tqdm.std.time", clock)
    for _ in progress(range(5), desc="quick"):
        clock.now += 5
    assert stream.getvalue() == ""


def test_a_zero_interval_writes_every_update_as_a_line(log):
    assert list(progress(range(3), desc="each", unit="batch")) == [0, 1, 2]
    lines = log_lines(log.readouterr().err)
    assert [re.search(r"(\d)/3", line).group(1) for line in lines] == ["0", "1", "2", "3", "3"]  # 3: last, close


def test_a_terminal_gets_a_tqdm_bar(monkeypatch):
    stream = Terminal()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setenv(SECONDS_ENV, "0")  # ignored on a terminal
    bar = progress(total=4, desc="tty", unit="step")
    bar.update(4)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\r") and "tty: 100%" in text and "4/4" in text and "step/s" in text


def test_other_processes_are_silent(monkeypatch, log):
    monkeypatch.setattr(progress_module, "process_state", lambda: SimpleNamespace(is_main_process=False))
    assert list(progress(range(3), desc="rank 1")) == [0, 1, 2]
    assert log.readouterr().err == ""


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_interval_fails_in_one_sentence(monkeypatch, log, value):
    monkeypatch.setenv(SECONDS_ENV, value)
    with pytest.raises(XstiltsError, match=SECONDS_ENV):
        progress(range(2))


def test_training_shows_steps_with_loss_and_lr_and_dev_evaluations(tiny_encoder_dir, log):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    row = {"language": "en", "domain": "d", "text_a": "the hotel was clean", "text_b": None}
    rows = datasets.Dataset.from_list([{**row, "id": str(i), "label": "ab"[i % 2]} for i in range(8)])
    features = tokenize("classification", rows, tokenizer, ("a", "b"), 16)
    torch.manual_seed(0)
    model = MultiTaskModel(AutoModel.from_pretrained(tiny_encoder_dir), [HeadSpec("t", "classification", ["a", "b"])])
    cfg = TrainParams(
        tasks=["t"],
        lr=1e-3,
        epochs=2,
        batch_size=4,
        max_length=16,
        warmup_ratio=0.1,
        eval_every=2,
        patience=9,
        precision="fp32",
    )
    log.readouterr()  # transformers' own bar for loading the weights
    train_tasks(model, [TaskData("t", features, features, Collator(tokenizer))], cfg, seed=0)
    lines = log_lines(log.readouterr().err)
    steps = [line for line in lines if line.startswith("train t:")]
    assert "4/4" in steps[-1] and "step/s" in steps[-1]
    assert re.search(r"loss=[\d.]+, lr=[\d.e-]+", steps[-1])
    assert any(line.startswith("evaluate t:") and "1/1" in line for line in lines)


def test_embedding_shows_batches(tiny_encoder_dir, log):
    tokenizer, encoder = AutoTokenizer.from_pretrained(tiny_encoder_dir), AutoModel.from_pretrained(tiny_encoder_dir)
    log.readouterr()  # transformers' own bar for loading the weights
    embed_layers(["the hotel", "the room", "the staff"], tokenizer, encoder, batch_size=2)
    assert any(line.startswith("embed:") and "2/2" in line for line in log_lines(log.readouterr().err))


class _Response(io.BytesIO):
    def __init__(self, body: bytes, length: bool) -> None:
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body))} if length else {}


def test_a_download_shows_bytes(monkeypatch, tmp_path, log):
    body = b"x" * 5000
    pkg = sources.Package("pypi-sdist", "demo", "1.0", "demo-1.0.tar.gz", "0" * 64)
    index = json.dumps({"files": [{"filename": pkg.filename, "url": "https://files.example/demo-1.0.tar.gz"}]})

    def urlopen(request, timeout):
        return _Response(index.encode(), False) if hasattr(request, "headers") else _Response(body, True)

    monkeypatch.setattr(sources.urllib.request, "urlopen", urlopen)
    assert sources._download_pypi_file(pkg, tmp_path).read_bytes() == body
    last = log_lines(log.readouterr().err)[-1]
    assert last.startswith("demo-1.0.tar.gz:") and "100%" in last and "4.88k/4.88k" in last and "B/s" in last


def test_tuning_shows_finished_trials_of_n_trials(tmp_path, log):
    url = f"sqlite:///{tmp_path / 'study.db'}"  # an RDB: no journal lock file under the repository
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    seen = []
    for trial in studies.trials(study, TuneParams(n_trials=3, storage=url), "s"):
        seen.append(trial.number)
        study.tell(trial, 0.5)
    assert seen == [0, 1, 2]
    lines = log_lines(log.readouterr().err)
    assert lines[0].startswith("tune s:") and "0/3" in lines[0]
    assert "3/3" in lines[-1] and "trial/s" in lines[-1]


def test_library_bars_are_switched_off_in_a_log_only(monkeypatch):
    from xstilts.progress import LIBRARY_BARS, quiet_library_bars

    for name in LIBRARY_BARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stderr", Terminal())
    quiet_library_bars()
    assert not any(name in os.environ for name in LIBRARY_BARS)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv(LIBRARY_BARS[1], "0")  # the user's choice wins
    quiet_library_bars()
    assert [os.environ[name] for name in LIBRARY_BARS] == ["1", "0"]
