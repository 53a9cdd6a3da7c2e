"""The measurements behind studies/tuned_digits.yaml (docs/tuned_digits_measurements.md).

    python benchmarks/tuned_digits.py --workdir /tmp/tuned-digits   # train (~34 runs), then print
    python benchmarks/tuned_digits.py --workdir DIR --analyze-only  # print from DIR's runs

Trains, through the ordinary workflow in a copy of this repository, the study file's two arms
(SGD with momentum 0.9, plain SGD) at every learning rate of its tuning grid, on the deciding
seeds and on the tuning seeds, as explicit variants with a pinned learning rate (no `tune:` key
needed). Then prints, as Markdown: every run's best validation and final test accuracy, the
decision at each shared learning rate, and what the tuned study selects (on the validation
split of the tuning seeds, `cnnablate.decisions.tuning.select`) and decides (on the test split of
the deciding seeds, `cnnablate.decisions.decide.decide`, the function the aggregate step calls).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cnnablate.decisions.decide import Design, decide  # noqa: E402
from cnnablate.decisions.tuning import select  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = ROOT / "studies" / "tuned_digits.yaml"
GRID = tuple(yaml.safe_load(STUDY_FILE.read_text())["studies"]["sgd_momentum_tuned"]["tune"]
             ["train.learning_rate"])
# Rates also trained on the deciding seeds (the shared-rate comparisons); the grid's top rate
# only on the tuning seeds: it was added to check that the grid is wide enough.
SHARED_RATES = GRID[:-1]
ARMS = {"momentum": ("mom", 0.9), "plain": ("plain", 0.0)}  # variant -> (run prefix, momentum)
DECIDING_SEEDS = (0, 1, 2)
TUNING_SEEDS = (1000, 1001)
MIN_EFFECT = 0.02  # as the study file's


def _variant(arm: str, lr: float) -> str:
    return f"{ARMS[arm][0]}_lr{float(lr)!r}"  # 0.01, 0.1, 1.0, 3.0: the names measured


def measurement_config() -> dict:
    """Both arms at every rate of the grid; its top rate on the tuning seeds only."""
    study = yaml.safe_load(STUDY_FILE.read_text())["studies"]
    base = {k: v for k, v in study["sgd_momentum_tuned"].items()
            if k not in ("tune", "variants", "baseline", "description", "seeds")}

    def variants(rates):
        return {_variant(arm, lr): {"train": {"momentum": m, "learning_rate": lr}}
                for arm, (_, m) in ARMS.items() for lr in rates}

    return {
        "datasets": {"digits": {"source": "sklearn_digits"}},
        "studies": {
            "meas": {**base, "description": "each arm at each learning rate",
                     "seeds": [*DECIDING_SEEDS, *TUNING_SEEDS],
                     "baseline": _variant("momentum", 0.1),
                     "variants": variants(SHARED_RATES)},
            "meas_hi": {**base, "description": "the grid's top rate, tuning seeds only",
                        "seeds": list(TUNING_SEEDS), "baseline": _variant("momentum", GRID[-1]),
                        "variants": variants(GRID[-1:])},
            # plain SGD's deciding runs at the top rate: one tuning seed selects it
            "meas_top": {**base, "description": "plain SGD at the grid's top rate",
                         "seeds": list(DECIDING_SEEDS), "baseline": _variant("plain", GRID[-1]),
                         "variants": {_variant("plain", GRID[-1]): {
                             "train": {"momentum": 0.0, "learning_rate": GRID[-1]}}}},
        },
    }


def run_measurements(workdir: Path) -> float:
    """Train every run not yet there in `workdir` (a copy of the repository); wall seconds."""
    if not (workdir / "Snakefile").exists():
        ignore = shutil.ignore_patterns(".git", ".venv", "results", "logs", ".snakemake",
                                        "__pycache__", "report")
        shutil.copytree(ROOT, workdir, ignore=ignore, dirs_exist_ok=True)
    (workdir / "measure.yaml").write_text(yaml.safe_dump(measurement_config(), sort_keys=False))
    exe = Path(sys.executable).with_name("snakemake")
    start = time.monotonic()
    tables = [f"results/studies/{s}/runs.csv" for s in measurement_config()["studies"]]
    subprocess.run([str(exe), "--cores", "2", "--configfile", "measure.yaml", "--directory",
                    str(workdir), *tables], cwd=workdir, check=True)
    return time.monotonic() - start


def load(workdir: Path) -> pd.DataFrame:
    """One row per run: arm, lr, seed, status, best val accuracy, test accuracy, seconds."""
    runs = pd.concat([pd.read_csv(workdir / f"results/studies/{s}/runs.csv")
                      for s in measurement_config()["studies"]], ignore_index=True)
    parts = runs["variant"].str.extract(r"^(?P<arm>\w+?)_lr(?P<lr>[\d.e-]+)$")
    runs = pd.concat([parts, runs], axis=1)
    runs["lr"] = runs["lr"].astype(float)
    runs["arm"] = runs["arm"].map({prefix: arm for arm, (prefix, _) in ARMS.items()})
    return runs


def _value(runs: pd.DataFrame, arm: str, lr: float, seed: int, metric: str) -> float | None:
    row = runs[(runs["arm"] == arm) & (runs["lr"] == lr) & (runs["seed"] == seed)]
    if row.empty or row.iloc[0]["status"] != "completed" or pd.isna(row.iloc[0][metric]):
        return None
    return float(row.iloc[0][metric])


def verdict(runs: pd.DataFrame, lrs: dict[str, float]) -> dict:
    """The study's decision (baseline `momentum`) with each arm at its learning rate in `lrs`."""
    results = {arm: {s: _value(runs, arm, lrs[arm], s, "test_accuracy") for s in DECIDING_SEEDS}
               for arm in ARMS}
    row = decide(results, "momentum", Design(min_effect=MIN_EFFECT), list(ARMS),
                 "test_accuracy").rows[0]
    return row


