"""Hindi question answering (BIG-bench ``hindi_question_answering``) as extractive QA, minus SQuAD v1.1 dev.

Many items are machine translations of SQuAD paragraphs, some of them of SQuAD v1.1 dev (e.g. the Normans
article), which English models here may be tuned or evaluated on; those are dropped. The Hindi text cannot be
compared with the English directly, so a context is matched by its script-independent anchors: numbers
(Devanagari digits read as ASCII, commas removed, two characters or more) and Latin-script words (3+
letters, lower case) that survive translation. A Hindi context overlaps a SQuAD dev paragraph when the
anchors they share weigh at least ``overlap_min_score`` (sum of log(N/df) over the shared anchors, df counted
over the five SQuAD-format files of BIG-bench squad_shifts) and cover at least ``overlap_min_coverage`` of the
Hindi context's anchors. Exact matches of the normalised question or context are dropped too.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register
from xstilts.tasks.parsinlu import dev_or_test, load_examples, locate

log = logging.getLogger(__name__)

TASK_FILE = Path("bigbench") / "hindi_question_answering" / "task.json"
SQUAD = Path("bigbench") / "squad_shifts"
SQUAD_DEV = "squaddev_v1.1.json"
# Reference files for anchor document frequencies (dev first).
SQUAD_FILES = (SQUAD_DEV, "new_wiki_v1.0.json", "nyt_v1.0.json", "reddit_v1.0.json", "amazon_reviews_v1.0.json")
_DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")
_BOUNDARY = re.compile(r"[।!?]|\.(?=\s)")


def split_input(text: str) -> tuple[str, str] | None:
    """(context, question): the input is the context with the question appended as its last sentence.

    The question starts after the last sentence end (।, !, ? or a full stop before a space) that is not
    the input's final character; None when there is none.
    """
    text = text.strip()
    ends = [m.end() for m in _BOUNDARY.finditer(text[:-1])]
    if not ends:
        return None
    context, question = text[: ends[-1]].strip(), text[ends[-1] :].strip()
    return (context, question) if context and question else None


def anchors(text: str) -> set[str]:
    text = text.translate(_DEVANAGARI_DIGITS)
    numbers = {n.replace(",", "") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}
    words = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text)}
    return {n for n in numbers if len(n) >= 2} | words


def normalise(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def squad_paragraphs(path: Path) -> list[tuple[str, list[str]]]:
    """(context, questions) per paragraph of a SQuAD-format file."""
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    data = json.loads(path.read_text(encoding="utf-8")).get("data") or []
    return [
        (str(par.get("context", "")), [str(q.get("question", "")) for q in par.get("qas", [])])
        for article in data
        for par in article.get("paragraphs", [])
    ]


class SquadDevMatcher:
    """Finds SQuAD v1.1 dev paragraphs that a (translated) context comes from; see the module docstring."""

    def __init__(self, squad_dir: Path, min_score: float, min_coverage: float) -> None:
        self.min_score, self.min_coverage = min_score, min_coverage
        df: Counter[str] = Counter()
        n_docs = 0
        dev: list[tuple[str, list[str]]] = []
        for name in SQUAD_FILES:
            paragraphs = squad_paragraphs(squad_dir / name)
            if name == SQUAD_DEV:
                dev = paragraphs
            for context, _ in paragraphs:
                df.update(anchors(context))
            n_docs += len(paragraphs)
        self.weight = {a: math.log(n_docs / d) for a, d in df.items()}
        self.dev_anchors = [anchors(c) for c, _ in dev]
        self.index: dict[str, set[int]] = defaultdict(set)
        for i, found in enumerate(self.dev_anchors):
            for a in found:
                self.index[a].add(i)
        self.exact = {normalise(c) for c, _ in dev} | {normalise(q) for _, qs in dev for q in qs}
        self.exact.discard("")

    def overlaps(self, context: str, question: str) -> str | None:
        """'exact' or 'anchors' when the item comes from SQuAD dev, else None."""
        if normalise(context) in self.exact or normalise(question) in self.exact:
            return "exact"
        found = anchors(context)
        for i in {i for a in found for i in self.index.get(a, ())}:
            shared = found & self.dev_anchors[i]
            score = sum(self.weight[a] for a in shared)
            if score >= self.min_score and len(shared) >= self.min_coverage * len(found):
                return "anchors"
        return None


@register
class HindiQaTask(Task):
    """Hindi QA from BIG-bench hindi_question_answering (6,610 items): input = context with the question appended as its
    last sentence, target = one answer string, located in the context for its character offset (items whose answer is
    not in the context are dropped and counted). Items that come from SQuAD v1.1 dev (bigbench
    squad_shifts/squaddev_v1.1.json) are dropped: by normalised exact match of question or context, and by shared
    numbers and Latin-script words (overlap_min_score, overlap_min_coverage; see the module docstring). dev
    (dev_fraction) / test by a seeded hash of the context. Ids 'hindi_qa-<index>'."""

    name = "hindi_qa"
    family = Family.EXTRACTIVE_QA
    train_from = "squadshifts"  # English extractive QA
    role = Role.TARGET
    languages = ("hi",)
    packages = ("bigbench",)
    stands_for = "XQuAD / MLQA / TyDiQA-GoldP"
    license = "BIG-bench hindi_question_answering: Apache 2.0 (translated SQuAD paragraphs: CC BY-SA 4.0)"
    defaults: dict[str, Any] = {
        "seed": splits.DEFAULT_SEED,
        "dev_fraction": 0.3,
        "overlap_min_score": 15.0,
        "overlap_min_coverage": 0.5,
    }

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        p, dev_fraction = s.params, s.dev_fraction
        min_coverage = splits.check_fraction(self.name, "overlap_min_coverage", p["overlap_min_coverage"])
        min_score = p["overlap_min_score"]
        if isinstance(min_score, bool) or not isinstance(min_score, int | float) or min_score < 0:
            raise XstiltsError("Data parameter overlap_min_score for task hindi_qa must be a number >= 0.")
        examples = load_examples(Path(raw_dir) / TASK_FILE)
        matcher = SquadDevMatcher(Path(raw_dir) / SQUAD, float(min_score), min_coverage)
        source = PACKAGES["bigbench"].spec
        rows: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
        dropped: Counter[str] = Counter()
        for i, ex in enumerate(examples):
            parts = split_input(ex.get("input") or "")
            target = ex.get("target")
            target = target[0] if isinstance(target, list) and target else target
            if parts is None or not isinstance(target, str):
                dropped["no question/answer"] += 1
                continue
            context, question = parts
            span = locate(context, target)
            if span is None:
                dropped["answer not in context"] += 1
                continue
            why = matcher.overlaps(context, question)
            if why is not None:
                dropped[f"SQuAD v1.1 dev ({why})"] += 1
                continue
            split = dev_or_test(context, s.seed, dev_fraction)
            rows[split].append(
                {
                    "id": f"hindi_qa-{i}",
                    "language": "hi",
                    "domain": "wikipedia",
                    "source": source,
                    "split": split,
                    "context": context,
                    "question": question,
                    "answers_text": [span[0]],
                    "answers_start": [span[1]],
                }
            )
        log.info(
            "hindi_qa: %d items; dropped %s", len(examples), ", ".join(f"{n} {k}" for k, n in dropped.items()) or "none"
        )
        return splits.write_splits(Path(out_dir), self.schema, rows)
