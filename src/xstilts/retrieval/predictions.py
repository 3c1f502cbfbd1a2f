"""A retrieval result's test predictions in XTREME's layout: Tatoeba rows, BUCC pairs, LAReQA / Mewsli-X rankings."""

from __future__ import annotations

from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.retrieval.base import RetrievalResult
from xstilts.xtreme_format import (
    KIND,
    XTREME_FOLDER,
    write_bucc_predictions,
    write_ranking_predictions,
    write_tatoeba_predictions,
)

# the XTREME folders each family writes, and the xstilts id prefixes (tasks.xtreme_convert) in front of XTREME's own
# ids: (source or query, English or candidate); ``{lang}`` is the file's language
FAMILY_FOLDERS = {"bitext": ("tatoeba",), "mining": ("bucc2018",), "ranking": ("mewslix", "lareqa")}
ID_PREFIXES = {
    "bucc2018": ("bucc-{lang}-en-", "bucc-{lang}-en-"),  # bucc-de-en-de-000000031 -> de-000000031
    "mewslix": ("mewslix-m-", "mewslix-test-e-"),  # example id; WikiData QID
    "lareqa": ("lareqa-q-", "lareqa-"),  # question id (shared by its translations); <lang>-<article>-<para>-<sent>
}


def _xtreme_id(ident: str, prefix: str) -> str:
    if not str(ident).startswith(prefix) or len(str(ident)) == len(prefix):
        raise XstiltsError(f"Id {ident!r} does not start with {prefix!r}; re-run the task's prepare stage.")
    return str(ident)[len(prefix) :]


def write_retrieval_predictions(task_name: str, result: RetrievalResult, out_dir: Path) -> list[Path]:
    """Write ``result``'s test predictions as ``out_dir/<folder>/test-<lang>.<ext>`` (XTREME's layout, XTREME ids).

    Only XTREME tasks (keys of ``XTREME_FOLDER``: tatoeba, bucc, mewslix, lareqa) have a format: any other task
    (the offline udhr, libreoffice_help) writes nothing and returns ``[]``. Returns the files written.
    """
    if task_name not in XTREME_FOLDER:
        return []
    folder = XTREME_FOLDER[task_name]
    if folder not in FAMILY_FOLDERS.get(str(result.family), ()):
        raise XstiltsError(
            f"{task_name} takes {KIND[folder][0]} predictions, not {result.family} retrieval results; "
            "pass the result of retrieving that task."
        )
    if not result.predictions:
        raise XstiltsError(f"The {task_name} result holds no test predictions; evaluate it with retrieve() first.")
    if folder == "tatoeba":
        return write_tatoeba_predictions(
            {lang: [int(i) for i in idx] for lang, idx in result.predictions.items()}, out_dir
        )
    first, second = ID_PREFIXES[folder]
    if folder == "bucc2018":
        pairs = {
            lang: [(_xtreme_id(s, first.format(lang=lang)), _xtreme_id(t, second.format(lang=lang))) for s, t in mined]
            for lang, mined in result.predictions.items()
        }
        return write_bucc_predictions(pairs, out_dir)
    rankings = {}
    for lang, ranked in result.predictions.items():
        rankings[lang] = {_xtreme_id(q, first): [_xtreme_id(c, second) for c in cands] for q, cands in ranked.items()}
        if len(rankings[lang]) != len(ranked):
            raise XstiltsError(f"Two {folder} {lang} queries share an XTREME id; re-run the task's prepare stage.")
    return write_ranking_predictions(task_name, rankings, out_dir)
