"""No import circles in ``src/xstilts``: every import counts, at module level, inside functions or under
``TYPE_CHECKING``, since each of them is a lower module reaching up into one that imports it.

An edge goes to the module an import names: ``import a.b`` and ``from a.b import name`` to ``a.b``, ``from a
import b`` to the submodule ``a.b`` when there is one. A submodule's own package, which Python runs before it,
is no edge unless the submodule imports a name from it (``from xstilts.families import spec`` inside
``xstilts.families.base`` is one: the package's ``__init__`` imports the submodule back).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "xstilts"


def modules(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name, for its ``__init__.py``)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that the source at ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import; the package imports absolutely"
            found.update(sub if (sub := f"{node.module}.{a.name}") in known else node.module for a in node.names)
    return found & set(known)


def cycles(package: Path) -> list[list[str]]:
    """One cycle per back edge of a depth-first walk (none when there are none), each as a closed path."""
    known = modules(package)
    graph = {name: sorted(imports(path, known) - {name}) for name, path in sorted(known.items())}
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        for target in graph[name]:
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                walk(target, [*path, target])
        done.add(name)

    for name in graph:
        if name not in done:
            walk(name, [name])
    return found


def test_the_package_has_no_import_cycle():
    found = cycles(PACKAGE)
    assert len(modules(PACKAGE)) > 100  # the walk saw the package
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / name).write_text(text)
    return root / "pkg"


def test_a_cycle_through_a_function_and_type_checking_is_found(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "def f():\n    from pkg.b import g\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n",
        "c.py": "import pkg.a\n",
    })  # fmt: skip
    assert cycles(pkg) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_a_submodule_importing_a_sibling_through_its_package_is_no_cycle(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "from pkg import high, low\n\nVERSION = 1\n",
        "low.py": "X = 1\n",
        "high.py": "from pkg import low\n",
    })  # fmt: skip
    assert cycles(pkg) == []
    (pkg / "low.py").write_text("def f():\n    from pkg import VERSION\n")  # a name of the package: an edge
    assert cycles(pkg) == [["pkg", "pkg.high", "pkg.low", "pkg"]]
