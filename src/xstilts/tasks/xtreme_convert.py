"""Hub rows (and Google release records) -> canonical rows, one function per source format.

Every function takes the source's rows as plain dicts (what iterating a ``datasets.Dataset`` yields), the
class-label names where the source encodes labels as integers (``Dataset.features[...].names``), and the
common fields; it returns canonical rows of one family (:data:`xstilts.tasks.base.SCHEMAS`). Rows that
break the source's own contract (an answer not at its offset, a label out of range) raise
:class:`XstiltsError` naming the row, except where a loader documents that it drops and counts them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xstilts.errors import XstiltsError

log = logging.getLogger(__name__)

Row = dict[str, Any]

# COPA's question field names the relation; the question asked in the multiple-choice schema.
COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}
# TyDi QA GoldP ids start with the language's English name.
TYDIQA_LANGUAGES = {
    "arabic": "ar",
    "bengali": "bn",
    "english": "en",
    "finnish": "fi",
    "indonesian": "id",
    "korean": "ko",
    "russian": "ru",
    "swahili": "sw",
    "telugu": "te",
}


def _common(id_: str, language: str, domain: str, source: str, split: str) -> Row:
    return {"id": id_, "language": language, "domain": domain, "source": source, "split": split}


def _label_name(value: Any, names: Sequence[str], where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
        raise XstiltsError(f"{where}: label {value!r} is not an index into {list(names)}; the Hub data changed.")
    return names[value]


def sentence_pairs(
    rows: Iterable[Mapping[str, Any]],
    *,
    first: str,
    second: str,
    label_names: Sequence[str],
    rename: Mapping[str, str] | None = None,
    prefix: str,
    id_field: str | None,
    language: str,
    domain: str,
    source: str,
    split: str,
) -> list[Row]:
    """Sentence-pair classification (XNLI ``premise``/``hypothesis``, PAWS-X ``sentence1``/``sentence2``).

    Labels are ClassLabel indices, turned into names (``rename`` maps a Hub name to ours). Rows labelled -1
    (no gold label) are dropped and counted. Ids are ``<prefix>-<id_field>`` (the source's own id, shared by
    the translations of one pair), or ``<prefix>-<position>`` where the source has none.
    """
    out: list[Row] = []
    unlabelled = 0
    for i, r in enumerate(rows):
        ident = f"{prefix}-{r[id_field] if id_field else i}"
        if r["label"] == -1:
            unlabelled += 1
            continue
        name = _label_name(r["label"], label_names, ident)
        out.append(
            {
                **_common(ident, language, domain, source, split),
                "text_a": r[first],
                "text_b": r[second],
                "label": (rename or {}).get(name, name),
            }
        )
    if unlabelled:
        log.info("%s %s %s: dropped %d rows without a gold label", prefix, language, split, unlabelled)
    return out


def copa(
    rows: Iterable[Mapping[str, Any]], *, prefix: str, language: str, domain: str, source: str, split: str
) -> list[Row]:
    """COPA / XCOPA (``premise``, ``choice1``, ``choice2``, ``question`` cause|effect, ``label`` 0|1, ``idx``)."""
    out = []
    for r in rows:
        ident = f"{prefix}-{r['idx']}"
        if r["question"] not in COPA_QUESTIONS:
            raise XstiltsError(f"{ident}: question {r['question']!r} is neither 'cause' nor 'effect'.")
        if r["label"] not in (0, 1):
            raise XstiltsError(f"{ident}: label {r['label']!r} is not 0 or 1.")
        out.append(
            {
                **_common(ident, language, domain, source, split),
                "context": r["premise"],
                "question": COPA_QUESTIONS[r["question"]],
                "choices": [r["choice1"], r["choice2"]],
                "label": int(r["label"]),
            }
        )
    return out


def social_iqa(rows: Iterable[Mapping[str, Any]], *, prefix: str, source: str, split: str) -> list[Row]:
    """Social IQa (``context``, ``question``, ``answerA``-``C``, ``label`` the string "1"-"3")."""
    out = []
    for i, r in enumerate(rows):
        ident = f"{prefix}-{i}"
        label = str(r["label"]).strip()
        if label not in ("1", "2", "3"):
            raise XstiltsError(f"{ident}: label {r['label']!r} is not '1', '2' or '3'.")
        out.append(
            {
                **_common(ident, "en", "social", source, split),
                "context": r["context"],
                "question": r["question"],
                "choices": [r["answerA"], r["answerB"], r["answerC"]],
                "label": int(label) - 1,
            }
        )
    return out


def squad_style(
    rows: Iterable[Mapping[str, Any]],
    *,
    prefix: str,
    language: str | None,
    domain: str,
    source: str,
    split: str,
) -> tuple[list[Row], int]:
    """SQuAD-format QA (``id``, ``context``, ``question``, ``answers`` {``text``, ``answer_start``}).

    ``language`` None reads it from a TyDi QA id prefix ("finnish-..."). An answer whose text is not at its
    offset is dropped; a question left without answers is dropped and counted (returned second).
    """
    out = []
    dropped = 0
    for r in rows:
        ident = f"{prefix}-{r['id']}"
        lang = language
        if lang is None:
            lang = TYDIQA_LANGUAGES.get(str(r["id"]).split("-", 1)[0])
            if lang is None:
                raise XstiltsError(f"{ident}: the id does not start with a TyDi QA language name.")
        context = r["context"]
        pairs = [
            (t, int(s))
            for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"], strict=True)
            if t and 0 <= s and context[s : s + len(t)] == t
        ]
        if not pairs:
            dropped += 1
            continue
        out.append(
            {
                **_common(ident, lang, domain, source, split),
                "context": context,
                "question": r["question"],
                "answers_text": [t for t, _ in pairs],
                "answers_start": [s for _, s in pairs],
            }
        )
    return out, dropped


def tagged_tokens(
    rows: Iterable[Mapping[str, Any]],
    *,
    tag_field: str,
    tag_names: Sequence[str],
    prefix: str,
    language: str,
    domain: str,
    source: str,
    split: str,
) -> list[Row]:
    """Token classification (``tokens`` and ClassLabel tag indices in ``tag_field``), ids by position."""
    out = []
    for i, r in enumerate(rows):
        ident = f"{prefix}-{language}-{split}-{i}"
        tokens, tags = list(r["tokens"]), list(r[tag_field])
        if len(tokens) != len(tags):
            raise XstiltsError(f"{ident}: {len(tokens)} tokens but {len(tags)} tags.")
        out.append(
            {
                **_common(ident, language, domain, source, split),
                "tokens": tokens,
                "tags": [_label_name(t, tag_names, ident) for t in tags],
            }
        )
    return out


def bitext(
    rows: Iterable[Mapping[str, Any]], *, prefix: str, language: str, domain: str, source: str, split: str
) -> list[Row]:
    """Tatoeba in google/xtreme (``source_sentence`` in the language, ``target_sentence`` its English)."""
    out = []
    for i, r in enumerate(rows):
        out.append(
            {
                **_common(f"{prefix}-{language}-{i}", language, domain, source, split),
                "text": r["source_sentence"].strip(),
                "en_text": r["target_sentence"].strip(),
            }
        )
    return out


def bucc_pairs(
    rows: Iterable[Mapping[str, Any]], *, prefix: str, language: str, domain: str, source: str, split: str
) -> list[Row]:
    """BUCC 2018 gold pairs in google/xtreme -> mining rows, two per pair, linked by ``gold_id``.

    That copy keeps the BUCC sentence ids in ``source_lang`` ("de-000000031") and ``target_lang``
    ("en-000001234"); an English sentence paired twice appears once.
    """
    corpus = f"{language}-en"
    out: list[Row] = []
    english: set[str] = set()
    for r in rows:
        src_id, tgt_id = str(r["source_lang"]), str(r["target_lang"])
        if not src_id.startswith(f"{language}-") or not tgt_id.startswith("en-"):
            raise XstiltsError(f"{prefix} {corpus}: pair ({src_id}, {tgt_id}) does not hold BUCC sentence ids.")
        en_id = f"{prefix}-{corpus}-{tgt_id}"
        out.append(
            {
                **_common(f"{prefix}-{corpus}-{src_id}", language, domain, source, split),
                "corpus": corpus,
                "text": r["source_sentence"].strip(),
                "gold_id": en_id,
            }
        )
        if en_id not in english:
            english.add(en_id)
            out.append(
                {
                    **_common(en_id, "en", domain, source, split),
                    "corpus": corpus,
                    "text": r["target_sentence"].strip(),
                    "gold_id": None,
                }
            )
    return out


def _query(ident: str, language: str, domain: str, source: str, split: str, text: str, context: str, start, relevant):
    return {
        **_common(ident, language, domain, source, split),
        "kind": "query",
        "text": text,
        "context": context,
        "text_start": start,
        "relevant_ids": sorted(relevant),
    }


def _candidate(ident: str, language: str, domain: str, source: str, split: str, text: str, context: str, start):
    return {
        **_common(ident, language, domain, source, split),
        "kind": "candidate",
        "text": text,
        "context": context,
        "text_start": start,
        "relevant_ids": [],
    }


def lareqa(squads: Mapping[str, Mapping[str, Any]], *, prefix: str, domain: str, source: str, split: str) -> list[Row]:
    """XQuAD-R (one SQuAD-format JSON per language, paragraphs with ``sentences``/``sentence_breaks``) -> ranking.

    Candidates are every sentence of every paragraph in every language (``text`` the sentence, ``context`` its
    paragraph, ``text_start`` its offset). A question (id shared by its 11 translations) is relevant to the
    sentence holding its answer in EVERY language: LAReQA retrieves from the multilingual pool.
    """
    candidates: list[Row] = []
    questions: list[tuple[str, str, str]] = []  # (language, question id, question)
    answer_sentences: dict[str, set[str]] = {}
    for language, doc in squads.items():
        for a, article in enumerate(doc["data"]):
            for p, para in enumerate(article["paragraphs"]):
                context, breaks = para["context"], para["sentence_breaks"]
                if len(breaks) != len(para["sentences"]):
                    raise XstiltsError(f"{prefix} {language} paragraph {a}-{p}: sentences and breaks differ in number.")
                ids = []
                for s, (start, end) in enumerate(breaks):
                    cid = f"{prefix}-{language}-{a}-{p}-{s}"
                    ids.append(cid)
                    text = context[start:end]
                    candidates.append(_candidate(cid, language, domain, source, split, text, context, start))
                for qa in para["qas"]:
                    starts = [ans["answer_start"] for ans in qa["answers"]]
                    hits = {ids[s] for s, (b, e) in enumerate(breaks) for st in starts if b <= st < e}
                    if not hits:
                        raise XstiltsError(f"{prefix} {language} question {qa['id']}: no sentence holds its answer.")
                    answer_sentences.setdefault(qa["id"], set()).update(hits)
                    questions.append((language, qa["id"], qa["question"]))
    queries = [
        _query(f"{prefix}-q-{qid}", lang, domain, source, split, q, "", None, answer_sentences[qid])
        for lang, qid, q in questions
    ]
    return queries + candidates


def mewslix_mentions(
    records: Iterable[Mapping[str, Any]], *, prefix: str, domain: str, source: str, split: str
) -> list[Row]:
    """Mewsli-X WikiNews mentions (``context`` {``language``, ``text``, ...}, ``mentions`` [...]) -> query rows.

    One query per mention: ``text`` the mention, ``context`` the article, ``text_start`` its offset; the one
    relevant candidate is the gold entity (``<prefix>-<split>-e-<QID>``: each split has its own pool).
    The released ``*_no_text`` files have empty
    article text: they must be restored with Google's script first.
    """
    out = []
    for rec in records:
        ctx = rec["context"]
        text = ctx.get("text") or ""
        if not text:
            raise XstiltsError(
                f"Mewsli-X article {ctx.get('document_id')} has no text: run Google's get-mewsli-x.sh to restore "
                "the WikiNews text and point the task at its output (wikinews_mentions-<split>.jsonl)."
            )
        for m in rec["mentions"]:
            span = m["mention_span"]
            start, end = int(span["start"]), int(span["end"])
            if text[start:end] != span["text"]:
                raise XstiltsError(f"Mewsli-X mention {m['example_id']}: its span does not match the article text.")
            out.append(
                _query(
                    f"{prefix}-m-{m['example_id']}",
                    ctx["language"],
                    domain,
                    source,
                    split,
                    span["text"],
                    text,
                    start,
                    {f"{prefix}-{split}-e-{m['entity_id']}"},
                )
            )
    return out


def mewslix_pairs(
    records: Iterable[Mapping[str, Any]], *, prefix: str, domain: str, source: str, split: str
) -> tuple[list[Row], list[Row]]:
    """Mewsli-X English Wikipedia pairs (``contextual_mention`` + ``entity``) -> (queries, their entities)."""
    queries: list[Row] = []
    entities: dict[str, Row] = {}
    for rec in records:
        cm = rec["contextual_mention"]
        queries += mewslix_mentions(
            [{"context": cm["context"], "mentions": [cm["mention"]]}],
            prefix=prefix,
            domain=domain,
            source=source,
            split=split,
        )
        ent = rec["entity"]
        entities.setdefault(ent["entity_id"], mewslix_entity(ent, prefix=prefix, source=source, split=split))
    return queries, list(entities.values())


def mewslix_entity(entity: Mapping[str, Any], *, prefix: str, source: str, split: str) -> Row:
    """One candidate entity: its description (in ``description_language``), id ``<prefix>-<split>-e-<QID>``."""
    return _candidate(
        f"{prefix}-{split}-e-{entity['entity_id']}",
        entity["description_language"],
        "wikipedia",
        source,
        split,
        entity["description"],
        "",
        None,
    )
