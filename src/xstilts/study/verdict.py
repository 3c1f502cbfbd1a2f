"""The answer to the research question, written from the numbers: a verdict per target, a paragraph per family.

A target's verdict reads its primary comparison (:func:`xstilts.study.analysis.primary`) against the smallest
effect of interest ``study.min_effect``:

* **uninformative**: an intermediate model of the design did not beat its trivial baseline on its own task (the
  learning gate, :mod:`~xstilts.study.gate`): the comparison says nothing about multi-task training;
* **yes**: the group is ahead and its interval lies above 0 (after Holm's correction across targets);
* **no**: the interval lies below ``min_effect`` (any advantage is smaller than the smallest one of interest);
* **inconclusive**: otherwise; the report says what effect the design could have detected.
"""

from __future__ import annotations

from typing import Any

FAMILY_LABELS = {"extractive_qa": "Extractive QA"}
ANSWERS = ("yes", "no", "inconclusive", "uninformative")


def pts(value: float) -> str:
    return f"{100 * value:.1f}"


def signed(value: float) -> str:
    return f"{100 * value:+.1f}"


def pval(p: float) -> str:
    """A p-value as printed: three decimals, or "< 0.001"."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def bounds(c: dict[str, Any]) -> str:
    return f"[{signed(c['low'])}, {signed(c['high'])}]"


def find(target: dict[str, Any], measure: str, role: str, b: str | None = None) -> dict[str, Any] | None:
    found = (c for c in target["comparisons"] if c["measure"] == measure and c["role"] == role and b in (None, c["b"]))
    return next(found, None)


def gate_failure(row: dict[str, Any]) -> str:
    """``vitaminc`` (in ``all-s14``): test accuracy 50.2 against 50.0 for majority class ... (+0.2 [...])"""
    inside = "" if row["model"] == row["task"] else f" (in `{row['model']}`)"
    return (
        f"`{row['task']}`{inside}: test {row['metric']} {pts(row['a_value'])} against {pts(row['b_value'])} for "
        f"{row['baseline']} ({signed(row['diff'])} {bounds(row)})"
    )


def decide(primary: dict[str, Any], failed: list[dict[str, Any]], alpha: float, min_effect: float) -> str:
    """One of :data:`ANSWERS` for a target's primary comparison (``failed``: the gate rows that did not learn)."""
    if failed:
        return "uninformative"
    if primary["p_holm"] < alpha and primary["diff"] > 0:
        return "yes"
    if primary["upper"] < min_effect:
        return "no"
    return "inconclusive"


def reason(answer: str, primary: dict[str, Any], failed: list[dict[str, Any]], design: dict[str, Any]) -> str:
    """Why the verdict is what it is, in one sentence, with the numbers it read."""
    margin, effect = 100 * design["learn_margin"], 100 * design["min_effect"]
    if answer == "uninformative":
        heads = [f"`{r['task']}`" + ("" if r["model"] == r["task"] else f" in `{r['model']}`") for r in failed]
        return f"phase 2 did not learn {', '.join(heads)} (not surely {margin:g} points above the trivial baseline)"
    if answer == "yes":
        return f"the interval {bounds(primary)} lies above 0 (Holm p across targets {pval(primary['p_holm'])})"
    if answer == "no":
        return f"the upper bound {signed(primary['upper'])} lies below the smallest effect of interest ({effect:g})"
    return f"the interval {bounds(primary)} neither lies above 0 nor below {effect:g} points"


def what(primary: dict[str, Any], group: str, target: dict[str, Any]) -> str:
    """The primary comparison in words."""
    against = primary["against"]
    if primary["kind"] == "every member":
        on = target["measures"][primary["measure"]]
        return f"`{group}` against every member on {on} (least favourable: `{against}`)"
    chosen = f"best member `{against}`" if "," not in against else f"best member per seed ({against})"
    if primary["kind"] == "robustness":
        return f"(`{group}` - {chosen}) on unseen domains minus the same in-domain, zero-shot languages"
    return f"`{group}` - {chosen} on {target['measures'][primary['measure']]}"


