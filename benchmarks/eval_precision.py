"""Evaluation precision and batch size: one trained target model scored on its test split in fp32 and in the
precision ``precision: auto`` picks here, at the phase's batch (2 x batch_size) and at larger ones.

Prints each setting's seconds and main metric, and the metric's difference from fp32 (the pipeline evaluates in
the training precision; this checks that it moves the score by no more than 0.1 points). Run from the repository
root after ``make run``: ``python benchmarks/eval_precision.py --model models/target/pos_tr-none``.
"""

from __future__ import annotations

import xstilts  # noqa: F401  first: it sets torch's OpenMP spin count before torch loads (as every stage does)

# isort: split
import argparse
import os
import sys
import time
from pathlib import Path

from xstilts import hardware
from xstilts.errors import XstiltsError
from xstilts.families import spec
from xstilts.modeling import load_model
from xstilts.pipeline.train_and_evaluate import load_rows
from xstilts.tasks import get_task
from xstilts.training.evaluation import evaluate
from xstilts.training.features import Collator
from xstilts.training.precision import FP32
from xstilts.training.precision import resolve as resolve_precision


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/target/pos_tr-none", help="a trained target model folder")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-sizes", default="32,128", help="comma-separated evaluation batch sizes")
    args = p.parse_args(argv)
    os.environ.setdefault("XSTILTS_ROOT", str(Path(__file__).resolve().parents[1]))
    try:
        if not (Path(args.model) / "xstilts.json").exists():
            raise XstiltsError(f"{args.model} is not a trained model folder; run `make run` first.")
        tokenizer, model, meta = load_model(Path(args.model))
        task = get_task(next(iter(model.specs)))
        rows = load_rows(task.name, args.split)
        if rows is None:
            raise XstiltsError(f"{task.name} has no {args.split} rows; run `dvc repro prepare-{task.name}` first.")
    except XstiltsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    hardware.use_all_cores()
    family = spec(model.specs[task.name].family)
    metric = family.main_metric(model.specs[task.name].labels)
    features = task.spec.tokenize(rows, tokenizer, list(task.labels), meta.get("max_length", 128), None)
    fast = resolve_precision("auto")
    print(f"{task.name} {args.split}: {len(rows)} rows; machine: {hardware.summary()}")
    print(f"precision auto -> {fast.name} ({fast.reason}); main metric {metric}")
    reference = None
    for precision in (FP32, fast) if fast.name != "fp32" else (FP32,):
        for size in (int(b) for b in args.batch_sizes.split(",")):
            started = time.perf_counter()
            result = evaluate(model, task.name, rows, features, Collator(tokenizer, task.family), size, precision)
            seconds = time.perf_counter() - started
            score = 100 * result.score()[metric]
            reference = score if reference is None else reference
            shown = f"{metric} {score:.2f} ({score - reference:+.2f} vs fp32)"
            print(f"  {precision.name:5s} batch {size:4d}: {seconds:6.1f} s, {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
