"""A stage process started by a fan-out worker stops when that worker is gone (its node was lost or the run was
cancelled), so that no orphan keeps training and logging beside the retried attempt."""

from __future__ import annotations

import os
import threading
import time

PARENT_ENV = "XSTILTS_FANOUT_PARENT"


def watch_parent(period: float = 1.0) -> None:
    """When ``$XSTILTS_FANOUT_PARENT`` names a process, exit at once (no clean-up: the coordinator marks the run)
    as soon as it no longer exists."""
    value = os.environ.get(PARENT_ENV)
    if not value:
        return
    pid = int(value)

    def watch() -> None:
        while alive(pid):
            time.sleep(period)
        os._exit(137)

    threading.Thread(target=watch, name="xstilts-lifeline", daemon=True).start()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a killed process nobody reaped (a zombie, as under a container's PID 1) does not."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
