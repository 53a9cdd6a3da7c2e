"""Verdicts about the population of images, not about one split (issue #30): the family-wise
error of the shipped `decide` under the population null, and what the remedies cost in power.

The model. Every image i has a difficulty z_i (shared by all variants) and, per variant v, its
own strength u_vi: a variant suits some images better than others. A run of variant v at seed s
answers image i correctly with probability Phi(mu + sigma_z z_i + u_vi + a_vs), a_vs the run's
own (seed) shift, independently per image. The u_vi of all variants are draws from one law, so
every variant has exactly the same accuracy over the population of images: the population null.
Values reach `decide` as the pipeline records them, float32(k / n) of n = 270 images.

Scenarios (each a way a study can be run):
- `fixed split` (before issue #30): one set of 270 images drawn per study, every seed and arm
  evaluated on it, decided on the values (test over seeds).
- `per-seed partition`: each seed draws its own 270 images (shared by the arms at that seed,
  so still paired), decided on the values.
- `fixed set, images counted`: one fixed set per study, as `fixed split`, but `decide` gets the
  runs' per-image correctness (`correct=`): the seeds x images crossed test.

Cells: 3, 5 and 12 seeds (fixed design) and adaptive designs 3+2..5 and 3+3..12; 1 and 5
comparisons. Each passes when its rate <= alpha + 3 Monte-Carlo SE. Beside them: power against
a variant truly better over the population, the mixed-denominator case (one arm on 128 images)
and the skew scenario (a variant at chance on 2-5 % of seeds and otherwise better by as much,
equal in expected accuracy) with the failure-mode flag (`cnnablate.decisions.scope`).

    .venv/bin/python benchmarks/population_sim.py --studies 1000 \
        --json benchmarks/population_sim.json --figure benchmarks/population_sim.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnnablate.decisions.decide import Design, decide  # noqa: E402
from cnnablate.decisions.scope import failure_modes, pooled_scale  # noqa: E402

N_IMAGES = 270
MU = 2.2  # logit of ~0.90: digits-like accuracies
SIGMA_Z = 1.5  # image difficulty, shared by the variants
TAU = 0.8  # a variant's own per-image strength
SIGMA_SEED = 0.15  # a run's (seed's) shift
SCENARIOS = ("fixed split", "per-seed partition", "fixed set, images counted")
DESIGNS = (("fixed", 3), ("fixed", 5), ("fixed", 12), ("adaptive 3+2..5", 5),
           ("adaptive 3+3..12", 12))
COMPARISONS = (1, 5)


def design_of(name: str, alpha: float, test: str = "t") -> Design:
    if name == "fixed":
        return Design(alpha=alpha, test=test)
    initial, rest = name.split()[1].split("+")
    step, top = rest.split("..")
    return Design(alpha=alpha, initial=int(initial), max=int(top), step=int(step), test=test)


def correctness(rng: np.random.Generator, arms: int, seeds: int, scenario: str,
                shift: np.ndarray | None = None, n: int = N_IMAGES) -> np.ndarray:
    """(arms, seeds, n) booleans: which images each run answers correctly. `shift[arm]`: a
    logit shift of a truly better (or worse) arm."""
    per_seed = scenario == "per-seed partition"
    images = (seeds if per_seed else 1, n)
    z = rng.standard_normal(images)
    u = rng.standard_normal((arms, *images)) * TAU
    a = rng.standard_normal((arms, seeds, 1)) * SIGMA_SEED
    logit = MU + SIGMA_Z * z[None] + u + a
    if shift is not None:
        logit = logit + np.asarray(shift, dtype=float)[:, None, None]
    p = special.ndtr(logit)
    return rng.random(p.shape) < p


def recorded(correct: np.ndarray) -> np.ndarray:
    """The values as Keras records them: float32 of count / n, read back as a float."""
    return (correct.sum(axis=-1) / correct.shape[-1]).astype(np.float32).astype(np.float64)


def study(rng: np.random.Generator, design: Design, m: int, seeds: int, scenario: str,
          shift: np.ndarray | None = None) -> list[dict]:
    """One simulated study decided by the shipped `decide`: its rows."""
    correct = correctness(rng, m + 1, seeds, scenario, shift)
    values = recorded(correct)
    names = ["base"] + [f"v{i}" for i in range(1, m + 1)]
    results = {name: dict(enumerate(values[i].tolist())) for i, name in enumerate(names)}
    counted = None
    if scenario == "fixed set, images counted":
        counted = {name: {s: correct[i, s] for s in range(seeds)} for i, name in enumerate(names)}
    return decide(results, "base", design, names, extras=False, correct=counted).rows


def _se(alpha: float, n: int) -> float:
    return math.sqrt(alpha * (1 - alpha) / n)


def null_cell(scenario: str, design_name: str, seeds: int, m: int, n_studies: int, alpha: float,
              seed: int) -> dict:
    """Share of null studies with any better/worse verdict."""
    rng = np.random.default_rng(seed)
    design = design_of(design_name, alpha)
    false = sum(any(r["verdict"] in ("better", "worse") for r in
                    study(rng, design, m, seeds, scenario)) for _ in range(n_studies))
    se = _se(alpha, n_studies)
    rate = false / n_studies
    return {"kind": "null", "scenario": scenario, "design": design_name, "seeds": seeds, "m": m,
            "studies": n_studies, "fwer": rate, "mc_se": se, "bound": alpha + 3 * se,
            "ok": rate <= alpha + 3 * se}


def power_cell(scenario: str, seeds: int, shift: float, n_studies: int, alpha: float,
               seed: int) -> dict:
    """Share of studies that call a truly better variant (logit + shift) better (m = 1)."""
    rng = np.random.default_rng(seed)
    design = design_of("fixed", alpha)
    hits = sum(study(rng, design, 1, seeds, scenario, np.array([0.0, shift]))[0]["verdict"]
               == "better" for _ in range(n_studies))
    return {"kind": "power", "scenario": scenario, "design": "fixed", "seeds": seeds, "m": 1,
            "studies": n_studies, "power": hits / n_studies,
            "mc_se": math.sqrt(max(hits * (n_studies - hits), 1) / n_studies**3)}


def population_gain(shift: float, draws: int = 400_000) -> float:
    """The population accuracy a logit shift adds (Monte Carlo over images)."""
    rng = np.random.default_rng(0)
    x = MU + SIGMA_Z * rng.standard_normal(draws) + TAU * rng.standard_normal(draws)
    total = math.sqrt(1 + SIGMA_SEED**2)  # the seed shift integrates out as a wider probit
    return float((special.ndtr((x + shift) / total) - special.ndtr(x / total)).mean())


def mixed_denominator_cell(seeds: int, spread: float, n_studies: int, alpha: float,
                           seed: int) -> dict:
    """Null studies (per-seed partitions) with base and v1 on 270 images and v2 on 128 (a
    variant with max_eval_images 128): counts k = round(mu n + N(0, spread n / 270))."""
    rng = np.random.default_rng(seed)
    design = design_of("fixed", alpha)
    false = 0
    for _ in range(n_studies):
        results = {}
        for name, n in (("base", 270), ("v1", 270), ("v2", 128)):
            k = np.clip(np.rint(0.9 * n + rng.normal(0, spread * n / 270, seeds)), 0, n)
            results[name] = dict(enumerate((k / n).astype(np.float32).astype(float).tolist()))
        rows = decide(results, "base", design, extras=False).rows
        false += any(r["verdict"] in ("better", "worse") for r in rows)
    se = _se(alpha, n_studies)
    return {"kind": "mixed", "seeds": seeds, "spread_images": spread, "m": 2,
            "studies": n_studies, "fwer": false / n_studies, "mc_se": se,
            "bound": alpha + 3 * se, "ok": false / n_studies <= alpha + 3 * se}


def skew_cell(q: float, seeds: int, n_studies: int, alpha: float, seed: int,
              spread: float = 3.0, chance: float = 0.1) -> dict:
    """A variant at chance on a share q of seeds and otherwise better by as much as keeps its
    expected accuracy equal to the baseline's (per-seed partitions, values as recorded): how
    often it is called better, and how often the failure-mode flag is raised with it."""
    rng = np.random.default_rng(seed)
    design = design_of("fixed", alpha)
    mu = 0.9
    delta = q * (mu - chance) / (1 - q)  # (1 - q)(mu + delta) + q chance = mu
    better = flagged = better_flagged = 0
    for _ in range(n_studies):
        base = np.clip(np.rint(mu * 270 + rng.normal(0, spread, seeds)), 0, 270)
        fail = rng.random(seeds) < q
        good = np.clip(np.rint((mu + delta) * 270 + rng.normal(0, spread, seeds)), 0, 270)
        low = np.clip(np.rint(chance * 270 + rng.normal(0, spread, seeds)), 0, 270)
        v = np.where(fail, low, good)
        results = {"base": dict(enumerate((base / 270).astype(np.float32).astype(float).tolist())),
                   "v": dict(enumerate((v / 270).astype(np.float32).astype(float).tolist()))}
        row = decide(results, "base", design, extras=False).rows[0]
        flag = bool(failure_modes(results["v"], chance=chance, step=1 / 270,
                                  scale=pooled_scale(results.values())))
        hit = row["verdict"] == "better"
        better += hit
        flagged += flag
        better_flagged += hit and flag
    return {"kind": "skew", "q": q, "seeds": seeds, "delta_points": 100 * delta,
            "studies": n_studies, "better": better / n_studies,
            "flagged": flagged / n_studies, "better_and_flagged": better_flagged / n_studies,
            "better_unflagged": (better - better_flagged) / n_studies,
            "p_no_failure_seen": (1 - q) ** seeds}


def false_flag_cell(seeds: int, n_studies: int, seed: int, variants: int = 5,
                    spread: float = 3.0) -> dict:
    """How often the robust-outlier rule flags a variant whose seeds are plain normal noise
    (one variant of a study of `variants`, counts k/270 with SD `spread` images)."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(n_studies):
        k = np.clip(np.rint(0.9 * 270 + rng.normal(0, spread, (variants, seeds))), 0, 270)
        values = [dict(enumerate((row / 270).tolist())) for row in k]
        flagged += bool(failure_modes(values[0], chance=0.1, step=1 / 270,
                                      scale=pooled_scale(values)))
    return {"kind": "false_flag", "seeds": seeds, "variants": variants, "studies": n_studies,
            "flagged": flagged / n_studies}


