"""The answer in words, written from the report's numbers: a paragraph per target family, what the design can
detect, what the learning gate found, and the command that would answer what this run cannot."""

from __future__ import annotations

from typing import Any

from xstilts.study.gate import DECIDABLE
from xstilts.study.verdict import bounds, plural, pts, signed

FAMILY_LABELS = {"extractive_qa": "Extractive QA"}
ANSWERING = (
    "To answer, train {k} or more seeds per init: `make run PROFILE=study` (`xstilts profile study`, then `dvc "
    "repro`; on a Ray cluster `xstilts fanout --address <head>:6379` runs the stages), or give this design "
    "`study.seeds` of {k} seeds in `params.yaml`, then `xstilts pipeline` and `dvc repro`."
)


def head_name(row: dict[str, Any]) -> str:
    """`sst2` alone, or `sst2` in `all`."""
    return f"`{row['task']}` " + ("alone" if row["spec"] == row["task"] else f"in `{row['spec']}`")


def gate_result(row: dict[str, Any]) -> str:
    """test accuracy 57.0 against 50.0 for majority class ...: +7.0 [-5.3, +19.3]"""
    return (
        f"test {row['metric']} {pts(row['a_value'])} against {pts(row['b_value'])} for {row['baseline']}: "
        f"{signed(row['diff'])} {bounds(row)}"
    )


def gate_sentences(study: dict[str, Any]) -> str:
    """What the learning gate found, as sentences: interference first, then any head that did not learn."""
    found = study["findings"]
    if not found:
        return "Phase 2 learned every task head, alone and in the group."
    words = {
        "member not learned": "{task} did not learn its task alone",
        "member unclear": "whether {task} learned its task alone is unclear",
        "group head not learned": "{task} did not learn in the group",
        "group head unclear": "whether {task} learned in the group is unclear",
    }
    out = []
    for f in found:
        task = f"`{f['task']}`"
        if f["kind"] == "interference":
            inside, alone = f["rows"]
            out.append(
                f"**Interference**: {task} learned alone ({signed(alone['diff'])} {bounds(alone)} over its baseline) "
                f"but not in the group ({gate_result(inside)}), a finding about multi-task training"
            )
        else:
            out.append(f"{words[f['kind']].format(task=task)} ({gate_result(f['rows'][0])})")
    text = ". ".join(s[0].upper() + s[1:] for s in out)
    return f"{text}; the verdicts stand all the same, with the gate beside them."


def covers(target: dict[str, Any]) -> str:
    """The languages and domains a target's verdict covers."""
    c = target["covers"]
    return f"{', '.join(c['languages'])}; {plural(len(c['domains']), 'domain')}: {', '.join(c['domains'])}"


def what(primary: dict[str, Any], group: str, target: dict[str, Any]) -> str:
    """The primary comparison in words."""
    worst = f"least favourable `{primary['against']}`"
    if primary["kind"] == "robustness":
        return f"(`{group}` - each member) on unseen domains minus the same in-domain ({worst})"
    return f"`{group}` - each member on {target['measures'][primary['measure']]} ({worst})"


def target_sentence(name: str, target: dict[str, Any], design: dict[str, Any]) -> str:
    p, v = target["primary"], target["verdict"]
    head = (
        f"On {name} ({target['metric']}; {covers(target)}), {what(p, design['group'], target)}: "
        f"{signed(p['diff'])} points {bounds(v)}: **{v['answer']}**: {v['why']}."
    )
    if v["code"] != "not-assessed":
        return f"{head} This holds for the languages and domains named, not for transfer at large."
    lose = v["seed_sd_to_lose"]
    if lose == 0:
        return f"{head} Sensitivity: even between these models the difference is not distinguishable from 0."
    return (
        f"{head} Sensitivity: it would stop being distinguishable from 0 if the seed-to-seed sd of each init "
        f"exceeded {pts(lose)} points."
    )


def family_paragraph(family: str, names: list[str], study: dict[str, Any]) -> str:
    targets = study["targets"]
    answers = {n: targets[n]["verdict"]["answer"] for n in names}
    if len(set(answers.values())) == 1:
        head = next(iter(answers.values()))
    else:
        head = "; ".join(f"{a} on {n}" for n, a in answers.items())
    head = head[0].upper() + head[1:]
    sentences = " ".join(target_sentence(n, targets[n], study["design"]) for n in names)
    label = FAMILY_LABELS.get(family, family.replace("_", " ").capitalize())
    return f"**{label}.** {head}. {sentences} {gate_sentences(study)} {budget_sentence(names, study)}"


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


def detectable_lines(study: dict[str, Any]) -> list[str]:
    """Per target: the smallest effect its design detects (from a measured seed variance only) and what would
    detect ``min_effect``, or, with one seed, the sensitivity line; then the command that would answer."""
    design = study["design"]
    effect = 100 * design["min_effect"]
    out = []
    for name, target in study["targets"].items():
        d, p, v = target["detectable"], target["primary"], target["verdict"]
        error = (
            f"{name}: the primary comparison's standard error is {pts(p['se'])} points ({pts(p['se_seeds'])} from "
            f"the seeds, {pts(p['se_test'])} from the {p['n_examples']:,} test rows)"
        )
        if d["effect"] is None:
            lose = v["seed_sd_to_lose"]
            sensitivity = f"{signed(p['diff'])} " + (
                "is not distinguishable from 0 even between these models"
                if not lose
                else f"would stop being distinguishable from 0 at a seed sd above {pts(lose)} points"
            )
            out.append(
                f"{error[: error.index(' (')]}, all of it from the test set: with one run per init the seed-to-seed "
                f"variance is not measured, so no minimum detectable effect is given; sensitivity: {sensitivity}."
            )
            continue
        more = []
        if d["seeds"] is not None:
            more.append(f"{d['seeds']:.0f} seeds per init (same test set)")
        if d["test_examples"] is not None:
            more.append(f"{d['test_examples']:,.0f} test rows (same seeds; the test set's part is the larger)")
        would = " or ".join(more) if more else "neither more seeds alone nor more test rows alone"
        enough = f"{effect:g} points would take {would}"
        if d["effect"] <= design["min_effect"]:
            enough = f"it already detects {effect:g} points"
        out.append(f"{error}, so it detects {pts(d['effect'])} points with 80% power at this alpha; {enough}.")
    return out


def gate_notes(study: dict[str, Any]) -> list[str]:
    """Heads whose gate interval is too wide to decide (half-width above 5 points), and what would narrow it: more
    test rows where the test set's part is the larger (the seeds' where they are)."""
    out = []
    for r in study["gate"]:
        if r["half_width"] <= DECIDABLE:
            continue
        if r["se_seeds"] > r["se_test"]:
            remedy = "more seeds (the seeds' part is the larger)"
        else:
            rows = r["n_examples"] * (r["half_width"] / DECIDABLE) ** 2
            remedy = f"about {rows:,.0f} test rows of `{r['task']}` would give ±5"
        out.append(f"{head_name(r)}: ±{pts(r['half_width'])} points on {r['n_examples']:,} test rows; {remedy}")
    return out


def answer(study: dict[str, Any]) -> list[str]:
    """One paragraph per target family, in the order the targets are listed."""
    families: dict[str, list[str]] = {}
    for name, target in study["targets"].items():
        families.setdefault(target["family"], []).append(name)
    out = [family_paragraph(f, names, study) for f, names in families.items()]
    if any(t["verdict"]["code"] == "not-assessed" for t in study["targets"].values()):
        out.append(ANSWERING.format(k=study["design"]["min_seeds"]))
    return out
