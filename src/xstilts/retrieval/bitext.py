"""Bitext retrieval (Tatoeba-style rows: each sentence with its English translation) and BUCC-style mining.

* Tatoeba: each non-English sentence finds its English translation among all English sentences of the split;
  top-1 accuracy, and per language the predicted English row for XTREME's files.
* Mining: per language, a share of the non-English sentences is dropped (their English partners stay as
  unaligned distractors), pairs are mined with the ratio margin, a threshold is tuned for F1 on dev and applied
  to test. Bitext rows are mined per language; mining rows (BUCC, linked by ``gold_id``) per corpus pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import numpy as np

from xstilts.errors import XstiltsError
from xstilts.retrieval import embedding
from xstilts.retrieval.base import RetrievalResult, split_columns
from xstilts.retrieval.search import distractor_mask, mine, precision_recall_f1, search, top1_correct, tune_threshold

BITEXT_COLUMNS = ("id", "language", "text", "en_text")
MINING_COLUMNS = ("id", "language", "corpus", "text", "gold_id")


@dataclass(frozen=True)
class Mining:
    """How mining runs: the ``share`` of aligned non-English sentences dropped (seeded hash of the id, so their
    English partners stay as distractors) and the ``k`` neighbours of the ratio margin."""

    share: float = 0.2
    k: int = 4
    seed: int = 0


@dataclass(frozen=True)
class _Language:
    """One language of a split: embedded sentences, which are kept for mining, and each one's English index."""

    vectors: np.ndarray
    kept: np.ndarray
    english: np.ndarray  # index into the split's English vectors
    ids: np.ndarray


@dataclass(frozen=True)
class _Split:
    english: np.ndarray
    languages: dict[str, _Language]


def _embed_split(ds: datasets.Dataset, embedder: embedding.Embedder, mining: Mining) -> _Split:
    """Embed every sentence and every distinct English sentence of a split in one pass."""
    missing = [c for c in BITEXT_COLUMNS if c not in ds.column_names]
    if missing or len(ds) == 0:
        raise XstiltsError(
            f"A bitext split needs rows with columns {', '.join(BITEXT_COLUMNS)} (missing: {missing or 'none'}, "
            f"rows: {len(ds)}); re-run the task's prepare stage."
        )
    cols = {c: list(ds[c]) for c in BITEXT_COLUMNS}
    english = sorted(set(cols["en_text"]))
    position = {t: i for i, t in enumerate(english)}
    vectors = embedder(cols["text"] + english)
    languages, ids = np.asarray(cols["language"]), np.asarray(cols["id"], dtype=object)
    target = np.asarray([position[t] for t in cols["en_text"]])
    per_language = {}
    for lang in sorted(set(cols["language"])):
        rows = np.flatnonzero(languages == lang)
        kept = ~distractor_mask(list(ids[rows]), mining.share, mining.seed)
        per_language[lang] = _Language(vectors[rows], kept, target[rows], ids[rows])
    return _Split(vectors[len(ds) :], per_language)


@dataclass(frozen=True)
class MinedLanguage:
    """One language's mined candidates, best score first: margin scores, which candidates are gold, the number of
    gold pairs, and (mining family) each candidate's (source id, English id)."""

    scores: np.ndarray
    correct: np.ndarray
    n_gold: int
    pairs: tuple[tuple[str, str], ...] = ()


def _mined_for(lang: _Language, english: np.ndarray, k: int) -> MinedLanguage:
    """Mine one language against its own English partners; return scores, which are gold, and the gold count."""
    pool = np.unique(lang.english)  # partners of kept and dropped sentences alike
    src_rows = np.flatnonzero(lang.kept)
    found = mine(lang.vectors[src_rows], english[pool], k)
    gold = {(int(s), int(t)) for s, t in zip(src_rows, lang.english[src_rows], strict=True)}
    correct = np.asarray(
        [(int(src_rows[s]), int(pool[t])) in gold for s, t in zip(found.source, found.target, strict=True)], dtype=bool
    )
    return MinedLanguage(found.score, correct, len(gold))


