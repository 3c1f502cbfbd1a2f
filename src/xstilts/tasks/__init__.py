"""The task registry: one module per task, looked up by name and data source.

A name may have an offline task (registry packages) and a hub task (Hugging Face Hub) at once, e.g. ``sst2``:
``data.source`` in params.yaml picks one. With ``source="hub"`` every name that has a hub task gets it and the
other names keep their offline task (they need no network); with ``source="offline"`` a hub-only name fails
with one sentence naming its offline stand-in.
"""

from __future__ import annotations

import importlib
import pkgutil

from xstilts.errors import XstiltsError
from xstilts.tasks.base import SOURCES, Family, HubTask, Role, Task, registered

# Every module in this package declares (and registers) its task(s): one file per task, as in jiant.
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Family", "Role", "Task", "get_task", "task_names"]


def _available(source: str) -> dict[str, type[Task]]:
    if source not in SOURCES:
        raise XstiltsError(f"Unknown data source {source!r}; set data.source to one of {', '.join(SOURCES)}.")
    tasks = registered("offline")
    if source == "hub":
        tasks.update(registered("hub"))
    return tasks


def task_names(role: Role | None = None, source: str = "offline") -> list[str]:
    """Names of the tasks that run with data source ``source``, optionally only those with ``role``."""
    return sorted(name for name, cls in _available(source).items() if role is None or cls.role == role)


def get_task(name: str, role: Role | None = None, source: str = "offline") -> Task:
    """Look a task up by name for data source ``source``; unknown names and hub-only tasks offline fail clearly."""
    cls = _available(source).get(name)
    if cls is None:
        hub_cls = registered("hub").get(name)
        if hub_cls is not None and issubclass(hub_cls, HubTask):
            raise XstiltsError(f"{hub_cls.needs_hub()} (data.source is offline; set data.source: hub to use it).")
        raise XstiltsError(f"Unknown task {name!r}; known {source} tasks: {', '.join(task_names(role, source))}.")
    if role is not None and cls.role != role:
        raise XstiltsError(
            f"Task {name!r} is a {cls.role.value} task, not a {role.value} task; "
            f"{role.value} tasks: {', '.join(task_names(role, source))}."
        )
    return cls()
