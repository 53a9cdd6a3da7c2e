"""Modules imported on first use, for what every `snakemake` command loads while it plans.

Planning imports the decision rules (a study's settings are checked and described before any
job), and they compute with scipy and read tables with pandas only when they decide or
aggregate. Imported eagerly, scipy.stats, scipy.integrate and pandas cost about 1.4 s of every
`snakemake -n`, `--lint`, `status` and run's start on a 2-core CPU (BENCHMARKS.md §5), which
none of them uses; `lazy_module` defers each to its first attribute access (the standard
library's `importlib.util.LazyLoader`), so a job that decides still imports it then.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """`name` as a module object that imports itself on its first attribute access; the
    module itself where it is already imported (or cannot be found lazily)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return importlib.import_module(name)  # raises the usual ModuleNotFoundError
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
