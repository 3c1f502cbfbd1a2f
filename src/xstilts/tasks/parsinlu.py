"""ParsiNLU (Persian, via BIG-bench): reading comprehension as extractive QA, and multiple-choice QA.

Both are targets with dev and test splits only (the model is trained on English elsewhere).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register

log = logging.getLogger(__name__)

RC_FILE = Path("bigbench") / "parsinlu_reading_comprehension" / "task.json"
MC_FILE = Path("bigbench") / "parsinlu_qa" / "task.json"
_RC_INPUT = re.compile(r"^\s*passage: '(.*)' question: '(.*)'\s*$", re.DOTALL)


def load_examples(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    examples = json.loads(path.read_text(encoding="utf-8")).get("examples")
    if not isinstance(examples, list) or not examples:
        raise XstiltsError(f"{path} has no examples list; is it a BIG-bench task.json?")
    return examples


def locate(context: str, answer: str) -> tuple[str, int] | None:
    """(span text, character offset) of ``answer`` in ``context``: exactly, else with any run of whitespace
    (and zero-width non-joiners) matching any other; None when it is not there. The span is the
    context's own text, so ``context[start:start+len(text)] == text`` always holds."""
    answer = answer.strip()
    if not answer:
        return None
    start = context.find(answer)
    if start >= 0:
        return answer, start
    parts = [re.escape(p) for p in re.split(r"[\s\u200c]+", answer) if p]
    m = re.search(r"[\s\u200c]*".join(parts), context) if parts else None
    return (m.group(0), m.start()) if m and m.group(0).strip() else None


def dev_or_test(group: str, seed: int, dev_fraction: float) -> str:
    return "dev" if splits.unit_hash(group, seed) < dev_fraction else "test"


QA_DEFAULTS: dict[str, Any] = {"seed": splits.DEFAULT_SEED, "dev_fraction": 0.3}


class _ParsinluTask(Task):
    """A Persian ParsiNLU target from BIG-bench: dev (dev_fraction) and test only."""

    role = Role.TARGET
    languages = ("fa",)
    packages = ("bigbench",)
    license = "ParsiNLU (Khashabi et al. 2021): CC BY-NC-SA 4.0; BIG-bench: Apache 2.0"
    defaults: ClassVar[dict[str, Any]] = dict(QA_DEFAULTS)

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        settings = splits.resolve_splits(self.name, params, self.defaults)
        rows: dict[str, list[dict[str, Any]]] = {split: [] for split in splits.SPLITS}
        for row in self.rows(Path(raw_dir), settings.seed, settings.dev_fraction):
            rows[row["split"]].append(row)
        return splits.write_splits(Path(out_dir), self.schema, rows)

    def rows(self, raw_dir: Path, seed: int, dev_fraction: float) -> Iterator[dict[str, Any]]:
        """The task's rows in the file's order, each dev or test by a seeded hash (:func:`dev_or_test`)."""
        raise NotImplementedError

    def row(self, row_id: str, split: str, domain: str, **fields: Any) -> dict[str, Any]:
        """A canonical row: id, language, domain, source and split, then the family's ``fields``."""
        source = PACKAGES["bigbench"].spec
        language = self.languages[0]
        return {"id": row_id, "language": language, "domain": domain, "source": source, "split": split, **fields}


@register
class ParsinluRcTask(_ParsinluTask):
    """ParsiNLU reading comprehension (Persian; BIG-bench parsinlu_reading_comprehension, 518 questions): input
    "passage: '...' question: '...'", target a list of answer strings. Each answer is located in the passage (exactly,
    else whitespace-insensitively) to give character offsets; answers not found are dropped, and questions left without
    one are dropped and counted in the log. dev (dev_fraction) / test by a seeded hash of the passage, so a passage's
    questions share a split. Ids 'parsinlu_rc-<index>'."""

    name = "parsinlu_rc"
    family = Family.EXTRACTIVE_QA
    train_from = "squadshifts"  # English extractive QA
    stands_for = "XQuAD / MLQA / TyDiQA-GoldP"

    def rows(self, raw_dir: Path, seed: int, dev_fraction: float) -> Iterator[dict[str, Any]]:
        path = raw_dir / RC_FILE
        lost_answers = lost_questions = 0
        for i, ex in enumerate(load_examples(path)):
            m = _RC_INPUT.match(ex.get("input") or "")
            targets = ex.get("target")
            targets = [targets] if isinstance(targets, str) else targets
            if m is None or not isinstance(targets, list):
                raise XstiltsError(f"{path} example {i} is not \"passage: '...' question: '...'\" with targets.")
            context, question = m.group(1).strip(), m.group(2).strip()
            found = {}
            for t in targets:
                span = locate(context, t) if isinstance(t, str) else None
                if span is None:
                    lost_answers += 1
                else:
                    found.setdefault(span, None)
            if not found:
                lost_questions += 1
                continue
            yield self.row(
                f"parsinlu_rc-{i}",
                dev_or_test(context, seed, dev_fraction),
                "wikipedia",
                context=context,
                question=question,
                answers_text=[t for t, _ in found],
                answers_start=[s for _, s in found],
            )
        log.info(
            "parsinlu_rc: %d answers not found in their passage; %d questions dropped (no answer found)",
            lost_answers,
            lost_questions,
        )


@register
class ParsinluMcTask(_ParsinluTask):
    """ParsiNLU multiple-choice QA (Persian; BIG-bench parsinlu_qa, 1,050 questions: maths and logic, literature,
    general knowledge), each with its choices (target_scores, one of them 1) in the file's order (an empty wrong choice
    is left out); no context (empty string). dev (dev_fraction) / test by a seeded hash of the id 'parsinlu_mc-<index>'.
    """

    name = "parsinlu_mc"
    family = Family.MULTIPLE_CHOICE
    train_from = "commonsenseqa"  # English multiple choice without a context passage, like ParsiNLU QA
    stands_for = "XCOPA (multiple choice)"

    def rows(self, raw_dir: Path, seed: int, dev_fraction: float) -> Iterator[dict[str, Any]]:
        path = raw_dir / MC_FILE
        empty_choices = 0
        for i, ex in enumerate(load_examples(path)):
            scores = ex.get("target_scores")
            question = ex.get("input")
            if not isinstance(scores, dict) or not isinstance(question, str) or not question.strip():
                raise XstiltsError(f"{path} example {i} has no input and target_scores.")
            # 24 questions of bigbench 1.0.0 have an empty wrong choice (""): it is left out.
            kept = [(str(c).strip(), v) for c, v in scores.items() if str(c).strip() or v == 1]
            empty_choices += len(scores) - len(kept)
            choices = [c for c, _ in kept]
            gold = [k for k, (_, v) in enumerate(kept) if v == 1]
            if len(gold) != 1 or len(choices) < 2 or not all(choices):
                raise XstiltsError(f"{path} example {i} does not have one right choice among 2+ non-empty ones.")
            row_id = f"parsinlu_mc-{i}"
            split = dev_or_test(row_id, seed, dev_fraction)
            yield self.row(
                row_id, split, "exams", context="", question=question.strip(), choices=choices, label=gold[0]
            )
        log.info("parsinlu_mc: %d empty wrong choices left out", empty_choices)
