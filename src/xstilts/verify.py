"""``xstilts verify``: re-hash what DVC tracks, the workspace files and the cache objects ``dvc.lock`` names.

The project links the workspace to DVC's cache (``cache.type = hardlink``): a workspace file *is* its cache
object, so a write in place (as root, the usual case in containers, nothing stops it) changes both, ``dvc status``
still calls the stage unchanged, and a later ``dvc repro`` links fresh outputs back to the corrupted object. DVC 3
has no command that re-hashes its cache; this one does, in parallel, hashing each inode once, and says for each
file whose bytes do not match what it is, what it should be and how to repair it.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.paths import repo_root


@dataclass(frozen=True)
class Tracked:
    """One file DVC tracks: the stage whose out holds it, its workspace path, its cache object, its md5."""

    stage: str
    path: Path
    cache: Path
    md5: str


@dataclass(frozen=True)
class Mismatch:
    file: Tracked
    where: str  # "workspace", "cache" or "workspace and cache" (one hard-linked file)
    actual: str | None  # None: the file is missing

    def sentence(self, root: Path) -> str:
        path, cache = os.path.relpath(self.file.path, root), os.path.relpath(self.file.cache, root)
        shown, stage = (cache if self.where == "cache" else path), self.file.stage
        if self.actual is None and self.where == "workspace":
            return f"{shown} (stage {stage}) is missing from the workspace: `dvc checkout {path}` puts it back."
        found = "is missing" if self.actual is None else f"has md5 {self.actual}, dvc.lock says {self.file.md5}"
        return (
            f"{shown} ({self.where}, stage {stage}) {found}: remove {cache}, then `dvc repro -f -s {stage}` (or "
            "`dvc pull` it from a remote that holds good bytes)."
        )


def tracked_files(root: Path | None = None, stages: set[str] | None = None) -> list[Tracked]:
    """Every file of every cached out in ``dvc.lock`` (of ``stages`` only, when given), through DVC's own index (a
    directory out's listing is its ``.dir`` object, which is checked too)."""
    from dvc.repo import Repo

    root = root or repo_root()
    out_files: list[Tracked] = []
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            if stages is not None and stage.name not in stages:
                continue
            for out in stage.outs:
                value = out.hash_info.value if out.hash_info else None
                if not out.use_cache or not value:
                    continue
                whole = Tracked(stage.name, Path(out.fs_path), Path(out.cache.oid_to_path(value)), value)
                if not out.hash_info.isdir:
                    out_files.append(whole)
                    continue
                out_files.append(Tracked(stage.name, whole.cache, whole.cache, value.removesuffix(".dir")))
                if not whole.cache.is_file():
                    continue  # reported as a missing cache object
                for key, _, oid in out.get_obj():
                    path = Path(out.fs_path, *key)
                    out_files.append(Tracked(stage.name, path, Path(out.cache.oid_to_path(oid.value)), oid.value))
    return out_files


def md5_of(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "md5").hexdigest()
    except FileNotFoundError:
        return None


def verify(
    root: Path | None = None, jobs: int | None = None, stages: set[str] | None = None
) -> tuple[list[Tracked], list[Mismatch]]:
    """Re-hash every tracked workspace file and cache object (each inode once); the files and the mismatches."""
    files = tracked_files(root, stages)
    paths = sorted({p for f in files for p in (f.path, f.cache)})
    inode = {p: _inode(p) for p in paths}
    unique = {inode[p] or p: p for p in paths}  # hard links share an inode: hash it once
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:  # hashlib releases the GIL
        digests = dict(zip(unique, pool.map(md5_of, unique.values()), strict=True))
    md5 = {p: digests[inode[p] or p] for p in paths}
    mismatches = []
    for f in files:
        places = [("cache", f.cache)] if f.path == f.cache else [("workspace", f.path), ("cache", f.cache)]
        bad = [(where, p) for where, p in places if md5[p] != f.md5]  # a .dir listing lives in the cache only
        if len(bad) == 2 and inode[f.path] is not None and inode[f.path] == inode[f.cache]:
            bad = [("workspace and cache", f.path)]  # one hard-linked file
        mismatches += [Mismatch(f, where, md5[p]) for where, p in bad]
    return files, mismatches


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def run_verify(jobs: int | None = None) -> None:
    """The command: a line per mismatch and a summary; fails (one sentence) when anything does not match."""
    root = repo_root()
    if not (root / "dvc.lock").is_file():
        raise XstiltsError(f"{root}/dvc.lock is missing: nothing has run yet, so nothing can be verified.")
    files, mismatches = verify(root, jobs)
    for m in mismatches:
        print(m.sentence(root))
    size = sum(f.path.stat().st_size for f in files if f.path.is_file())
    print(f"Verified {len(files):,} tracked files ({size / 1e9:.2f} GB) and their cache objects.")
    if mismatches:
        raise XstiltsError(f"{len(mismatches)} of them do not match dvc.lock; repair each as its line above says.")
    print("Every file matches dvc.lock.")
