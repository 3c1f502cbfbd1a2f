"""``xstilts plan``: what ``params.yaml`` will run, how long it will take here and on N nodes, and what it can detect.

* **Runs**: the stages of ``dvc.yaml`` (as :func:`~xstilts.pipeline.dvcfile.build_stages` writes them) by kind, and
  the tuning trials; the stages DVC would run now (``dvc status`` and everything downstream of them).
* **Time**: each stage's seconds from this machine's history (``logs/timings.jsonl``, rows of the same CPU model
  and cores): the same stage, else the same stage without its seed, else the median of its kind and family
  (``target-brown_pos-*``), else of its kind. With no history of a kind, a reference (this project's default
  pipeline on the machine :data:`REFERENCE` names) scaled, for the stages that train or embed, by this machine's
  training step over the reference's (:func:`step_seconds`: a 16 x 128 training step of an encoder of
  multilingual-e5-small's shape in the precision ``auto`` picks, measured once per machine and cached). DVC's own
  seconds between stages come from the last whole pipeline on this machine. A training stage's evaluation (which
  grows with its targets' dev and test examples: 7 POS languages or 22,000 exam questions) is estimated apart: its
  examples (prepared data) times this machine's seconds per example of the family (``evaluate`` rows of the
  history, else the reference's). On N nodes the stages are scheduled
  over the stage graph, N at a time (``xstilts fanout``'s per-node start-up and syncing not included).
* **Detectable effect** per target of the study: the test-set error of its primary comparison from the last
  ``reports/study.json`` (else left out: the numbers are then lower bounds) and the seed-to-seed spread measured
  there (else ``study.prior_seed_sd``, said so), combined as the report does
  (:func:`xstilts.study.intervals.planned`), for the planned number of seeds; and the seeds that would detect
  ``study.min_effect``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from xstilts import hardware, timing
from xstilts.params import Params
from xstilts.paths import repo_root
from xstilts.pipeline.dvcfile import build_stages

TRAINING_KINDS = ("tune", "intermediate", "target", "retrieve")
PLAN_FILE = "logs/plan.json"  # the last plan's estimate, which the timing summary compares with the actual time
# The reference: mean stage-command seconds per kind of `make run` (the default profile, every stage run) on 2 cores of
# an Intel Xeon with AMX, bf16, on 2026-12-08, where step_seconds("bf16") gave REFERENCE_STEP (1.13-1.22 s in four
# probes) and DVC spent 5 s of the 673 s outside the stage commands.
REFERENCE = "2 cores of an Intel Xeon with AMX (bf16), the default profile's make run"
REFERENCE_STEP = 1.17
REFERENCE_SECONDS = {
    "code": 1.3, "fetch": 3.1, "extract": 3.4, "encoder": 7.7, "prepare": 3.6, "validate": 4.9, "tune": 40.0,
    "intermediate": 86.5, "retrieve": 20.3, "target": 33.4, "promote": 10.3, "report": 6.0,
}  # fmt: skip
# seconds per evaluated example (dev and test) on the reference machine, bf16, batch 32 (benchmarks/eval_precision.py:
# polarity 5,496 rows in 37.7 s, pos_tr 400 sentences in 1.5 s, exams' dev 5,753 questions in 99.9 s); a family's rate
# here comes from its evaluations here
REFERENCE_EVAL_PER_ROW = {"classification": 0.0069, "tagging": 0.0037, "multiple_choice": 0.0174}
REFERENCE_DVC_PER_STAGE = 0.2  # seconds DVC spends per stage outside the commands (hashing, locking, checkouts)


@dataclass
class Plan:
    stages: dict[str, dict[str, Any]]  # every stage of the design, in pipeline order
    to_run: list[str]  # the stages a `dvc repro` would run now
    seconds: dict[str, float]  # estimated command seconds per stage
    sources: dict[str, str]  # where each estimate came from
    dvc_per_stage: float
    trials: int  # tuning trials, all tuned specs
    detectable: dict[str, dict[str, Any]] = field(default_factory=dict)

    def wall(self, nodes: int = 1, stages: list[str] | None = None) -> float:
        """Estimated wall seconds of ``stages`` (default: those to run) on ``nodes`` workers."""
        chosen = self.to_run if stages is None else stages
        return schedule(self.stages, {s: self.seconds[s] + self.dvc_per_stage for s in chosen}, nodes)


def kind(stage: str) -> str:
    return stage.split("-", 1)[0]


def unseeded(stage: str) -> str:
    parts = stage.split("-")
    return "-".join(parts[:-1]) if parts[-1][:1] == "s" and parts[-1][1:].isdigit() else stage


def graph(stages: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Each stage's upstream stages: those whose outs (or metrics, plots) it depends on, by path or folder."""
    produced: dict[str, str] = {}
    for name, stage in stages.items():
        for section in ("outs", "metrics", "plots"):
            for out in stage.get(section, []):
                produced[next(iter(out)) if isinstance(out, dict) else out] = name
    upstream: dict[str, set[str]] = {}
    for name, stage in stages.items():
        deps = stage.get("deps", [])
        upstream[name] = {
            producer
            for dep in deps
            for path, producer in produced.items()
            if producer != name and (dep == path or dep.startswith(path + "/") or path.startswith(dep + "/"))
        }
    return upstream


