"""End to end: the default study through the pipeline, against the same runs in one notebook.

    python benchmarks/end_to_end.py --quick                        # smoke check, ~2 minutes
    python benchmarks/end_to_end.py --studies activations --repeats 2 \\
        --arms c2t1,c2t2,c4t1,c4t2,notebook                         # ratio + thread tuning
    python benchmarks/end_to_end.py --studies all --repeats 1 --arms c4t1   # headline wall time

Each arm runs from nothing (a fresh copy of the workflow, no results) to `report/index.html`:
`cCtT` is `snakemake --cores C report/index.html` with `resources: {train_threads: T}` in the
copy's config.yaml (dataset preparation, every training job, tables, figures, report);
`notebook` is benchmarks/notebook.py on the same config (same runs, models, data, epochs, batch
size and optimizer, one after another in one process). Wall time covers the whole command,
interpreter start included. Repeats interleave the arms (A B A B ...) so drift in machine load
hits all of them; ratios are taken within a repeat (notebook seconds / arm seconds: above 1 the
pipeline is faster) and their median is reported. The machine's load is recorded before every
run. `--wait-quiet` first waits (up to 20 minutes) until less than 15% of the CPU is busy.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import re
import resource
import shutil
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
    load1,
    median,
    print_machine,
    slurm_plugin_installed,
    table,
    wait_for_quiet,
)
from cnnablate.workflow.config import resolve_runs  # noqa: E402
from tests.workflow import COPY_IGNORE, copy_workflow  # noqa: E402

ARM = re.compile(r"^(base-)?c(\d+)t(\d+)$")
QUICK = {"studies": ["activations"], "variants": 2, "seeds": [0], "epochs": 1}


def study_config(studies: list[str], variants: int | None, seeds: list[int] | None,
                 epochs: int | None) -> dict:
    """config.yaml restricted to `studies` (all: every study), optionally shrunk."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if studies != ["all"]:
        unknown = set(studies) - set(config["studies"])
        if unknown:
            raise SystemExit(f"unknown studies {sorted(unknown)}; have {list(config['studies'])}")
        config["studies"] = {k: v for k, v in config["studies"].items() if k in studies}
    for study in config["studies"].values():
        if variants:
            if "grid" in study:
                raise SystemExit("--variants works on studies with explicit variants only")
            names = list(study["variants"])
            keep = [study.get("baseline", names[0])] + [n for n in names if n != study.get(
                "baseline", names[0])]
            study["variants"] = {n: study["variants"][n] for n in keep[:variants]}
        if seeds is not None:
            study["seeds"] = list(seeds)
        if epochs is not None:
            study["train"]["epochs"] = epochs
    used = {s["dataset"] for s in config["studies"].values()}
    config["datasets"] = {k: v for k, v in config["datasets"].items() if k in used}
    return config


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


REAL_SCONTROL = False


def _run(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it waited for)."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                              env=child_env(real_scontrol=REAL_SCONTROL))
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n"
                 + log.read_text()[-4000:])
    return wall, cpu


def run_pipeline(work: Path, config: dict, cores: int, threads: int,
                 source: Path | None = None) -> dict:
    if source is None:
        copy_workflow(work)
    else:  # another checkout of the workflow (e.g. the commit before a change)
        shutil.copytree(source, work, ignore=COPY_IGNORE, dirs_exist_ok=True)
    config = copy.deepcopy(config)
    config.setdefault("resources", {})["train_threads"] = threads
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    wall, cpu = _run([snakemake, "--cores", str(cores), "report/index.html"], work,
                     work / "bench.log")
    accs = [json.loads(p.read_text())["best_val_accuracy"]
            for p in (work / "results" / "runs").rglob("metrics.json")]
    job_s = 0.0
    for tsv in (work / "results" / "benchmarks" / "train").rglob("*.tsv"):
        with open(tsv) as fh:
            job_s += sum(float(row["s"]) for row in csv.DictReader(fh, delimiter="\t"))
    return {"seconds": wall, "cpu": cpu, "runs": len(accs), "acc": median(accs),
            "train_job_s": job_s}


