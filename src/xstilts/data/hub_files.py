"""What the hub tasks of a profile read, resolved from metadata only: repositories, commits, configs, splits, files.

The same ``datasets`` calls answer for a Hub repository at a pinned commit (``load_dataset_builder(path,
config, revision=...)``: its dataset card and file listing, no data) and for a folder laid out like one (a mirror
written by ``xstilts hub download``): which configs and splits exist and which files the loader reads. A loader
reads every file of the configs it loads (``datasets`` prepares a whole config) and, from a local folder, the
files of the card's first config too (``datasets`` infers the file format from them), plus ``README.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts.data.hub import SCRIPTS_GONE, HubSource, scripts_sentence
from xstilts.errors import XstiltsError

CARD = "README.md"
MODEL_CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # the first one present is the one transformers reads
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model",
    "spiece.model", "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json",
)  # fmt: skip


@dataclass
class DatasetNeed:
    """One dataset at one commit, the Hub splits each of its configs must have, and the tasks that read it."""

    path: str
    revision: str
    splits: dict[str | None, set[str]] = field(default_factory=dict)  # config -> Hub splits
    tasks: list[str] = field(default_factory=list)


@dataclass
class Resolved:
    """What a repository (or its mirror) was found to hold for a need: the files the loader reads, and problems."""

    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def dataset_needs(reads: Iterable[tuple[str, HubSource, str]]) -> list[DatasetNeed]:
    """(task, source, Hub split) reads grouped by dataset and commit, in first-read order."""
    needs: dict[tuple[str, str], DatasetNeed] = {}
    for task, source, split in reads:
        need = needs.setdefault((source.path, source.revision), DatasetNeed(source.path, source.revision))
        need.splits.setdefault(source.config, set()).add(split)
        if task not in need.tasks:
            need.tasks.append(task)
    return list(needs.values())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _relative(files: Iterable[str], folder: Path | None) -> list[str]:
    """Repository paths of resolved data files (``hf://datasets/<id>@<commit>/<path>`` or local paths)."""
    if folder is None:
        return [f.split("@", 1)[1].split("/", 1)[1] for f in files]
    root = folder.resolve()
    return [Path(f).resolve().relative_to(root).as_posix() for f in files]


def _builder(where: str, config: str | None, revision: str | None) -> Any:
    import datasets

    return datasets.load_dataset_builder(where, config, revision=revision)


def resolve_dataset(need: DatasetNeed, folder: Path | None = None) -> Resolved:
    """Configs, splits and files of ``need``: on the Hub at its commit, or in ``folder`` (a mirrored copy)."""
    from datasets.exceptions import DatasetNotFoundError

    where, revision = (str(folder), None) if folder is not None else (need.path, need.revision)
    found = Resolved(files=[CARD])
    first: str | None = None  # the card's first config: read from a local folder to infer the file format
    loaded: str | None = None
    for config, wanted in need.splits.items():
        try:
            builder = _builder(where, config, revision)
        except DatasetNotFoundError as exc:
            found.problems.append(f"{_first_line(exc)}; fix the pinned revision")
            return found
        except RuntimeError as exc:
            if SCRIPTS_GONE not in str(exc):
                raise
            found.problems.append(scripts_sentence(need.path, need.revision))
            return found
        except ValueError as exc:  # BuilderConfig '<config>' not found. Available: [...]
            found.problems.append(f"{_first_line(exc)}; fix the task's config names")
            continue
        except (ConnectionError, FileNotFoundError) as exc:
            found.problems.append(_first_line(exc))
            return found
        data_files = builder.config.data_files or {}
        if missing := sorted(wanted - set(data_files)):
            have = ", ".join(sorted(data_files)) or "none"
            found.problems.append(f"config {config} has no split {', '.join(missing)} (it has {have}); fix the parts")
        found.files += _relative((f for files in data_files.values() for f in files), folder)
        first = first or next(iter(builder.builder_configs), None)
        loaded = builder.config.name
    if first is not None and first not in {*need.splits, loaded} and not found.problems:
        first_files = _builder(where, first, revision).config.data_files or {}
        found.files += _relative((f for files in first_files.values() for f in files), folder)
    found.files = list(dict.fromkeys(found.files))
    return found


def model_files(listing: Iterable[str]) -> tuple[list[str], list[str]]:
    """The files ``from_pretrained`` reads among a model repository's ``listing`` (top level only), and what is
    missing."""
    top = {name for name in listing if "/" not in name}
    weights = next((w for w in WEIGHTS if w in top), None)
    tokenizer = [t for t in TOKENIZER_FILES if t in top]
    problems = [f"no {MODEL_CONFIG}"] if MODEL_CONFIG not in top else []
    problems += [] if weights else [f"no weights ({' or '.join(WEIGHTS)})"]
    problems += [] if tokenizer else ["no tokenizer files"]
    files = [MODEL_CONFIG, *([weights] if weights else []), *tokenizer]
    return [f for f in files if f in top], problems


def hub_model_listing(name: str, revision: str | None) -> list[str]:
    """The files of Hub model ``name`` at ``revision`` (its metadata; nothing is downloaded)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi().model_info(name, revision=revision)
    except RevisionNotFoundError as exc:
        raise XstiltsError(f"the Hub has no revision {revision} of {name}; fix model.revision") from exc
    except RepositoryNotFoundError as exc:
        raise XstiltsError(f"the Hub has no model {name}; fix model.name") from exc
    return [s.rfilename for s in info.siblings or []]


def folder_listing(folder: Path) -> list[str]:
    """Every file under ``folder`` as a repository path (hidden bookkeeping files left out)."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
