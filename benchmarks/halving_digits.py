"""Successive halving against the full grid on real data (issue #31; BENCHMARKS.md, "Successive
halving on digits"): the tuned studies of studies/tuned_digits.yaml and studies/tuned_bn_digits.yaml
run both ways, side by side, through the ordinary workflow.

    python benchmarks/halving_digits.py --workdir /tmp/halving-digits        # train, then print
    python benchmarks/halving_digits.py --workdir DIR --analyze-only         # print from DIR

Two copies of this repository under --workdir, `grid/` and `halving/`, each with one config: the
two tuned studies (sgd_momentum_tuned, bn_activations_tuned) with `tune.schedule` grid or
halving (the default rungs, `halving.budget_rungs`: [1, 3, 5] for four candidates and five
epochs; keep 0.5), everything else as the study files have it. Both
invocations run at the same time, one core each (the machine's conditions are the same for
both, so their ratio is fair on a shared machine). Printed, as Markdown: per study and mode the
tuning runs and epochs trained, the tuning jobs' summed seconds (Snakemake's benchmark records),
the wall time of the whole invocation, each variant's selected learning rate and each
comparison's verdict (paired.csv).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {  # study file -> the tuned study it holds
    "tuned_digits.yaml": "sgd_momentum_tuned",
    "tuned_bn_digits.yaml": "bn_activations_tuned",
}
MODES = {"grid": {"schedule": "grid"},
         "halving": {"schedule": "halving", "keep": 0.5}}  # the default rungs


def measurement_config(mode: str) -> dict:
    """The tuned studies of both study files, tuned the way `mode` says."""
    studies = {}
    for filename, study in STUDIES.items():
        spec = yaml.safe_load((ROOT / "studies" / filename).read_text())["studies"][study]
        tune = {k: v for k, v in spec["tune"].items() if k not in ("schedule", "rungs", "keep")}
        studies[study] = {**spec, "tune": {**tune, **MODES[mode]}}
    return {"datasets": {"digits": {"source": "sklearn_digits"}}, "studies": studies}


def _copy(workdir: Path, mode: str) -> Path:
    dest = workdir / mode
    if not (dest / "Snakefile").exists():
        ignore = shutil.ignore_patterns(".git", ".venv", "results", "logs", ".snakemake",
                                        "__pycache__", "report")
        shutil.copytree(ROOT, dest, ignore=ignore, dirs_exist_ok=True)
    (dest / "measure.yaml").write_text(yaml.safe_dump(measurement_config(mode), sort_keys=False))
    return dest


def run_measurements(workdir: Path, cores: int = 1) -> dict[str, float]:
    """Both modes at once, `cores` each; wall seconds per mode."""
    exe = Path(sys.executable).with_name("snakemake")
    procs, started, wall = {}, {}, {}
    for mode in MODES:
        dest = _copy(workdir, mode)
        targets = [f"results/studies/{s}/paired.csv" for s in STUDIES.values()]
        log = open(dest / "measure.log", "w")  # noqa: SIM115 - closed with the process
        started[mode] = time.monotonic()
        procs[mode] = (subprocess.Popen(
            [str(exe), *targets, "--cores", str(cores), "--configfile", "measure.yaml",
             "--directory", str(dest)], cwd=dest, stdout=log, stderr=subprocess.STDOUT), log)
    while procs:
        for mode, (proc, log) in list(procs.items()):
            if proc.poll() is not None:
                wall[mode] = time.monotonic() - started[mode]
                log.close()
                del procs[mode]
                if proc.returncode:
                    raise SystemExit(f"{mode}: snakemake failed; see {workdir / mode}/measure.log")
        time.sleep(1)
    (workdir / "wall.json").write_text(json.dumps(wall))
    return wall


def tuning_cost(dest: Path, study: str) -> dict:
    """Tuning runs, epochs trained (a run's furthest rung; a resumed epoch counts once), and
    the tuning jobs' summed seconds (their benchmark records, rungs included)."""
    table = pd.read_csv(dest / f"results/studies/{study}/tuning.csv")
    epochs = (table["epochs"].sum() if "epochs" in table
              else len(table) * _budget(dest, study))
    seconds = sum(float(pd.read_csv(p, sep="\t")["s"].iloc[0]) for p in
                  (dest / f"results/benchmarks/train/{study}").glob("*/tune-*/*.tsv"))
    return {"runs": len(table), "epochs": int(epochs), "seconds": seconds}


def _budget(dest: Path, study: str) -> int:
    config = yaml.safe_load((dest / "measure.yaml").read_text())["studies"][study]
    return int(config["tune"].get("epochs") or config["train"]["epochs"])


def selections(dest: Path, study: str) -> dict[str, float]:
    state = json.loads((dest / f"results/studies/{study}/tuning/selection.json").read_text())
    return {v: c["values"]["train.learning_rate"] for v, c in state["variants"].items()}


def verdicts(dest: Path, study: str) -> dict[str, str]:
    paired = pd.read_csv(dest / f"results/studies/{study}/paired.csv")
    return {f"{r.variant} vs {r.baseline}": f"{r.verdict} ({r.diff_mean:+.3f})"
            for r in paired.itertuples()}


def _value_at(history: pd.DataFrame, epochs: int) -> float | None:
    """best_val_accuracy of a run stopped after `epochs` (cnnablate.training.train.summarize on
    the first rows): None when it had diverged (a loss not finite) or stopped before."""
    rows = history[history["epoch"] <= epochs]
    if len(rows) < epochs or rows[["loss", "val_loss"]].isna().any().any():
        return None
    return float(rows["val_accuracy"].max())


def replay_halving(dest: Path, study: str, rungs=(1, 2, 5), keep: float = 0.5) -> dict:  # noqa: C901
    """Halving's promotions and selection replayed on the grid's runs: a run stopped at a rung
    and continued equals the run trained straight through (tests/test_halving_workflow.py), so
    its value at rung E is the grid run's best validation accuracy over its first E epochs.
    variant -> {"rungs": [promoted per rung], "selected": learning rate}."""
    sys.path.insert(0, str(ROOT))
    from cnnablate.decisions import halving
    from cnnablate.decisions.tuning import select

    config = yaml.safe_load((dest / "measure.yaml").read_text())["studies"][study]
    grid, seeds = config["tune"]["train.learning_rate"], config["tune"]["seeds"]
    out = {}
    for variant in config["variants"]:
        def history(lr, seed, variant=variant):
            return pd.read_csv(dest / f"results/runs/{study}/{variant}/"
                               f"tune-learning_rate-{lr}/seed{seed}/history.csv")

        runs = {lr: [history(lr, s) for s in seeds] for lr in grid}
        plan = halving.rung_plan(len(grid), list(rungs), keep)
        alive, promoted = list(grid), []
        for r, epochs in enumerate(rungs[:-1]):
            values = {lr: [_value_at(h, epochs) for h in runs[lr]] for lr in alive}
            alive = [lr for lr in halving.promote_seeds(values, plan[r + 1], True)]
            alive = [lr for lr in grid if lr in alive]  # in the order listed (ties)
            promoted.append(alive)
        final = [[_value_at(h, rungs[-1]) for h in runs[lr]] for lr in alive]
        best = select(final)
        out[variant] = {"rungs": promoted, "selected": None if best is None else alive[best]}
    return out


# the default's rungs, the budget halved down to one epoch, and the best 2 trained to the end
REPLAYED = ((1, 3, 5), (1, 2, 5), (1, 5))


def _halving_share(n: int, rungs) -> float:
    sys.path.insert(0, str(ROOT))
    from cnnablate.decisions import halving

    return halving.halving_epochs(n, list(rungs), 0.5) / (n * rungs[-1])


def recorded_verdicts() -> str:
    """sgd_momentum_tuned's verdict at the grid's and at halving's selections, from the deciding
    runs docs/tuned_digits_measurements.md records (every arm at 0.01, 0.1 and 1.0 on seeds
    0-2: the same run configs, and training is deterministic), by the aggregate step's own
    `decide` (benchmarks/tuned_digits.py)."""
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location("tuned_digits", ROOT / "benchmarks" /
                                                  "tuned_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = []
    pattern = re.compile(r"\| (momentum|plain) \| ([\d.]+) \| (\d+) \| (?:decide|tune) \| "
                         r"(\w+) \| ([\d.]+|—) \| ([\d.]+|—) \|")
    for line in (ROOT / "docs" / "tuned_digits_measurements.md").read_text().splitlines():
        if m := pattern.match(line):
            rows.append({"arm": m[1], "lr": float(m[2]), "seed": int(m[3]), "status": m[4],
                         "best_val_accuracy": None if m[5] == "—" else float(m[5]),
                         "test_accuracy": None if m[6] == "—" else float(m[6])})
    runs = pd.DataFrame(rows)
    out = ["sgd_momentum_tuned's verdict (plain vs momentum, test accuracy of seeds 0-2, from "
           "docs/tuned_digits_measurements.md's deciding runs):"]
    for label, lrs in (("the grid's selection", {"momentum": 0.1, "plain": 1.0}),
                       ("rungs [1, 2, 5]'s selection", {"momentum": 0.01, "plain": 0.1})):
        r = module.verdict(runs, lrs)
        out.append(f"- {label} (momentum {lrs['momentum']:g}, plain {lrs['plain']:g}): "
                   f"{r['verdict']}, {r['diff_mean']:+.4f} [{r['diff_ci_low']:+.4f}, "
                   f"{r['diff_ci_high']:+.4f}], p_holm {r['p_holm']:.3g}")
    return "\n".join(out)


def report(workdir: Path) -> str:
    wall = json.loads((workdir / "wall.json").read_text()) if (workdir / "wall.json").exists() \
        else {}
    out = ["| study | mode | tuning runs | tuning epochs | tuning job s | selected learning "
           "rates | verdicts |", "|---|---|---|---|---|---|---|"]
    summary = {}
    for study in STUDIES.values():
        for mode in MODES:
            dest = workdir / mode
            try:
                cost, chosen = tuning_cost(dest, study), selections(dest, study)
            except FileNotFoundError:
                out.append(f"| {study} | {mode} | not finished | | | | |")
                continue
            try:
                decided = verdicts(dest, study)
            except FileNotFoundError:
                decided = {"(deciding runs)": "not finished"}
            summary[(study, mode)] = (cost, chosen, decided)
            out.append(
                f"| {study} | {mode} | {cost['runs']} | {cost['epochs']} | "
                f"{cost['seconds']:.0f} | "
                + ", ".join(f"{v} {lr:g}" for v, lr in chosen.items()) + " | "
                + "; ".join(f"{k}: {v}" for k, v in decided.items()) + " |")
    out.append("")
    for study in STUDIES.values():
        if (study, "grid") not in summary or (study, "halving") not in summary:
            continue
        (g, gc, gd), (h, hc, hd) = summary[(study, "grid")], summary[(study, "halving")]
        same_verdicts = [v.split()[0] for v in hd.values()] == [v.split()[0] for v in gd.values()]
        measured = "(deciding runs)" not in gd and "(deciding runs)" not in hd
        out.append(
            f"- {study}: halving trained {h['epochs']} of the grid's {g['epochs']} tuning "
            f"epochs ({h['epochs'] / g['epochs']:.0%}), its tuning jobs took "
            f"{h['seconds'] / g['seconds']:.0%} of the grid's seconds; selections "
            f"{'the same' if hc == gc else 'DIFFERENT'}; verdicts "
            + (f"{'the same' if same_verdicts else 'DIFFERENT'}" if measured
               else "not measured here (deciding runs not trained)"))
    out.append("")
    for study in STUDIES.values():
        for rungs in REPLAYED:
            try:
                replay = replay_halving(workdir / "grid", study, rungs)
            except FileNotFoundError as missing:
                out.append(f"- {study}: no replay yet ({missing.filename} missing)")
                break
            grid_chosen = summary.get((study, "grid"), (None, {}))[1]
            config = yaml.safe_load((workdir / "grid" / "measure.yaml").read_text())
            n = len(config["studies"][study]["tune"]["train.learning_rate"])
            out.append(
                f"- {study}, halving at rungs {list(rungs)} replayed on the grid's own runs "
                f"({_halving_share(n, rungs):.0%} of the grid's tuning epochs): " + "; ".join(
                    f"{v} promotes {' then '.join(str(p) for p in r['rungs'])}, selects "
                    f"{r['selected']:g}" for v, r in replay.items())
                + (" (the grid's selections)" if {v: r["selected"] for v, r in replay.items()}
                   == grid_chosen else " (NOT the grid's selections)"))
    out += ["", recorded_verdicts()]
    if wall:
        out.append(f"- wall time of each whole invocation (both studies, tuning and deciding "
                   f"runs, one core each, at the same time): grid {wall['grid']:.0f} s, halving "
                   f"{wall['halving']:.0f} s ({wall['halving'] / wall['grid']:.0%})")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--analyze-only", action="store_true")
    parser.add_argument("--cores", type=int, default=1, help="per mode (default 1)")
    args = parser.parse_args()
    if not args.analyze_only:
        args.workdir.mkdir(parents=True, exist_ok=True)
        wall = run_measurements(args.workdir, args.cores)
        print(f"training: {wall}", file=sys.stderr)
    print(report(args.workdir))


if __name__ == "__main__":
    main()
