"""Hugging Face Hub sources: pinned ``datasets.load_dataset`` calls that fail at once when the Hub is out of reach.

A hub task (see :class:`xstilts.tasks.hub.HubDatasetTask`) declares where each canonical split comes from::

    from xstilts.data.hub import HubSource
    from xstilts.tasks.base import Family, Role, register
    from xstilts.tasks.hub import HubDatasetTask, Part

    XNLI = HubSource("facebook/xnli", revision="<40-hex commit>", config="all_languages")

    @register
    class XnliTask(HubDatasetTask):
        name, display, family, role = "xnli", "XNLI", Family.CLASSIFICATION, Role.TARGET
        stand_in, stand_in_kind = "polarity", "multilingual classification"  # the offline sentence names them
        labels = ("entailment", "neutral", "contradiction")
        parts = {"train": (Part(XNLI, "train"),), "dev": (Part(XNLI, "validation"),), "test": (Part(XNLI, "test"),)}

        def convert(self, row, features, part):   # one Hub row -> canonical fields, or None to skip it
            return {"text_a": row["premise"], "text_b": row["hypothesis"], "label": ...}

Rules every hub source follows:

* the dataset id, config and a **commit sha** (``revision``) are pinned in the task module; look them up on
  the dataset's "Files and versions" page (datasets that still hold a loading script need the commit of
  their ``refs/convert/parquet`` branch: ``datasets`` 5 runs no scripts);
* downloads go to the Hugging Face cache (``HF_HOME`` / ``HF_DATASETS_CACHE``), never to a cache of ours;
  with ``HF_HUB_OFFLINE=1`` and a warm cache, :func:`load_hub_split` reads the cache;
* with no network (or ``HF_HUB_OFFLINE=1`` and a cold cache) it raises :class:`XstiltsError` with the task's
  one sentence ("MNLI needs the Hugging Face Hub; the offline NLI (2-way; ...) task is `rte` (...)") within
  seconds: a short reachability probe runs first when not in offline mode, so nothing waits on retries;
* nothing is ever substituted: a hub task either loads its pinned dataset or stops;
* with ``data.hub_mirror`` set (:func:`use_mirror`), every source is read from the mirror that
  ``xstilts hub download`` wrote (``<mirror>/datasets/<dataset id>/``, the repository's files at the pinned
  commit, which its ``.xstilts-revision`` file names), with the same ``datasets.load_dataset`` call on the
  local folder and no network at all.

Tests replace :func:`_load_dataset` (the one place that calls ``datasets.load_dataset``) with
:func:`local_copy_loader`, which serves JSON-lines copies in the Hub's real schema from a folder.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from xstilts.errors import XstiltsError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
_TRUE = {"1", "ON", "YES", "TRUE"}
REVISION_FILE = ".xstilts-revision"  # in each mirrored repository: the commit its files are of
SCRIPTS_GONE = "Dataset scripts are no longer supported"  # datasets 5's RuntimeError for a loading-script commit
_MIRROR: ContextVar[Path | None] = ContextVar("hub_mirror", default=None)


@dataclass(frozen=True)
class HubSource:
    """One dataset on the Hub, pinned: ``path`` (the dataset id), ``revision`` (a commit sha) and ``config``."""

    path: str
    revision: str
    config: str | None = None

    def __post_init__(self) -> None:
        if len(self.revision) != 40 or any(c not in "0123456789abcdef" for c in self.revision):
            raise ValueError(f"{self.path}: revision must be a 40-hex commit sha, got {self.revision!r}")

    @property
    def spec(self) -> str:
        """What the ``source`` column of prepared rows says: ``nyu-mll/glue:mnli@bcdcba79d07b``."""
        config = f":{self.config}" if self.config else ""
        return f"{self.path}{config}@{self.revision[:12]}"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``HF_DATASETS_OFFLINE``) asks for the cache only."""
    value = os.environ.get("HF_DATASETS_OFFLINE", os.environ.get("HF_HUB_OFFLINE", ""))
    return value.strip().upper() in _TRUE


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@lru_cache(maxsize=4)
def hub_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One short HEAD request to ``endpoint`` (proxies from the environment apply); any HTTP answer counts."""
    try:
        with urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # the server answered
    except (OSError, ValueError) as exc:  # URLError, DNS failure, refused, timeout
        log.debug("Hub probe of %s failed: %s", endpoint, exc)
        return False


@contextmanager
def use_mirror(root: Path | None) -> Iterator[None]:
    """Within the block, hub sources are read from the mirror at ``root`` (None: from the Hub)."""
    token = _MIRROR.set(Path(root) if root is not None else None)
    try:
        yield
    finally:
        _MIRROR.reset(token)


def mirror_root() -> Path | None:
    return _MIRROR.get()


def mirrored_repo(root: Path, kind: str, repo_id: str, revision: str | None) -> Path:
    """The folder of ``repo_id`` (``kind`` datasets or models) in the mirror at ``root``, checked to hold
    ``revision``; a missing folder or another commit fails with one sentence naming the download command."""
    folder = Path(root) / kind / repo_id
    marker = folder / REVISION_FILE
    held = marker.read_text().strip() if marker.is_file() else None
    if held is None:
        raise XstiltsError(f"The mirror {root} has no copy of {repo_id}; run `xstilts hub download {root}`.")
    if revision is not None and held != revision:
        raise XstiltsError(
            f"The mirror {root} holds {repo_id} at {held[:12]}, not the pinned {revision[:12]}; "
            f"run `xstilts hub download {root}` again."
        )
    return folder


def _load_dataset(source: HubSource, split: str) -> Any:
    """``datasets.load_dataset`` of one split at the pinned revision, from the Hub or the mirror (tests replace
    this function)."""
    import datasets  # here: importing `datasets` is slow and only prepare needs it

    root = mirror_root()
    if root is not None:
        folder = mirrored_repo(root, "datasets", source.path, source.revision)
        return datasets.load_dataset(str(folder), source.config, split=split)
    return datasets.load_dataset(source.path, source.config, split=split, revision=source.revision)


def scripts_sentence(path: str, revision: str | None) -> str:
    """What a loading-script commit gets, without its full stop."""
    at = f" at {revision[:12]}" if revision else ""
    return (
        f"{path}{at} holds a loading script, which datasets 5 no longer runs; pin a commit with Parquet files "
        "(its refs/convert/parquet branch) in the task module"
    )


def load_hub_split(source: HubSource, split: str, unavailable: str) -> Any:
    """One split of ``source`` as a ``datasets.Dataset``, from the Hub, a warm Hugging Face cache or the mirror.

    ``unavailable`` is the task's sentence naming its offline stand-in, ending without a full stop; it is
    raised (with the reason in parentheses) when the Hub cannot be reached and the cache has no copy.
    """
    from datasets.exceptions import DatasetNotFoundError

    if mirror_root() is None and not hub_offline() and not hub_reachable(hub_endpoint()):
        raise XstiltsError(f"{unavailable} ({hub_endpoint()} is unreachable from this machine).")
    try:
        return _load_dataset(source, split)
    except DatasetNotFoundError as exc:
        raise XstiltsError(
            f"The Hub has no dataset {source.path} at revision {source.revision} ({exc}); "
            "the pinned revision in the task module needs updating."
        ) from exc
    except (ConnectionError, TimeoutError, FileNotFoundError) as exc:
        if (root := mirror_root()) is not None:
            raise XstiltsError(
                f"The mirror {root} lacks files of {source.spec} ({exc}); run `xstilts hub download {root}` again."
            ) from exc
        why = "HF_HUB_OFFLINE=1 and no cached copy" if hub_offline() else f"the Hub did not answer: {exc}"
        raise XstiltsError(f"{unavailable} ({why}).") from exc
    except ValueError as exc:  # an unknown split or config name
        raise XstiltsError(f"{source.spec} has no split {split!r} ({exc}); check the task's parts.") from exc
    except RuntimeError as exc:
        if SCRIPTS_GONE not in str(exc):
            raise
        raise XstiltsError(f"{scripts_sentence(source.path, source.revision)} ({exc}).") from exc


Loader = Callable[[HubSource, str], Any]


def local_copy_loader(root: Path) -> Loader:
    """A stand-in for :func:`_load_dataset` that reads ``<root>/<dataset id>/<config or default>/``.

    That folder holds ``features.json`` (``datasets.Features.to_dict()`` form, as in the Hub's
    ``dataset_info``) and one ``<split>.jsonl`` per split, rows in the Hub's own field names and encodings.
    """
    import datasets

    def load(source: HubSource, split: str) -> Any:
        folder = Path(root) / source.path / (source.config or "default")
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise ValueError(f"no split {split!r} in {folder}")
        features = datasets.Features.from_dict(json.loads((folder / "features.json").read_text()))
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return datasets.Dataset.from_list(rows, features=features)

    return load
