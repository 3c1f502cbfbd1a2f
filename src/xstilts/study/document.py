"""``reports/study.json`` and ``reports/study.md``: did phase 2 learn, the primary comparisons and their verdicts,
every secondary comparison, what the design can detect."""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.study.analysis import (
    IN_DOMAIN,
    UNSEEN,
    Results,
    Target,
    analyse,
    by_language_vs_none,
    headline,
    measures,
    robustness,
    seed_spread,
)
from xstilts.study.gate import findings
from xstilts.study.intervals import detectable, needed
from xstilts.study.prose import answer, detectable_lines, gate_notes, head_name, what
from xstilts.study.runs import Design
from xstilts.study.verdict import bounds, judge, level, plural, pts, pval, signed


def rounded(value: Any) -> Any:
    """Floats to 6 decimals (NaN as null), recursively: the JSON is the same bytes on every machine."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else round(float(value), 6)
    return value


def covered(target: Target) -> dict[str, list[str]]:
    """The zero-shot languages and the domains of the test rows the primary comparison reads."""
    test = target.rows("test", "none")
    mask = headline(target).mask(test, target)
    if headline(target) == UNSEEN:
        mask = mask | IN_DOMAIN.mask(test, target)
    rows = test[mask]
    return {"languages": sorted(set(rows["language"])), "domains": sorted(set(rows["domain"]))}


def target_results(target: Target, results: Results, design: Design) -> dict[str, Any]:
    test = target.rows("test", "none")
    args = (design.resamples, design.seed, design.confidence)
    inits = [i for i in design.inits if i != "none"]
    prim = results.primary
    widest = max(prim.each.values(), key=lambda iv: iv.se)  # against every member: the noisiest comparison binds
    alpha = 1 - design.confidence
    return {
        "seeds": seed_spread(results.evidence) if len(design.seeds) > 1 else {},
        "family": target.family,
        "metric": target.metric,
        "train_domains": list(target.train_domains),
        "phase2_domains": [d for d in target.phase2_domains if d in set(test["domain"])],
        "test_rows": int(len(test)),
        "test_languages": int(test["language"].nunique()),
        "covers": covered(target),
        "measures": {m.name: m.what for m in measures(target)},
        "robustness": {init: robustness(target, init) for init in design.inits},
        "primary": prim.as_dict(design.confidence),
        "detectable": {"effect": detectable(widest, alpha), **needed(widest, design.min_effect, alpha)},
        "comparisons": [c.as_dict() for c in results.comparisons],
        "by_language_vs_none": by_language_vs_none(target, inits, *args),
    }


def setting(run: dict[str, Any]) -> str:
    """The machine, precision and compilation a run records (``unrecorded`` where it records none)."""
    parts = [str(run[k]) for k in ("machine", "precision") if run.get(k)]
    return ", ".join(parts + ([f"compile {run['compile']}"] if run.get("compile") else [])) or "unrecorded"


def build(
    targets: list[Target],
    design: Design,
    budget: dict[str, dict[str, float | str]],
    gate: list[dict[str, Any]],
    layers: dict[str, dict[str, dict[str, float]]] | None = None,
    machines: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (what ``reports/study.json`` holds): ``targets`` are fine-tuned
    targets and retrieval tasks alike; ``gate``: the learning gate's rows (:func:`xstilts.study.gate.check`);
    ``layers``: per retrieval task and encoder, test accuracy by layer; ``machines``: each run's machine setting
    (default: the budget's precision per intermediate run)."""
    args = (design.group, list(design.members), design.resamples, design.seed, design.confidence)
    results = {t.name: analyse(t, *args) for t in targets}
    machines = machines or {run: setting(b) for run, b in budget.items()}
    settings: dict[str, list[str]] = {}
    for run, where in machines.items():
        settings.setdefault(where, []).append(run)
    primaries = {name: r.primary for name, r in results.items()}
    verdicts = judge(primaries, design.confidence, design.min_effect, design.min_seeds, len(settings))
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
            "min_seeds": design.min_seeds,
            "tuned": list(design.tuned),
            "machines": settings,
            "best_member": "none chosen: the group against every member (intersection-union)",
        },
        "budget": budget,
        "gate": gate,
        "findings": findings(gate, design.group, design.members),
        "targets": {t.name: target_results(t, results[t.name], design) for t in targets},
        "retrieval_layers": layers or {},
    }
    for name, target in study["targets"].items():
        target["verdict"] = verdicts[name]
        target["primary"]["p_holm"] = verdicts[name]["p_holm"]
    study = rounded(study)
    study["answer"] = answer(study)
    study["underpowered"] = detectable_lines(study)
    return study