def target_sentence(name: str, target: dict[str, Any], design: dict[str, Any]) -> str:
    p, v = target["primary"], target["verdict"]
    df = "" if p["df"] is None else f", {p['df']:.0f} df"
    why = "" if v["answer"] == "uninformative" else f", {v['why']}"  # the paragraph opens with the reason
    return (
        f"On {name} ({target['metric']}), {what(p, design['group'], target)}: {signed(p['diff'])} points "
        f"{bounds(p)} (p {pval(p['p'])}{df}; Holm across targets {pval(p['p_holm'])}): **{v['answer']}**{why}. "
        f"This design detects {pts(target['detectable']['effect'])} points with 80% power."
    )


def family_paragraph(family: str, names: list[str], study: dict[str, Any]) -> str:
    targets = study["targets"]
    answers = {n: targets[n]["verdict"]["answer"] for n in names}
    if "uninformative" in answers.values():
        failed = [r for r in study["gate"] if not r["learned"]]
        head = (
            "Uninformative: these comparisons say nothing about multi-task training, because phase 2 did not learn "
            + "; ".join(gate_failure(r) for r in failed)
        )
    elif len(set(answers.values())) == 1:
        head = next(iter(answers.values())).capitalize()
    else:
        head = "; ".join(f"{a} on {n}" for n, a in answers.items()).capitalize()
    sentences = " ".join(target_sentence(n, targets[n], study["design"]) for n in names)
    label = FAMILY_LABELS.get(family, family.replace("_", " ").capitalize())
    return f"**{label}.** {head}. {sentences} {budget_sentence(names, study)}"


def budget_sentence(names: list[str], study: dict[str, Any]) -> str:
    design = study["design"]
    seeds = len(design["seeds"])
    per_spec: dict[str, list[str]] = {}
    for b in study["budget"].values():
        precision = f" in {b['precision']}" if "precision" in b else ""
        per_spec.setdefault(b["spec"], []).append(f"{b['steps']:.0f} steps on {b['examples']:.0f} examples{precision}")
    trained = ", ".join(
        f"`{spec}` {' / '.join(dict.fromkeys(runs))}{' (each seed)' if len(set(runs)) == 1 < len(runs) else ''}"
        for spec, runs in per_spec.items()
    )
    targets = study["targets"]
    tests = ", ".join(
        f"{n} {targets[n]['test_rows']} test rows in {plural(targets[n]['test_languages'], 'language')}" for n in names
    )
    return (
        f"Budget: intermediate training {trained}; {tests}; {plural(seeds, 'seed')}, "
        f"{design['resamples']:,} paired bootstrap resamples."
    )


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def detectable_lines(study: dict[str, Any]) -> list[str]:
    """Per target: the smallest effect its design detects, and what would detect ``min_effect``."""
    effect = 100 * study["design"]["min_effect"]
    out = []
    for name, target in study["targets"].items():
        d = target["detectable"]
        more = []
        if d["seeds"] is not None:
            more.append(f"{d['seeds']:.0f} seeds per init (same test set)")
        if d["test_examples"] is not None:
            more.append(f"{d['test_examples']:,.0f} test rows (same seeds)")
        would = " or ".join(more) if more else "neither more seeds alone nor more test rows alone"
        enough = f"{effect:g} points would take {would}"
        if d["effect"] <= study["design"]["min_effect"]:
            enough = f"it already detects {effect:g} points"
        p = target["primary"]
        out.append(
            f"{name}: the primary comparison's standard error is {pts(p['se'])} points ({pts(p['se_seeds'])} from "
            f"the seeds, {pts(p['se_test'])} from the {p['n_examples']:,} test rows), so it detects "
            f"{pts(d['effect'])} points with 80% power at this alpha; {enough}."
        )
    if len(study["design"]["seeds"]) == 1:
        out.append(
            "One seed: how much the scores move from seed to seed (Dodge et al. 2020: as much as the effects "
            "studied) is not measured, and every interval here covers test-set sampling only."
        )
    return out


def answer(study: dict[str, Any]) -> list[str]:
    """One paragraph per target family, in the order the targets are listed."""
    families: dict[str, list[str]] = {}
    for name, target in study["targets"].items():
        families.setdefault(target["family"], []).append(name)
    return [family_paragraph(f, names, study) for f, names in families.items()]
