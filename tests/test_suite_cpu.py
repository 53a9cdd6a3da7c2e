"""benchmarks/suite_cpu.py: the per-file and per-test table of a suite's CPU seconds, from the
files its pytest plugin writes (BENCHMARKS.md §10)."""

from __future__ import annotations

import json

from benchmarks.suite_cpu import summary


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
