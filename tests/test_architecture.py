"""The package's floors, read from its imports (AST): no import cycle between subpackages and
no import against the pipeline order, so the structure cannot drift back (docs/architecture.md).

    base  ->  zoo, data  ->  training  ->  decisions  ->  reporting  ->  workflow (the planner)

A subpackage may import only those on a lower floor (and itself); `zoo` and `data` share a floor
and do not import each other. Imports inside functions count: they run too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The floor of each subpackage; the package root (`cnnablate/__init__.py`: the version) is below
# all of them, `python -m cnnablate` (`__main__`) above all of them.
FLOORS = {"base": 0, "zoo": 1, "data": 1, "training": 2, "decisions": 3, "reporting": 4,
          "workflow": 5, "__main__": 6}


def imports_of(path: Path, package_root: Path) -> set[str]:
    """The absolute dotted names `path` imports anywhere in it (relative imports resolved)."""
    here = list(path.relative_to(package_root.parent).with_suffix("").parts)
    package = here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def subpackage_edges(package_root: Path) -> set[tuple[str, str, str]]:
    """(importing subpackage, imported subpackage, importing file) for every import that
    crosses from one subpackage of `package_root` to another."""
    name = package_root.name
    edges = set()
    for path in sorted(package_root.rglob("*.py")):
        parts = path.relative_to(package_root).with_suffix("").parts
        if parts == ("__init__",):
            continue
        source = parts[0]
        for target in imports_of(path, package_root):
            dotted = target.split(".")
            if dotted[0] != name or len(dotted) < 2 or dotted[1] == "__version__":
                continue
            if dotted[1] != source:
                edges.add((source, dotted[1], path.relative_to(package_root.parent).as_posix()))
    return edges


def backward(edges: set[tuple[str, str, str]]) -> list[str]:
    """The imports against the pipeline order: to a floor that is not strictly lower."""
    return sorted(f"{file}: {src} imports {dst}" for src, dst, file in edges
                  if FLOORS.get(dst, 99) >= FLOORS.get(src, -1))


def cycles(edges: set[tuple[str, str, str]]) -> list[list[str]]:
    """Every simple cycle in the subpackage graph, each once (rotated to start at its least)."""
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges:
        graph.setdefault(src, set()).add(dst)
    found = set()

    def walk(path: list[str]) -> None:
        for nxt in graph.get(path[-1], ()):
            if nxt == path[0]:
                start = path.index(min(path))
                found.add(tuple(path[start:] + path[:start]))
            elif nxt not in path:
                walk([*path, nxt])

    for node in graph:
        walk([node])
    return [list(c) for c in sorted(found)]


EDGES = subpackage_edges(ROOT / "cnnablate")


def test_every_subpackage_has_a_floor():
    packages = {p.name for p in (ROOT / "cnnablate").iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    assert packages | {"__main__"} == set(FLOORS)


def test_no_import_against_the_pipeline_order():
    assert backward(EDGES) == []


def test_no_import_cycle_between_subpackages():
    assert cycles(EDGES) == []


def test_the_ground_floor_imports_no_stage():
    assert sorted({dst for src, dst, _ in EDGES if src == "base"}) == []


@pytest.fixture()
def knotted(tmp_path: Path) -> Path:
    """A package with a back-edge (base -> workflow) closing a cycle, one import inside a
    function and one relative: what the checks above must catch."""
    pkg = tmp_path / "pkg"
    for sub, text in {
        "base": "def f():\n    from pkg.workflow import config\n",
        "workflow": "from ..base import layout\n",
        "data": "import pkg.zoo.models\n",
        "zoo": "",
    }.items():
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
        (pkg / sub / "mod.py").write_text(text)
    (pkg / "__init__.py").write_text("")
    return pkg


def test_the_checks_catch_a_back_edge_a_cycle_and_a_sideways_import(knotted: Path):
    edges = subpackage_edges(knotted)
    assert {(s, d) for s, d, _ in edges} == {("base", "workflow"), ("workflow", "base"),
                                             ("data", "zoo")}
    assert backward(edges) == ["pkg/base/mod.py: base imports workflow",
                               "pkg/data/mod.py: data imports zoo"]
    assert cycles(edges) == [["base", "workflow"]]
