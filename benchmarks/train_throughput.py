"""Training throughput: ``transformers.Trainer`` with its defaults versus xstilts, same model, data and steps.

Both train the same encoder folder on the same ``steps * batch_size`` training rows (one epoch, so both see
exactly the same examples and tokens), with the same batch size, learning rate (linear decay, no warmup: the
Trainer's default schedule) and seed, in this one process. Then both are scored on the same dev rows by the
same code (fp32, argmax of the logits). Tokens are the non-padding tokens of the training batches.

* Trainer: ``AutoModelForSequenceClassification`` (its pooler + classifier head), ``TrainingArguments``
  defaults (fp32, random batches, AdamW on every parameter) except the fixed settings above, ``report_to
  none`` and no checkpoint saving (xstilts does not save inside the loop either); ``DataCollatorWithPadding``.
* xstilts: :func:`xstilts.training.loop.train_task` (mean-pool head) with the project's speed settings: the
  precision ``precision: auto`` picks on this machine (:mod:`xstilts.training.precision`; ``--precision`` forces
  one), length-grouped batches, and the word embeddings trimmed to the ids of the train and dev rows
  (:mod:`xstilts.training.trim`) and trained, as in full fine-tuning: trimming makes them cheap (a few
  thousand rows instead of 250k), so there is no reason to freeze them.

The same process also measures, before and after the runs, the machine's ``torch.matmul`` rate in every
precision it has (fp32, bf16, fp16) on the encoder's own shapes (every matmul of a ``batch_size x max_length``
training step; the best timing counts) and prints each run's achieved FLOP/s (the trained body's matmul FLOPs,
counted per padded batch as :mod:`flops` explains) as a fraction of the best of them: the machine's best. A
precision whose quick probe (:func:`xstilts.hardware.matmul_rate`) runs at under a quarter of the best probe's
rate (bf16 on an AVX2-only CPU: a minute per repeat) is reported from its probe only. Torch runs on every core
the process may use (:func:`xstilts.hardware.use_all_cores`); the header says how many.

``--busy`` then runs both again while a niced busy loop holds one core from its own session (``setsid``, as a
program in another terminal would) and prints each one's slowdown against the idle runs.

Run from the repository root: ``python benchmarks/train_throughput.py --steps 40``.
"""

from __future__ import annotations

import xstilts  # noqa: F401  first: it sets torch's OpenMP spin count before torch loads (as every stage does)

# isort: split
import argparse
import os
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import set_seed
from flops import CountingCollator, Shape, matmul_rate, time_by_kind
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

from xstilts import hardware
from xstilts.encoder.loading import load_encoder, resolve_model
from xstilts.errors import XstiltsError
from xstilts.modeling import HeadSpec, MultiTaskModel
from xstilts.params import TrainParams
from xstilts.paths import prepared_dir
from xstilts.tasks import get_task
from xstilts.training import compilation
from xstilts.training.features import Collator, tokenize
from xstilts.training.loop import train_task
from xstilts.training.precision import DTYPES
from xstilts.training.precision import resolve as resolve_precision
from xstilts.training.trim import trimmed, used_token_ids

Logits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Run:
    name: str
    seconds: float
    tokens: int
    dev_accuracy: float
    trainable: int
    load: float  # the machine's 1-minute load average, mean of the values at the start and end of training
    flops: float = 0.0  # the trained body's matmul FLOPs over all training batches (padding included)
    padded_tokens: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="offline:multilingual-e5-small", help="model.name or a model folder")
    p.add_argument("--task", default="sst2", help="a prepared classification task")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--dev-size", type=int, default=400, help="dev rows scored (the first n)")
    p.add_argument("--profile", action="store_true", help="also: where xstilts' training time goes, by kind of op")
    p.add_argument("--busy", action="store_true", help="also: both again with one core held from another session")
    choices = typing.get_args(TrainParams.model_fields["precision"].annotation)  # what params.yaml accepts
    p.add_argument("--precision", default="auto", choices=choices, help="xstilts' precision")
    compile_choices = typing.get_args(TrainParams.model_fields["compile"].annotation)
    p.add_argument("--compile", default="auto", choices=compile_choices, help="xstilts' compile setting")
    args = p.parse_args(argv)
    if min(args.steps, args.batch_size, args.dev_size) < 1 or args.max_length < 8:
        p.error("--steps, --batch-size and --dev-size must be positive and --max-length at least 8")
    return args


