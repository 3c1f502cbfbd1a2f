"""The pipeline as DVC sees it: its stages, what each needs from the others, what is out of date, in waves.

Read through DVC's own index (``Repo.index.graph``), never by parsing ``dvc.yaml`` a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

# The entry points whose runs train or embed: they go to the cluster. Every other stage (fetch, extract,
# encoder, prepare, validate, promote, report, code) is cheap and runs on the coordinator.
REMOTE_ENTRIES = frozenset({"tune", "intermediate", "target", "retrieve"})


@dataclass(frozen=True)
class Stage:
    """One stage of ``dvc.yaml``: where it runs, the stages it needs, and the files it needs that DVC caches not."""

    name: str
    cmd: str
    remote: bool
    needs: frozenset[str]  # upstream stages
    uncached_deps: tuple[str, ...]  # dependencies that are uncached outs upstream (they travel with the task)
    pushed_outs: bool = field(default=False)  # has cached outs (what a worker downstream pulls from the remote)


def entry_of(cmd: str) -> str | None:
    """The MLproject entry point a ``python -m xstilts run <entry>`` stage calls."""
    words = cmd.split()
    return words[4] if words[:4] == ["python", "-m", "xstilts", "run"] and len(words) > 4 else None


def load(root: Path) -> dict[str, Stage]:
    """Every stage of ``root/dvc.yaml``, by name."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # an edge points from a stage to a stage it depends on
        uncached = {out.def_path for st in graph for out in st.outs if not out.use_cache}
        stages = {}
        for st in graph:
            if not getattr(st, "name", None):
                continue  # a .dvc file: data added by hand, nothing to run
            cmd = st.cmd if isinstance(st.cmd, str) else " && ".join(st.cmd)
            stages[st.name] = Stage(
                name=st.name,
                cmd=cmd,
                remote=entry_of(cmd) in REMOTE_ENTRIES,
                needs=frozenset(up.name for up in graph.successors(st) if getattr(up, "name", None)),
                uncached_deps=tuple(d.def_path for d in st.deps if d.def_path in uncached),
                pushed_outs=any(out.use_cache for out in st.outs),
            )
    return stages


def out_of_date(root: Path, stages: dict[str, Stage]) -> set[str]:
    """The stages ``dvc repro`` would run: those ``dvc status`` lists, and everything downstream of them."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        changed = {name.split(":")[-1] for name in repo.status()}
    changed &= set(stages)
    graph = as_graph(stages)
    return changed | {down for name in changed for down in nx.ancestors(graph, name)}


def as_graph(stages: dict[str, Stage]) -> nx.DiGraph:
    """Edges from a stage to what it needs (DVC's direction)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(stages)
    graph.add_edges_from((name, up) for name, st in stages.items() for up in st.needs)
    return graph


def waves(stages: dict[str, Stage], pending: set[str]) -> list[list[str]]:
    """The pending stages in waves: each wave needs only earlier waves (and stages that are done)."""
    sub = as_graph(stages).subgraph(pending).reverse()  # edges from a stage to what needs it
    return [sorted(wave) for wave in nx.topological_generations(sub)]
