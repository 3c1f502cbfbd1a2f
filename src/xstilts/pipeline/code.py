"""Which source files each kind of stage reads, and their fingerprints (the ``code`` stage of ``dvc.yaml``).

A stage kind's code is what its entry module imports, followed through ``import`` statements inside the
package (module level or inside functions); the task registry imports every module of ``xstilts.tasks``
and reads its tag maps, so it stands for that whole folder; ``cli.py`` is every stage's entry. The ``code``
stage writes ``reports/code/<kind>.json`` (a sha256 per file) and every stage depends on its kind's file:
editing a file reruns exactly the stages whose kind reads it (``study/document.py`` retrains nothing), and dvc.lock
holds one entry per stage for its code instead of one per source file. Imports nothing heavy: it runs first.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path

from xstilts.atomic import write_text_atomic

PACKAGE = Path(__file__).resolve().parents[1]  # src/xstilts
ROOT = PACKAGE.parents[1]
ENTRY = ("cli.py", "__main__.py")
KINDS = {  # stage kind -> the modules its commands run
    "data": ("xstilts.pipeline.data_stages",),  # fetch, extract, encoder, prepare, validate
    "training": ("xstilts.pipeline.phases", "xstilts.pipeline.retrieve", "xstilts.pipeline.project_backend"),
    "tuning": ("xstilts.pipeline.tune", "xstilts.pipeline.project_backend"),
    "promote": ("xstilts.pipeline.promote", "xstilts.pipeline.project_backend"),
    "report": ("xstilts.pipeline.report", "xstilts.pipeline.project_backend"),
}
CODE_DIR = "reports/code"


def fingerprint_path(kind: str) -> str:
    return f"{CODE_DIR}/{kind}.json"


@cache
def _module_file(module: str) -> Path | None:
    """The source file of ``module`` inside the package (its ``__init__.py`` for a package), else None."""
    rel = module.split(".")[1:]
    candidates = [PACKAGE.joinpath(*rel, "__init__.py")] + ([PACKAGE.joinpath(*rel).with_suffix(".py")] if rel else [])
    return next((c for c in candidates if c.is_file()), None)


@cache
def _imports(path: Path) -> frozenset[str]:
    """The ``xstilts`` modules that ``path`` imports anywhere (module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("xstilts"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xstilts"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from xstilts.tasks import udhr`
    return frozenset(m for m in found if _module_file(m) is not None)


def source_files(kind: str) -> list[str]:
    """The files (relative to the repository) that stages of ``kind`` read."""
    seen: set[Path] = set()
    entries = {PACKAGE / name for name in ENTRY}
    todo = [f for m in KINDS[kind] if (f := _module_file(m)) is not None]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        parent = path.parent / "__init__.py"  # importing a submodule runs its package's __init__
        todo += [parent] if parent.is_file() and parent != path else []
        if path.suffix == ".py" and path not in entries:  # cli.py dispatches to every kind: not followed
            todo += [f for m in _imports(path) if (f := _module_file(m)) is not None]
        if path == PACKAGE / "tasks" / "__init__.py":  # the registry: every task module and its tag maps
            todo += [p for p in (PACKAGE / "tasks").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    seen.update(entries)
    return sorted(str(p.relative_to(ROOT)) for p in seen)


def fingerprint_text(kind: str) -> str:
    """What ``reports/code/<kind>.json`` holds for the code as it is now."""
    files = {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest() for name in source_files(kind)}
    return json.dumps({"kind": kind, "entry": list(KINDS[kind]), "files": files}, indent=2) + "\n"


def write_fingerprints(root: Path) -> dict[str, Path]:
    """Write ``reports/code/<kind>.json`` under ``root`` for every kind (the same code gives the same bytes)."""
    written = {}
    for kind in KINDS:
        path = root / fingerprint_path(kind)
        write_text_atomic(path, fingerprint_text(kind))
        written[kind] = path
    return written