def schedule(stages: dict[str, dict[str, Any]], seconds: dict[str, float], nodes: int) -> float:
    """The makespan of running the stages in ``seconds`` on ``nodes`` workers, each as soon as the stages it depends
    on (among those run) are done, in pipeline order (list scheduling)."""
    upstream = graph(stages)
    done: dict[str, float] = {}
    free = [0.0] * max(1, nodes)
    pending = [s for s in stages if s in seconds]
    while pending:
        ready = [s for s in pending if all(u in done or u not in seconds for u in upstream[s])]
        stage = min(ready, key=lambda s: max([done.get(u, 0.0) for u in upstream[s]] + [0.0]))
        start = max([min(free)] + [done.get(u, 0.0) for u in upstream[stage]])
        worker = free.index(min(free))
        free[worker] = done[stage] = start + seconds[stage]
        pending.remove(stage)
    return max(done.values(), default=0.0)


def stale_stages(stages: dict[str, dict[str, Any]]) -> list[str]:
    """What ``dvc repro`` would run now: what ``dvc status`` reports changed, and what is downstream of it."""
    from xstilts.pipeline.code import KINDS, fingerprint_path, fingerprint_text

    try:
        out = subprocess.run(
            ["dvc", "status", "--json"], cwd=repo_root(), capture_output=True, text=True, timeout=300, check=True
        ).stdout
        changed = {name.removeprefix("dvc.yaml:") for name in json.loads(out or "{}")}
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        said = [line.strip() for line in (getattr(exc, "stderr", None) or str(exc)).splitlines() if line.strip()]
        why = " ".join(said[:2]) if said else type(exc).__name__  # e.g. a running `dvc repro` holds the lock
        print(f"xstilts plan: `dvc status` failed ({why}); counting every stage as to run.", file=sys.stderr)
        return list(stages)

    def current(kind: str) -> str | None:
        path = repo_root() / fingerprint_path(kind)
        return path.read_text() if path.is_file() else None

    moved = {fingerprint_path(k) for k in KINDS if "code" in changed and current(k) != fingerprint_text(k)}
    return downstream(stages, changed, moved)


def downstream(stages: dict[str, dict[str, Any]], changed: set[str], moved: set[str]) -> list[str]:
    """The stages ``changed`` and everything downstream of them, except that the ``code`` stage (which rewrites the
    code fingerprints) only reruns the stages that read a fingerprint in ``moved``."""
    upstream = {s: u - {"code"} for s, u in graph(stages).items()}
    run = {s for s in stages if s in changed} | {s for s in stages if moved & set(stages[s].get("deps", []))}
    grew = True
    while grew:
        more = {s for s in stages if s not in run and upstream[s] & run}
        run |= more
        grew = bool(more)
    return [s for s in stages if s in run]


