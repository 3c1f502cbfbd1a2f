"""Downloads of the two XTREME-R tasks that Google Research publishes outside the Hugging Face Hub.

* **LAReQA (XQuAD-R)**: one SQuAD-format JSON per language with sentence breaks, from the GitHub repository
  google-research-datasets/lareqa, pinned to a commit (raw.githubusercontent.com).
* **Mewsli-X**: ``mewsli-x_20220518_6.zip`` from storage.googleapis.com/gresearch/mewsli (md5 as published in
  google-research/dense_representations_for_entity_retrieval/mel/mewsli-x.md). Its WikiNews files ship without
  article text; Google's ``get-mewsli-x.sh`` restores it from WikiNews dumps, and the task reads that output.

Files are cached under ``<raw_dir>/google/`` and checked before use; with no network a missing file fails
at once with one sentence (these tasks have no offline stand-in).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xstilts.errors import XstiltsError

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
LAREQA_COMMIT = "5405d2a77e83d5ccb47623a3f9e5604c3f103193"  # the commit that added xquad-r/ and mlqa-dev-r/
LAREQA_URL = "https://raw.githubusercontent.com/google-research-datasets/lareqa/{commit}/xquad-r/{lang}.json"
# XQuAD-R languages (XQuAD's 11): the xquad-r/<lang>.json files of google-research-datasets/lareqa.
LAREQA_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MEWSLIX_ARCHIVE = "mewsli-x_20220518_6.zip"
LAREQA_SOURCE = f"github.com/google-research-datasets/lareqa@{LAREQA_COMMIT[:12]}"
MEWSLIX_SOURCE = f"storage.googleapis.com/gresearch/mewsli/{MEWSLIX_ARCHIVE}"


def google_dir(raw_dir: Path) -> Path:
    return Path(raw_dir) / "google"


def md5sum(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - the checksum Google publishes
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, what: str, md5: str | None = None) -> Path:
    """``dest``, downloaded from ``url`` unless already there (and matching ``md5`` when given)."""
    dest = Path(dest)
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(tmp, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
        except (urllib.error.URLError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise XstiltsError(
                f"{what} must be downloaded from {url}, which this machine cannot reach ({exc}); "
                f"there is no offline stand-in, so copy the file to {dest} or run where the URL is reachable."
            ) from exc
        os.replace(tmp, dest)
    if md5 is not None and md5sum(dest) != md5:
        raise XstiltsError(f"{dest} does not have the published md5 {md5}; delete it and download it again.")
    return dest


def lareqa_files(raw_dir: Path, languages: tuple[str, ...] = LAREQA_LANGUAGES) -> dict[str, Path]:
    """The XQuAD-R JSON of each language, fetched at the pinned commit."""
    folder = google_dir(raw_dir) / "lareqa" / LAREQA_COMMIT[:12]
    return {
        lang: fetch(LAREQA_URL.format(commit=LAREQA_COMMIT, lang=lang), folder / f"{lang}.json", f"LAReQA ({lang})")
        for lang in languages
    }


def load_lareqa(raw_dir: Path, languages: tuple[str, ...] = LAREQA_LANGUAGES) -> dict[str, dict[str, Any]]:
    return {lang: json.loads(p.read_text(encoding="utf-8")) for lang, p in lareqa_files(raw_dir, languages).items()}


def mewslix_dir(raw_dir: Path) -> Path:
    """Where Mewsli-X's dataset files are expected: get-mewsli-x.sh's ``output/dataset`` copied or linked here."""
    return google_dir(raw_dir) / "mewsli-x"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not Path(path).is_file():
        raise XstiltsError(
            f"{path} is missing; run Google's get-mewsli-x.sh (dense_representations_for_entity_retrieval/mel) "
            f"and copy its mewsli_x/output/dataset/*.jsonl into {Path(path).parent}."
        )
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise XstiltsError(f"{path} line {n} is not JSON ({exc.msg}); download the file again.") from exc
