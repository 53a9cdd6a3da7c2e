"""Modules imported on first use, for what every `snakemake` command loads while it plans.

Planning imports the decision rules (a study's settings are checked and described before any
job), and they compute with scipy and read tables with pandas only when they decide or
aggregate. Imported eagerly, scipy.stats and scipy.integrate cost about 1.2 s of CPU of every
`snakemake -n`, `--lint`, `status` and run's start on a 2-core CPU (BENCHMARKS.md §5c), which
none of them uses; `lazy_module` defers each to its first attribute access.

Not `importlib.util.LazyLoader`: it puts a half-made module in `sys.modules`, and Snakemake
reads pandas from several threads (its job bookkeeping), where a second thread saw the module
without its attributes (`module 'pandas' has no attribute 'DataFrame'`). The proxy below leaves
`sys.modules` alone and imports through the ordinary, locked import.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    """Stands for a module until an attribute is read, then imports it (once) and forwards."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{'' if self._module is None else ' (imported)'}>"


def lazy_module(name: str) -> Any:
    """`name`, imported on its first attribute access (`lazy_module("scipy.stats").t.ppf`)."""
    return _LazyModule(name)