def step_seconds(precision_name: str) -> float:
    """Seconds of one 16 x 128 training step (forward, backward, AdamW; word embeddings frozen, as the profiles
    train) of a randomly initialised encoder of multilingual-e5-small's shape, in ``precision_name``: measured once
    per machine and precision (about 15 s) and cached in ``~/.cache/xstilts``."""
    key = f"{hardware.machine_key()}|{precision_name}"
    cached = hardware.read_cache("training-step.json").get(key)
    if isinstance(cached, (int, float)):
        return float(cached)
    import torch
    from transformers import BertConfig, BertModel

    from xstilts.training.precision import DTYPES

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = BertConfig(vocab_size=30_000, hidden_size=384, num_hidden_layers=12, num_attention_heads=12)
        config.intermediate_size = 1536
        model = BertModel(config).train()
        model.get_input_embeddings().weight.requires_grad_(False)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        ids = torch.randint(5, 30_000, (16, 128))

        def step() -> None:
            with torch.autocast("cpu", dtype=DTYPES[precision_name], enabled=precision_name != "fp32"):
                loss = model(input_ids=ids).last_hidden_state.float().pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        times = []
        for _ in range(7):  # two warm-up steps, then the median of five
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times[2:])
    hardware.write_cache("training-step.json", key, round(seconds, 4))
    return seconds


def eval_rates(rows: list[dict], scale: float) -> dict[str, float]:
    """Seconds per evaluated example by task family: this machine's evaluations, else the reference's x ``scale``."""
    here: dict[str, list[float]] = {}
    for r in rows:
        if r.get("kind") == "evaluate" and r.get("rows"):
            here.setdefault(r["family"], []).append(r["seconds"] / r["rows"])
    rates = {family: value * scale for family, value in REFERENCE_EVAL_PER_ROW.items()}
    return rates | {family: statistics.median(values) for family, values in here.items()}


def _last_runs(rows: list[dict]) -> dict[str, tuple[float, float]]:
    """Per stage, its last successful command's seconds and the evaluation seconds inside it."""
    out = {}
    for cmd in (r for r in rows if r.get("kind") == "command" and r.get("ok")):
        began = cmd["at"] - cmd["seconds"]
        inside = [
            r["seconds"]
            for r in rows
            if r.get("kind") == "evaluate" and r.get("stage") == cmd["stage"] and began <= r["at"] <= cmd["at"]
        ]
        out[cmd["stage"]] = (float(cmd["seconds"]), float(sum(inside)))
    return out


def estimate(
    stages: dict[str, dict[str, Any]],
    rows: list[dict],
    scale: float,
    evaluated: dict[str, list[tuple[str, int]]] | None = None,
) -> tuple[dict, dict]:
    """Each stage's command seconds and where that number came from (see the module's docstring). ``evaluated``:
    per training stage, the (family, examples) it will evaluate; its evaluation is then estimated from those
    examples at this machine's rate per family, and only the rest of the stage from the history."""
    runs, rates, evaluated = _last_runs(rows), eval_rates(rows, scale), evaluated or {}
    whole = {s: c for s, (c, _) in runs.items()}
    rest = {s: c - e for s, (c, e) in runs.items()}  # the stage without its evaluation
    seconds, sources = {}, {}
    for name in stages:
        known = name in evaluated and all(f in rates for f, _ in evaluated[name])
        latest = rest if known else whole
        family = "-".join(name.split("-")[:2])
        alike = [v for s, v in latest.items() if unseeded(s) == unseeded(name)]
        same_family = [v for s, v in latest.items() if "-".join(s.split("-")[:2]) == family]
        same_kind = [v for s, v in latest.items() if kind(s) == kind(name)]
        if name in latest:
            seconds[name], sources[name] = latest[name], "this stage, last run here"
        elif alike:
            seconds[name], sources[name] = statistics.median(alike), "other seeds of this stage here"
        elif same_family[1:]:
            seconds[name], sources[name] = statistics.median(same_family), f"{family}-* stages here"
        elif same_kind:
            seconds[name], sources[name] = statistics.median(same_kind), f"{kind(name)} stages here"
        else:
            factor = scale if kind(name) in TRAINING_KINDS else 1.0
            seconds[name] = REFERENCE_SECONDS.get(kind(name), 5.0) * factor
            sources[name] = f"reference x {factor:.2g}" if factor != 1.0 else "reference"
            continue  # the reference's seconds include its evaluation
        if known:
            seconds[name] += sum(n * rates[f] for f, n in evaluated[name])
            sources[name] += " + evaluation from its examples"
    return seconds, sources


