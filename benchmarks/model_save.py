"""Saving a trained model: ``save_pretrained`` (one 470 MB file) versus xstilts' split save with a linked matrix.

One process loads the encoder (default: the offline e5-small built by ``dvc repro encoder``), saves it the
old way and the xstilts way into fresh folders, ``--repeat`` times each, and prints the median seconds, the
bytes each wrote (a hard link writes none) and the ratios. Run from the repository root:

    python benchmarks/model_save.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from xstilts.encoder.loading import load_encoder, resolve_model
from xstilts.encoder.weights import save_encoder
from xstilts.errors import XstiltsError


def _written(folder: Path, base: Path) -> int:
    """Bytes of the files under ``folder`` that are not hard links to files under ``base``."""
    shared = {p.stat().st_ino for p in base.rglob("*") if p.is_file()}
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.stat().st_ino not in shared)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="offline:multilingual-e5-small")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        base = Path(resolve_model(args.model))
        _, encoder = load_encoder(args.model)
    except XstiltsError as exc:
        print(f"model_save: {exc}", file=sys.stderr)
        return 2
    ways = {
        "save_pretrained": lambda out: encoder.save_pretrained(out),
        "xstilts (linked matrix)": lambda out: save_encoder(encoder, out, base),
    }
    results: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory(dir=base.parent, prefix=".bench-") as tmp:  # same filesystem as the base
        for name, save in ways.items():
            seconds = []
            for i in range(args.repeat):
                out = Path(tmp) / f"{len(results)}-{i}"
                os.sync()
                started = time.perf_counter()
                save(out)
                os.sync()  # the bytes reach the disk inside the timing
                seconds.append(time.perf_counter() - started)
                written = _written(out, base)
                shutil.rmtree(out)
            results[name] = (statistics.median(seconds), written)
    (old_s, old_b), (new_s, new_b) = results.values()
    print(f"{'':26s} {'median s':>9s} {'MB written':>11s}")
    for name, (sec, size) in results.items():
        print(f"{name:26s} {sec:9.2f} {size / 1e6:11.1f}")
    print(f"ratio (xstilts / save_pretrained): time {new_s / old_s:.2f}, bytes {new_b / old_b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
