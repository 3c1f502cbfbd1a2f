"""Test-set predictions in the layout that XTREME's ``evaluate.py`` reads (checked and zipped for a submission by
:mod:`xstilts.xtreme_submission`).

Layout (google-research/xtreme: ``evaluate.py`` and ``mock_test_data/predictions/`` at commit da430dd0, the
XTREME-R version; README "Leaderboard Submission"): ``<prediction_folder>/<task>/test-<lang>.<ext>``, where

* ``xnli``, ``pawsx`` (``.tsv``): one label per line, in test-file order;
* ``udpos``, ``panx`` (``.tsv``): one tag per line per word, a blank line between sentences;
* ``xquad``, ``mlqa``, ``tydiqa`` (``.json``): ``{question id: answer text}``;
* ``xcopa`` (``.jsonl``): one JSON object per line whose ``label`` is the chosen index (0 or 1);
* ``tatoeba`` (``.tsv``): per source sentence, the 0-based index of its predicted English sentence;
* ``bucc2018`` (``.tsv``): one mined ``src_id<TAB>tgt_id`` pair per line;
* ``mewslix`` (``.json``): ``{query id: [candidate ids, best first]}`` (scored by mAP@20);
* ``lareqa`` (``.json``): the same ranking layout (``evaluate.py`` lists no LAReQA languages; we use the
  XQuAD-R languages of the XTREME-R paper, arXiv 2104.07412).

XTREME-R (default benchmark) has xnli, xcopa, udpos, panx, xquad, mlqa, tydiqa, tatoeba, mewslix and lareqa;
XTREME (v1) has pawsx, xnli, udpos, panx, xquad, mlqa, tydiqa, bucc2018 and tatoeba. The language lists are
``XTREME_R_TASK2LANGS`` / ``XTREME_TASK2LANGS`` of that ``evaluate.py``.

Tagging rows whose word got no prediction (``_`` in the predictions table: its sub-token was cut off by
``max_length``) are written as :data:`MISSING_TAG` (``O`` for NER, ``X`` for POS), since every word needs a line.
"""

from __future__ import annotations

import json
import logging
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from xstilts.atomic import write_text_atomic
from xstilts.errors import XstiltsError

log = logging.getLogger(__name__)

# XTREME folder -> (what its prediction files hold, their extension)
KIND = {
    **dict.fromkeys(("xnli", "pawsx"), ("label", "tsv")),
    **dict.fromkeys(("udpos", "panx"), ("tags", "tsv")),
    **dict.fromkeys(("xquad", "mlqa", "tydiqa"), ("answer", "json")),
    "xcopa": ("choice", "jsonl"),
    "tatoeba": ("index", "tsv"),
    "bucc2018": ("pairs", "tsv"),
    **dict.fromkeys(("mewslix", "lareqa"), ("ranking", "json")),
}
# xstilts (hub) task name -> XTREME folder name: the same, but for these two
XTREME_FOLDER = {
    **{folder: folder for folder in KIND if folder not in ("panx", "bucc2018")},
    "wikiann": "panx",
    "bucc": "bucc2018",
}
TABLE_KINDS = ("label", "tags", "answer", "choice")  # written from the predictions table of a target run

