"""``reports/study.json`` and ``reports/study.md``: did phase 2 learn, the primary comparisons and their verdicts,
every secondary comparison, what the design can detect."""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.study.analysis import Results, Target, analyse, by_language_vs_none, measures, robustness, seed_spread
from xstilts.study.gate import not_learned
from xstilts.study.intervals import detectable, holm, needed
from xstilts.study.runs import Design
from xstilts.study.verdict import answer, bounds, decide, detectable_lines, pts, pval, reason, signed, what


def rounded(value: Any) -> Any:
    """Floats to 6 decimals (NaN as null), recursively: the JSON is the same bytes on every machine."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else round(float(value), 6)
    return value


def target_results(target: Target, results: Results, design: Design) -> dict[str, Any]:
    test = target.rows("test", "none")
    args = (design.resamples, design.seed, design.confidence)
    inits = [i for i in design.inits if i != "none"]
    iv = results.primary.interval
    alpha = 1 - design.confidence
    return {
        "seeds": seed_spread(results.evidence) if len(design.seeds) > 1 else {},
        "family": target.family,
        "metric": target.metric,
        "train_domains": list(target.train_domains),
        "phase2_domains": [d for d in target.phase2_domains if d in set(test["domain"])],
        "test_rows": int(len(test)),
        "test_languages": int(test["language"].nunique()),
        "measures": {m.name: m.what for m in measures(target)},
        "robustness": {init: robustness(target, init) for init in design.inits},
        "primary": results.primary.as_dict(),
        "detectable": {"effect": detectable(iv, alpha), **needed(iv, design.min_effect, alpha)},
        "comparisons": [c.as_dict() for c in results.comparisons],
        "by_language_vs_none": by_language_vs_none(target, inits, *args),
    }


def build(
    targets: list[Target],
    design: Design,
    budget: dict[str, dict[str, float | str]],
    gate: list[dict[str, Any]],
    layers: dict[str, dict[str, dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (what ``reports/study.json`` holds): ``targets`` are fine-tuned
    targets and retrieval tasks alike; ``gate``: the learning gate's rows (:func:`xstilts.study.gate.check`);
    ``layers``: per retrieval task and encoder, test accuracy by layer."""
    args = (design.group, list(design.members), design.resamples, design.seed, design.confidence)
    results = {t.name: analyse(t, *args) for t in targets}
    study: dict[str, Any] = {
        "design": {
            "group": design.group,
            "members": list(design.members),
            "inits": list(design.inits),
            "seeds": design.seed_values,
            "resamples": design.resamples,
            "confidence": design.confidence,
            "learn_margin": design.learn_margin,
            "min_effect": design.min_effect,
            "best_member": "chosen for each seed on dev by the headline measure, from the other seeds' runs",
        },
        "budget": budget,
        "gate": gate,
        "targets": {t.name: target_results(t, results[t.name], design) for t in targets},
        "retrieval_layers": layers or {},
    }
    study = rounded(study)
    primaries = [t["primary"] for t in study["targets"].values()]
    for p, adjusted in zip(primaries, holm([p["p"] for p in primaries]), strict=True):
        p["p_holm"] = round(adjusted, 6)
    failed = not_learned(gate, [*design.members, design.group])
    for target in study["targets"].values():
        verdict = decide(target["primary"], failed, 1 - design.confidence, design.min_effect)
        target["verdict"] = {"answer": verdict, "why": reason(verdict, target["primary"], failed, study["design"])}
    study["answer"] = answer(study)
    study["underpowered"] = detectable_lines(study)
    return study


def gate_table(study: dict[str, Any]) -> list[str]:
    margin = 100 * study["design"]["learn_margin"]
    lines = [
        "| model | task | test | trivial baseline | difference [interval] | learned |",
        "|---|---|---|---|---|---|",
    ]
    for r in study["gate"]:
        lines.append(
            f"| `{r['model']}` | {r['task']} | {r['metric']} {pts(r['a_value'])} | {r['baseline']}: "
            f"{pts(r['b_value'])} | {signed(r['diff'])} {bounds(r)} | {'yes' if r['learned'] else '**no**'} |"
        )
    note = (
        f"Each intermediate model's test score on its own task against the trivial baseline chosen on train; "
        f"learned: the interval's lower bound is above {margin:g} points (`study.learn_margin`)."
    )
    return [note, "", *lines]


