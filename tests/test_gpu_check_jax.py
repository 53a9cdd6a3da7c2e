"""benchmarks/gpu_check.py --cpu --backend jax: the JAX GPU check's own code runs (tiny sizes,
CPU) without TensorFlow, prints what JAX sees, writes its tables and passes its bit-identical
rerun check. Its figures are not checked: no timing in tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_gpu_check_jax_cpu_mode_writes_its_tables(tmp_path):
    out = tmp_path / "gpu_check_jax.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--backend", "jax",
         "--no-packed", "--models", "all_cnn_c", "--steps", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert '"backend": "jax"' in text and '"devices": ["cpu: cpu"]' in text
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| all_cnn_c")]
    throughput = [row for row in rows if row[4].strip() in ("float32", "mixed_bfloat16")]
    assert [row[4].strip() for row in throughput] == ["float32", "mixed_bfloat16"]
    for row in throughput:
        assert float(row[5]) > 0 and float(row[6]) > 0  # feed, bound
    (compile_row,) = [row for row in rows if row not in throughput]
    cold, warm = float(compile_row[4]), float(compile_row[5])
    assert cold > 0 and warm > 0
    assert compile_row[6].strip() == "yes"  # the rerun's weights are bit-identical
