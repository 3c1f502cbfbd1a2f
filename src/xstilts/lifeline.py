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
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(137)
            except PermissionError:
                pass  # alive, another user's
            time.sleep(period)

    threading.Thread(target=watch, name="xstilts-lifeline", daemon=True).start()
