"""Progress of long steps: a tqdm bar on a terminal, a plain line every ``XSTILTS_PROGRESS_SECONDS`` otherwise.

On a terminal (``sys.stderr`` is a TTY) :func:`progress` is tqdm's own bar. Elsewhere (DVC stages, CI, a log
file) it is the same tqdm with ``mininterval`` and ``delay`` set to the interval and a file wrapper that turns each
refresh into one newline-terminated ASCII line, so a step shorter than the interval prints nothing and a longer one
a line per interval, without carriage returns. Processes other than the main one (DDP) print nothing. tqdm's
``TQDM_*`` environment variables apply to what this module leaves unset (``TQDM_DISABLE=1`` silences every bar).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from tqdm import tqdm

from xstilts.errors import XstiltsError

if TYPE_CHECKING:
    from accelerate import PartialState

SECONDS_ENV = "XSTILTS_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0
_CURSOR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # tqdm's cursor moves between nested bars


def process_state() -> PartialState:
    """This run's processes (starts torch.distributed under a launcher); ``ACCELERATE_USE_CPU`` counts, as in
    ``Accelerator``, so that a CPU run launched with several processes uses gloo instead of running alone."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def interval() -> float:
    """Seconds between two plain lines: ``XSTILTS_PROGRESS_SECONDS``, 30 by default (0: every update)."""
    raw = os.environ.get(SECONDS_ENV, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_SECONDS
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also nan
        raise XstiltsError(f"{SECONDS_ENV} is {raw!r}; set it to a number of seconds (0 or more), or unset it.")
    return seconds


class _Lines:
    """A stream for tqdm that writes each refresh as its own line: no carriage returns, cursor moves or blanks."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        for line in re.split(r"[\r\n]", _CURSOR.sub("", text)):
            if line.strip():
                self.stream.write(line.rstrip() + "\n")

    def flush(self) -> None:
        self.stream.flush()


LIBRARY_BARS = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def quiet_library_bars() -> None:
    """In a log (stderr not a TTY), switch off the Hugging Face libraries' own bars (loading weights, ``map``),
    which would write carriage returns into it; a variable the user set wins. Call before they are imported."""
    if not sys.stderr.isatty():
        for name in LIBRARY_BARS:
            os.environ.setdefault(name, "1")


def progress(
    iterable: Iterable | None = None,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    leave: bool = True,
    **kwargs: Any,
) -> tqdm:
    """A tqdm over ``iterable`` (or updated by hand up to ``total``) for this terminal or log; see the module.

    ``kwargs`` go to tqdm (``initial``, ``unit_scale``, ...)."""
    stream = sys.stderr
    options: dict[str, Any] = {"dynamic_ncols": True}
    if not stream.isatty():
        seconds = interval()
        options = {"file": _Lines(stream), "mininterval": seconds, "delay": seconds, "miniters": 1, "ascii": True}
    if not process_state().is_main_process:
        options["disable"] = True  # set only here, so that TQDM_DISABLE applies otherwise
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, **{"file": stream, **options, **kwargs})
