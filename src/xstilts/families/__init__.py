"""Task families: one :class:`~xstilts.families.base.FamilySpec` each, looked up with :func:`spec`."""

from __future__ import annotations

from xstilts.errors import XstiltsError
from xstilts.families.base import Evaluation, Family, FamilySpec
from xstilts.families.classification import Classification
from xstilts.families.extractive_qa import ExtractiveQA
from xstilts.families.multiple_choice import MultipleChoice
from xstilts.families.retrieval import Bitext, Mining, Ranking
from xstilts.families.tagging import Tagging

FAMILIES: dict[Family, FamilySpec] = {
    s.family: s for s in (Classification(), MultipleChoice(), ExtractiveQA(), Tagging(), Bitext(), Mining(), Ranking())
}
SCHEMAS = {family: s.schema for family, s in FAMILIES.items()}
TRAINABLE = tuple(f.value for f, s in FAMILIES.items() if s.trainable)


def spec(family: str | Family) -> FamilySpec:
    """The spec of ``family`` (a :class:`Family` or its name)."""
    try:
        return FAMILIES[Family(family)]
    except ValueError as exc:
        raise XstiltsError(f"Unknown task family {family!r}; families are {', '.join(FAMILIES)}.") from exc


__all__ = ["FAMILIES", "SCHEMAS", "TRAINABLE", "Evaluation", "Family", "FamilySpec", "spec"]
