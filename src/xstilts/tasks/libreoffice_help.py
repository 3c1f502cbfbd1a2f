"""LibreOffice help (Debian ``libreoffice-help-<lang>``): paragraph-level bitext in the software-manual domain.

The help pages are generated from the same ``.xhp`` sources in every language, and each paragraph and
heading keeps its source id (``<p id="par_id3150543">``, ``<h2 id="hd_id761544698669786">``); a page's
path (``text/shared/01/01010000.html``) is the same in every language. So ``<page>#<id>`` identifies a
paragraph across languages, and a language's text is paired with en-US's text of the same key.
"""

from __future__ import annotations

import html
import logging
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register

log = logging.getLogger(__name__)

ROOT = Path("libreoffice_help")
ENGLISH = "en-US"
# ISO 639-1 code -> the package's help folder (also its PACKAGES key: libreoffice_help_<folder, lower, `_`>)
FOLDERS = {
    "de": "de", "nl": "nl", "it": "it", "eu": "eu", "el": "el", "fr": "fr", "es": "es", "pl": "pl",
    "id": "id", "zh": "zh-CN", "hu": "hu", "tr": "tr", "et": "et", "ru": "ru", "ko": "ko", "ja": "ja",
    "vi": "vi", "fi": "fi",
}  # fmt: skip
LANGUAGES = tuple(FOLDERS)

