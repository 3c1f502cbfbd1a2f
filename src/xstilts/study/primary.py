"""The primary comparison: the group against every member (intersection-union), so no member is ever chosen.

"The group beats its best member" holds only if it beats each member (Berger 1982). The value compared is
``group - best member`` = the least of the group's differences to its members, and its interval is [the least of
the members' lower bounds at alpha, the least of their upper bounds at alpha / members (Bonferroni)]: each side errs
with probability at most alpha/2 whichever member is the best, equal members or not. Its p-value is the smallest
alpha at which that interval leaves out 0, so Holm's adjustment and the interval agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from xstilts.study.intervals import Interval, bounds_at, seed_sd_to_lose, test_only


@dataclass(frozen=True)
class Primary:
    """A target's primary comparison: the group's difference to each member on the headline measure."""

    kind: str  # "robustness" (difference of differences: unseen minus in-domain) or "level"
    measure: str  # the headline measure
    each: dict[str, Interval]  # member -> group - member (the headline contrast)
    runs: int  # runs per init (the fewest of the group and its members)

    @property
    def against(self) -> str:
        """The least favourable member: the one the group's difference is smallest to (ties: the first listed)."""
        return min(self.each, key=lambda m: (self.each[m].diff, list(self.each).index(m)))

    @property
    def diff(self) -> float:
        return self.each[self.against].diff

    def bounds(self, confidence: float) -> tuple[float, float]:
        """The interval of ``group - best member`` at ``confidence``."""
        members = len(self.each)
        lows = [bounds_at(iv, confidence)[0] for iv in self.each.values()]
        highs = [bounds_at(iv, 1 - (1 - confidence) / members)[1] for iv in self.each.values()]
        return min(lows), min(highs)

    @property
    def p(self) -> float:
        """The smallest alpha at which :meth:`bounds` leaves out 0 (above 0: every member's p; below: Bonferroni)."""
        ivs = list(self.each.values())
        if all(iv.diff > 0 for iv in ivs):
            return max(iv.p for iv in ivs)
        below = [iv.p for iv in ivs if iv.diff < 0]
        return min(1.0, len(ivs) * min(below)) if below else 1.0

    def test_only(self) -> Primary:
        """The same comparison about these models only: each member's interval without its seed part."""
        return replace(self, each={m: test_only(iv) for m, iv in self.each.items()})

    def seed_sd_to_lose(self, confidence: float) -> float:
        """The seed sd (per init) at which the interval at ``confidence`` would stop leaving out 0 (0: it does not)."""
        low, high = self.bounds(confidence)
        ivs = list(self.each.values())
        if low > 0:
            return min(seed_sd_to_lose(iv.diff, iv.se_test, self.runs, confidence) for iv in ivs)
        if high < 0:
            level = 1 - (1 - confidence) / len(ivs)
            return max(seed_sd_to_lose(iv.diff, iv.se_test, self.runs, level) for iv in ivs if iv.diff < 0)
        return 0.0

    def interval(self, confidence: float) -> Interval:
        """``group - best member`` as one interval at ``confidence`` (errors and sizes: the least favourable
        member's; ``b_value``: that member's level)."""
        low, high = self.bounds(confidence)
        worst = self.each[self.against]
        return replace(worst, low=low, high=high, p=self.p, confidence=confidence, p_holm=None)

    def as_dict(self, confidence: float) -> dict[str, Any]:
        members = {m: iv.as_dict() for m, iv in self.each.items()}
        top = self.interval(confidence).as_dict()
        return {"kind": self.kind, "measure": self.measure, "against": self.against, "members": members, **top}
