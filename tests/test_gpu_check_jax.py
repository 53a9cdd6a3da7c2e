"""benchmarks/gpu_check.py --cpu --backend jax on a host built as docs/cluster.md says for a GPU
host with JAX preinstalled and no internet: an interpreter with only jax, jaxlib, numpy, scipy
(and their own requirements), keras and the rest of the offline kit installed from
`make jax-wheelhouse`'s folder with `pip install --no-index --target DIR` and found through
PYTHONPATH. The check must run (tiny sizes, CPU) without TensorFlow, print what JAX sees, write
its tables and pass its bit-identical rerun check. Its figures are not checked: no timing in
tests. The kit's download needs the package index (as test_jax_setup's index check does); the
test skips, saying so, where it cannot be reached."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a JAX image brings: jax[cuda12] and its requirements (jaxlib's included).
PREINSTALLED = ("jax", "jaxlib", "numpy", "scipy", "ml_dtypes", "opt_einsum")


def jax_only_python(root: Path) -> Path:
    """A fresh venv (no pip, nothing installed) that sees only PREINSTALLED: the top-level
    entries of their installed files, linked into one folder on a .pth line."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")],
                   check=True, timeout=120)
    base = root / "preinstalled"
    base.mkdir()
    site = None
    for name in PREINSTALLED:
        dist = importlib.metadata.distribution(name)
        site = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or []} - {".."}:
            if (site / top).exists() and not (base / top).exists():
                (base / top).symlink_to(site / top)
    assert site is not None
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                              "get_paths()['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    Path(purelib, "preinstalled.pth").write_text(f"{base}\n")
    return python


def kit_on_pythonpath(root: Path) -> Path:
    """The kit as the docs build it: `make jax-wheelhouse` for this Python, then `pip install
    --no-index --no-deps --find-links WHEELHOUSE --target DIR -r requirements-jax-kit.txt`."""
    wheels, target = root / "wheelhouse", root / "deps"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    made = subprocess.run(["make", "-s", "jax-wheelhouse", f"PY={py}", f"WHEELHOUSE={wheels}",
                           f"PYTHON={sys.executable}"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    if made.returncode != 0:
        pytest.skip(f"make jax-wheelhouse could not download (no package index?): "
                    f"{made.stderr.strip().splitlines()[-1:]}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--no-compile", "--find-links", str(wheels), "--target", str(target), "-r",
                    str(REPO / "requirements-jax-kit.txt")], check=True, timeout=300,
                   capture_output=True)
    return target


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or shutil.which("make") is None,
                    reason="needs jax and make")
def test_gpu_check_jax_cpu_mode_runs_from_the_offline_kit(tmp_path):
    python = jax_only_python(tmp_path)
    bare = subprocess.run([str(python), "-c", "import jax, scipy; import keras"],
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert "No module named 'keras'" in bare.stderr  # keras only through PYTHONPATH below
    target = kit_on_pythonpath(tmp_path)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "KERAS", "XLA", "JAX", "VIRTUAL_ENV"))}
    out = tmp_path / "gpu_check_jax.md"
    proc = subprocess.run(
        [str(python), str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--backend", "jax",
         "--no-packed", "--models", "all_cnn_c", "--steps", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={**env, "PYTHONPATH": str(target)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert '"backend": "jax"' in text and '"devices": ["cpu: cpu"]' in text
    tables = [[line.split("|") for line in part.splitlines() if line.startswith("| all_cnn_c")]
              for part in text.split("\n\n")]
    throughput, compiled, determinism = [rows for rows in tables if rows]
    assert [row[4].strip() for row in throughput] == ["float32", "mixed_bfloat16"]
    for row in throughput:
        assert float(row[5]) > 0 and float(row[7]) > 0  # feed, bound
    assert float(throughput[0][6]) > 0 and throughput[1][6].strip() == "—"  # the job's fit
    ((cold, warm, same),) = [(float(r[4]), float(r[5]), r[6].strip()) for r in compiled]
    assert cold > 0 and warm > 0
    assert same == "yes"  # the rerun's weights are bit-identical
    ((on, off),) = [(float(r[4]), float(r[5])) for r in determinism]
    assert on > 0 and off > 0
    assert "gpu: " not in proc.stderr or "ran a test conv" in proc.stderr  # no GPU: no probe
