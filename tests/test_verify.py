"""`xstilts verify` on a real DVC repository: an in-place write through a hard link is found, in the workspace
and in the cache, and a clean repository passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.errors import XstiltsError
from xstilts.verify import run_verify, verify

STAGE = """
stages:
  make:
    cmd: {python} -c "import pathlib; d = pathlib.Path('out'); d.mkdir(exist_ok=True); (d / 'a.txt').write_text('a'); (d / 'b.txt').write_text('b'); pathlib.Path('one.txt').write_text('one')"
    outs: [out, one.txt]
"""  # noqa: E501


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def run(*args: str) -> None:
        subprocess.run(list(args), cwd=tmp_path, env=env, check=True, capture_output=True)

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    run("dvc", "config", "cache.type", "hardlink")
    (tmp_path / "dvc.yaml").write_text(STAGE.format(python=sys.executable))
    run("dvc", "repro", "-q")
    return tmp_path


def test_a_clean_repository_verifies(repo, capsys):
    files, mismatches = verify(repo)
    assert {f.path.name for f in files} >= {"a.txt", "b.txt", "one.txt"} and mismatches == []
    run_verify()
    assert "Every file matches dvc.lock." in capsys.readouterr().out


def test_an_in_place_write_through_a_hard_link_is_named_with_its_repair(repo, capsys):
    target = repo / "out" / "a.txt"
    with open(target, "r+") as f:  # in place: the workspace file is the cache object
        f.write("X")
    _, mismatches = verify(repo)
    [m] = mismatches
    assert m.file.path == target and m.where == "workspace and cache" and m.actual is not None
    with pytest.raises(XstiltsError, match="1 of them do not match dvc.lock"):
        run_verify()
    out = capsys.readouterr().out
    assert "out/a.txt (workspace and cache, stage make) has md5" in out and "`dvc repro -f -s make`" in out


def test_a_corrupt_cache_object_and_a_missing_file_are_told_apart(repo, capsys):
    one = repo / "one.txt"
    cache = next(f.cache for f in verify(repo)[0] if f.path == one)
    one.unlink()
    one.write_text("one")  # a separate copy with the right bytes: the workspace is fine
    cache.chmod(0o644)
    cache.write_bytes(b"bad")  # the cache object is not
    (repo / "out" / "b.txt").unlink()
    _, mismatches = verify(repo)
    assert {(m.file.path.name, m.where) for m in mismatches} == {("one.txt", "cache"), ("b.txt", "workspace")}
    with pytest.raises(XstiltsError, match="2 of them"):
        run_verify()
    assert "out/b.txt (stage make) is missing from the workspace: `dvc checkout" in capsys.readouterr().out
