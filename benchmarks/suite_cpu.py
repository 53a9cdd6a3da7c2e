"""Where the test suite's time goes: CPU seconds per test, the test's own process and every
process it started and waited for (Snakemake, its jobs, scripts), so a workflow test's training
jobs count where they belong. BENCHMARKS.md §10.

    SUITE_CPU=/tmp/suite-cpu python -m pytest -p benchmarks.suite_cpu -n 2 --dist loadfile \\
        --no-loadscope-reorder -q -p no:cacheprovider
    python benchmarks/suite_cpu.py /tmp/suite-cpu        # per file and the slowest tests

A module-scoped fixture's set-up counts to the first test that uses it. Not counted: what
runs outside the suite's process tree (the SLURM test's jobs, started by slurmd), and children
still running when a test ends. Under pytest-xdist each worker writes its own file."""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import time
from pathlib import Path

ENV_DIR = "SUITE_CPU"
_started: dict[str, tuple[float, float]] = {}
_recording = False


def pytest_configure(config) -> None:
    """Record where SUITE_CPU names a folder, and not in pytest-xdist's controller: it hears
    of every test its workers run, and runs none."""
    global _recording
    controller = not hasattr(config, "workerinput") and bool(
        getattr(config.option, "numprocesses", None))
    _recording = bool(os.environ.get(ENV_DIR)) and not controller


def _cpu_seconds() -> float:
    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_runtest_logstart(nodeid: str, location) -> None:
    if _recording:
        _started[nodeid] = (_cpu_seconds(), time.time())


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    if nodeid not in _started:
        return
    cpu, wall = _started.pop(nodeid)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = Path(os.environ[ENV_DIR])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{worker}.jsonl", "a") as fh:
        fh.write(json.dumps({"test": nodeid, "cpu_s": round(_cpu_seconds() - cpu, 2),
                             "wall_s": round(time.time() - wall, 2)}) + "\n")


def summary(folder: Path, top: int = 15) -> str:
    rows = [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text().splitlines()]
    per_file: collections.Counter = collections.Counter()
    for row in rows:
        per_file[row["test"].split("::")[0]] += row["cpu_s"]
    total = sum(per_file.values())
    lines = [f"{len(rows)} tests, {total:.0f} s of CPU", "", "| file | CPU s | share |",
             "|---|---|---|"]
    lines += [f"| {name} | {cpu:.0f} | {cpu / total:.0%} |"
              for name, cpu in per_file.most_common(top)]
    lines += ["", "| test | CPU s | wall s |", "|---|---|---|"]
    lines += [f"| {row['test']} | {row['cpu_s']:.0f} | {row['wall_s']:.0f} |"
              for row in sorted(rows, key=lambda r: -r["cpu_s"])[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the SUITE_CPU folder of a run")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(summary(args.folder, args.top))


if __name__ == "__main__":
    main()
