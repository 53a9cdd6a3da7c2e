"""Each rule declares, as inputs, every cnnablate module its script can import, so a library
change reruns exactly the jobs whose code changed (rules/common.smk's *_CODE lists)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnnablate"

STAGES = {
    "PREPARE_CODE": ["prepare_dataset.py"],
    "TRAIN_CODE": ["train.py"],
    "AGGREGATE_CODE": ["aggregate.py"],
    "REPORT_CODE": ["figures.py", "report.py"],
}


def declared() -> dict[str, set[str]]:
    text = (ROOT / "rules/common.smk").read_text()
    lists = {}
    for name, body in re.findall(r"^(\w+_CODE) = library\((.*?)\)$", text, re.S | re.M):
        lists[name] = set(re.findall(r'"([^"]+\.py)"', body))
    return lists


def _module_file(dotted: str) -> Path | None:
    parts = dotted.split(".")[1:]
    if not parts:
        return PACKAGE / "__init__.py"
    rel = Path(*parts)
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """cnnablate modules imported anywhere in `path` (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnablate"):
            found.add(node.module)
            for alias in node.names:  # `from cnnablate import actstats` imports a module
                if _module_file(f"{node.module}.{alias.name}"):
                    found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cnnablate"))
    return found


def closure(script: Path) -> set[str]:
    """Files (relative to cnnablate/) that running `script` can execute."""
    todo, seen = list(imported_modules(script)), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        path = _module_file(module)
        if path:
            todo.extend(imported_modules(path))
    return {
        _module_file(m).relative_to(PACKAGE).as_posix() for m in seen if _module_file(m)
    }


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_rule_declares_every_module_its_script_imports(stage):
    needed = set().union(*(closure(ROOT / "scripts" / s) for s in STAGES[stage]))
    missing = needed - declared()[stage]
    assert not missing, f"{stage} in rules/common.smk lacks {sorted(missing)}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_declared_modules_exist(stage):
    for module in declared()[stage]:
        assert (PACKAGE / module).exists(), module


def test_report_side_does_not_depend_on_training_code():
    assert "train.py" not in declared()["REPORT_CODE"] | declared()["AGGREGATE_CODE"]
    assert not {m for m in declared()["REPORT_CODE"] if m.startswith("models/")}