def main_table(study: dict[str, Any]) -> list[str]:
    """Per target: its primary comparison, the interval, p, Holm p across targets, what it detects, the verdict."""
    group = study["design"]["group"]
    lines = [
        "| target | primary comparison | `group` | compared with | difference [interval] | p | Holm p | detects | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines[0] = lines[0].replace("`group`", f"`{group}`")
    for name, target in study["targets"].items():
        p = target["primary"]
        lines.append(
            f"| {name} | {what(p, group, target)} | {pts(p['a_value'])} | {pts(p['b_value'])} | "
            f"{signed(p['diff'])} {bounds(p)} | {pval(p['p'])} | {pval(p['p_holm'])} | "
            f"{pts(target['detectable']['effect'])} | **{target['verdict']['answer']}** |"
        )
    return lines


def robustness_table(name: str, target: dict[str, Any]) -> list[str]:
    extra = "gap_ood_minus_id" in next(iter(target["robustness"].values()))
    head = "| init | mean | worst language | worst domain | worst (language, domain) |" + (
        " unseen - in-domain |" if extra else ""
    )
    lines = [f"Robustness on {name} (zero-shot test rows, {target['metric']} %):", "", head, "|---" * (5 + extra) + "|"]
    for init, r in target["robustness"].items():
        cells = [pts(r["mean"])] + [
            f"{r[k]['name']} {pts(r[k]['value'])}" for k in ("worst_language", "worst_domain", "worst_cell")
        ]
        if extra:
            cells.append(signed(r["gap_ood_minus_id"]))
        lines.append(f"| {init} | " + " | ".join(cells) + " |")
    return lines


def comparisons_table(name: str, target: dict[str, Any]) -> list[str]:
    spread = target["seeds"]
    lines = [
        f"Secondary comparisons on {name} (Holm within each measure; ± the standard deviation over seeds):",
        "",
        "| measure | comparison | a | b | difference | interval | p | Holm p |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def level(init: str, measure: str, value: float) -> str:
        sd = spread.get(init, {}).get(measure)
        return pts(value) + (f" ± {pts(sd['sd'])}" if sd else "")

    for c in target["comparisons"]:
        lines.append(
            f"| {c['measure']} | `{c['a']}` - `{c['b']}` ({c['role']}) | {level(c['a'], c['measure'], c['a_value'])} "
            f"| {level(c['b'], c['measure'], c['b_value'])} | {signed(c['diff'])} | {bounds(c)} | {pval(c['p'])} | "
            f"{pval(c['p_holm'])} |"
        )
    return lines


def method(study: dict[str, Any]) -> str:
    d = study["design"]
    seeds = (
        f"{len(d['seeds'])} seeds {d['seeds']}: every value is the mean of the seeds' metrics, and every standard "
        "error adds the seed variance to the test set's (Welch's t; p and interval from the same statistic)"
        if len(d["seeds"]) > 1
        else f"one seed ({d['seeds'][0]}): the intervals cover test-set sampling only"
    )
    return (
        f"Group `{d['group']}` ({', '.join(f'`{m}`' for m in d['members'])}) against each member trained alone and "
        f"against no intermediate training (`none`); {seeds}. Test-set variance: paired bootstrap over test "
        f"examples ({d['resamples']:,} resamples, stratified by language, translations resampled together). "
        f"{100 * d['confidence']:.0f}% intervals; the best member is {d['best_member']}; Holm's correction across "
        f"the targets' primary comparisons. Smallest effect of interest: {100 * d['min_effect']:g} points "
        f"(`study.min_effect`). Scores in %."
    )


def markdown(study: dict[str, Any], plots: list[str]) -> str:
    lines = [
        "# The study: multi-task vs single-task intermediate training under domain and language shift",
        "",
        method(study),
        "",
        "## Did phase 2 learn?",
        "",
        *gate_table(study),
        "",
        "## Primary comparisons and verdicts",
        "",
        *main_table(study),
        "",
        "## The answer",
        "",
        *(p + "\n" for p in study["answer"]),
        "## What this design can detect",
        "",
        *(f"- {s}" for s in study["underpowered"]),
        "",
    ]
    for name, target in study["targets"].items():
        lines += [f"## {name}", "", *robustness_table(name, target), "", *comparisons_table(name, target), ""]
    lines += ["## Plots", "", *(f"![{p}]({p})" for p in plots), ""]
    return "\n".join(lines)


def terminal_text(study: dict[str, Any]) -> str:
    """What ``make run`` prints: did phase 2 learn, the primary comparisons, the answer, what it can detect."""
    rows = [
        "The study (reports/study.md). Did phase 2 learn?",
        *gate_table(study),
        "",
        *main_table(study),
        "",
        *(paragraph + "\n" for paragraph in study["answer"]),
        *study["underpowered"],
    ]
    return "\n".join(rows) + "\n"
