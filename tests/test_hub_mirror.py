"""Hub metadata, the offline mirror and `xstilts hub check`, on folders laid out like Hub repositories (no network).

The metadata code makes the same ``datasets`` calls on a local folder as on the Hub; the fixture mirrors are the
JSON-lines fixtures written in the Hub's layouts (:mod:`hub_repos`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from hub_repos import fixture_splits, write_mirror, write_parquet_repo
from xstilts.cli import main
from xstilts.data import hub
from xstilts.data.hub import REVISION_FILE, HubSource, load_hub_split, use_mirror
from xstilts.data.hub_files import DatasetNeed, model_files, resolve_dataset
from xstilts.errors import XstiltsError
from xstilts.params import load_params
from xstilts.profiles import apply_profile
from xstilts.tasks import get_task
from xstilts.tasks.hub_mc import SOCIALIQA
from xstilts.tasks.hub_nli import MNLI, QQP
from xstilts.tasks.hub_qa import SQUAD_V2
from xstilts.tasks.xtreme_copa import COPA

REPO = Path(__file__).resolve().parents[1]
XLMR_REVISION = "c23d21b0620b635a76227c604d44e43a9f0ee389"
SCRIPT_SENTENCE = "holds a loading script, which datasets 5 no longer runs"
PAPER_TASKS = ["mnli", "squad_v2", "socialiqa", "copa_siqa", "udpos"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE", "XSTILTS_"))}
    return {**env, "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(REPO / "src"), **extra}


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails the test; the Hub probe must not run either."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network attempt {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(hub, "hub_reachable", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)


@pytest.fixture
def mirror(tmp_path, tiny_encoder_dir) -> Path:
    """A mirror of the paper tasks' fixtures (COPA's from tests/fixtures/paper) and a model at XLM-R's pin."""
    root = write_mirror(tmp_path / "mirror", [MNLI, QQP, SQUAD_V2, SOCIALIQA, COPA.source("copa", "COPA")])
    model = root / "models" / "xlm-roberta-large"
    shutil.copytree(tiny_encoder_dir, model)
    (model / REVISION_FILE).write_text(XLMR_REVISION + "\n")
    return root


def test_metadata_names_the_files_the_loader_reads(tmp_path):
    configs = {config: fixture_splits("nyu-mll/glue", config) for config in ("qqp", "mnli")}
    folder = write_parquet_repo(tmp_path / "glue", configs)
    need = DatasetNeed("nyu-mll/glue", QQP.revision, {"qqp": {"train", "validation"}})
    found = resolve_dataset(need, folder)
    assert found.problems == []
    # every split of the config read (datasets prepares it whole), the card's first config (mnli, as the Hub's
    # cards list configs alphabetically: datasets infers the file format from it) and the card
    mnli = ("train", "validation_matched", "validation_mismatched", "test_matched")
    assert sorted(found.files) == sorted(
        [
            "README.md",
            *(f"qqp/{s}-00000-of-00001.parquet" for s in ("train", "validation", "test")),
            *(f"mnli/{s}-00000-of-00001.parquet" for s in mnli),
        ]
    )
    wrong = DatasetNeed("nyu-mll/glue", MNLI.revision, {"mnli": {"validation"}, "mnli.en": {"train"}})
    problems = resolve_dataset(wrong, folder).problems
    assert problems[0].startswith("config mnli has no split validation (it has test_matched, train, ")
    assert problems[1] == "BuilderConfig 'mnli.en' not found. Available: ['mnli', 'qqp']; fix the task's config names"


def test_a_loading_script_commit_stops_with_one_sentence(tmp_path, no_network):
    folder = tmp_path / "mirror" / "datasets" / "google" / "xtreme"
    folder.mkdir(parents=True)
    (folder / "xtreme.py").write_text("import datasets\n")  # a script-era commit: the loading script, no data
    (folder / "README.md").write_text("---\npretty_name: XTREME\n---\n")
    source = HubSource("google/xtreme", "34615c6abbc4" + "0" * 28, "udpos.Thai")
    (folder / REVISION_FILE).write_text(source.revision)
    need = DatasetNeed(source.path, source.revision, {source.config: {"test"}})
    assert resolve_dataset(need, folder).problems == [
        f"google/xtreme at 34615c6abbc4 {SCRIPT_SENTENCE}; pin a commit with Parquet files "
        "(its refs/convert/parquet branch) in the task module"
    ]
    with use_mirror(tmp_path / "mirror"), pytest.raises(XstiltsError) as info:
        load_hub_split(source, "test", "UD-POS needs the Hugging Face Hub")
    assert SCRIPT_SENTENCE in str(info.value) and "\n" not in str(info.value)
    assert "Dataset scripts are no longer supported, but found xtreme.py" in str(info.value)


def test_hub_tasks_read_the_mirror_without_the_network(mirror, tmp_path, no_network):
    with use_mirror(mirror):
        counts = get_task("mnli", source="hub").prepare(tmp_path / "raw", tmp_path / "out", {})
    assert counts == {"train": 4, "dev": 2, "test": 2}
    rows = pq.read_table(tmp_path / "out" / "train.parquet").to_pylist()
    assert {r["source"] for r in rows} == {"nyu-mll/glue:mnli@bcdcba79d07b"}
    assert rows[0]["label"] == "entailment"  # the ClassLabel names came from the mirrored card and files