def run(n_studies: int, alpha: float, quick: bool = False) -> list[dict]:
    out = []
    cell = 0
    for scenario in SCENARIOS:
        for m in COMPARISONS:
            for design_name, seeds in DESIGNS:
                if quick and seeds == 12 and m == 5:
                    continue
                cell += 1
                out.append(null_cell(scenario, design_name, seeds, m, n_studies, alpha,
                                     1000 + cell))
                print(json.dumps(out[-1]), flush=True)
    shift = 0.25
    for scenario in SCENARIOS:
        for seeds in (5, 12):
            cell += 1
            row = power_cell(scenario, seeds, shift, max(n_studies // 2, 100), alpha, 1000 + cell)
            row["gain_points"] = 100 * population_gain(shift)
            out.append(row)
            print(json.dumps(out[-1]), flush=True)
    for seeds in (2, 3, 5):
        for spread in (0.5, 2.0):
            cell += 1
            out.append(mixed_denominator_cell(seeds, spread, n_studies, alpha, 1000 + cell))
            print(json.dumps(out[-1]), flush=True)
    for q in (0.02, 0.05):
        for seeds in (5, 12):
            cell += 1
            out.append(skew_cell(q, seeds, max(n_studies // 2, 100), alpha, 1000 + cell))
            print(json.dumps(out[-1]), flush=True)
    for seeds in (3, 5, 12):
        cell += 1
        out.append(false_flag_cell(seeds, 2 * n_studies, 1000 + cell))
        print(json.dumps(out[-1]), flush=True)
    return out


def plot(results: list[dict], alpha: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), gridspec_kw={"width_ratios": [3, 1, 1.2]})
    ax = axes[0]
    colours = dict(zip(SCENARIOS, ("#c44", "#4a7", "#47a")))
    labels = [f"{d.replace('adaptive ', 'ad. ')}\n{s} seeds" if d == "fixed" else
              d.replace("adaptive ", "ad. ") for d, s in DESIGNS]
    for j, scenario in enumerate(SCENARIOS):
        for k, m in enumerate(COMPARISONS):
            pts = [r for r in results if r["kind"] == "null" and r["scenario"] == scenario
                   and r["m"] == m]
            xs = [[d for d, _ in DESIGNS].index(r["design"]) if r["design"] != "fixed"
                  else [s for _, s in DESIGNS[:3]].index(r["seeds"]) for r in pts]
            xs = [x - 0.3 + 0.2 * j + 0.08 * k for x in xs]
            ax.errorbar(xs, [r["fwer"] for r in pts], yerr=[3 * r["mc_se"] for r in pts],
                        fmt="o" if m == 1 else "s", ms=4, lw=0.8, color=colours[scenario],
                        label=f"{scenario}, m = {m}")
    ax.axhline(alpha, color="k", ls="--", lw=1)
    ax.set_xticks(range(len(DESIGNS)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("family-wise rate of any better/worse (±3 MC SE)")
    ax.set_title("population null: equal accuracy over the images", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    pw = [r for r in results if r["kind"] == "power"]
    for j, scenario in enumerate(SCENARIOS):
        pts = [r for r in pw if r["scenario"] == scenario]
        ax.errorbar([p["seeds"] + (j - 1) * 0.6 for p in pts], [p["power"] for p in pts],
                    yerr=[2 * p["mc_se"] for p in pts], fmt="o-", color=colours[scenario])
    if pw:
        ax.set_title(f"power: +{pw[0]['gain_points']:.1f} points over the population",
                     fontsize=10)
    ax.set_xlabel("seeds")
    ax.set_ylim(0, 1)
    ax = axes[2]
    sk = [r for r in results if r["kind"] == "skew"]
    xs = np.arange(len(sk))
    ax.bar(xs, [r["better_unflagged"] for r in sk], color="#c44", label="better, no flag")
    ax.bar(xs, [r["better_and_flagged"] for r in sk], bottom=[r["better_unflagged"] for r in sk],
           color="#ea4", label="better, flagged")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"q {r['q']:g}\n{r['seeds']} seeds" for r in sk], fontsize=8)
    ax.set_title("skew: at chance on a share q of seeds", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=1000, help="null studies per cell")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--quick", action="store_true", help="no 12-seed cells with 5 comparisons")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--figure", type=Path)
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = run(args.studies, args.alpha, args.quick)
    checked = [r for r in results if r["kind"] in ("null", "mixed")
               and not (r["kind"] == "null" and r["scenario"] == "fixed split")]
    out = {"studies_per_cell": args.studies, "alpha": args.alpha,
           "model": {"n_images": N_IMAGES, "mu_logit": MU, "sigma_z": SIGMA_Z, "tau": TAU,
                     "sigma_seed": SIGMA_SEED},
           "cells": results, "failing_cells": sum(not r["ok"] for r in checked),
           "checked_cells": len(checked), "seconds": time.perf_counter() - t0}
    print(json.dumps({k: v for k, v in out.items() if k != "cells"}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    if args.figure:
        plot(results, args.alpha, args.figure)


if __name__ == "__main__":
    main()
