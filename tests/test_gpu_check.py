"""benchmarks/gpu_check.py --cpu: the GPU check's own code runs (tiny sizes, CPU), prints what
TensorFlow sees and writes its Markdown table. Its figures are not checked: no timing in tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_mode_writes_its_table(tmp_path):
    out = tmp_path / "gpu_check.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--no-studies",
         "--no-packed", "--models", "all_cnn_c", "--steps", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert '"built_with_cuda"' in text and "CUDA_VISIBLE_DEVICES=" in text
    rows = [line for line in text.splitlines() if line.startswith("| all_cnn_c")]
    assert [row.split("|")[4].strip() for row in rows] == ["float32", "mixed_bfloat16"]
    for row in rows:
        pipeline, device, bound = (float(row.split("|")[i]) for i in (5, 6, 7))
        assert pipeline > 0 and device > 0 and bound > 0