def load_data(task: str, n_train: int, n_dev: int, seed: int) -> tuple[datasets.Dataset, datasets.Dataset]:
    """``n_train`` shuffled train rows and the first ``n_dev`` dev rows of a prepared classification task."""
    if get_task(task).family.value != "classification":
        raise XstiltsError(f"{task} is not a classification task; the benchmark trains sequence classifiers only.")
    paths = {split: prepared_dir(task) / f"{split}.parquet" for split in ("train", "dev")}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise XstiltsError(f"Prepared data {', '.join(missing)} is missing; run `dvc repro prepare-{task}` first.")
    datasets.disable_progress_bars()
    train = datasets.load_dataset("parquet", data_files=str(paths["train"]), split="train")
    dev = datasets.load_dataset("parquet", data_files=str(paths["dev"]), split="train")
    if len(train) < n_train:
        raise XstiltsError(f"{task} has {len(train)} train rows, fewer than steps x batch size = {n_train}.")
    return train.shuffle(seed=seed).select(range(n_train)), dev.select(range(min(n_dev, len(dev))))


@torch.no_grad()
def dev_accuracy(logits: Logits, features: datasets.Dataset, collator: Collator, batch_size: int = 64) -> float:
    """Share of dev rows whose argmax logit is the gold label (fp32, batches sorted by length)."""
    order = np.argsort([len(x) for x in features["input_ids"]], kind="stable")
    correct = 0
    for start in range(0, len(order), batch_size):
        batch = collator([features[int(i)] for i in order[start : start + batch_size]])
        predicted = logits(batch["input_ids"], batch["attention_mask"]).argmax(-1)
        correct += int((predicted == batch["labels"]).sum())
    return correct / len(features)


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class CountingTrainer(Trainer):
    """A Trainer that counts the tokens (non-padding and padded) and body FLOPs of the batches it trains on."""

    tokens = padded = 0
    flops = 0.0
    shape: Shape | None = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        ids = inputs["input_ids"]
        self.tokens += int(inputs["attention_mask"].sum())
        self.padded += ids.numel()
        self.flops += self.shape.train_flops(ids.numel(), ids.shape[-1])
        return super().training_step(model, inputs, num_items_in_batch)


def run_trainer(folder: str, tokenizer: PreTrainedTokenizerBase, train_rows, dev, labels, args) -> Run:
    label_ids = {label: i for i, label in enumerate(labels)}
    pair = any(b is not None for b in train_rows["text_b"])

    def encode(batch: dict) -> dict:
        texts = (batch["text_a"], batch["text_b"]) if pair else (batch["text_a"],)
        enc = tokenizer(*texts, truncation=True, max_length=args.max_length)
        return {**enc, "labels": [label_ids[y] for y in batch["label"]]}

    train = train_rows.map(encode, batched=True, remove_columns=train_rows.column_names)
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(labels))
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=args.lr,
            seed=args.seed,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
        )
        trainer = CountingTrainer(
            model=model, args=training_args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer)
        )
        trainer.shape = Shape.of(model.config)
        warm_up(lambda i, m: model(input_ids=i, attention_mask=m).logits, dev, Collator(tokenizer))
        started, load = time.perf_counter(), os.getloadavg()[0]
        trainer.train()
        seconds, load = time.perf_counter() - started, (load + os.getloadavg()[0]) / 2
    model.eval()
    accuracy = dev_accuracy(lambda i, m: model(input_ids=i, attention_mask=m).logits, dev, Collator(tokenizer))
    n = trainable(model)
    return Run("transformers.Trainer", seconds, trainer.tokens, accuracy, n, load, trainer.flops, trainer.padded)


