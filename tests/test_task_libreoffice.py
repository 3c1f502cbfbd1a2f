"""LibreOffice help bitext on tiny help pages in the Debian packages' HTML format (tests/fixtures/libreoffice_help)."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xstilts.data import archives, sources
from xstilts.data.splits import SPLITS
from xstilts.errors import XstiltsError
from xstilts.tasks import get_task
from xstilts.tasks.base import SCHEMAS, Family
from xstilts.tasks.libreoffice_help import FOLDERS, language_archive, read_page

FIXTURES = Path(__file__).parent / "fixtures"
PAGE = "text/shared/find_toolbar#"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """The fixture pages as the extract stage leaves them: one zip per language folder."""
    root = tmp_path_factory.mktemp("raw")
    for folder in sorted((FIXTURES / "libreoffice_help").iterdir()):
        archive = language_archive(root, folder.name)
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(folder).as_posix())
    return root


def _prepare(raw: Path, out: Path, **params) -> dict[str, int]:
    return get_task("libreoffice_help").prepare(raw, out, {"languages": ["de", "zh"], **params})


def _rows(out: Path) -> dict[str, list[dict]]:
    return {split: pq.read_table(out / f"{split}.parquet").to_pylist() for split in SPLITS}


def test_read_page_keeps_default_variant_and_drops_repeated_ids():
    page = read_page(FIXTURES / "libreoffice_help/en-US/text/shared/find_toolbar.html")
    assert page["par_id211"] == "Use the shortcut Ctrl + F to open the Find toolbar."  # not "Command"
    assert page["par_id921"] == "Enter the text to be searched & press Enter."
    assert page["hd_id101"] == "Find Toolbar"
    assert "par_id400" not in page  # twice in the page (embedded copy): ambiguous
    assert "bm_module" not in page


def test_pairs(raw, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        counts = _prepare(raw, tmp_path)
    rows = _rows(tmp_path)
    for split in SPLITS:
        assert pq.read_schema(tmp_path / f"{split}.parquet").equals(SCHEMAS[Family.BITEXT])
        assert len(rows[split]) == counts[split]
    assert counts["train"] == 0
    every = rows["dev"] + rows["test"]
    keys = {lang: {r["id"].split("-", 2)[2] for r in every if r["language"] == lang} for lang in ("de", "zh")}
    # N0106 is identical to English, par_id500 empty in de, par_id301 repeats par_id300's English text
    assert keys["de"] == {
        PAGE + k for k in ("hd_id101", "hd_id991", "par_id211", "par_id300", "par_id600", "par_id921")
    }
    assert keys["zh"] == {PAGE + k for k in ("hd_id101", "hd_id991", "par_id211", "par_id600")}
    by_id = {r["id"]: r for r in every}
    de = by_id[f"libreoffice_help-de-{PAGE}par_id211"]
    assert de["text"] == "Verwenden Sie Strg + F, um die Symbolleiste Suchen zu öffnen."
    assert de["en_text"] == "Use the shortcut Ctrl + F to open the Find toolbar."
    assert by_id[f"libreoffice_help-zh-{PAGE}par_id600"]["text"] == "关闭工具栏。"
    assert {r["domain"] for r in every} == {"software"}
    assert all(r["source"].startswith("libreoffice-help-") and "=4:7.4.7-1+deb12u14" in r["source"] for r in every)
    assert all(r["text"] and r["text"] != r["en_text"] for r in every)


def test_keys_split_the_same_in_every_language_and_deterministic(raw, tmp_path):
    _prepare(raw, tmp_path / "a", dev_fraction=0.5)
    _prepare(raw, tmp_path / "b", dev_fraction=0.5)
    for split in SPLITS:
        assert (tmp_path / "a" / f"{split}.parquet").read_bytes() == (tmp_path / "b" / f"{split}.parquet").read_bytes()
    rows = _rows(tmp_path / "a")
    split_of: dict[str, str] = {}
    for split in ("dev", "test"):
        for r in rows[split]:
            assert split_of.setdefault(r["id"].split("-", 2)[2], split) == split
    assert set(split_of.values()) == {"dev", "test"}


def test_a_language_without_its_pages_fails(raw, tmp_path):
    with pytest.raises(XstiltsError, match=r"no fr pages; run the extract stage"):  # no fr folder in the fixtures
        _prepare(raw, tmp_path, languages=["de", "fr"])


def test_max_pairs_and_bad_params(raw, tmp_path):
    counts = _prepare(raw, tmp_path, max_pairs_per_language=2)
    assert counts["dev"] + counts["test"] == 4  # 2 de + 2 zh
    with pytest.raises(XstiltsError, match="languages"):
        _prepare(raw, tmp_path, languages=["xx"])
    with pytest.raises(XstiltsError, match="extract stage"):
        get_task("libreoffice_help").prepare(tmp_path / "nowhere", tmp_path / "out", {})


def test_packages_and_extracts_cover_every_language():
    task = get_task("libreoffice_help")
    for key in task.packages:
        pkg = sources.PACKAGES[key]
        assert pkg.kind == "debian" and pkg.spec == f"{pkg.name}=4:7.4.7-1+deb12u14"
        assert pkg.registry == "the Debian archive"
        prefixes, strip, folder = sources.EXTRACTS[key]
        assert folder == "libreoffice_help/" + strip.rstrip("/").rsplit("/", 1)[1] + ".zip"
    folders = {sources.EXTRACTS[k][2].split("/")[1].removesuffix(".zip") for k in task.packages}
    assert folders == {"en-US", *FOLDERS.values()}


def _deb(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal Debian package: an `ar` archive with debian-binary, control.tar.xz and data.tar.xz."""
    import io
    import tarfile

    def tar_xz(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:xz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    out = bytearray(b"!<arch>\n")
    for name, data in [("debian-binary", b"2.0\n"), ("control.tar.xz", tar_xz({})), ("data.tar.xz", tar_xz(files))]:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    path.write_bytes(bytes(out))
    return path


def test_extract_from_a_debian_package(tmp_path):
    deb = _deb(
        tmp_path / "libreoffice-help-de_7.4.7-1+deb12u14_all.deb",
        {
            "./usr/share/libreoffice/help/de/text/shared/a.html": b"<p id='par_id1'>x</p>",
            "./usr/share/doc/libreoffice-help-de/copyright": b"MPL",
        },
    )
    prefixes, strip, folder = sources.EXTRACTS["libreoffice_help_de"]
    n = archives.extract_members(deb, prefixes, tmp_path / folder, strip=strip)
    assert n == 1
    with zipfile.ZipFile(tmp_path / "libreoffice_help/de.zip") as zf:  # one file for DVC, not one per page
        assert zf.namelist() == ["text/shared/a.html"]
        assert zf.read("text/shared/a.html") == b"<p id='par_id1'>x</p>"
        assert zf.getinfo("text/shared/a.html").date_time == (1980, 1, 1, 0, 0, 0)
    first = (tmp_path / "libreoffice_help/de.zip").read_bytes()
    archives.extract_members(deb, prefixes, tmp_path / folder, strip=strip)
    assert (tmp_path / "libreoffice_help/de.zip").read_bytes() == first  # the same package, the same bytes
