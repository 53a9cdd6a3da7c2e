"""Code fingerprints: which source a job executes that can change its results, by content.

Each Snakemake job gets its fingerprint as a `param` (rules/*.smk), so Snakemake reruns a job
exactly when that code changed and `snakemake -n` names the module whose digest differs. The
fingerprint covers the job's entry script and every `cnnablate` module reachable from it through
`import` statements (also those inside functions), plus the module its registry entry names
(`cnnablate.base.catalog`: a run of model X adds `models/X.py` and what that imports, never the
other
models). Each module counts by its *normalised* source: the `ast` parse tree without docstrings,
so comments, docstrings, formatting and `touch` change nothing.

Left out (`NOT_RESULTS`): modules that cannot change a result: logging, provenance, GPU claiming,
the folder layout, config resolution (its result, the resolved run, is a param of its own) and
the registries, whose result-relevant parts are hashed as data instead (an activation's default
parameters, a figure's function or title, a source's loader).

Imports are followed as written, absolute (`import cnnablate.x`, `from cnnablate.x import y`) or
relative (`from . import x`, `from .x import y`, resolved from the importing file's package).

Pure Python (ast, hashlib): the Snakefile calls it while planning. Parsing is most of a
planning's own time (~0.3 s of every `snakemake` command for ~60 files), so each file's analysis
is kept in a cache keyed by its content (`cache_dir()`, BENCHMARKS.md §5d): a command re-parses
only what changed since any earlier one, in any checkout of the workflow.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cnnablate.base import catalog
from cnnablate.base.atomic import write_json_atomic

PACKAGE = "cnnablate"
ROOT = Path(__file__).resolve().parents[2]

# Executed by jobs but unable to change what they compute (see the module docstring).
NOT_RESULTS = frozenset({
    "cnnablate.workflow.smk",
    "cnnablate.training.provenance",
    "cnnablate.training.monitor",  # the heartbeat that `status` reads
    "cnnablate.training.gpu",
    "cnnablate.workflow.config",
    "cnnablate.base.ids",  # names a run and hashes its config (provenance, not a result)
    "cnnablate.base.catalog",
    "cnnablate.workflow.fingerprint",
    "cnnablate.base.layout",  # names paths: a moved file is a missing one to Snakemake
})

# Entry script of each stage (the `script:` of its rule).
SCRIPTS = {
    "prepare": "scripts/prepare_dataset.py",
    "prepare_synthetic": "scripts/prepare_synthetic.py",
    "train": "scripts/train.py",
    "share": "scripts/share_run.py",
    "aggregate": "scripts/aggregate.py",
    "paper_table": "scripts/paper_table.py",
    "decide": "scripts/decide_round.py",
    "select_tuning": "scripts/select_tuning.py",
    "figures": "scripts/figures.py",
    "report": "scripts/report.py",
}


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The source file of `cnnablate...` module `module`, or None when it is not one."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    rel = Path(*parts)
    for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """`cnnablate` modules `path` imports anywhere (also inside functions), with the packages
    they live in (importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py`)."""
    return set(_analysed(str(path), path.stat().st_mtime_ns, str(root))[0])


def source_digest(path: Path, root: Path = ROOT) -> str:
    """SHA-256 of `path`'s code: its parse tree without docstrings (so no comments, no layout,
    no line numbers)."""
    return _analysed(str(path), Path(path).stat().st_mtime_ns, str(root))[1]


@functools.lru_cache(maxsize=512)
def _analysed(path: str, mtime_ns: int, root: str) -> tuple[frozenset[str], str]:
    """(imported cnnablate modules, digest) of one version of a file: parsed and walked once,
    in any process (`_cached`)."""
    source = Path(path).read_bytes()
    names, digest = _cached(source, Path(path), Path(root))
    # which names are modules is the tree's, not the file's: looked up each time
    found = {prefix for name in names for prefix in _prefixes(name) if module_file(prefix, root)}
    return frozenset(found), digest


def cache_dir() -> Path:
    """Where analysed files are kept: `$XDG_CACHE_HOME/cnnablate/fingerprints` (else
    `~/.cache/...`). Safe to delete at any time; it only saves parsing."""
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "cnnablate" / "fingerprints"


# What an entry depends on besides the file's bytes: this analyser's own code (an edit to it
# invalidates every entry) and the Python version (whose `ast.dump` the digest is of).
_ANALYSER = hashlib.sha256(Path(__file__).read_bytes() + sys.version.encode()).hexdigest()


def _cached(source: bytes, path: Path, root: Path) -> tuple[list[str], str]:
    """`_analyse`'s result for this content at this place in the package, from the cache where
    an earlier command left it. An unreadable or unwritable cache only costs the parse."""
    in_tree = _in_tree(path, root)  # outside it, relative imports resolve to nothing
    where = in_tree.as_posix() if in_tree else str(path.resolve())
    key = hashlib.sha256(f"{_ANALYSER}\0{where}\0".encode() + source).hexdigest()
    entry = cache_dir() / key[:2] / f"{key}.json"
    try:
        saved = json.loads(entry.read_text())
        return list(saved["names"]), str(saved["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    names, digest = _analyse(source, path, root)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(entry, {"names": names, "digest": digest})
    except OSError:
        pass
    return names, digest


def _analyse(source: bytes, path: Path, root: Path) -> tuple[list[str], str]:
    """(dotted names the file's imports may name, digest): every name is a candidate module."""
    tree = ast.parse(source, filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(_import_names(node, path, root))
        elif isinstance(node, _DOCUMENTED):
            _drop_docstring(node)
    _drop_docstring(tree)
    return sorted(names), hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def _prefixes(name: str) -> list[str]:
    """`a.b.c` -> a, a.b, a.b.c: importing a module runs its packages' `__init__` too."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


_DOCUMENTED = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _drop_docstring(node: ast.AST) -> None:
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        node.body = body[1:] or [ast.Pass()]


def _import_names(node: ast.Import | ast.ImportFrom, path: Path, root: Path) -> list[str]:
    names: list[str] = []
    if isinstance(node, ast.ImportFrom):
        base = node.module if node.level == 0 else _relative_base(node, path, root)
        if base:
            names.append(base)
            # `from cnnablate.training import actstats` (or `from . import actstats`) imports a
            # module, not a name.
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    else:
        names.extend(alias.name for alias in node.names)
    return [name for name in names if name.partition(".")[0] == PACKAGE]


def _relative_base(node: ast.ImportFrom, path: Path, root: Path) -> str | None:
    """The absolute module a relative `from .x import y` (level dots) names, from the
    importing file's package; None outside the package or above its top."""
    in_tree = _in_tree(path, root)
    package = list(in_tree.parts[:-1]) if in_tree else []
    if not package or package[0] != PACKAGE or node.level > len(package):
        return None
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _in_tree(path: Path, root: Path) -> Path | None:
    """`path` relative to the workflow's `root`; None when it lies outside."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return None


def closure(paths: Iterable[Path], root: Path = ROOT) -> set[Path]:
    """`paths` and every result-relevant `cnnablate` source file they import, transitively.

    Modules in NOT_RESULTS are neither included nor followed."""
    todo = list(paths)
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path, root):
            if module not in NOT_RESULTS:
                todo.append(module_file(module, root))
    return seen


def fingerprint(paths: Iterable[Path], data: Any = None, root: Path = ROOT) -> str:
    """The code fingerprint of a job whose entry points are `paths`: `<combined digest>` then
    `file:digest` per file of their closure (12 and 8 hex digits), so a rerun's reason names the
    file that changed. `data` (JSON-able) is registry data the job's results depend on."""
    files = sorted(closure(paths, root), key=lambda p: p.relative_to(root).as_posix())
    parts = [f"{p.relative_to(root).as_posix()}:{source_digest(p, root)[:8]}" for p in files]
    if data is not None:
        text = json.dumps(data, sort_keys=True, default=str)
        parts.append(f"registry:{hashlib.sha256(text.encode()).hexdigest()[:8]}")
    combined = hashlib.sha256(" ".join(parts).encode()).hexdigest()[:12]
    return " ".join([combined, *parts])


def _function_module(dotted: str) -> str:
    return dotted.partition(":")[0]


class Fingerprints:
    """The code fingerprint of each job of the workflow rooted at `root`, computed once each."""

    def __init__(self, root: str | Path = ROOT) -> None:
        self.root = Path(root).resolve()
        self._memo: dict[tuple, str] = {}

    def _memoised(self, key: tuple, modules: Iterable[str], data: Any = None) -> str:
        if key not in self._memo:
            paths = [self.root / SCRIPTS[key[0]]]
            paths += [module_file(m, self.root) for m in modules]
            self._memo[key] = fingerprint(paths, data, self.root)
        return self._memo[key]

    def train(self, run: dict) -> str:
        """A training run's: the training code, its model's module, its activation's defaults."""
        model = run["model"]["name"]
        activation = catalog.activation_type(run["activation"])
        return self._memoised(
            ("train", model, activation),
            [f"{PACKAGE}.zoo.models.{catalog.MODELS[model].module}"],
            {"activation": catalog.ACTIVATIONS.get(activation)},
        )

    def prepare(self, source: str) -> str:
        """A dataset preparation's: the preparation code and its source's loader module."""
        entry = catalog.DATASET_SOURCES[source]
        return self._memoised(
            ("prepare", source),
            [f"{PACKAGE}.data.{entry.module}"],
            {"loader": entry.loader, "args": list(entry.args)},
        )

    def prepare_synthetic(self, source: str) -> str:
        """Smoke mode's SYNTHETIC stand-in's: the generators and the source's loader module."""
        entry = catalog.DATASET_SOURCES[source]
        return self._memoised(
            ("prepare_synthetic", source),
            [f"{PACKAGE}.data.{entry.module}"],
            {"loader": entry.loader, "args": list(entry.args)},
        )

    def share(self) -> str:
        """Copying a run that another study trains (cnnablate.workflow.shared)."""
        return self._memoised(("share",), [])

    def aggregate(self) -> str:
        return self._memoised(("aggregate",), [])

    def paper_table(self) -> str:
        """A study's paper tables' (scripts/paper_table.py and what it imports)."""
        return self._memoised(("paper_table",), [])

    def decide(self) -> str:
        """An adaptive-seeds round decision's (scripts/decide_round.py and what it imports)."""
        return self._memoised(("decide",), [])

    def select_tuning(self) -> str:
        """A tuned study's selection step's (scripts/select_tuning.py and what it imports)."""
        return self._memoised(("select_tuning",), [])

    def figures(self) -> str:
        """The figures job's: its code and every registered figure's function."""
        functions = {name: fig.function for name, fig in catalog.FIGURES.items()}
        modules = sorted({_function_module(f) for f in functions.values()})
        return self._memoised(("figures",), modules, functions)

    def tuning_figures(self) -> str:
        """A tuned study's own figures job's: its code and every tuning figure's function."""
        functions = {name: fig.function for name, fig in catalog.TUNING_FIGURES.items()}
        modules = sorted({_function_module(f) for f in functions.values()})
        return self._memoised(("figures", "tuning"), modules, functions)

    def report(self) -> str:
        """The report job's: its code, the figure titles it prints and the setting each figure
        is about (which studies show it) (catalog data, which the catalog's exclusion from the
        closure would otherwise leave out)."""
        titles = {name: fig.title for name, fig in catalog.FIGURES.items()}
        about = {name: fig.about for name, fig in catalog.FIGURES.items() if fig.about}
        return self._memoised(("report",), [], {"figure_titles": titles, "figure_about": about})