def _top1(split: _Split, prefix: str, examples: dict[str, list]) -> dict[str, float]:
    """Top-1 accuracy per language and its mean; each query's hit is added to ``examples``."""
    metrics = {}
    for lang, data in split.languages.items():
        correct = top1_correct(data.vectors, split.english, data.english)
        metrics[f"{prefix}_accuracy_{lang}"] = float(correct.mean())
        for column, values in (("split", [prefix] * len(correct)), ("id", data.ids.tolist()),
                               ("language", [lang] * len(correct)), ("score", correct.astype(float).tolist()),
                               ("weight", [1.0] * len(correct))):  # fmt: skip
            examples.setdefault(column, []).extend(values)
    metrics[f"{prefix}_accuracy_zeroshot"] = float(np.mean(list(metrics.values())))
    return metrics


def tatoeba_indices(lang: _Language, english: np.ndarray) -> list[int]:
    """Each sentence's nearest English among its own language's English side, as a 0-based row of that side.

    XTREME compares these with line numbers, so each language searches only its own English sentences (the
    accuracy metric searches the whole split's). A prediction whose text is the gold translation's is the gold row
    (repeated English sentences embed identically); any other is the first row holding that text.
    """
    pool = np.unique(lang.english)
    _, nearest = search(lang.vectors, english[pool], 1)
    first_row: dict[int, int] = {}
    for row, target in enumerate(lang.english.tolist()):
        first_row.setdefault(target, row)
    predicted = pool[nearest[:, 0]].tolist()
    gold = lang.english.tolist()
    return [row if p == gold[row] else first_row[p] for row, p in enumerate(predicted)]


def bitext_retrieval(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    embedder: embedding.Embedder,
    mining: Mining = Mining(),
) -> RetrievalResult:
    """Tatoeba top-1 accuracy and BUCC-style mining F1 per language on dev and test, and the test split's Tatoeba
    predictions (:func:`tatoeba_indices`).

    Each split is embedded once. Mining drops ``mining.share`` of each language's non-English sentences (seeded
    hash of the id), leaving their English partners as distractors; the margin threshold is tuned for F1 per language
    on dev (so dev F1 is optimistic) and applied to test. A test language missing from dev uses the threshold tuned
    on all dev languages pooled (``bucc_threshold_pooled``). Metrics: ``<split>_accuracy_<lang|zeroshot>``,
    ``<split>_bucc_{f1,precision,recall}_<lang>``, ``<split>_bucc_f1_zeroshot`` and ``bucc_threshold_<lang>``.
    An empty dev split (Tatoeba has only a test split) gives test accuracy only: mining needs dev to tune on.
    """
    named = (("dev", dev), ("test", test)) if len(dev) else (("test", test),)
    splits = {name: _embed_split(ds, embedder, mining) for name, ds in named}
    metrics: dict[str, float] = {}
    examples: dict[str, list] = {}
    for name, split in splits.items():
        metrics.update(_top1(split, name, examples))
    if "dev" in splits:
        mined = {
            n: {lang: _mined_for(d, s.english, mining.k) for lang, d in s.languages.items()} for n, s in splits.items()
        }
        metrics.update(mining_metrics(mined))
    test_split = splits["test"]
    predictions = {lang: tatoeba_indices(data, test_split.english) for lang, data in test_split.languages.items()}
    return RetrievalResult("bitext", metrics, predictions, examples)


def mining_thresholds(mined: dict[str, dict[str, MinedLanguage]]) -> dict[str, float]:
    """Thresholds tuned per language on ``mined["dev"]``, ``pooled`` over its languages, and the pooled one for
    every language of another split that dev lacks."""
    dev = mined["dev"]
    thresholds = {lang: tune_threshold(m.scores, m.correct, m.n_gold) for lang, m in dev.items()}
    pooled = [np.concatenate([getattr(m, name) for m in dev.values()]) for name in ("scores", "correct")]
    thresholds["pooled"] = tune_threshold(*pooled, sum(m.n_gold for m in dev.values()))
    for languages in mined.values():
        for lang in languages:
            thresholds.setdefault(lang, thresholds["pooled"])
    return thresholds


