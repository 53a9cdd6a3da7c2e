"""`snakemake -n` on the default config in two checkouts, interleaved: wall and CPU time.

    git archive REV_A | tar -x -C /tmp/a; git archive REV_B | tar -x -C /tmp/b
    python benchmarks/planning_compare.py /tmp/a /tmp/b [--repeats 5] [--cold-cache]

`--cold-cache`: every command with an empty cache of its own (XDG_CACHE_HOME, where the code
fingerprints keep each file's analysis: the first command after every file changed); by
default the user's cache, warm after the first repeat.

CPU time (user + system of the snakemake process) is reported beside wall time because it
hardly depends on what else the machine runs; a shared machine's wall times spread widely.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def timed(tree: Path, cold_cache: bool = False) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as empty:
        env = {**os.environ, **({"XDG_CACHE_HOME": empty} if cold_cache else {})}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([SNAKEMAKE, "-n"], cwd=tree, capture_output=True, text=True,
                              env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"snakemake -n failed in {tree}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", type=Path, nargs="+")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold-cache", action="store_true",
                        help="each command with an empty XDG_CACHE_HOME of its own")
    args = parser.parse_args()
    times: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in args.trees}
    for _ in range(args.repeats):
        for tree in args.trees:
            times[tree].append(timed(tree, args.cold_cache))
    for tree, samples in times.items():
        wall, cpu = zip(*samples)
        print(f"{tree}: wall median {statistics.median(wall):.2f} s (min {min(wall):.2f}), "
              f"CPU median {statistics.median(cpu):.2f} s (min {min(cpu):.2f})")


if __name__ == "__main__":
    main()