def run_notebook(work: Path, config: dict) -> dict:
    work.mkdir(parents=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = work / "notebook.json"
    wall, cpu = _run([sys.executable, str(ROOT / "benchmarks" / "notebook.py"),
                      str(work / "config.yaml"), "--out", str(out)], work, work / "bench.log")
    runs = json.loads(out.read_text())["runs"]
    return {"seconds": wall, "cpu": cpu, "runs": len(runs),
            "acc": median([r["best_val_accuracy"] for r in runs]), "train_job_s": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", default="activations",
                        help="comma-separated studies of config.yaml, or 'all' (default: "
                             "activations)")
    parser.add_argument("--arms", default="c2t1,notebook",
                        help="comma-separated: cCtT (pipeline, --cores C, T threads per job), "
                             "base-cCtT (the same with the --baseline-root checkout) and/or "
                             "notebook (default: c2t1,notebook)")
    parser.add_argument("--baseline-root", type=Path,
                        help="a checkout for base-* arms (git archive COMMIT | tar -x -C DIR)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", type=int, help="keep the baseline + N-1 variants")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the study's)")
    parser.add_argument("--epochs", type=int, help="override epochs")
    parser.add_argument("--quick", action="store_true",
                        help="activations study, 2 variants, seed 0, 1 epoch, 1 repeat")
    parser.add_argument("--wait-quiet", action="store_true",
                        help="wait (up to 20 min) until < 15%% of the CPU is busy")
    parser.add_argument("--keep", type=Path, help="keep the work folders here")
    parser.add_argument("--real-scontrol", action="store_true",
                        help="no scontrol shim (see the note printed)")
    args = parser.parse_args()
    global REAL_SCONTROL
    REAL_SCONTROL = args.real_scontrol

    studies = args.studies.split(",")
    variants, seeds, epochs, repeats = args.variants, args.seeds, args.epochs, args.repeats
    seeds = [int(s) for s in seeds.split(",")] if seeds else None
    if args.quick:
        studies, variants, seeds, epochs = (QUICK[k] for k in ("studies", "variants", "seeds",
                                                               "epochs"))
        repeats = 1
    config = study_config(studies, variants, seeds, epochs)
    arms = args.arms.split(",")
    for arm in arms:
        if arm != "notebook" and not ARM.match(arm):
            raise SystemExit(f"arm {arm!r}: expected cCtT (e.g. c2t1), base-cCtT or notebook")
        if arm.startswith("base-") and not args.baseline_root:
            raise SystemExit(f"arm {arm!r} needs --baseline-root")

    print_machine("end to end: pipeline vs notebook")
    n_runs = len(resolve_runs(config))
    print(f"studies: {', '.join(config['studies'])} ({n_runs} runs); arms: {', '.join(arms)}; "
          f"{repeats} repeat(s), interleaved")
    if not REAL_SCONTROL and slurm_plugin_installed():
        print(f"note: {SLURM_PROBE_NOTE}")
    print(flush=True)
    if args.wait_quiet:
        wait_for_quiet()

    base = args.keep or Path(tempfile.mkdtemp(prefix="cnnablate-e2e-"))
    base.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    try:
        for rep in range(repeats):
            for arm in arms:
                work = base / f"{arm}-{rep}"
                shutil.rmtree(work, ignore_errors=True)
                load = load1()
                if arm == "notebook":
                    r = run_notebook(work, config)
                else:
                    is_base, cores, threads = ARM.match(arm).groups()
                    r = run_pipeline(work, config, int(cores), int(threads),
                                     args.baseline_root if is_base else None)
                r["load"] = load
                results[arm].append(r)
                print(f"repeat {rep + 1} {arm:>9}: {r['seconds']:7.1f} s wall, "
                      f"{r['cpu']:7.1f} s CPU, {r['runs']} runs, median best val acc "
                      f"{r['acc']:.4f}, load before {load:.2f}", flush=True)
                if not args.keep:
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print()
    rows = []
    nb = results.get("notebook")
    for arm in arms:
        rs = results[arm]
        secs = [r["seconds"] for r in rs]
        ratio = ""
        if nb and arm != "notebook":
            ratio = median([n["seconds"] / r["seconds"] for n, r in zip(nb, rs)])
        rows.append([
            arm, len(rs), median(secs), min(secs), max(secs), median([r["cpu"] for r in rs]),
            median([r["acc"] for r in rs]), ratio,
            " ".join(f"{r['load']:.2f}" for r in rs),
        ])
    print(table(
        ["arm", "n", "median s", "min s", "max s", "CPU s", "val acc", "notebook/arm",
         "load before each"], rows))
    print("\nnotebook/arm: median over repeats of (notebook s / arm s) in the same repeat; "
          "> 1 means the arm is faster than the notebook.")


if __name__ == "__main__":
    main()