def run_xstilts(folder: str, train_rows, dev, labels, task: str, args) -> Run:
    # The Trainer's Accelerator fixed this process's (fp32) state; forget it so train_task can ask for its own.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    tokenizer, encoder = load_encoder(folder)
    train = tokenize("classification", train_rows, tokenizer, labels, args.max_length)
    set_seed(args.seed)
    model = MultiTaskModel(encoder, [HeadSpec(task, "classification", list(labels))])
    collator = Collator(tokenizer)
    cfg = TrainParams(
        tasks=[task],
        lr=args.lr,
        epochs=1,  # steps * batch_size rows: one epoch is exactly --steps steps
        batch_size=args.batch_size,
        max_length=args.max_length,
        warmup_ratio=0.0,
        eval_every=args.steps,
        patience=1,
        freeze_embeddings=False,
        precision=args.precision,
        compile=args.compile,
    )
    chosen = resolve_precision(args.precision)
    warm_up(lambda i, m: model(task, i, m), dev, collator)
    started, load = time.perf_counter(), os.getloadavg()[0]
    with trimmed(encoder, used_token_ids(train, dev), tokenizer):
        n_trainable = trainable(model)
        counting = CountingCollator(collator, Shape.of(encoder.config))
        result = train_task(model, task, train, None, counting, cfg, args.seed)
    seconds, load = time.perf_counter() - started, (load + os.getloadavg()[0]) / 2
    if result.steps != args.steps:
        raise XstiltsError(f"xstilts trained {result.steps} steps instead of {args.steps}; report this as a bug.")
    model.eval()
    accuracy = dev_accuracy(lambda i, m: model(task, i, m), dev, collator)
    name = f"xstilts (trim, {chosen.name}, length groups{', compiled' if args.compile == 'on' else ''})"
    flops, padded = counting.flops, counting.padded_tokens
    return Run(name, seconds, result.train_tokens, accuracy, n_trainable, load, flops, padded)


@torch.no_grad()
def warm_up(logits: Logits, dev: datasets.Dataset, collator: Collator) -> None:
    """One untimed forward pass, so neither side pays first-call costs inside its timing."""
    batch = collator([dev[i] for i in range(min(4, len(dev)))])
    logits(batch["input_ids"], batch["attention_mask"])


def table(runs: list[Run], rates: dict[str, float]) -> str:
    head = f"{'':38} {'seconds':>8} {'tokens':>8} {'tokens/s':>9} {'padded':>8} {'GFLOP/s':>8}"
    head += f" {'of best':>8} {'of fp32':>8} {'dev acc':>8} {'trainable':>11} {'load':>5}"
    lines = [head]
    for r in runs:
        rate = r.flops / r.seconds
        speed = f"{r.seconds:8.1f} {r.tokens:8d} {r.tokens_per_second:9.1f} {r.padded_tokens:8d} {rate / 1e9:8.1f}"
        shares = f"{rate / best_rate(rates)[1]:8.1%} {rate / rates['fp32']:8.1%}"
        lines.append(f"{r.name:38} {speed} {shares} {r.dev_accuracy:8.4f} {r.trainable:11,d} {r.load:5.1f}")
    return "\n".join(lines)


@contextmanager
def busy_core() -> Iterator[None]:
    """A niced Python loop in its own session holds one core while the block runs (with the scheduler's autogroups,
    ``nice`` orders processes only within a session, so this competes as another login's program does)."""
    loop = [sys.executable, "-c", "while True: pass"]
    program = subprocess.Popen(["nice", "-n", "19", *loop], start_new_session=True)
    time.sleep(1)
    try:
        yield
    finally:
        program.kill()
        program.wait()


