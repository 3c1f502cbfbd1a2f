"""Package archives: the members of a tar, zip or Debian package, extracted into a folder or one zip."""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from xstilts.errors import XstiltsError

log = logging.getLogger(__name__)


def _members(archive: Path) -> Iterator[tuple[str, bool, BinaryIO | None]]:
    """(posix path, is_dir, stream or None) for each directory and regular file of a tar or zip archive.

    A Debian package (an `ar` archive) yields the members of its ``data.tar.*`` (paths start with ``./``).
    """
    with open(archive, "rb") as f:
        is_deb = f.read(8) == b"!<arch>\n"
    if is_deb:
        with open(archive, "rb") as f:
            f.seek(8)
            while header := f.read(60):  # ar: 60-byte headers, each member padded to an even size
                name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
                if name.startswith("data.tar"):
                    archive_data = tarfile.open(fileobj=BytesIO(f.read(size)), mode="r:*")
                    break
                f.seek(size + size % 2, 1)
            else:
                raise XstiltsError(f"{archive} is a Debian package without data.tar; run the fetch stage again.")
        with archive_data as tf:
            for member in tf:
                if member.isdir() or member.isfile():
                    yield member.name, member.isdir(), None if member.isdir() else tf.extractfile(member)
        return
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


ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member of an extracted zip: its bytes depend on the package alone
ZIP_LEVEL = 1  # deflate level of extracted zips: HTML shrinks ~4x even at the fastest level


def extract_members(archive: Path, prefixes: list[str], dest: Path, strip: str = "") -> int:
    """Extract the members of ``archive`` (tar, tar.gz, zip or Debian package) under any of ``prefixes`` into ``dest``.

    ``strip`` is removed from the front of each member's path. A ``dest`` ending in ``.zip`` receives the files
    as one deflated zip (fixed timestamps, archive order) instead of a folder: a package of thousands of small
    files (LibreOffice's help pages) is then one file for DVC to hash and cache. ``dest`` is replaced as a
    whole: the output goes to a temporary path next to it, renamed to ``dest`` at the end, so an interrupted run
    never leaves a half-extracted ``dest``. Members whose path is absolute or contains ``..``, and links, are
    skipped. Returns the number of files written.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise XstiltsError(f"{archive} does not exist; run the fetch stage first.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.extract-"))
    try:
        if dest.suffix == ".zip":
            n_files = _extract_into_zip(archive, prefixes, strip, tmp / dest.name)
            built = tmp / dest.name
        else:
            n_files = _extract_into_folder(archive, prefixes, strip, tmp)
            built = tmp
        if n_files == 0:
            raise XstiltsError(f"{archive.name} has no files under {', '.join(prefixes)}; is it the pinned package?")
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
            os.replace(dest, old / "x")
        os.replace(built, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return n_files


def _wanted(archive: Path, prefixes: list[str], strip: str) -> Iterator[tuple[PurePosixPath, bool, BinaryIO | None]]:
    """(relative path, is_dir, stream) of each safe member of ``archive`` under ``prefixes``."""
    for name, is_dir, stream in _members(archive):
        if not any(name.startswith(p) or name.rstrip("/") + "/" == p for p in prefixes):
            continue
        rel = _safe_relative(name, strip)
        if rel is None:
            log.warning("%s: skipping unsafe member path %r", archive.name, name)
            continue
        if rel.parts:
            yield rel, is_dir, stream


def _extract_into_folder(archive: Path, prefixes: list[str], strip: str, folder: Path) -> int:
    n_files = 0
    for rel, is_dir, stream in _wanted(archive, prefixes, strip):
        path = folder.joinpath(*rel.parts)
        if is_dir:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        n_files += 1
    return n_files


def _extract_into_zip(archive: Path, prefixes: list[str], strip: str, target: Path) -> int:
    n_files = 0
    with zipfile.ZipFile(target, "w") as zf:
        for rel, is_dir, stream in _wanted(archive, prefixes, strip):
            if is_dir:
                continue
            info = zipfile.ZipInfo(rel.as_posix(), date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, stream.read(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL)
            n_files += 1
    return n_files
