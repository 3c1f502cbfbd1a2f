"""Task families: one :class:`~xstilts.families.base.FamilySpec` each, looked up with :func:`spec`."""

from __future__ import annotations

from xstilts.families import classification, extractive_qa, multiple_choice, retrieval, tagging  # noqa: F401
from xstilts.families.base import Evaluation, Family, FamilySpec, spec

# each module above registers its families' specs as it defines them (FamilySpec.__init_subclass__)
FAMILIES: dict[Family, FamilySpec] = {f: spec(f) for f in Family}
SCHEMAS = {family: s.schema for family, s in FAMILIES.items()}
TRAINABLE = tuple(f.value for f, s in FAMILIES.items() if s.trainable)


__all__ = ["FAMILIES", "SCHEMAS", "TRAINABLE", "Evaluation", "Family", "FamilySpec", "spec"]