def evaluated_examples(params: Params, stale: set[str] = frozenset()) -> dict[str, list[tuple[str, int]]]:
    """Per intermediate and target stage of ``params``, the (task family, dev + test examples) it evaluates, where
    the prepared data is here and current (stages whose data is not prepared, or whose ``prepare-<task>`` stage is
    in ``stale``, are left out)."""
    from xstilts.pipeline.dvcfile import stage_name
    from xstilts.pipeline.run_names import intermediate_tasks, run_seeds, seeded, target_families
    from xstilts.tasks import get_task

    def examples(task: str) -> tuple[str, int] | None:
        folder = repo_root() / "data" / "prepared" / task
        splits = [folder / f"{split}.parquet" for split in ("dev", "test")]
        if not folder.is_dir() or stage_name("prepare", task) in stale:
            return None
        import pyarrow.parquet as pq

        n = sum(pq.ParquetFile(p).metadata.num_rows for p in splits if p.exists())
        return get_task(task, source=params.data.source).family.value, n

    runs: dict[str, list[str]] = {}
    for seed in run_seeds(params):
        for spec in params.intermediate.tasks:
            folder, members = intermediate_tasks(spec, params)
            runs[stage_name("intermediate", seeded(folder, seed))] = members
        for family, names in target_families(params.target.tasks, params).items():
            for init in params.target.inits:
                runs[stage_name("target", seeded(f"{family}-{init}", seed))] = names
    out = {}
    for stage, tasks in runs.items():
        found = [examples(t) for t in tasks]
        if all(found):
            out[stage] = found
    return out


def dvc_seconds_per_stage(rows: list[dict]) -> float:
    """DVC's seconds per stage outside the commands in the last whole pipeline here (else the reference's)."""
    runs = [r for r in rows if r.get("kind") == "pipeline" and r.get("stages")]
    if not runs:
        return REFERENCE_DVC_PER_STAGE
    last = runs[-1]
    return max(0.0, (last["wall"] - last["commands"]) / last["stages"])


def make_plan(params: Params, detect: bool = True, stale: bool = True) -> Plan:
    """The plan of ``params`` on this machine (``stale``: only what ``dvc repro`` would run now)."""
    from xstilts.training.precision import resolve

    stages = {name: stage for section in build_stages(params).values() for name, stage in section.items()}
    rows = timing.history()
    seen = {kind(r.get("stage") or "") for r in rows}
    unseen = {kind(s) for s in stages if kind(s) in TRAINING_KINDS} - seen  # kinds with no history here
    scale = step_seconds(resolve(params.target.precision).name) / REFERENCE_STEP if unseen else 1.0
    to_run = stale_stages(stages) if stale else list(stages)
    seconds, sources = estimate(stages, rows, scale, evaluated_examples(params, set(to_run)))
    trials = params.tune.n_trials * len(params.tune.tasks)
    plan = Plan(stages, to_run, seconds, sources, dvc_seconds_per_stage(rows), trials)
    if detect and params.study.group:
        plan.detectable = detectable_effects(params)
    return plan


