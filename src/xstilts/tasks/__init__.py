"""The task registry: one module per task, looked up by name."""

from __future__ import annotations

import importlib
import pkgutil

from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, HubTask, Role, Task, registered

# Every module in this package declares (and registers) its task(s): one file per task, as in jiant.
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Family", "Role", "Task", "get_task", "task_names"]


def task_names(role: Role | None = None) -> list[str]:
    """Names of the offline tasks, optionally only those with ``role``."""
    return sorted(
        name
        for name, cls in registered().items()
        if not issubclass(cls, HubTask) and (role is None or cls.role == role)
    )


def get_task(name: str, role: Role | None = None) -> Task:
    """Look a task up by name; unknown names and hub-only tasks fail with one clear sentence."""
    cls = registered().get(name)
    if cls is None:
        raise XstiltsError(f"Unknown task {name!r}; known offline tasks: {', '.join(task_names(role))}.")
    if issubclass(cls, HubTask):
        raise XstiltsError(
            f"{cls.display} needs the Hugging Face Hub, which this pipeline cannot load yet; "
            f"the offline stand-in is `{cls.stand_in}`."
        )
    if role is not None and cls.role != role:
        raise XstiltsError(
            f"Task {name!r} is a {cls.role.value} task, not a {role.value} task; "
            f"{role.value} tasks: {', '.join(task_names(role))}."
        )
    return cls()