def mining_metrics(mined: dict[str, dict[str, MinedLanguage]]) -> dict[str, float]:
    """Thresholds tuned per language on ``mined["dev"]`` (pooled for languages missing there), F1 on every split.

    Metrics: ``<split>_bucc_{f1,precision,recall}_<lang>``, ``<split>_bucc_f1_zeroshot`` (mean F1 over languages)
    and ``bucc_threshold_<lang|pooled>``.
    """
    thresholds = mining_thresholds(mined)
    metrics: dict[str, float] = {}
    for name, languages in mined.items():
        f1s = []
        for lang, m in languages.items():
            p, r, f1 = precision_recall_f1(m.scores, m.correct, m.n_gold, thresholds[lang])
            metrics.update({f"{name}_bucc_precision_{lang}": p, f"{name}_bucc_recall_{lang}": r})
            metrics[f"{name}_bucc_f1_{lang}"] = f1
            f1s.append(f1)
        metrics[f"{name}_bucc_f1_zeroshot"] = float(np.mean(f1s))
    metrics.update({f"bucc_threshold_{lang}": t for lang, t in thresholds.items()})
    return metrics


def _mine_corpus(
    rows: np.ndarray, cols: dict[str, list], vectors: np.ndarray, where: str, mining: Mining
) -> MinedLanguage:
    """Mine one corpus pair (its non-English rows against its English rows) and mark the gold pairs."""
    english = [int(i) for i in rows if cols["language"][i] == "en"]
    source = [int(i) for i in rows if cols["language"][i] != "en"]
    if not english or not source:
        raise XstiltsError(f"{where} needs English and non-English sentences; re-run the task's prepare stage.")
    english_at = {cols["id"][i]: n for n, i in enumerate(english)}
    gold = [cols["gold_id"][i] for i in source]
    if any(g is not None and g not in english_at for g in gold):
        raise XstiltsError(f"{where} has a gold_id that is no English sentence of the pair; re-run its prepare stage.")
    linked = [cols["id"][i] for i, g in zip(source, gold, strict=True) if g is not None]
    dropped = set(np.asarray(linked, dtype=object)[distractor_mask(linked, mining.share, mining.seed)])
    kept = [n for n, i in enumerate(source) if cols["id"][i] not in dropped]
    found = mine(vectors[[source[n] for n in kept]], vectors[english], mining.k)
    target = [english_at[g] if g is not None else -1 for g in gold]
    found_pairs = list(zip(found.source.tolist(), found.target.tolist(), strict=True))
    correct = np.asarray([target[kept[s]] == t for s, t in found_pairs], dtype=bool)
    ids = tuple((cols["id"][source[kept[s]]], cols["id"][english[t]]) for s, t in found_pairs)
    return MinedLanguage(found.score, correct, sum(target[n] >= 0 for n in kept), ids)


def _mined_split(ds: datasets.Dataset, split: str, embed_texts, mining: Mining) -> dict[str, MinedLanguage]:
    """Per language pair of a mining split (keyed by its non-English language): mined scores and gold marks."""
    cols = split_columns(ds, MINING_COLUMNS, "mining (BUCC)", split)
    vectors = embed_texts(cols["text"])
    corpora = np.asarray(cols["corpus"], dtype=object)
    out = {}
    for corpus in sorted(set(cols["corpus"])):
        rows = np.flatnonzero(corpora == corpus)
        foreign = {cols["language"][i] for i in rows} - {"en"}
        if len(foreign) != 1:
            raise XstiltsError(f"Corpus {corpus} of the {split} split must pair one language with English.")
        out[foreign.pop()] = _mine_corpus(rows, cols, vectors, f"Corpus {corpus} of the {split} split", mining)
    return out


def mining_retrieval(
    dev: datasets.Dataset,
    test: datasets.Dataset,
    embedder: embedding.Embedder,
    mining: Mining = Mining(),
) -> RetrievalResult:
    """BUCC-style mining per language pair (``corpus``): ratio-margin mining, threshold tuned on dev, F1 on test;
    and per language the test pairs scoring at least its tuned threshold.

    Each pair's non-English sentences are mined against its English ones. Sentences linked by ``gold_id`` lose
    ``mining.share`` of their number (seeded hash of the id) so that their English partners stay as distractors
    (the Hub's BUCC copy holds only gold pairs); unlinked sentences are always kept. Metrics as
    :func:`mining_metrics`, keyed by the non-English language.
    """
    mined = {name: _mined_split(ds, name, embedder, mining) for name, ds in (("dev", dev), ("test", test))}
    thresholds = mining_thresholds(mined)
    predictions = {
        lang: [m.pairs[i] for i in np.flatnonzero(m.scores >= thresholds[lang])] for lang, m in mined["test"].items()
    }
    return RetrievalResult("mining", mining_metrics(mined), predictions)
