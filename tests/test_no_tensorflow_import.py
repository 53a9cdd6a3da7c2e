"""The zoo must stay backend-agnostic (keras.layers/ops/random only) and the catalog Keras-free.

Two checks: the source text of every zoo module, and a subprocess that builds and runs models on
Keras's ``numpy`` backend and asserts TensorFlow was never imported. That backend imports ``jax``
(for fft), so the subprocess check skips where jax is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cnnablate"
ZOO_FILES = [
    *sorted((PACKAGE / "zoo" / "models").glob("*.py")),
    PACKAGE / "zoo" / "activations.py",
    PACKAGE / "zoo" / "initializers.py",
    PACKAGE / "training" / "actstats.py",
    PACKAGE / "base" / "catalog.py",
]
TF_IMPORT = re.compile(r"^\s*(import\s+tensorflow|from\s+tensorflow)\b", re.MULTILINE)


@pytest.mark.parametrize("path", ZOO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_source_does_not_import_tensorflow(path: Path) -> None:
    assert path.exists()
    assert not TF_IMPORT.search(path.read_text()), f"{path} imports tensorflow"


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), **env},
    )


# Planning (the Snakefile) and the table/figure/report steps must never start TensorFlow:
# it costs seconds per `snakemake -n` and per job.
# The ground floor (cnnablate/base) is imported by every stage: all of it.
BASE_MODULES = tuple(f"base.{p.stem}" for p in sorted((PACKAGE / "base").glob("*.py"))
                     if p.stem != "__init__")
NO_TF_MODULES = (
    *BASE_MODULES, "workflow.config", "workflow.resources", "training.gpu",
    "reporting.aggregate", "decisions.stats", "decisions.decide", "decisions.grid",
    "decisions.tuning", "decisions.selection", "reporting.figures", "reporting.report",
    "reporting.paper", "reporting.tuning", "reporting.tuning_figure", "reporting.mlflow_export",
    "workflow.smk",
    "training.provenance", "data.archive", "data.prepare", "workflow.fingerprint", "zoo.models",
    "workflow.status", "training.monitor", "reporting.interactive", "__main__",
    "workflow.shared",
)


@pytest.mark.parametrize("module", NO_TF_MODULES)
def test_planning_and_report_modules_do_not_import_keras(module: str) -> None:
    result = run_python(
        f"import sys, cnnablate.{module}\n"
        "bad = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _snakefile_imports() -> list[str]:
    """Every cnnablate module the Snakefile and rules/*.smk import while planning."""
    text = "\n".join(p.read_text() for p in [ROOT / "Snakefile", *sorted(ROOT.glob("rules/*.smk"))])
    found = set()
    for package, names in re.findall(r"^\s*from cnnablate(\.[\w.]+)? import \(?([\w ,]+)", text,
                                     re.M):
        found.add(package.lstrip(".") if package else "")
        found.update(f"{package.lstrip('.')}.{n.split()[0]}".lstrip(".")
                     for n in names.split(",") if n.strip())
    return sorted(m for m in found if m and (PACKAGE / (m.replace(".", "/") + ".py")).exists())


PLANNING_MODULES = tuple(sorted({*BASE_MODULES, *_snakefile_imports(), "workflow.resources",
                                 "zoo.models"}))
# Modules that only a real import of each package loads (a lazy module, cnnablate/base/lazy.py,
# stands in for its package without importing anything until first use).
HEAVY = ("matplotlib", "pandas.core.frame", "scipy.stats._stats_py", "scipy.special._ufuncs",
         "scipy.integrate._quadpack", "keras")


def test_the_planning_modules_are_what_the_snakefile_imports():
    assert {"decisions.sentences", "decisions.stages", "workflow.plan", "workflow.config",
            "workflow.freshness"} <= set(PLANNING_MODULES)


@pytest.mark.parametrize("module", PLANNING_MODULES)
def test_planning_modules_do_not_import_matplotlib_or_pandas(module: str) -> None:
    """What the Snakefile imports while planning stays light (benchmarks/planning.py): the
    decision rules it describes a study with compute with scipy and pandas only later."""
    result = run_python(
        f"import sys, cnnablate.{module}\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_lazily_imported_module_loads_on_first_use():
    """Nothing stands in for the module in sys.modules (a half-made module there was read
    without its attributes by Snakemake's other threads), and first uses from several threads
    at once each get the real module."""
    result = run_python(
        "import sys, threading\n"
        "from cnnablate.decisions import decide, stages\n"
        "assert not {'scipy.stats', 'pandas'} & sys.modules.keys()\n"
        "got = []\n"
        "def use():\n"
        "    got.append((stages.pd.DataFrame.__name__, float(decide.sps.t.ppf(0.975, 2))))\n"
        "threads = [threading.Thread(target=use) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert len(set(got)) == 1 and len(got) == 8, got\n"
        "print(repr(got[0][1]))\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Student's t with 2 degrees of freedom has a closed-form quantile: (2p - 1) / sqrt(2p(1 - p))
    p = 0.975
    assert float(result.stdout) == pytest.approx((2 * p - 1) / (2 * p * (1 - p)) ** 0.5)


BUILD_AND_RUN = """
import sys
import numpy as np
import cnnablate.training.actstats, cnnablate.zoo.activations, cnnablate.zoo.initializers
from cnnablate.zoo.models import build_model
for name, shape, width in [("mobilenet_v2", (32, 32, 3), 0.25), ("all_cnn_c", (16, 16, 3), 0.1),
                           ("nin", (16, 16, 3), 0.1)]:
    for act in ("prelu", {"type": "rrelu", "seed": 1}, "celu"):
        model = build_model(name, shape, 10, width=width, activation=act, norm="after")
        out = np.asarray(model(np.zeros((2, *shape), "float32")))
        assert out.shape == (2, 10), out.shape
cnnablate.training.actstats.activation_statistics(model, np.zeros((2, *shape), "float32"))
assert "tensorflow" not in sys.modules, "tensorflow was imported"
print("ok")
"""


# Only the numpy backend: the jax backend works too but its op-by-op first calls take ~45 s here.
@pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                    reason="Keras's numpy backend imports jax (for fft), which is not installed")
def test_models_build_without_tensorflow() -> None:
    result = run_python(BUILD_AND_RUN, KERAS_BACKEND="numpy")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