# A paragraph or heading that comes from the .xhp source (not bm_* bookmarks or page furniture).
_PARAGRAPH = re.compile(r"<(p|h[1-6]) id=\"((?:par_id|hd_id|N\d)[^\"]*)\"[^>]*>(.*?)</\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


class _Visible(HTMLParser):
    """The text of an HTML fragment without hidden variants (``<span hidden="true" id="MAC...">``).

    System switches hold one hidden span per system; the one whose id starts with ``default`` is the
    text for other systems (Ctrl, not Command) and is kept.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip: tuple[str, int] | None = None  # (tag, depth) of the hidden element being skipped

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip is not None:
            if tag == self.skip[0]:
                self.skip = (tag, self.skip[1] + 1)
            return
        a = dict(attrs)
        if "hidden" in a and not (a.get("id") or "").startswith("default"):
            self.skip = (tag, 1)

    def handle_endtag(self, tag: str) -> None:
        if self.skip is not None and tag == self.skip[0]:
            self.skip = None if self.skip[1] == 1 else (tag, self.skip[1] - 1)

    def handle_data(self, data: str) -> None:
        if self.skip is None:
            self.out.append(data)


def visible_text(fragment: str) -> str:
    if "hidden" in fragment:
        parser = _Visible()
        parser.feed(fragment)
        parser.close()
        text = "".join(parser.out)
    else:
        text = html.unescape(_TAG.sub("", fragment))
    return re.sub(r"\s+", " ", text).strip()


def page_paragraphs(page: str) -> dict[str, str]:
    """{paragraph id: text} of one help page's HTML; ids that occur more than once in the page are left out."""
    found: dict[str, list[str]] = {}
    for m in _PARAGRAPH.finditer(page):
        found.setdefault(m.group(2), []).append(visible_text(m.group(3)))
    return {pid: texts[0] for pid, texts in found.items() if len(texts) == 1}


def read_page(path: Path) -> dict[str, str]:
    """:func:`page_paragraphs` of a help page file."""
    return page_paragraphs(path.read_text(encoding="utf-8", errors="replace"))


def language_archive(raw_dir: Path, folder: str) -> Path:
    """Where the extract stage put one language's help pages: ``<raw>/libreoffice_help/<folder>.zip``."""
    return Path(raw_dir) / ROOT / f"{folder}.zip"


def read_language(archive: Path) -> dict[str, str]:
    """{'<page path without .html>#<id>': text} for every page ``text/**/*.html`` of a language's zip."""
    out: dict[str, str] = {}
    with zipfile.ZipFile(archive) as zf:
        pages = [n for n in zf.namelist() if n.startswith("text/") and n.endswith(".html")]
        for name in sorted(pages, key=lambda n: PurePosixPath(n).parts):
            text = zf.read(name).decode("utf-8", errors="replace")
            page = name.removesuffix(".html")
            for pid, paragraph in page_paragraphs(text).items():
                out[f"{page}#{pid}"] = paragraph
    return out


@register
class LibreOfficeHelpTask(Task):
    """LibreOffice 7.4 help pages (HTML) from Debian 12's libreoffice-help-<lang> packages, paired with en-US paragraph
    by paragraph: a paragraph's key is its page path and its source id ('text/shared/01/01010000#par_id3150543'), the
    same in every language. Hidden per-system variants (macOS 'Command') are dropped, the default kept. Pairs that are
    empty or identical to English are skipped, and within a language a pair whose English or foreign text repeats an
    earlier key's is skipped too (so every English target is unique). At most max_pairs_per_language pairs per language,
    chosen by a seeded hash of the key (so languages share keys); a key is dev (dev_fraction) or test by its own seeded
    hash, the same in every language. No train split. Ids 'libreoffice_help-<lang>-<key>'."""

    name = "libreoffice_help"
    family = Family.BITEXT
    role = Role.RETRIEVAL
    languages = LANGUAGES
    packages = ("libreoffice_help_en_us",) + tuple(
        f"libreoffice_help_{f.lower().replace('-', '_')}" for f in FOLDERS.values()
    )
    stands_for = "Tatoeba (sentence retrieval), software-manual domain"
    license = "LibreOffice help: MPL-2.0 (Debian packages libreoffice-help-<lang> 4:7.4.7-1+deb12u14)"

    defaults: dict[str, Any] = {
        "seed": splits.DEFAULT_SEED,
        "languages": list(LANGUAGES),
        "max_pairs_per_language": 2000,
        "dev_fraction": 0.3,
    }

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        p, seed, dev_fraction = s.params, s.seed, s.dev_fraction
        max_pairs = splits.check_size(self.name, "max_pairs_per_language", p["max_pairs_per_language"])
        languages = list(dict.fromkeys(p["languages"] or []))
        bad = [lang for lang in languages if lang not in FOLDERS]
        if bad or not languages:
            raise XstiltsError(
                f"Data parameter languages for task libreoffice_help must be a non-empty list from "
                f"{', '.join(LANGUAGES)}; got {languages!r}."
            )
        english_zip = language_archive(raw_dir, ENGLISH)
        if not english_zip.is_file():
            raise XstiltsError(f"{english_zip} is missing; run the extract stage first.")
        english = read_language(english_zip)
        source_en = PACKAGES["libreoffice_help_en_us"]
        rows: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
        for lang in languages:
            archive = language_archive(raw_dir, FOLDERS[lang])
            if not archive.is_file():
                raise XstiltsError(
                    f"{archive} is missing, so libreoffice_help has no {lang} pages; run the extract stage "
                    f"(`dvc repro extract`), or drop {lang} from data.libreoffice_help.languages."
                )
            foreign = read_language(archive)
            seen_en: set[str] = set()
            seen_text: set[str] = set()
            pairs: dict[str, tuple[str, str]] = {}
            skipped = 0
            for key in sorted(english.keys() & foreign.keys()):
                text, en_text = foreign[key], english[key]
                if not text or not en_text or text == en_text or en_text in seen_en or text in seen_text:
                    skipped += 1
                    continue
                seen_en.add(en_text)
                seen_text.add(text)
                pairs[key] = (text, en_text)
            chosen = sorted(splits.take(pairs, max_pairs, seed))
            pkg = PACKAGES[f"libreoffice_help_{FOLDERS[lang].lower().replace('-', '_')}"]
            source = f"{pkg.spec} + {source_en.spec}"
            for key in chosen:
                split = "dev" if splits.unit_hash(key, seed) < dev_fraction else "test"
                text, en_text = pairs[key]
                rows[split].append(
                    {
                        "id": f"libreoffice_help-{lang}-{key}",
                        "language": lang,
                        "domain": "software",
                        "source": source,
                        "split": split,
                        "text": text,
                        "en_text": en_text,
                    }
                )
            log.info(
                "libreoffice_help: %s: %d keys shared with en-US, %d usable pairs (%d empty/identical/repeated), "
                "%d kept",
                lang,
                len(english.keys() & foreign.keys()),
                len(pairs),
                skipped,
                len(chosen),
            )
        if not rows["dev"] and not rows["test"]:
            raise XstiltsError(f"No LibreOffice help pairs for {', '.join(languages)}; nothing to prepare.")
        return splits.write_splits(Path(out_dir), self.schema, rows)
