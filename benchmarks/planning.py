"""Snakemake planning: a dry run over every study file, and a no-op run when all is up to date.

    python benchmarks/planning.py [--repeats 5] [--noop-workdir DIR]

1. `snakemake -n` over all of studies/*.yaml at once, two ways: one combined config (every
   file's datasets renamed apart as FILE.DATASET so no two files share a name, their studies
   side by side), and the files passed together as `--configfile a.yaml b.yaml ...` (Snakemake
   deep-merges them; the planned training jobs are counted to check that nothing was
   replaced). Target: < 10 s.
2. A no-op `snakemake --cores 4 report/index.html` in a copy where everything is up to date:
   by default the default study's 26 runs shrunk to 1 epoch on 128 images (the same jobs and
   files, minutes instead of ~8), run once; or an existing finished copy (`--noop-workdir`,
   e.g. one kept by `end_to_end.py --keep`). Target: < 5 s.

Each time is the wall time of the whole snakemake command (interpreter start included), median of
`--repeats`, output to a file (a terminal would add its drawing time).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import (  # noqa: E402
    ROOT,
    SLURM_PROBE_NOTE,
    child_env,
    median,
    print_machine,
    slurm_plugin_installed,
    table,
)
from tests.workflow import copy_workflow  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def combined_config(files: list[Path]) -> dict:
    combined: dict = {"datasets": {}, "studies": {}}
    for path in files:
        config = yaml.safe_load(path.read_text())
        rename = {name: f"{path.stem}.{name}" for name in config.get("datasets", {})}
        for name, spec in config.get("datasets", {}).items():
            combined["datasets"][rename[name]] = spec
        for name, study in config.get("studies", {}).items():
            if name in combined["studies"]:
                raise SystemExit(f"study {name!r} is defined in two study files")
            combined["studies"][name] = {**study, "dataset": rename[study["dataset"]]}
        for key, value in config.items():
            if key not in ("datasets", "studies"):
                combined.setdefault(key, value)
    return combined


def timed_snakemake(work: Path, args: list[str], log: Path,
                    real_scontrol: bool = False) -> tuple[float, str]:
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run([SNAKEMAKE, *args], cwd=work, stdout=fh, stderr=subprocess.STDOUT,
                              env=child_env(real_scontrol=real_scontrol))
    seconds = time.perf_counter() - t0
    text = log.read_text()
    if proc.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed in {work}:\n{text[-4000:]}")
    return seconds, text


def job_counts(text: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    counts = {}
    for line in text.split("Job stats:", 1)[-1].splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if m:
            counts.setdefault(m.group(1), int(m.group(2)))
    return counts


def tiny_default_study(work: Path) -> None:
    """config.yaml's 26 runs at 1 epoch on 128 training / 64 evaluation images."""
    config = yaml.safe_load((work / "config.yaml").read_text())
    for study in config["studies"].values():
        study["train"].update(epochs=1, max_train_images=128, max_eval_images=64)
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--noop-workdir", type=Path,
                        help="a copy of the workflow whose report is up to date")
    parser.add_argument("--skip-noop", action="store_true")
    parser.add_argument("--real-scontrol", action="store_true",
                        help="no scontrol shim anywhere (see below)")
    args = parser.parse_args()

    print_machine("Snakemake planning")
    if slurm_plugin_installed():
        print(f"note: {SLURM_PROBE_NOTE}\n")
    files = sorted((ROOT / "studies").glob("*.yaml"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnablate-plan-") as tmp:
        work = copy_workflow(Path(tmp) / "wf")
        all_studies = work / "all_studies.yaml"
        all_studies.write_text(yaml.safe_dump(combined_config(files), sort_keys=False))
        combined = ["-n", "--configfile", str(all_studies)]
        variants = {
            "combined config": (combined, False),
            "--configfile each file": (["-n", "--configfile", *map(str, files)], False),
            "combined config, real scontrol": (combined, True),
        }
        if args.real_scontrol or not slurm_plugin_installed():
            variants = {k: (a, True) for k, (a, _) in variants.items() if "real" not in k}
        counts = {}
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):
            for name, (sm_args, real) in variants.items():  # interleaved
                seconds, text = timed_snakemake(work, sm_args, Path(tmp) / "plan.log", real)
                times[name].append(seconds)
                counts[name] = job_counts(text)
        for name in variants:
            c = counts[name]
            rows.append([f"snakemake -n, {len(files)} study files ({name})", median(times[name]),
                         min(times[name]), max(times[name]),
                         f"{c.get('train', 0)} train / {c.get('total', 0)} jobs"])
        print(f"study files: {', '.join(f.name for f in files)}")

        if not args.skip_noop:
            if args.noop_workdir:
                noop = args.noop_workdir
            else:
                noop = copy_workflow(Path(tmp) / "noop")
                tiny_default_study(noop)
                seconds, _ = timed_snakemake(noop, ["--cores", "2", "report/index.html"],
                                             Path(tmp) / "first.log", args.real_scontrol)
                print(f"first run of the shrunk default study: {seconds:.0f} s")
            noop_times = []
            for _ in range(args.repeats):
                seconds, text = timed_snakemake(noop, ["--cores", "4", "report/index.html"],
                                                Path(tmp) / "noop.log", args.real_scontrol)
                if "Nothing to be done" not in text:
                    sys.exit(f"the no-op run had work to do:\n{text[-3000:]}")
                noop_times.append(seconds)
            runs = len(list((noop / "results" / "runs").rglob("metrics.json")))
            rows.append(["no-op snakemake --cores 4 report/index.html", median(noop_times),
                         min(noop_times), max(noop_times), f"{runs} runs up to date"])
    print(f"\nmedian of {args.repeats}, seconds")
    print(table(["what", "median s", "min s", "max s", "plan"], rows))
    print("\ntargets: dry run < 10 s, no-op < 5 s")


if __name__ == "__main__":
    main()