def machine_rates(folder: str, rows: int, length: int) -> dict[str, float]:
    """The machine's matmul FLOP/s in each precision on the encoder's own shapes (see :mod:`flops`).

    Each: every matmul of a training step (forward and backward, weights and attention) of ``rows`` x ``length``
    tokens, the yardstick of the table; a precision other than fp32 whose probe is under a quarter of the best
    probe's keeps its probe's rate (``<name> probe``), which is no yardstick.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    step = Shape.of(config).training_matmuls(rows, length, config.num_attention_heads)
    probes = {name: hardware.matmul_rate(dtype) * 1e9 for name, dtype in DTYPES.items()}
    rates = {}
    for name, dtype in DTYPES.items():
        if name == "fp32" or probes[name] >= max(probes.values()) / 4:  # fp32: the "of fp32" column's yardstick
            rates[name] = matmul_rate(step, dtype)
        else:
            rates[f"{name} probe"] = probes[name]
    shown = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in rates.items())
    print(f"matmul rate (GFLOP/s) on the shapes of a {rows} x {length} training step: {shown}")
    return rates


def best_rate(rates: dict[str, float]) -> tuple[str, float]:
    """The precision this machine multiplies fastest in, and its rate (measured mixes only, not probes)."""
    return max(((k, v) for k, v in rates.items() if not k.endswith("probe")), key=lambda kv: kv[1])


def print_profile(folder: str, train_rows, dev, labels, args) -> None:
    """Train xstilts once more under ``torch.profiler`` and print its self CPU time by kind of op."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run = run_xstilts(folder, train_rows, dev, labels, args.task, args)
    kinds = time_by_kind(prof)
    total = sum(kinds.values())
    print(f"where xstilts' training time goes (self CPU, profiled run of {run.seconds:.1f} s):")
    for kind, seconds in kinds.items():
        print(f"  {kind:24s} {seconds:7.2f} s  {seconds / total:6.1%}")
    padding = run.padded_tokens - run.tokens
    print(f"  padding: {padding} of {run.padded_tokens} tokens computed ({padding / run.padded_tokens:.1%})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("XSTILTS_ROOT", str(Path(__file__).resolve().parents[1]))
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        folder = resolve_model(args.model)
        if not (Path(folder) / "config.json").exists():
            raise XstiltsError(f"{args.model} is not a local model folder; the benchmark runs offline.")
        labels = list(get_task(args.task).labels)
        train_rows, dev_rows = load_data(args.task, args.steps * args.batch_size, args.dev_size, args.seed)
        tokenizer, _ = load_encoder(folder)
        dev = tokenize("classification", dev_rows, tokenizer, labels, args.max_length)
        threads, chosen = hardware.use_all_cores(), resolve_precision(args.precision)
        print(
            f"{args.task}: {len(train_rows)} train rows ({args.steps} steps x {args.batch_size}), {len(dev)} dev rows, "
            f"max_length {args.max_length}\nmachine: {hardware.summary()}; torch uses {threads} of "
            f"{hardware.usable_cores()} usable cores; precision {args.precision} -> {chosen.name} ({chosen.reason})",
            flush=True,
        )
        rates = machine_rates(folder, args.batch_size, args.max_length)
        config = load_encoder(folder)[1].config  # what the training loop asks, for a run of --steps steps:
        compiled = compilation.resolve(args.compile, config, chosen, torch.device("cpu"), args.steps)
        print(f"compile: {args.compile} -> {compiled.tags()['compile']} ({compiled.reason})", flush=True)
        runs = [run_trainer(folder, tokenizer, train_rows, dev, labels, args)]
        print(table(runs, rates), flush=True)
        runs.append(run_xstilts(folder, train_rows, dev, labels, args.task, args))
        if args.profile:
            print_profile(folder, train_rows, dev, labels, args)
    except XstiltsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if runs[0].tokens != runs[1].tokens:
        print(f"warning: token counts differ ({runs[0].tokens} vs {runs[1].tokens})", file=sys.stderr)
    print(table(runs, rates))
    after = machine_rates(folder, args.batch_size, args.max_length)  # the rate may drift with the load
    rates = {k: max(v, after[k]) for k, v in rates.items() if k in after}
    print(table(runs, rates))
    best, rate = best_rate(rates)
    print(f"the machine's best matmul rate: {best}, {rate / 1e9:.1f} GFLOP/s (the 'of best' column's yardstick)")
    ratio = runs[1].tokens_per_second / runs[0].tokens_per_second
    delta = runs[1].dev_accuracy - runs[0].dev_accuracy
    majority = np.bincount(dev["labels"]).max() / len(dev)
    print(f"throughput ratio xstilts / Trainer: {ratio:.2f}x; dev accuracy difference: {delta:+.4f}")
    print(f"(majority-class dev accuracy: {majority:.4f}; load: 1-minute load average on {os.cpu_count()} cores)")
    if args.busy:
        with busy_core():
            busy = [run_trainer(folder, tokenizer, train_rows, dev, labels, args)]
            busy.append(run_xstilts(folder, train_rows, dev, labels, args.task, args))
        print("\nwith one core held by a niced program in another session:\n" + table(busy, rates))
        pairs = zip(runs, busy, strict=True)
        slow = [f"{i.name.split()[0]} {i.tokens_per_second / b.tokens_per_second:.2f}x" for i, b in pairs]
        print(f"busy-machine slowdown (idle tokens/s over busy): {'; '.join(slow)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