def test_the_mirror_must_hold_the_pinned_commit(mirror, tmp_path, no_network):
    (mirror / "datasets" / "nyu-mll" / "glue" / REVISION_FILE).write_text("4c50f6d2c71e" + "0" * 28)
    moved = r"holds nyu-mll/glue at 4c50f6d2c71e, not the pinned bcdcba79d07b; run `xstilts hub download .*` again\.$"
    with use_mirror(mirror), pytest.raises(XstiltsError, match=moved):
        get_task("mnli", source="hub").prepare(tmp_path / "raw", tmp_path / "out", {})
    with use_mirror(mirror), pytest.raises(XstiltsError, match=r"has no copy of rajpurkar/squad; run `xstilts hub"):
        get_task("squad", source="hub").prepare(tmp_path / "raw", tmp_path / "out", {})


def _paper_params(root: Path, mirror: Path | None) -> Path:
    """A project holding the paper profile, its data.tasks cut to ``PAPER_TASKS``, reading ``mirror``."""
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "profiles", root / "profiles")
    apply_profile("paper", root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update(tasks=PAPER_TASKS, hub_mirror=str(mirror) if mirror else None)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def test_check_of_a_mirror_prints_one_table(mirror, tmp_path, monkeypatch, capsys, no_network):
    root = _paper_params(tmp_path / "proj", mirror)
    monkeypatch.setenv("XSTILTS_ROOT", str(root))
    assert load_params(root / "params.yaml").model.revision == XLMR_REVISION
    assert main(["hub", "check"]) == 2  # udpos: google/xtreme has no pin
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"checked against the mirror {mirror}"
    assert lines[1].split() == ["task", "repository", "revision", "configs", "splits", "files", "status"]
    rows = {tuple(line.split()[:2]): line for line in lines[2:]}
    assert set(rows) == {
        ("mnli", "nyu-mll/glue"), ("squad_v2", "rajpurkar/squad_v2"), ("socialiqa", "allenai/social_i_qa"),
        ("copa_siqa", "aps/super_glue"), ("copa_siqa", "allenai/social_i_qa"), ("udpos", "google/xtreme"),
        ("model", "xlm-roberta-large"),
    }  # fmt: skip
    assert [k for k, line in rows.items() if line.endswith("  OK")] == [k for k in rows if k[0] != "udpos"]
    assert rows["mnli", "nyu-mll/glue"].split()[2:6] == ["bcdcba79d07b", "1", "3", "5"]
    assert "no commit of google/xtreme is pinned yet" in rows["udpos", "google/xtreme"]
    assert rows["model", "xlm-roberta-large"].split()[2:6] == ["c23d21b0620b", "0", "0", "4"]
    assert err.strip() == "xstilts: error: 1 of 7 rows are not OK; their status says what to fix."
    # a model at another commit, and one without weights, are named in the model's row
    (mirror / "models" / "xlm-roberta-large" / REVISION_FILE).write_text("f" * 40)
    main(["hub", "check"])
    assert "holds xlm-roberta-large at ffffffffffff, not the pinned c23d21b0620b" in capsys.readouterr().out
    assert model_files(["config.json", "tokenizer.json", "onnx/model.onnx"]) == (
        ["config.json", "tokenizer.json"],
        ["no weights (model.safetensors or pytorch_model.bin)"],
    )


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        (["check"], "set data.hub_mirror to check a mirror that `xstilts hub download` wrote instead."),
        (["download", "mirror"], "run it on a machine with internet (a login node), then copy the folder over."),
    ],
)
def test_offline_hub_commands_fail_with_one_sentence(command, sentence, tmp_path):
    root = _paper_params(tmp_path / "proj", None)
    proc = subprocess.run(
        [sys.executable, "-m", "xstilts", "hub", *command],
        cwd=root,
        env=_env(tmp_path, HF_HUB_OFFLINE="1", XSTILTS_ROOT=str(root)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    name = command[0]
    assert proc.stderr.strip().splitlines() == [
        f"xstilts: error: `xstilts hub {name}` needs the Hugging Face Hub, and HF_HUB_OFFLINE=1 keeps this machine "
        f"off it; {sentence}"
    ]
    assert not (root / "mirror").exists()


def test_check_of_a_profile_without_hub_data_says_so(tmp_path, monkeypatch, capsys):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")  # the default profile: registry packages only
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    assert main(["hub", "check"]) == 2
    assert capsys.readouterr().err == (
        "xstilts: error: Profile 'default' reads nothing from the Hugging Face Hub (no hub task in data.tasks, model "
        "offline:multilingual-e5-small); `xstilts profile paper` switches to the paper's hub setting.\n"
    )


LOAD_AT = """
import sys
from xstilts.encoder.loading import load_encoder
from xstilts.errors import XstiltsError
tokenizer, encoder = load_encoder("xstilts-test/tiny", sys.argv[1])
print(type(encoder).__name__)
try:
    load_encoder("xstilts-test/tiny", sys.argv[2])
except XstiltsError as exc:
    print(exc)
"""


def test_model_revision_reaches_the_tokenizer_and_the_model(tmp_path, tiny_encoder_dir):
    """A Hugging Face cache holding the model at one commit only: that commit loads, another does not."""
    pinned, other = "1" * 40, "2" * 40
    snapshot = tmp_path / "cache" / "models--xstilts-test--tiny" / "snapshots" / pinned
    shutil.copytree(tiny_encoder_dir, snapshot)
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_AT, pinned, other],
        env=_env(tmp_path, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "cache")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, second = proc.stdout.strip().splitlines()[-2:]
    assert first == "BertModel"
    assert second.startswith(f"Could not load model 'xstilts-test/tiny' at revision {other} (")


def test_model_revision_is_checked():
    from xstilts.encoder.loading import resolve_model
    from xstilts.params import ModelParams

    assert ModelParams(name="xlm-roberta-large", revision=XLMR_REVISION).revision == XLMR_REVISION
    with pytest.raises(ValueError, match="should match pattern"):
        ModelParams(name="xlm-roberta-large", revision="main")
    with pytest.raises(ValueError, match="model.revision pins a Hub model; offline:multilingual-e5-small is built"):
        ModelParams(name="offline:multilingual-e5-small", revision=XLMR_REVISION)
    with pytest.raises(XstiltsError, match=r"but \. is a local one; set model.revision: null\.$"):
        resolve_model(".", XLMR_REVISION)


def _nli_rows(n: int, start: int, label: int | None = None) -> list[dict]:
    """``n`` distinct GLUE-shaped MNLI rows (premise, hypothesis, ClassLabel index, idx)."""
    people = ("The farmer", "A teacher", "My neighbour", "The pilot", "Her brother", "A student")
    things = ("the old bridge", "a red kite", "the harbour", "a long letter", "the village school")
    return [
        {
            "premise": f"{people[i % 6]} walked past {things[i % 5]} on day {i}.",
            "hypothesis": f"{people[i % 6]} {('saw', 'missed', 'built')[i % 3]} {things[i % 5]}.",
            "label": (i % 3) if label is None else label,
            "idx": i,
        }
        for i in range(start, start + n)
    ]


@pytest.mark.slow
def test_dvc_repro_of_a_hub_task_reads_the_mirror_offline(tmp_path):
    """``xstilts profile paper``, ``data.hub_mirror`` set, then ``dvc repro validate-mnli`` with HF_HUB_OFFLINE=1:
    prepare reads the mirror, and DVC hashes the mirrored repository as the stage's raw data."""
    from test_dvc_smoke import _copy_repo, _ran

    root = tmp_path / "repo"
    root.mkdir()
    _copy_repo(root)
    features = fixture_splits("nyu-mll/glue", "mnli")["train"][0]
    sizes = {"train": (24, None), "validation_matched": (8, None), "validation_mismatched": (8, None)}
    splits = {s: (features, _nli_rows(n, 100 * i, label)) for i, (s, (n, label)) in enumerate(sizes.items())}
    splits["test_matched"] = (features, _nli_rows(4, 300, -1))  # GLUE's test: no gold label
    mirror = write_mirror(tmp_path / "mirror", [MNLI], extra={"mnli": splits})
    env = _env(tmp_path, HF_HUB_OFFLINE="1", MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    def run(*args: str) -> str:
        proc = subprocess.run(list(args), cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    run(sys.executable, "-m", "xstilts", "profile", "paper")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["hub_mirror"] = str(mirror)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(sys.executable, "-m", "xstilts", "pipeline")
    glue = str(mirror / "datasets" / "nyu-mll" / "glue")
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert glue in stages["prepare-mnli"]["deps"]
    assert str(mirror / "models" / "xlm-roberta-large") in stages["intermediate-mnli"]["deps"]  # the mirrored model
    assert "model.revision" in stages["intermediate-mnli"]["params"]
    assert {"prepare-mnli", "validate-mnli"} <= _ran(run("dvc", "repro", "validate-mnli"))
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["prepare-mnli"]
    (dep,) = [d for d in lock["deps"] if d["path"] == glue]
    assert dep["md5"].endswith(".dir") and dep["nfiles"] == 6  # README, 4 Parquet files, .xstilts-revision
    rows = pq.read_table(root / "data/prepared/mnli/train.parquet").to_pylist()
    assert len(rows) == 24 and {r["source"] for r in rows} == {"nyu-mll/glue:mnli@bcdcba79d07b"}
    assert json.loads((root / "reports/validation/mnli.json").read_text())["success"] is True
    # a changed file in the mirror is a changed dependency: DVC reruns prepare
    (mirror / "datasets" / "nyu-mll" / "glue" / "README.md").write_text("changed\n", encoding="utf-8")
    assert "prepare-mnli" in run("dvc", "status", "prepare-mnli")
