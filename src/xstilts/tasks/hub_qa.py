"""English extractive QA from the Hub: SQuAD v1.1 and SQuAD 2.0 (rajpurkar/squad, rajpurkar/squad_v2).

The Hub's ``answers`` is ``{"text": [...], "answer_start": [...]}`` (a sequence of dicts); both lists become
``answers_text`` / ``answers_start``. SQuAD 2.0's unanswerable questions have both lists empty.
"""

from __future__ import annotations

from typing import Any

from xstilts.data.hub import HubSource
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, register
from xstilts.tasks.hub import HubDatasetTask, Part, train_dev

SQUAD = HubSource("rajpurkar/squad", "7b6d24c440a36b6815f21b70d25016731768db1f", "plain_text")
SQUAD_V2 = HubSource("rajpurkar/squad_v2", "3ffb306f725f7d2ce8394bc1873b24868140c412", "squad_v2")


class _HubSquad(HubDatasetTask):
    family = Family.EXTRACTIVE_QA
    role = Role.INTERMEDIATE
    domain = "wikipedia"
    stand_in, stand_in_kind = "", "extractive QA"
    license = "CC BY-SA 4.0"

    def convert(self, row: dict[str, Any], features: Any, part: Part) -> dict[str, Any] | None:
        answers = row.get("answers") or {}
        texts, starts = list(answers.get("text") or []), [int(s) for s in answers.get("answer_start") or []]
        if len(texts) != len(starts) or (not texts and not self.unanswerable):
            raise XstiltsError(
                f"{part.source.spec} {part.split} row {row.get('id')!r} has {len(texts)} answer texts and "
                f"{len(starts)} starts; the pinned data changed."
            )
        return {
            "context": row["context"],  # not stripped: answer_start counts characters from its very start
            "question": str(row["question"]).strip(),
            "answers_text": texts,
            "answers_start": starts,
        }


@register
class SquadTask(_HubSquad):
    """SQuAD v1.1 (Rajpurkar et al., 2016) from rajpurkar/squad (config plain_text): questions on Wikipedia paragraphs
    answered by a span; answers_text/answers_start hold every gold answer (one in train, up to several in validation).
    train and dev are the Hub's train and validation; test is empty (hidden)."""

    name, display, stands_for = "squad", "SQuAD", "SQuAD v1.1"
    parts = train_dev(SQUAD)


@register
class SquadV2Task(_HubSquad):
    """SQuAD 2.0 (Rajpurkar et al., 2018) from rajpurkar/squad_v2: SQuAD v1.1 plus unanswerable questions, whose
    answers_text and answers_start are empty lists. train and dev are the Hub's train and validation; test is empty
    (hidden)."""

    name, display = "squad_v2", "SQuAD 2.0"
    unanswerable = True
    parts = train_dev(SQUAD_V2)