def gate_table(study: dict[str, Any]) -> list[str]:
    margin = 100 * study["design"]["learn_margin"]
    lines = [
        "| task head | seeds | test | trivial baseline | difference [interval] | ± | state |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in study["gate"]:
        state = r["state"] if r["state"] == "learned" else f"**{r['state']}**"
        lines.append(
            f"| {head_name(r)} | {len(r['runs'])} | {r['metric']} {pts(r['a_value'])} | {r['baseline']}: "
            f"{pts(r['b_value'])} | {signed(r['diff'])} {bounds(r)} | {pts(r['half_width'])} | {state} |"
        )
    note = (
        f"Each task head's test score on its own task (averaged over the seeds) against the trivial baseline chosen "
        f"on train, {level(study['design']['confidence'])} intervals that count the seeds and the test set: learned "
        f"when the interval lies above {margin:g} points (`study.learn_margin`), not learned when below, else "
        "unclear. A diagnosis: the verdicts below are reported whatever it says."
    )
    wide = gate_notes(study)
    return [note, "", *lines, *([""] + [f"Too wide to decide: {'; '.join(wide)}."] if wide else [])]


def gate_state(study: dict[str, Any]) -> str:
    """The gate beside a verdict: "learned", or the heads that were not."""
    others = [f"{head_name(r)} {r['state']}" for r in study["gate"] if r["state"] != "learned"]
    interference = any(f["kind"] == "interference" for f in study["findings"])
    return ("; ".join(others) or "every head learned") + (" (interference)" if interference else "")


def main_table(study: dict[str, Any]) -> list[str]:
    """Per target: its primary comparison, the interval its verdict read (with its level and what it covers), p,
    Holm p across targets, what it detects, the verdict and the gate beside it."""
    group = study["design"]["group"]
    lines = [
        f"| target | primary comparison | `{group}` | least favourable member | difference [interval] | interval of "
        "| p | Holm p | detects | verdict | phase 2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    gate = gate_state(study)
    for name, target in study["targets"].items():
        p, v, d = target["primary"], target["verdict"], target["detectable"]
        adjusted = ", Holm-adjusted" if v["adjusted"] else ""
        holm_p = pval(v["p_holm"]) if v["code"] != "not-assessed" else "-"
        detects = "-" if d["effect"] is None else pts(d["effect"])
        lines.append(
            f"| {name} | {what(p, group, target)} | {pts(p['a_value'])} | `{p['against']}` {pts(p['b_value'])} | "
            f"{signed(p['diff'])} {bounds(v)} | {level(v['confidence'])}{adjusted}: {v['scope']} | {pval(v['p'])} | "
            f"{holm_p} | {detects} | **{v['answer']}** | {gate} |"
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
        f"Secondary comparisons on {name} (no verdict reads them: unadjusted intervals, Holm's p within each "
        "measure; ± the standard deviation over seeds; `best member`: the group against every member):",
        "",
        "| measure | comparison | a | b | difference | interval | p | Holm p |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def spread_of(init: str, measure: str, value: float) -> str:
        sd = spread.get(init, {}).get(measure)
        return pts(value) + (f" ± {pts(sd['sd'])}" if sd else "")

    for c in target["comparisons"]:
        a, b = spread_of(c["a"], c["measure"], c["a_value"]), spread_of(c["b"], c["measure"], c["b_value"])
        lines.append(
            f"| {c['measure']} | `{c['a']}` - `{c['b']}` ({c['role']}) | {a} | {b} | {signed(c['diff'])} | "
            f"{bounds(c)} | {pval(c['p'])} | {pval(c['p_holm'])} |"
        )
    return lines


def method(study: dict[str, Any]) -> str:
    d = study["design"]
    k = len(d["seeds"])
    seeds = (
        f"{k} seeds {d['seeds']}: every value is the mean of the seeds' metrics, and every standard error adds the "
        "seed variance to the test set's (the seed part at Student's t with its own df, the test set's at the normal "
        "quantile; p is where the interval starts leaving out 0); inits are compared paired, one difference per "
        "seed (each seed's target runs share it)"
        if k > 1
        else f"one seed ({d['seeds'][0]}): the intervals cover test-set sampling only, so they are about these "
        "models, not the training procedure"
    )
    tuned = (
        f"lr and epochs of {', '.join(f'`{t}`' for t in d['tuned'])} tuned once (Optuna, with `seed`) and held "
        "fixed across seeds: tuning's own variance is not in the intervals"
        if d["tuned"]
        else "lr and epochs as `params.yaml` sets them (no tuning)"
    )
    machines = "; ".join(f"{where}: {plural(len(runs), 'run')}" for where, runs in d["machines"].items())
    return (
        f"Group `{d['group']}` ({', '.join(f'`{m}`' for m in d['members'])}) against each member trained alone and "
        f"against no intermediate training (`none`); {seeds}. Test-set variance: paired bootstrap over test "
        f"examples ({d['resamples']:,} resamples, stratified by language, translations resampled together). "
        f"The primary comparison is the group against every member (intersection-union: no best member is "
        f"chosen); verdicts need {d['min_seeds']} or more seeds per init (`study.min_seeds`); Holm's correction "
        f"across the targets' primary comparisons, each interval printed at the level it was decided at. Smallest "
        f"effect of interest: {100 * d['min_effect']:g} points (`study.min_effect`). Tuning: {tuned}. Runs "
        f"(machine, precision as recorded; runs of several are never pooled): {machines}. Each verdict holds for "
        "the languages and domains it names. Scores in %."
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
