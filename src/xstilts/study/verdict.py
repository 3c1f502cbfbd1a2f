"""The answer to the research question, written from the numbers: one paragraph per target family."""

from __future__ import annotations

from typing import Any

FAMILY_LABELS = {"extractive_qa": "Extractive QA"}


def pts(value: float) -> str:
    return f"{100 * value:.1f}"


def signed(value: float) -> str:
    return f"{100 * value:+.1f}"


def interval(c: dict[str, Any]) -> str:
    bounds = f"[{signed(c['low'])}, {signed(c['high'])}]"
    return f"{signed(c['diff'])} points (interval {bounds}, Holm p = {c['p_holm']:.3f})"


def significance(c: dict[str, Any], alpha: float) -> str:
    if c["p_holm"] >= alpha:
        return "not significant after Holm correction"
    return "significant after Holm correction, " + ("in the group's favour" if c["diff"] > 0 else "against the group")


def headline(target: dict[str, Any]) -> str:
    """The measure a target's verdict is about: out-of-domain zero-shot where the test has unseen domains."""
    return "zero_shot_ood" if "zero_shot_ood" in target["measures"] else "zero_shot"


def find(target: dict[str, Any], measure: str, role: str, b: str | None = None) -> dict[str, Any] | None:
    found = (c for c in target["comparisons"] if c["measure"] == measure and c["role"] == role and b in (None, c["b"]))
    return next(found, None)


NO_DEV = "has no dev split to choose the best member on, so the group is compared with each member only"


def target_sentence(name: str, target: dict[str, Any], design: dict[str, Any], alpha: float) -> str:
    group, measure = design["group"], headline(target)
    best = find(target, measure, "group vs best member")
    if best is None:
        return f"{name} {NO_DEV}."
    vs_none = next(c for c in target["comparisons"] if c["measure"] == measure and c["a"] == group and c["b"] == "none")
    what = target["measures"][measure]
    shift = ""
    rob = target["robustness"]
    if "gap_ood_minus_id" in rob[group]:
        shift = (
            f" Its out-of-domain minus in-domain gap is {signed(rob[group]['gap_ood_minus_id'])} points, against "
            f"{signed(rob[best['b']]['gap_ood_minus_id'])} for `{best['b']}` and "
            f"{signed(rob['none']['gap_ood_minus_id'])} without intermediate training."
        )
    return (
        f"On {name} ({target['metric']}, {what}), `{group}` scores {pts(best['a_value'])} against "
        f"{pts(best['b_value'])} for its best single member `{best['b']}` (chosen on dev): {interval(best)}, "
        f"{significance(best, alpha)}. "
        f"Against no intermediate training it differs by {interval(vs_none)}, {significance(vs_none, alpha)}."
        f"{shift}"
    )


def family_paragraph(family: str, names: list[str], study: dict[str, Any]) -> str:
    design, alpha = study["design"], 1 - study["design"]["confidence"]
    targets = study["targets"]
    sentences = [target_sentence(n, targets[n], design, alpha) for n in names]
    best = {n: find(targets[n], headline(targets[n]), "group vs best member") for n in names}
    wins = [n for n, c in best.items() if c is not None and c["p_holm"] < alpha and c["diff"] > 0]
    answer = (
        f"Yes on {', '.join(wins)}: the group beats its best single member there."
        if wins
        else "No: on no target of this family does the group beat its best single member significantly."
    )
    budget = budget_sentence(names, study)
    label = FAMILY_LABELS.get(family, family.replace("_", " ").capitalize())
    return f"**{label}.** {answer} " + " ".join(sentences) + f" {budget}"


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


def underpowered(study: dict[str, Any]) -> list[str]:
    """Plain statements of what this budget cannot show."""
    out = []
    for name, target in study["targets"].items():
        best = find(target, headline(target), "group vs best member")
        if best is None:
            continue
        half = (best["high"] - best["low"]) / 2
        out.append(
            f"{name}: the group-vs-best interval is {pts(half)} points wide on each side, so differences smaller "
            f"than that cannot be told from test-set noise at {target['test_rows']} test rows."
        )
    if len(study["design"]["seeds"]) == 1:
        out.append(
            "One seed: how much the scores move from seed to seed (Dodge et al. 2020: as much as the effects "
            "studied) is not measured, and the intervals above cover test-set sampling only."
        )
    return out


def answer(study: dict[str, Any]) -> list[str]:
    """One paragraph per target family, in the order the targets are listed."""
    families: dict[str, list[str]] = {}
    for name, target in study["targets"].items():
        families.setdefault(target["family"], []).append(name)
    return [family_paragraph(f, names, study) for f, names in families.items()]
