"""The verdict per target, decided from one set of numbers: the interval printed beside it.

A target's verdict reads the interval of its primary comparison (:mod:`~xstilts.study.primary`) at the level
Holm's procedure across the targets' primary comparisons tests it at (:func:`~xstilts.study.intervals.holm_levels`:
the interval leaves out 0 exactly when Holm's p is below alpha), against the smallest effect of interest e
(``study.min_effect``):

* **yes, at least e**: the interval lies above e; **yes, but smaller than e**: above 0 and below e; **yes, size
  unclear**: above 0, reaching e;
* **worse**: below 0; **no gain of interest**: it holds 0 and lies between -e and +e;
* **inconclusive**: it holds 0 and reaches e or -e;
* **not assessed (N seeds)**: fewer than ``study.min_seeds`` runs per init, or runs from several machine settings
  (never pooled): the interval printed then covers these models only (test-set sampling), with the seed sd at
  which the difference would stop being distinguishable from 0.

The reason sentence is written from the same numbers the decision read (:func:`reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xstilts.study.intervals import holm, holm_levels
from xstilts.study.primary import Primary

LABELS = {
    "yes": "yes, at least {e:g} points",
    "yes-small": "yes, but smaller than {e:g} points",
    "yes-unclear": "yes, size unclear",
    "no-gain": "no gain of interest",
    "worse": "worse",
    "inconclusive": "inconclusive",
    "not-assessed": "not assessed ({why})",
}
THESE_MODELS = "these models only (test-set sampling)"
PROCEDURE = "the training procedure (seeds and test set)"


def pts(value: float) -> str:
    return f"{100 * value:.1f}"


def signed(value: float) -> str:
    return f"{100 * value:+.1f}"


def pval(p: float) -> str:
    """A p-value as printed: three decimals, or "< 0.001"."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def bounds(c: Mapping[str, Any]) -> str:
    return f"[{signed(c['low'])}, {signed(c['high'])}]"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def level(confidence: float) -> str:
    """95% -> "95%", 0.975 -> "97.5%"."""
    return f"{round(100 * confidence, 2):g}%"


def find(target: dict[str, Any], measure: str, role: str, b: str | None = None) -> dict[str, Any] | None:
    found = (c for c in target["comparisons"] if c["measure"] == measure and c["role"] == role and b in (None, c["b"]))
    return next(found, None)


def classify(low: float, high: float, min_effect: float) -> str:
    """The answer's code for the interval [low, high] against the smallest effect of interest."""
    if low > 0:
        return "yes" if low > min_effect else "yes-small" if high < min_effect else "yes-unclear"
    if high < 0:
        return "worse"
    return "no-gain" if -min_effect < low and high < min_effect else "inconclusive"


def blocked(runs: int, min_seeds: int, settings: int) -> str | None:
    """Why the procedure cannot be assessed ("1 seed", "runs from 2 machine settings"), or None."""
    if runs < min_seeds:
        return plural(runs, "seed")
    if settings > 1:
        return f"runs from {settings} machine settings"
    return None


def judge(primaries: dict[str, Primary], confidence: float, min_effect: float, min_seeds: int, settings: int = 1):
    """Each target's verdict: Holm across the targets' primary comparisons, each interval at its Holm level."""
    p = [prim.p for prim in primaries.values()]
    levels, adjusted = holm_levels(p, 1 - confidence), holm(p)
    out = {}
    for (name, prim), alpha, p_holm in zip(primaries.items(), levels, adjusted, strict=True):
        why = blocked(prim.runs, min_seeds, settings)
        shown, conf = (prim, 1 - alpha) if why is None else (prim.test_only(), confidence)
        low, high = (round(x, 6) for x in shown.bounds(conf))  # the numbers study.json holds are decided on
        code = "not-assessed" if why else classify(low, high, min_effect)
        lose = shown.seed_sd_to_lose(conf) if why else None
        scope = THESE_MODELS if why else PROCEDURE
        verdict = {"code": code, "answer": LABELS[code].format(e=100 * min_effect, why=why), "low": low, "high": high}
        verdict |= {"confidence": conf, "adjusted": conf > confidence + 1e-12, "scope": scope, "p_holm": p_holm}
        verdict |= {"p": shown.p, "runs": prim.runs, "seed_sd_to_lose": lose, "blocked": why}
        verdict["why"] = reason(verdict, min_effect, min_seeds)
        out[name] = verdict
    return out


def reason(v: Mapping[str, Any], min_effect: float, min_seeds: int) -> str:
    """Why the verdict is what it is, in one sentence, from the verdict's own interval and level."""
    e = 100 * min_effect
    shown = f"its {level(v['confidence'])}{' (Holm-adjusted)' if v['adjusted'] else ''} interval {bounds(v)}"
    if v["code"] == "not-assessed":
        if v["runs"] < min_seeds:
            few = f"{plural(v['runs'], 'seed')} per init, fewer than `study.min_seeds` ({min_seeds})"
        else:
            few = f"{v['blocked']}, which are never pooled"
        return f"{few}: {shown} covers {THESE_MODELS}, not the training procedure"
    claims = {
        "yes": f"lies above {e:g} points",
        "yes-small": f"lies above 0 and below {e:g} points",
        "yes-unclear": f"lies above 0 and reaches {e:g} points",
        "worse": "lies below 0",
        "no-gain": f"holds 0 and lies between -{e:g} and +{e:g} points",
        "inconclusive": f"holds 0 and reaches {'+' if v['high'] >= min_effect else '-'}{e:g} points",
    }
    return f"{shown} {claims[v['code']]}"