# the values XTREME's label files hold, so a prediction in another vocabulary fails here, not as a 0 score
LABELS = {
    "xnli": frozenset({"contradiction", "entailment", "neutral"}),
    "pawsx": frozenset({"0", "1"}),
    "panx": frozenset({"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}),
    "udpos": frozenset(
        "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()  # UD v2 UPOS
    ),
}
# xstilts label names -> XTREME's (PAWS-X's hub task names its classes; XTREME's files hold 0/1)
XTREME_LABEL = {"pawsx": {"not_paraphrase": "0", "paraphrase": "1"}}
MISSING_TAG = {"panx": "O", "udpos": "X"}
XCOPA_CHOICES = 2

XTREME_R_LANGUAGES: dict[str, tuple[str, ...]] = {
    "xnli": tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split()),
    "xcopa": tuple("et ht id it qu sw ta th tr vi zh".split()),
    "udpos": tuple(
        "af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr ur vi yo zh "
        "lt pl uk wo ro".split()
    ),
    "panx": tuple(
        "ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw yo my "
        "zh kk tr et fi hu qu pl uk az lt pa gu ro".split()
    ),
    "xquad": tuple("en es de el ru tr ar vi th zh hi ro".split()),
    "mlqa": tuple("en es de ar hi vi zh".split()),
    "tydiqa": tuple("en ar bn fi id ko ru sw te".split()),
    "tatoeba": tuple(
        "ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw zh kk tr et "
        "fi hu az lt pl uk ro".split()
    ),
    "mewslix": tuple("ar de en es fa ja pl ro ta tr uk".split()),
    "lareqa": tuple("ar de el en es hi ru th tr vi zh".split()),
}
# XTREME (v1): XTREME-R appended its new languages to the end of each shared task's list
XTREME_LANGUAGES: dict[str, tuple[str, ...]] = {
    "pawsx": tuple("de en es fr ja ko zh".split()),
    "xnli": XTREME_R_LANGUAGES["xnli"],
    "panx": XTREME_R_LANGUAGES["panx"][:40],
    "udpos": XTREME_R_LANGUAGES["udpos"][:33],
    "bucc2018": tuple("de fr ru zh".split()),
    "tatoeba": XTREME_R_LANGUAGES["tatoeba"][:36],
    "xquad": XTREME_R_LANGUAGES["xquad"][:11],
    "mlqa": XTREME_R_LANGUAGES["mlqa"],
    "tydiqa": XTREME_R_LANGUAGES["tydiqa"],
}
BENCHMARKS = {"xtreme-r": XTREME_R_LANGUAGES, "xtreme": XTREME_LANGUAGES}


def xtreme_folder(task: str) -> str:
    """The XTREME folder of an xstilts task name (``wikiann`` -> ``panx``) or of a folder name itself."""
    if task in XTREME_FOLDER:
        return XTREME_FOLDER[task]
    if task in KIND:
        return task
    raise XstiltsError(
        f"{task!r} is not an XTREME task; XTREME-format predictions exist for {', '.join(sorted(XTREME_FOLDER))}."
    )


def prediction_path(root: Path, folder: str, language: str) -> Path:
    """``<root>/<folder>/test-<language>.<ext>``."""
    return Path(root) / folder / f"test-{language}.{KIND[folder][1]}"


def read_predictions_table(path: Path) -> pd.DataFrame:
    """A run's predictions CSV with every value as text (labels such as ``0`` and empty answers kept as written)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _text(value: object, what: str) -> str:
    if value is None or pd.isna(value):
        raise XstiltsError(f"{what} has no prediction; every test example needs one, so evaluate the run again.")
    return str(value)


def check_values(folder: str, values: Sequence[str], what: str) -> None:
    """Fail with one sentence when ``values`` hold a label or tag that ``folder``'s task does not have."""
    allowed = LABELS.get(folder)
    bad = sorted({v for v in values if allowed is not None and v not in allowed})
    if bad:
        raise XstiltsError(
            f"{what} has {', '.join(map(repr, bad[:5]))}, which XTREME's {folder} labels do not include "
            f"({', '.join(sorted(allowed))}); map the task's labels to XTREME's before writing predictions."
        )


def _render_rows(folder: str, ids: Sequence[str], predictions: Sequence[object]) -> str:
    kind = KIND[folder][0]
    texts = [_text(p, f"{folder} example {i!r}") for i, p in zip(ids, predictions, strict=True)]
    if kind == "label":
        texts = [XTREME_LABEL.get(folder, {}).get(t, t) for t in texts]
        check_values(folder, texts, f"{folder} predictions")
        return "".join(f"{t}\n" for t in texts)
    if kind == "tags":
        sentences = []
        for i, t in zip(ids, texts, strict=True):
            tags = [MISSING_TAG[folder] if tag == "_" else tag for tag in t.split(" ")]
            if not t or not all(tags):
                raise XstiltsError(f"{folder} example {i!r} has an empty tag; write one tag per word.")
            check_values(folder, tags, f"{folder} example {i!r}")
            sentences.append("\n".join(tags))
        return "\n\n".join(sentences) + "\n"
    if kind == "answer":
        qids = [i.removeprefix(f"{folder}-") for i in ids]  # the hub QA tasks' ids are "<task>-<question id>"
        # ASCII-escaped: google-research/xtreme's evaluate.py opens the file with the locale's encoding
        return json.dumps(dict(zip(qids, texts, strict=True)), indent=2) + "\n"
    lines = []
    for i, t in zip(ids, texts, strict=True):
        if t not in {str(c) for c in range(XCOPA_CHOICES)}:
            raise XstiltsError(f"xcopa example {i!r} predicts choice {t!r}; XCOPA predictions are 0 or 1.")
        lines.append(json.dumps({"id": i, "label": int(t)}) + "\n")
    return "".join(lines)


def write_xtreme_predictions(xtreme_task: str, table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write the test rows of a target run's predictions table as ``out_dir/<folder>/test-<lang>.<ext>``.

    ``table``: :meth:`Evaluation.table` rows (columns split, id, language, prediction; a ``task`` column, if
    any, must hold one task); one file per language, rows in table order (the order of the task's test file).
    QA keys are the question ids: ids lose a leading ``<task>-``. Returns the files written, by language.
    """
    folder = xtreme_folder(xtreme_task)
    if KIND[folder][0] not in TABLE_KINDS:
        raise XstiltsError(
            f"{folder} is a retrieval task; write its predictions with write_tatoeba_predictions, "
            "write_bucc_predictions or write_ranking_predictions instead."
        )
    missing = {"split", "id", "language", "prediction"} - set(table.columns)
    if missing:
        raise XstiltsError(
            f"The predictions table lacks column(s) {', '.join(sorted(missing))}; pass Evaluation.table() rows."
        )
    if "task" in table.columns and table["task"].nunique() > 1:
        raise XstiltsError(f"The predictions table holds several tasks; pass only the {folder} rows.")
    test = table[table["split"] == "test"]
    if test.empty:
        raise XstiltsError(f"The predictions table has no test rows for {folder}; evaluate the test split first.")
    paths = []
    for language in sorted(set(test["language"])):
        rows = test[test["language"] == language]
        ids = [str(i) for i in rows["id"]]
        repeated = sorted(set(rows["id"][rows["id"].duplicated()].astype(str)))
        if repeated:
            raise XstiltsError(f"{folder} {language} test ids repeat ({', '.join(repeated[:5])}); ids must be unique.")
        path = prediction_path(out_dir, folder, language)
        write_text_atomic(path, _render_rows(folder, ids, list(rows["prediction"])))
        paths.append(path)
    return paths


def _index(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def write_tatoeba_predictions(predictions: Mapping[str, Sequence[int]], out_dir: Path) -> list[Path]:
    """``tatoeba/test-<lang>.tsv``: per language, each source sentence's predicted English index (0-based)."""
    paths = []
    for language, indices in sorted(predictions.items()):
        if not len(indices) or not all(_index(i) for i in indices):
            raise XstiltsError(
                f"Tatoeba {language} predictions must be a non-empty list of 0-based indices of English sentences."
            )
        path = prediction_path(out_dir, "tatoeba", language)
        write_text_atomic(path, "".join(f"{int(i)}\n" for i in indices))
        paths.append(path)
    return paths


def _plain_id(value: object) -> bool:
    return isinstance(value, str) and bool(value) and not any(c in value for c in "\t\n\r")


def write_bucc_predictions(pairs: Mapping[str, Sequence[tuple[str, str]]], out_dir: Path) -> list[Path]:
    """``bucc2018/test-<lang>.tsv``: per language, the mined (source id, English id) pairs, one per line."""
    paths = []
    for language, mined in sorted(pairs.items()):
        if any(len(pair) != 2 or not all(_plain_id(x) for x in pair) for pair in mined):
            raise XstiltsError(f"BUCC {language} pairs must be (source id, target id) strings without tabs.")
        path = prediction_path(out_dir, "bucc2018", language)
        write_text_atomic(path, "".join(f"{src}\t{tgt}\n" for src, tgt in mined))
        paths.append(path)
    return paths


def write_ranking_predictions(
    xtreme_task: str, rankings: Mapping[str, Mapping[str, Sequence[str]]], out_dir: Path
) -> list[Path]:
    """``<mewslix|lareqa>/test-<lang>.json``: per language, ``{query id: [candidate ids, best first]}``."""
    folder = xtreme_folder(xtreme_task)
    if KIND[folder][0] != "ranking":
        raise XstiltsError(f"{folder} predictions are not rankings; only mewslix and lareqa take ranked ids.")
    paths = []
    for language, ranked in sorted(rankings.items()):
        if not ranked or not all(_plain_id(q) and all(_plain_id(c) for c in cands) for q, cands in ranked.items()):
            raise XstiltsError(f"{folder} {language} needs queries, each with a list of candidate id strings.")
        path = prediction_path(out_dir, folder, language)
        text = json.dumps({q: list(c) for q, c in ranked.items()}) + "\n"  # ASCII-escaped, as answers
        write_text_atomic(path, text)
        paths.append(path)
    return paths


def log_xtreme_artifacts(paths: Sequence[Path], artifact_path: str = "xtreme") -> None:
    """Log written prediction files to the active MLflow run as ``<artifact_path>/<folder>/test-<lang>.<ext>``."""
    import mlflow

    if mlflow.active_run() is None:
        raise XstiltsError("XTREME predictions are logged to the active MLflow run; start one first.")
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=f"{artifact_path}/{Path(path).parent.name}")
