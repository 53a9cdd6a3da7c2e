"""benchmarks/suite_cpu.py: the per-file and per-test table of a suite's CPU seconds, from the
files its pytest plugin writes (BENCHMARKS.md §10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.suite_cpu import summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_summary_sums_per_file_and_ranks_the_tests(tmp_path):
    rows = {"gw0": [("tests/test_a.py::one", 30.0, 20.0), ("tests/test_b.py::two", 10.0, 5.0)],
            "gw1": [("tests/test_a.py::three", 20.0, 40.0)]}
    for worker, tests in rows.items():
        (tmp_path / f"{worker}.jsonl").write_text("".join(
            json.dumps({"test": t, "cpu_s": c, "wall_s": w}) + "\n" for t, c, w in tests))
    text = summary(tmp_path, top=2)
    # by hand: 60 s in all; test_a.py 30 + 20 = 50 (83 %), test_b.py 10 (17 %)
    assert text.splitlines()[0] == "3 tests, 60 s of CPU"
    assert "| tests/test_a.py | 50 | 83% |" in text and "| tests/test_b.py | 10 | 17% |" in text
    ranked = [line for line in text.splitlines() if "::" in line]
    assert ranked == ["| tests/test_a.py::one | 30 | 20 |", "| tests/test_a.py::three | 20 | 40 |"]


def test_the_plugin_writes_one_row_per_test_also_under_xdist(tmp_path):
    """Under pytest-xdist the controller hears of every test too: only the workers write."""
    (tmp_path / "test_two.py").write_text("def test_a():\n    pass\n\n\ndef test_b():\n"
                                          "    sum(range(10**6))\n")
    out = tmp_path / "cpu"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "benchmarks.suite_cpu", "-n", "2", "-q",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path / "test_two.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "SUITE_CPU": str(out), "PYTHONPATH": ROOT},
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    rows = [json.loads(line) for path in out.glob("*.jsonl")
            for line in path.read_text().splitlines()]
    assert sorted(row["test"].split("::")[1] for row in rows) == ["test_a", "test_b"]
    assert not (out / "main.jsonl").exists()