def detectable_effects(params: Params) -> dict[str, dict[str, Any]]:
    """Per target of the study: the planned seeds' minimum detectable effect of its primary comparison and the
    seeds that would detect ``study.min_effect`` (points), with where each error part came from."""
    from xstilts.study.intervals import POWER, planned

    path = repo_root() / "reports" / "study.json"
    earlier = json.loads(path.read_text()).get("targets", {}) if path.is_file() else {}
    study, seeds = params.study, max(1, len(params.study.seeds))
    alpha, effect = 1 - study.confidence, study.min_effect / 100
    out = {}
    for task in [*params.target.tasks, *params.retrieve.tasks]:
        primary = earlier.get(task, {}).get("primary", {})
        if primary.get("seeds", 0) >= 2 and primary.get("se_seeds", 0) > 0:
            spread = primary["se_seeds"] * primary["seeds"] ** 0.5
            spread_from = f"measured over {primary['seeds']} seeds"
        else:
            spread, spread_from = 2**0.5 * study.prior_seed_sd / 100, "study.prior_seed_sd (not measured yet)"
        lower = "se_test" not in primary  # the test part is measured by the first run of the target
        se_test = primary.get("se_test", 0.0)
        test_from = (
            "unknown until a first run (a lower bound)" if lower else f"the last report ({primary['n_examples']} rows)"
        )

        def mde(k: int, spread: float = spread, se_test: float = se_test) -> float:
            return planned(spread / k**0.5, se_test, k - 1, alpha, POWER)

        needed = next((k for k in range(2, 51) if mde(k) <= effect), None)
        out[task] = {
            "effect": 100 * mde(seeds) if seeds >= 2 else None,
            "seeds_needed": needed,
            "seed_spread": 100 * spread,
            "se_test": 100 * se_test,
            "lower_bound": lower,
            "why": f"seed part: {spread_from}; test part: {test_from}",
        }
    return out


def plan_text(plan: Plan, params: Params, nodes: int = 4) -> str:
    """The plan as ``xstilts plan`` and ``make run`` print it."""
    counts: dict[str, int] = {}
    for name in plan.stages:
        counts[kind(name)] = counts.get(kind(name), 0) + 1
    shown = ", ".join(f"{k} {n}" for k, n in counts.items() if k in TRAINING_KINDS)
    lines = [
        f"Plan for params.yaml (profile {params.profile}): {len(plan.stages)} stages; trained runs: {shown}"
        + (f"; {plan.trials} tuning trials" if plan.trials else ""),
        f"  machine: {hardware.summary()}",
    ]
    if not plan.to_run:
        lines.append("  nothing to run: dvc status is clean")
    else:
        froms = sorted({plan.sources[s] for s in plan.to_run})
        one, many = plan.wall(1), plan.wall(nodes)
        lines.append(
            f"  to run now: {len(plan.to_run)} stages, estimated {one / 60:.0f} min here (wall, DVC included); "
            f"{many / 60:.0f} min on {nodes} fanout nodes like this one (their start-up and syncing not included)"
        )
        lines.append(f"  estimates from: {'; '.join(froms)}")
    seeds = len(params.study.seeds) or 1
    for task, d in plan.detectable.items():
        least = "at least " if d["lower_bound"] else ""
        effect = "none (one seed says nothing about a procedure)"
        if d["effect"] is not None:
            effect = f"{least}{d['effect']:.1f} points"
        need = f"{least}{d['seeds_needed']}" if d["seeds_needed"] else "over 50: the test set alone is too small"
        lines.append(
            f"  {task}: detectable with {seeds} seed(s): {effect}; seeds to detect {params.study.min_effect:g} points: "
            f"{need} ({d['why']})"
        )
    return "\n".join(lines) + "\n"


def save_estimate(plan: Plan) -> None:
    """Keep the estimate for the timing summary (``logs/plan.json``)."""
    path = repo_root() / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seconds": plan.wall(1), "stages": len(plan.to_run), "at": time.time()}) + "\n")


def estimate_line(actual: float) -> str | None:
    """``plan estimated X s, actual Y s`` for the run that ``make run`` planned, or None without a plan."""
    path = repo_root() / PLAN_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    ratio = actual / saved["seconds"] if saved["seconds"] else float("nan")
    planned = f"{saved['seconds']:.0f} s for {saved['stages']} stages"
    return f"  plan estimated {planned}; actual {actual:.0f} s ({ratio:.2f}x the estimate)"
