"""Hugging Face Hub sources: pinned ``datasets.load_dataset`` calls that fail at once when the Hub is out of reach.

A hub task (see :class:`xstilts.tasks.hub.HubDatasetTask`) declares where each canonical split comes from::

    from xstilts.data.hub import HubSource
    from xstilts.tasks.base import Family, Role, register
    from xstilts.tasks.hub import HubDatasetTask, Part

    XNLI = HubSource("facebook/xnli", revision="<40-hex commit>", config="all_languages")

    @register
    class XnliTask(HubDatasetTask):
        name, display, family, role = "xnli", "XNLI", Family.CLASSIFICATION, Role.TARGET
        stand_in, stand_in_kind = "multiemo", "multilingual classification"  # the offline sentence names them
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
  one sentence ("MNLI needs the Hugging Face Hub; the offline 3-way NLI task is `vitaminc` (...)") within
  seconds: a short reachability probe runs first when not in offline mode, so nothing waits on retries;
* nothing is ever substituted: a hub task either loads its pinned dataset or stops.

Tests replace :func:`_load_dataset` (the one place that calls ``datasets.load_dataset``) with
:func:`local_copy_loader`, which serves JSON-lines copies in the Hub's real schema from a folder.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from xstilts.errors import XstiltsError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
_TRUE = {"1", "ON", "YES", "TRUE"}


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


def _load_dataset(source: HubSource, split: str) -> Any:
    """``datasets.load_dataset`` of one split at the pinned revision (tests replace this function)."""
    import datasets  # here: importing `datasets` is slow and only prepare needs it

    return datasets.load_dataset(source.path, source.config, split=split, revision=source.revision)


def load_hub_split(source: HubSource, split: str, unavailable: str) -> Any:
    """One split of ``source`` as a ``datasets.Dataset``, from the Hub or a warm Hugging Face cache.

    ``unavailable`` is the task's sentence naming its offline stand-in, ending without a full stop; it is
    raised (with the reason in parentheses) when the Hub cannot be reached and the cache has no copy.
    """
    from datasets.exceptions import DatasetNotFoundError

    if not hub_offline() and not hub_reachable(hub_endpoint()):
        raise XstiltsError(f"{unavailable} ({hub_endpoint()} is unreachable from this machine).")
    try:
        return _load_dataset(source, split)
    except DatasetNotFoundError as exc:
        raise XstiltsError(
            f"The Hub has no dataset {source.path} at revision {source.revision} ({exc}); "
            "the pinned revision in the task module needs updating."
        ) from exc
    except (ConnectionError, TimeoutError, FileNotFoundError) as exc:
        why = "HF_HUB_OFFLINE=1 and no cached copy" if hub_offline() else f"the Hub did not answer: {exc}"
        raise XstiltsError(f"{unavailable} ({why}).") from exc
    except ValueError as exc:  # an unknown split or config name
        raise XstiltsError(f"{source.spec} has no split {split!r} ({exc}); check the task's parts.") from exc


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
