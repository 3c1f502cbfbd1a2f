"""Folders laid out like dataset repositories on the Hub, written from the JSON-lines fixtures in the Hub's schema.

Two layouts, as the Hub serves them: a Parquet repository (``<config>/<split>-00000-of-00001.parquet`` and a
``README.md`` whose YAML lists the configs' ``data_files`` and ``dataset_info`` features, as ``nyu-mll/glue``),
and a ``refs/convert/parquet`` commit of a one-config dataset (``default/<split>/0000.parquet``, no card).
``datasets`` reads them with the same calls it makes on the Hub, given the local path.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCardData

from xstilts.data.hub import REVISION_FILE, HubSource

FIXTURES = Path(__file__).parent / "fixtures"
ROOTS = (FIXTURES / "hub", FIXTURES / "xtreme", FIXTURES / "paper" / "hub")
Split = tuple[datasets.Features, list[dict]]


def fixture_splits(path: str, config: str | None) -> dict[str, Split]:
    """The fixture splits of one config (``<root>/<dataset id>/<config or default>/<split>.jsonl``)."""
    for root in ROOTS:
        folder = root / path / (config or "default")
        if folder.is_dir():
            features = datasets.Features.from_dict(json.loads((folder / "features.json").read_text()))
            return {
                p.stem: (features, [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line])
                for p in sorted(folder.glob("*.jsonl"))
            }
    raise FileNotFoundError(f"no fixture for {path} config {config}")


def write_parquet_repo(dest: Path, configs: dict[str, dict[str, Split]]) -> Path:
    """A Parquet dataset repository: one folder per config and a card naming configs, splits and features."""
    for config, splits in configs.items():
        for split, (features, rows) in splits.items():
            path = dest / config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    card = DatasetCardData()
    metadata = {c: {"data_files": [{"split": s, "path": f"{c}/{s}-*"} for s in ss]} for c, ss in configs.items()}
    MetadataConfigs(metadata).to_dataset_card_data(card)
    infos = {c: DatasetInfo(features=next(iter(s.values()))[0], config_name=c) for c, s in configs.items()}
    DatasetInfosDict(infos).to_dataset_card_data(card)
    (dest / "README.md").write_text(f"---\n{card.to_yaml()}\n---\n# fixture\n", encoding="utf-8")
    return dest


def write_parquet_branch(dest: Path, splits: dict[str, Split]) -> Path:
    """A ``refs/convert/parquet`` commit of a one-config dataset: ``default/<split>/0000.parquet``."""
    for split, (features, rows) in splits.items():
        path = dest / "default" / split / "0000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return dest


def write_mirror(mirror: Path, sources: list[HubSource], extra: dict[str, dict[str, Split]] | None = None) -> Path:
    """A mirror as ``xstilts hub download`` leaves it: ``<mirror>/datasets/<id>/`` per dataset, each with its
    commit in ``.xstilts-revision``. ``extra`` gives rows for a config instead of the fixtures'."""
    by_repo: dict[tuple[str, str], dict[str | None, dict[str, Split]]] = {}
    for source in sources:
        rows = (extra or {}).get(source.config or "default") or fixture_splits(source.path, source.config)
        by_repo.setdefault((source.path, source.revision), {})[source.config] = rows
    for (path, revision), configs in by_repo.items():
        dest = mirror / "datasets" / path
        if set(configs) == {"default"}:
            write_parquet_branch(dest, configs["default"])
        else:
            write_parquet_repo(dest, {str(c): s for c, s in configs.items()})
        (dest / REVISION_FILE).write_text(revision + "\n")
    return mirror
