"""Verdict reproducibility on real data: does a study's verdict survive a repetition?

    python benchmarks/verdict_reproducibility.py --workdir /tmp/verdict-repro   # train, print
    python benchmarks/verdict_reproducibility.py --workdir DIR --analyze-only    # print only

A small digits study (All-CNN-C at 16x16, 3 epochs; relu as the baseline against elu and selu;
test accuracy as the headline) is repeated on REPETITIONS disjoint sets of SEEDS_PER_SET seeds
(repetition r: seeds 3r, 3r+1, ...), twice:

- `fixed`: each repetition on a split of its own, fixed for all its seeds and variants
  (`split: fixed`, `split_seed` = the repetition's number): what a study was before per-seed
  partitions, run by six independent groups each with their own split;
- `per_seed`: the default, a partition drawn per seed from (dataset, seed), shared by the
  variants at that seed (`split: per_seed`).

Every repetition is decided as the aggregate step decides it (`cnnablate.decisions.decide.decide`,
the study's min_effect, alpha 0.05, Holm over the three comparisons). For every comparison and
every pair of repetitions: do they contradict (`better` in one, `worse` in the other), agree
(the same verdict), or does one say something the other leaves `undecided`? Also how often
two repetitions' mean differences have opposite signs, and `spread_ratio`. Results (3 seeds
per set; an earlier 2-seed measurement decided nothing): BENCHMARKS.md section 12.
Runs are trained by the ordinary workflow in a copy of this repository (`--cores 2`); no run is
shared between the two arms (their partitions differ).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cnnablate.decisions.decide import Design, decide  # noqa: E402

REPETITIONS = 6
SEEDS_PER_SET = 3
SEED_STRIDE = 3  # repetition r's seeds: 3r, 3r+1, 3r+2
BASELINE = "relu"
VARIANTS = {"relu": {"activation": "relu"}, "elu": {"activation": "elu"},
            "selu": {"activation": "selu", "init": "lecun_normal"},
            }
MIN_EFFECT = 0.02
METRIC = "test_accuracy"
ARMS = ("fixed", "per_seed")
STUDY = {
    "image_size": 16,
    "eval_split": "test",
    "model": {"name": "all_cnn_c", "width": 0.25, "bn_momentum": 0.9, "dropout": False},
    "train": {"epochs": 3, "batch_size": 64, "optimizer": "sgd", "learning_rate": 0.05,
              "momentum": 0.9, "tensorboard": False},
    "norm": "before",
    "min_effect": MIN_EFFECT,
    "baseline": BASELINE,
}


def seed_set(rep: int) -> list[int]:
    """The repetition's seeds: disjoint from every other repetition's."""
    return [rep * SEED_STRIDE + i for i in range(SEEDS_PER_SET)]


def study_name(arm: str, rep: int) -> str:
    return f"{arm}_r{rep}"


def measurement_config() -> dict:
    """Both arms' studies: `fixed` on one dataset per repetition (its own fixed split),
    `per_seed` on one dataset whose partition is drawn per seed."""
    datasets = {f"digits_r{rep}": {"source": "sklearn_digits", "split": "fixed",
                                   "split_seed": rep} for rep in range(REPETITIONS)}
    datasets["digits"] = {"source": "sklearn_digits", "split": "per_seed"}
    studies = {}
    for arm in ARMS:
        for rep in range(REPETITIONS):
            studies[study_name(arm, rep)] = {
                **STUDY, "dataset": f"digits_r{rep}" if arm == "fixed" else "digits",
                "seeds": seed_set(rep), "variants": VARIANTS,
            }
    return {"datasets": datasets, "studies": studies,
            "resources": {"train_threads": 1}}


def run_files(config: dict, rep: int | None = None) -> list[str]:
    """The metrics.json of every run (of repetition `rep`'s studies in both arms)."""
    names = [study_name(arm, rep) for arm in ARMS] if rep is not None else config["studies"]
    return [f"results/runs/{name}/{variant}/seed{seed}/metrics.json"
            for name in names for variant in config["studies"][name]["variants"]
            for seed in config["studies"][name]["seeds"]]


def run_measurements(workdir: Path) -> float:
    """Train every run not yet there in `workdir` (a copy of the repository); wall seconds."""
    if not (workdir / "Snakefile").exists():
        ignore = shutil.ignore_patterns(".git", ".venv", "results", "logs", ".snakemake",
                                        "__pycache__", "report")
        shutil.copytree(ROOT, workdir, ignore=ignore, dirs_exist_ok=True)
    config = measurement_config()
    (workdir / "measure.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    exe = Path(sys.executable).with_name("snakemake")
    start = time.monotonic()
    # one repetition (both arms) at a time: an interrupted measurement has whole repetitions
    for rep in range(REPETITIONS):
        subprocess.run([str(exe), "--cores", "2", "--configfile", "measure.yaml",
                        "--directory", str(workdir), "--keep-going", *run_files(config, rep)],
                       cwd=workdir, check=True)
    return time.monotonic() - start


def load(workdir: Path) -> dict[str, dict[str, dict[int, float | None]]]:
    """{study: {variant: {seed: headline value}}} of every finished run; per study also
    the partition ids its runs record (`_partitions`)."""
    out: dict = {}
    for name, study in measurement_config()["studies"].items():
        values: dict = {v: {} for v in study["variants"]}
        partitions = {}
        for variant in study["variants"]:
            for seed in study["seeds"]:
                path = workdir / f"results/runs/{name}/{variant}/seed{seed}/metrics.json"
                if not path.exists():
                    continue
                metrics = json.loads(path.read_text())
                ok = metrics["status"] == "completed"
                values[variant][seed] = metrics.get(METRIC) if ok else None
                # an id is positions in the prepared data: with the data's checksum it names
                # the images (runs trained before partitions existed record none)
                partition = metrics.get("partition") or {}
                if partition.get("id"):
                    data = metrics["provenance"]["dataset_checksum"][:12]
                    partitions.setdefault(seed, set()).add(f"{data}:{partition['id']}")
        out[name] = {"values": values, "partitions": partitions}
    return out


def verdicts(values: dict) -> dict[str, str]:
    """{variant: verdict against the baseline} as the aggregate step decides the study."""
    rows = decide(values, BASELINE, Design(min_effect=MIN_EFFECT), list(VARIANTS), METRIC).rows
    return {r["variant"]: r["verdict"] for r in rows}


def pair_outcome(a: str, b: str) -> str:
    if {a, b} == {"better", "worse"}:
        return "contradict"
    if a == b:
        return "agree" if a != "undecided" else "both undecided"
    if "undecided" in (a, b):
        return "one undecided"
    return "differ"  # e.g. equivalent in one, better in the other


def complete(data: dict, rep: int) -> bool:
    """Whether both arms of repetition `rep` have every run (an interrupted measurement is
    analysed on its complete repetitions only, the same ones in both arms)."""
    return all(s in data[study_name(arm, rep)]["values"][v]
               for arm in ARMS for v in VARIANTS for s in seed_set(rep))


def mean_diff(values: dict, variant: str, rep: int) -> float | None:
    pairs = [values[variant][s] - values[BASELINE][s] for s in seed_set(rep)
             if values[variant].get(s) is not None and values[BASELINE].get(s) is not None]
    return sum(pairs) / len(pairs) if pairs else None


def spread_ratio(data: dict, arm: str, variant: str, reps: list[int]) -> float | None:
    """How far apart the repetitions' mean differences are, against what each repetition's
    own seeds say its error is: SD over repetitions of the mean paired difference, over the
    root mean square of the repetitions' standard errors (SD of the paired differences over
    sqrt(seeds)). About 1 when a repetition's interval covers what a repetition varies by;
    above 1 when something shared by all of a repetition's seeds (its split) moves it."""
    means, variances = [], []
    for rep in reps:
        values = data[study_name(arm, rep)]["values"]
        diffs = [values[variant][s] - values[BASELINE][s] for s in seed_set(rep)
                 if values[variant].get(s) is not None and values[BASELINE].get(s) is not None]
        if len(diffs) < 2:
            continue
        mean = sum(diffs) / len(diffs)
        means.append(mean)
        variances.append(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    if len(means) < 2 or not any(variances):
        return None
    grand = sum(means) / len(means)
    between = (sum((m - grand) ** 2 for m in means) / (len(means) - 1)) ** 0.5
    return between / (sum(variances) / len(variances)) ** 0.5


def report(data: dict) -> str:
    reps = [rep for rep in range(REPETITIONS) if complete(data, rep)]
    others = [v for v in VARIANTS if v != BASELINE]
    out, summary = [], []
    for arm in ARMS:
        per_rep = {rep: verdicts(data[study_name(arm, rep)]["values"]) for rep in reps}
        out += [f"### {arm}", "", "| repetition | seeds | " + " | ".join(
            f"{v} vs {BASELINE}" for v in others) + " | mean difference (test accuracy) |",
            "|---|---|" + "---|" * len(others) + "---|"]
        for rep in reps:
            values = data[study_name(arm, rep)]["values"]
            diffs = ", ".join(f"{v} {mean_diff(values, v, rep):+.4f}" for v in others)
            out.append(f"| {rep} | {seed_set(rep)} | " + " | ".join(
                per_rep[rep][v] for v in others) + f" | {diffs} |")
        out.append("")
        counts: Counter = Counter()
        signs = 0
        for v in others:
            for r1, r2 in itertools.combinations(reps, 2):
                counts[pair_outcome(per_rep[r1][v], per_rep[r2][v])] += 1
                d1 = mean_diff(data[study_name(arm, r1)]["values"], v, r1)
                d2 = mean_diff(data[study_name(arm, r2)]["values"], v, r2)
                signs += d1 is not None and d2 is not None and d1 * d2 < 0
        decided = sum(per_rep[r][v] in ("better", "worse") for r in reps for v in others)
        total = max(1, sum(counts.values()))
        ids = [pid for r in reps for pids in data[study_name(arm, r)]["partitions"].values()
               for pid in pids]
        summary.append(
            f"| {arm} | {decided} of {len(reps) * len(others)} | "
            f"{counts['contradict']} ({counts['contradict'] / total:.2f}) | "
            f"{counts['agree']} ({counts['agree'] / total:.2f}) | {counts['one undecided']} | "
            f"{counts['both undecided']} | {counts['differ']} | {signs} ({signs / total:.2f}) | "
            f"{len(set(ids))} | " + ", ".join(
                f"{v} {ratio:.2f}" if (ratio := spread_ratio(data, arm, v, reps)) is not None
                else f"{v} —" for v in others) + " |")
    head = [f"{len(reps)} complete repetitions ({', '.join(map(str, reps))}) of {REPETITIONS}; "
            f"{len(others)} comparisons each, so {len(others) * len(reps) * (len(reps) - 1) // 2}"
            " pairs of repetitions per arm.", "",
            "| arm | better/worse verdicts | pairs that contradict | agree (same verdict) | "
            "one undecided | both undecided | other | mean differences of opposite sign | "
            "distinct partitions | spread across repetitions / within (`spread_ratio`) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    return "\n".join(head + summary + ["", *out])


def main() -> None:
    from benchmarks._common import workdir_main

    workdir_main(__doc__, run_measurements, load, report)


if __name__ == "__main__":
    main()