def selection(runs: pd.DataFrame, seeds: tuple[int, ...], grid=GRID) -> dict[str, float | None]:
    """Each arm's learning rate chosen on the tuning seeds' best validation accuracy."""
    chosen = {}
    for arm in ARMS:
        values = [[_value(runs, arm, lr, s, "best_val_accuracy") for s in seeds] for lr in grid]
        index = select(values)
        chosen[arm] = None if index is None else grid[index]
    return chosen


def _fmt(x) -> str:
    return "—" if x is None or pd.isna(x) else f"{x:.4f}"


def report(runs: pd.DataFrame) -> str:
    out = ["| arm | lr | seed | role | status | best val acc | test acc | train s |",
           "|---|---|---|---|---|---|---|---|"]
    for row in runs.sort_values(["arm", "lr", "seed"]).itertuples():
        role = "decide" if row.seed in DECIDING_SEEDS else "tune"
        out.append(f"| {row.arm} | {row.lr:g} | {row.seed} | {role} | {row.status} | "
                   f"{_fmt(row.best_val_accuracy)} | {_fmt(row.test_accuracy)} | "
                   f"{row.train_seconds:.0f} |")
    out += ["", "| setting | momentum lr | plain lr | diff (plain − momentum) [95% CI] | "
                "p_holm | verdict |", "|---|---|---|---|---|---|"]
    settings = [(f"shared lr {lr:g}", {a: lr for a in ARMS}) for lr in SHARED_RATES]
    for seeds in ((1000,), (1001,), (1000, 1001)):
        chosen = selection(runs, seeds)
        label = f"tuned on seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        settings.append((label, chosen))
    for label, lrs in settings:
        measured = all(_value(runs, a, lrs[a], s, "test_accuracy") is not None
                       for a in ARMS for s in DECIDING_SEEDS if lrs[a] is not None)
        if None in lrs.values() or not measured:
            out.append(f"| {label} | {lrs['momentum']} | {lrs['plain']} | not measured | | |")
            continue
        r = verdict(runs, lrs)
        out.append(f"| {label} | {lrs['momentum']:g} | {lrs['plain']:g} | "
                   f"{r['diff_mean']:+.4f} [{r['diff_ci_low']:+.4f}, {r['diff_ci_high']:+.4f}] | "
                   f"{r['p_holm']:.3g} | {r['verdict']} |")
    narrow = selection(runs, TUNING_SEEDS[:1], SHARED_RATES)
    out += ["", f"Without {GRID[-1]:g} in the grid (tuning seed {TUNING_SEEDS[0]}): momentum "
                f"selects {narrow['momentum']:g}, plain selects {narrow['plain']:g}."]
    return "\n".join(out)


def main() -> None:
    from benchmarks._common import workdir_main

    workdir_main(__doc__, run_measurements, load, report)


if __name__ == "__main__":
    main()
