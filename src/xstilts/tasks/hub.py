"""Paper tasks that only the Hugging Face Hub has, each pointing at its offline stand-in."""

from __future__ import annotations

from xstilts.tasks.base import Family, HubTask, Role, register


def _hub_task(name: str, display: str, family: Family, role: Role, stand_in: str) -> None:
    register(
        type(
            f"Hub{name.title().replace('_', '')}Task",
            (HubTask,),
            {"name": name, "display": display, "family": family, "role": role, "stand_in": stand_in, "metric": ""},
        )
    )


for _name, _display, _stand_in in [
    ("mnli", "MNLI", "vitaminc"),
    ("anli", "ANLI", "vitaminc"),
]:
    _hub_task(_name, _display, Family.CLASSIFICATION, Role.INTERMEDIATE, _stand_in)

for _name, _display, _stand_in in [
    ("xnli", "XNLI", "multiemo"),
    ("pawsx", "PAWS-X", "multiemo"),
]:
    _hub_task(_name, _display, Family.CLASSIFICATION, Role.TARGET, _stand_in)

_hub_task("tatoeba", "Tatoeba", Family.BITEXT, Role.RETRIEVAL, "udhr")
