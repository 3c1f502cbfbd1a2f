"""How often the study's verdict is wrong, on synthetic studies analysed and judged as the report does.

Each study is one target built the way ``tests/synthetic_study.py`` builds them (POS-like: 400 Turkish test
sentences of ~14 words, word accuracy; UDHR-like: 42 paragraphs in 12 languages, top-1 retrieval), every run
(init, seed) with its own seed luck ~ N(0, seed sd); ``analyse`` -> ``judge`` (the project's functions, as
``xstilts.study.document.build`` calls them) give the verdict and its printed interval. Under the null the group
equals both members; at ``min_effect`` (2 points) it is 2 points above both. Printed: a Markdown table per target,
seeds x seed sd, of the verdicts not assessed, false "yes" under the null, false "no gain of interest" / "worse" at
min_effect, "yes" at min_effect (power), and how often the printed interval covers what it is about (the
procedure's difference when assessed, these models' when not) and the procedure's difference. Then the group
against unequal members (the other member 0, 1, 3 points below the one the group equals).

    .venv/bin/python benchmarks/verdict_rates.py --studies 400     # from the repository root
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_study import pos_like, simulate, udhr_like  # noqa: E402  (the tests' synthetic studies)

MAKERS = {"pos_like": pos_like, "udhr_like": udhr_like}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def rates(make, seeds: int, seed_sd: float, studies: int, seed: int) -> dict[str, str]:
    null = simulate(make, {}, seed_sd, seeds, studies, seed)
    effect = simulate(make, {"all": 0.02}, seed_sd, seeds, studies, seed + 1)
    both = pd.concat([null, effect])
    return {
        "seeds": str(seeds),
        "seed sd": f"{100 * seed_sd:g} pt",
        "not assessed": pct(both["code"].eq("not-assessed").mean()),
        "false yes (null)": pct(null["code"].str.startswith("yes").mean()),
        "false no at min_effect": pct(effect["code"].isin(["no-gain", "worse"]).mean()),
        "yes at min_effect": pct(effect["code"].str.startswith("yes").mean()),
        "printed interval covers": pct(both["covers"].mean()),
        "covers the procedure's difference": pct(both["covers_procedure"].mean()),
    }


def unequal(seeds: int, apart: float, studies: int, seed: int) -> dict[str, str]:
    result = simulate(pos_like, {"qa": -apart}, 0.01, seeds, studies, seed)
    return {
        "seeds": str(seeds),
        "members apart": f"{100 * apart:g} pt",
        "false yes": pct(result["code"].str.startswith("yes").mean()),
        "printed interval covers": pct(result["covers"].mean()),
    }


def table(rows: list[dict[str, str]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r[k] for k in head) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=400, help="synthetic studies per cell and truth")
    parser.add_argument("--targets", nargs="+", default=list(MAKERS), choices=list(MAKERS))
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    started = time.time()
    for name in args.targets:
        rows = [
            rates(MAKERS[name], seeds, sd, args.studies, args.seed + 10 * seeds + int(1000 * sd))
            for seeds in (1, 3, 5)
            for sd in (0.01, 0.04)
        ]
        print(f"\n{name}: {args.studies} studies per cell and truth; alpha 0.05, min_effect 2 points, min_seeds 3\n")
        print(table(rows))
    rows = [
        unequal(s, apart, args.studies, args.seed + s + int(100 * apart)) for s in (3, 5) for apart in (0, 0.01, 0.03)
    ]
    print(
        f"\npos_like, unequal members (seed sd 1 point), {args.studies} studies each: the truth is group - best = 0\n"
    )
    print(table(rows))
    print(f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
