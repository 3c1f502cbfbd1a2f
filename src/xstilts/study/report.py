"""``reports/study.json`` and ``reports/study.md``: the design, every comparison with its interval, the answer."""

from __future__ import annotations

from typing import Any

import numpy as np

from xstilts.study.analysis import Target, by_language_vs_none, compare, measures, robustness, seed_spread
from xstilts.study.runs import Design
from xstilts.study.verdict import answer, find, pts, signed, underpowered


def rounded(value: Any) -> Any:
    """Floats to 6 decimals (NaN as null), recursively: the JSON is the same bytes on every machine."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else round(float(value), 6)
    return value


def target_results(target: Target, design: Design) -> dict[str, Any]:
    test = target.rows("test", "none")
    args = (design.resamples, design.seed, design.confidence)
    comparisons = compare(target, design.group, list(design.members), *args)
    spread = seed_spread(target) if len(design.seeds) > 1 else {}
    return {
        "seeds": spread,
        "family": target.family,
        "metric": target.metric,
        "train_domains": list(target.train_domains),
        "test_rows": int(len(test)),
        "test_languages": int(test["language"].nunique()),
        "measures": {m.name: m.what for m in measures(target)},
        "robustness": {init: robustness(target, init) for init in design.inits},
        "comparisons": [c.as_dict() for c in comparisons],
        "by_language_vs_none": {
            init: by_language_vs_none(target, init, *args) for init in design.inits if init != "none"
        },
    }


def build(
    targets: list[Target],
    design: Design,
    budget: dict[str, dict[str, float | str]],
    layers: dict[str, dict[str, dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data (what ``reports/study.json`` holds): ``targets`` are fine-tuned
    targets and retrieval tasks alike; ``layers``: per retrieval task and encoder, test accuracy by layer."""
    study: dict[str, Any] = {
        "design": {
            "group": design.group,
            "members": list(design.members),
            "inits": list(design.inits),
            "seeds": design.seed_values,
            "resamples": design.resamples,
            "confidence": design.confidence,
            "best_member": "chosen per target and measure on dev, by the same measure",
        },
        "budget": budget,
        "targets": {t.name: target_results(t, design) for t in targets},
        "retrieval_layers": layers or {},
    }
    study = rounded(study)
    study["answer"] = answer(study)
    study["underpowered"] = underpowered(study)
    return study


def main_table(study: dict[str, Any]) -> list[str]:
    """Per target and measure: none / best member / group, and group minus best member with its interval."""
    group = study["design"]["group"]
    lines = [
        f"| target | measure | none | best member | `{group}` | `{group}` - best [95% interval] | Holm p |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, target in study["targets"].items():
        rob = target["robustness"]
        for measure, what in target["measures"].items():
            c = find(target, measure, "group vs best member")
            if c is None:
                lines.append(f"| {name} | {what} | {pts(rob['none'][measure])} | no dev split | | | |")
                continue
            sd = {i: f" ± {pts(v[measure]['sd'])}" for i, v in target["seeds"].items()} if target["seeds"] else {}
            lines.append(
                f"| {name} | {what} | {pts(rob['none'][measure])}{sd.get('none', '')} | `{c['b']}` "
                f"{pts(c['b_value'])}{sd.get(c['b'], '')} | {pts(c['a_value'])}{sd.get(group, '')} | "
                f"{signed(c['diff'])} [{signed(c['low'])}, {signed(c['high'])}] | {c['p_holm']:.3f} |"
            )
    return lines


def robustness_table(name: str, target: dict[str, Any]) -> list[str]:
    extra = "gap_ood_minus_id" in next(iter(target["robustness"].values()))
    head = "| init | mean | worst language | worst domain | worst (language, domain) |" + (
        " OOD - ID |" if extra else ""
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
    lines = [
        f"Every comparison on {name} (Holm within each measure):",
        "",
        "| measure | comparison | difference | 95% interval | p | Holm p |",
        "|---|---|---|---|---|---|",
    ]
    for c in target["comparisons"]:
        lines.append(
            f"| {c['measure']} | `{c['a']}` - `{c['b']}` ({c['role']}) | {signed(c['diff'])} | "
            f"[{signed(c['low'])}, {signed(c['high'])}] | {c['p']:.4f} | {c['p_holm']:.4f} |"
        )
    return lines


def markdown(study: dict[str, Any], plots: list[str]) -> str:
    d = study["design"]
    lines = [
        "# The study: multi-task vs single-task intermediate training under domain and language shift",
        "",
        f"Group `{d['group']}` ({', '.join(f'`{m}`' for m in d['members'])}) against each member trained alone and "
        f"against no intermediate training (`none`); seeds {d['seeds']}; paired bootstrap over test examples "
        f"({d['resamples']:,} resamples, stratified by language, translations resampled together), "
        f"{100 * d['confidence']:.0f}% percentile "
        "intervals, Holm's correction within each (target, measure). Scores in %; the best member is chosen on dev"
        + (
            "; with several seeds, each example's scores are averaged over the seeds before resampling, and the "
            "main table gives ± the standard deviation over seeds."
            if len(d["seeds"]) > 1
            else "."
        ),
        "",
        "## Main table",
        "",
        *main_table(study),
        "",
    ]
    for name, target in study["targets"].items():
        lines += [f"## {name}", "", *robustness_table(name, target), "", *comparisons_table(name, target), ""]
    lines += ["## Plots", "", *(f"![{p}]({p})" for p in plots), ""]
    lines += ["## Where this budget is underpowered", "", *(f"- {s}" for s in study["underpowered"]), ""]
    lines += ["## The answer", "", *(p + "\n" for p in study["answer"])]
    return "\n".join(lines)


def terminal_text(study: dict[str, Any]) -> str:
    """What ``make run`` prints: the main table and the answer."""
    rows = [
        "The study (reports/study.md):",
        *main_table(study),
        "",
        *study["answer"],
        *study["underpowered"],
    ]
    return "\n".join(rows) + "\n"
