"""The decisions' family-wise error on values in the form the pipeline records them.

An accuracy is a count of images k/n that reaches `decide` as Keras's float32, read back as a
Python float (issue #24). Under the null (every arm the same distribution), each cell draws a
study's per-seed counts k = round(mu * n + N(0, spread)) clipped to [0, n], records them as
float(np.float32(k / n)), and decides the study with the function the workflow calls
(`cnnablate.decisions.decide.decide`, fixed or adaptive design, Holm over the comparisons).
Cells: denominators n (digits' 270 validation images, 359 test images, CIFAR's 10 000), seed
spreads from half an image to ten, 2-5 seeds, 1-5 comparisons; beside them, the same cells on
continuous normal draws (sd = spread / n, no grid): the idealised values of BENCHMARKS 7.

    .venv/bin/python benchmarks/recorded_sim.py --studies 2000 \
        --json benchmarks/recorded_sim.json --figure benchmarks/recorded_sim.png

Each cell passes when its rate <= alpha + 3 Monte-Carlo SE (SE at alpha's level).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnnablate.decisions.decide import Design, decide  # noqa: E402

DENOMINATORS = (270, 359, 10_000)
SPREADS = (0.5, 1.0, 2.0, 10.0)  # seed SD in images
COMPARISONS = (1, 3, 5)
FIXED_SEEDS = (2, 3, 5)
ADAPTIVE = ((2, 4, 2), (3, 5, 2))  # (initial, max, step)
MU = 0.9


def recorded_values(rng: np.random.Generator, shape: tuple[int, ...], n: int | None,
                    spread: float, denominator_for_sd: int = 270) -> np.ndarray:
    """Values as the pipeline records them: float32 of k/n (n None: continuous normal draws
    with the same SD in accuracy units, no grid)."""
    if n is None:
        return rng.normal(MU, spread / denominator_for_sd, shape)
    counts = np.clip(np.rint(MU * n + rng.normal(0.0, spread, shape)), 0, n)
    return (counts / n).astype(np.float32).astype(np.float64)


def null_fwer(design: Design, n_studies: int, m: int, n_seeds: int, n: int | None,
              spread: float, seed: int, alpha: float) -> dict:
    """Share of null studies with any better/worse verdict."""
    rng = np.random.default_rng(seed)
    values = recorded_values(rng, (n_studies, m + 1, n_seeds), n, spread)
    names = ["base"] + [f"v{i}" for i in range(1, m + 1)]
    false = 0
    for study in values:
        data = {name: dict(enumerate(study[i].tolist())) for i, name in enumerate(names)}
        rows = decide(data, "base", design, extras=False).rows
        false += any(r["verdict"] in ("better", "worse") for r in rows)
    se = math.sqrt(alpha * (1 - alpha) / n_studies)
    rate = false / n_studies
    return {"fwer": rate, "mc_se": se, "bound": alpha + 3 * se, "ok": rate <= alpha + 3 * se}


def cells(quick: bool) -> list[dict]:
    out = []
    dens: tuple = DENOMINATORS + (None,)
    spreads = SPREADS if not quick else (0.5, 2.0)
    for n, spread, m in itertools.product(dens, spreads, COMPARISONS):
        for seeds in FIXED_SEEDS:
            out.append({"n": n, "spread": spread, "m": m, "design": "fixed", "seeds": seeds})
        for initial, mx, step in ADAPTIVE:
            out.append({"n": n, "spread": spread, "m": m,
                        "design": f"adaptive {initial}+{step}..{mx}", "seeds": mx,
                        "initial": initial, "max": mx, "step": step})
    return out


def run(n_studies: int, alpha: float, quick: bool = False) -> list[dict]:
    results = []
    for i, cell in enumerate(cells(quick)):
        design = (Design(alpha=alpha) if cell["design"] == "fixed" else
                  Design(alpha=alpha, initial=cell["initial"], max=cell["max"], step=cell["step"]))
        row = {**cell, **null_fwer(design, n_studies, cell["m"], cell["seeds"], cell["n"],
                                   cell["spread"], 1000 + i, alpha)}
        results.append(row)
        print(json.dumps(row), flush=True)
    return results


def plot(results: list[dict], alpha: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 4), sharey=True)
    for ax, n in zip(axes, (*DENOMINATORS, None)):
        mine = [r for r in results if r["n"] == n]
        labels = sorted({(r["design"], r["seeds"]) for r in mine},
                        key=lambda d: (d[0] != "fixed", d[1], d[0]))
        for j, (design, seeds) in enumerate(labels):
            pts = [r for r in mine if (r["design"], r["seeds"]) == (design, seeds)]
            xs = [j - 0.38 + 0.07 * k for k in range(len(pts))]
            ax.errorbar(xs, [r["fwer"] for r in pts], yerr=[3 * r["mc_se"] for r in pts],
                        fmt="o", ms=3, lw=0.8, color="#4a7" if design == "fixed" else "#47a")
        ax.axhline(alpha, color="k", ls="--", lw=1)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([f"{d.split()[0]}\n{s} seeds" if d == "fixed" else
                            d.replace("adaptive ", "adapt.\n") for d, s in labels], fontsize=7)
        ax.set_title(f"float32 k/{n}" if n else "normal draws (no grid)")
    axes[0].set_ylabel("family-wise rate of any better/worse (±3 MC SE)")
    fig.suptitle("Null studies on recorded-form values: every cell (spreads 0.5-10 images, "
                 "1-5 comparisons) against alpha", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=2000, help="null studies per cell")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--quick", action="store_true", help="two spreads only")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--figure", type=Path)
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = run(args.studies, args.alpha, args.quick)
    out = {"studies_per_cell": args.studies, "alpha": args.alpha, "cells": results,
           "failing_cells": sum(not r["ok"] for r in results),
           "max_fwer": max(r["fwer"] for r in results),
           "seconds": time.perf_counter() - t0}
    print(json.dumps({k: v for k, v in out.items() if k != "cells"}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    if args.figure:
        plot(results, args.alpha, args.figure)


if __name__ == "__main__":
    main()
