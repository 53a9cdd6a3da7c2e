"""Proof by simulation of cnnablate.decisions.decide: family-wise error under the null, power and
seeds
used under an alternative, for the fixed and the adaptive design, beside today's uncorrected
paired tests.

Synthetic studies: a baseline and `--variants` other variants, every run's headline value
drawn independently as normal(mean, sd), with `sd` the per-variant seed spread of the default
study's runs (`--from-runs results/runs` reads their metrics.json; `--sd` sets it).
Every study is decided by the same pure function the workflow calls (`decide`).

    .venv/bin/python benchmarks/decisions_sim.py --from-runs results/runs \
        --studies 10000 --figure benchmarks/decisions_sim.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnnablate.decisions.decide import Design, decide  # noqa: E402
from cnnablate.decisions.stats import paired_comparison  # noqa: E402


def seed_sd_from_runs(runs_dir: Path, metric: str = "best_val_accuracy",
                      chance_margin: float = 0.05) -> tuple[float, list[dict]]:
    """Pooled per-variant SD over seeds of the default study's runs (results/runs/*/*/seed*/
    metrics.json), over the variants that learned (mean above 1/10 + margin; digits has 10
    classes): a variant at chance has almost no spread and would understate it."""
    groups: dict[tuple[str, str], list[float]] = {}
    for path in sorted(runs_dir.glob("*/*/seed*/metrics.json")):
        m = json.loads(path.read_text())
        if m.get("status") == "completed" and m.get(metric) is not None:
            groups.setdefault((m["study"], m["variant"]), []).append(float(m[metric]))
    rows, num, den = [], 0.0, 0
    for (study, variant), values in sorted(groups.items()):
        if len(values) < 2:
            continue
        sd = float(np.std(values, ddof=1))
        learned = float(np.mean(values)) > 0.1 + chance_margin
        rows.append({"study": study, "variant": variant, "n": len(values),
                     "mean": float(np.mean(values)), "sd": sd, "learned": learned})
        if learned:
            num += sd ** 2 * (len(values) - 1)
            den += len(values) - 1
    return math.sqrt(num / den), rows


def draw(rng: np.random.Generator, n_variants: int, n_seeds: int, sd: float,
         effects: dict[int, float], mean: float = 0.9) -> dict[str, dict[int, float]]:
    names = ["base"] + [f"v{i}" for i in range(1, n_variants + 1)]
    out = {}
    for i, name in enumerate(names):
        values = rng.normal(mean + effects.get(i, 0.0), sd, n_seeds)
        out[name] = dict(enumerate(values.tolist()))
    return out


def simulate(design: Design, n_studies: int, n_variants: int, sd: float,
             effects: dict[int, float], seed: int, n_fixed: int,
             uncorrected_at: tuple[int, ...] = ()) -> dict:
    """Rates over `n_studies` synthetic studies: any better/worse on a null variant (the
    family-wise error), `better` on each truly better variant (power), seeds used; and, on the
    same data, today's rule (any uncorrected paired p < 0.05) at the seed counts given."""
    rng = np.random.default_rng(seed)
    n_seeds = design.max if design.adaptive else n_fixed
    any_false = detected = seeds_used = 0
    uncorrected = dict.fromkeys(uncorrected_at, 0)
    nulls = [f"v{i}" for i in range(1, n_variants + 1) if i not in effects]
    for _ in range(n_studies):
        data = draw(rng, n_variants, n_seeds, sd, effects)
        result = decide(data, "base", design, extras=False)
        verdict = {r["variant"]: r["verdict"] for r in result.rows}
        any_false += any(verdict[v] in ("better", "worse") for v in nulls)
        detected += all(verdict[f"v{i}"] == "better" for i in effects if effects[i] > 0)
        seeds_used += sum(result.seeds_used.values())
        for n in uncorrected_at:
            base = [data["base"][s] for s in range(n)]
            uncorrected[n] += any(
                paired_comparison(base, [data[v][s] for s in range(n)])["p_value"] < 0.05
                for v in nulls)
    arms = n_variants + 1
    return {
        "studies": n_studies,
        "fwer": any_false / n_studies,
        # Monte-Carlo SE of a rate at alpha's level (the bound tested), and of the estimate
        "fwer_mc_se": math.sqrt(0.05 * 0.95 / n_studies),
        "uncorrected_fwer": {str(n): k / n_studies for n, k in uncorrected.items()},
        "power": detected / n_studies if effects else None,
        "mean_seeds_per_arm": seeds_used / n_studies / arms,
        "seed_fraction_of_max": seeds_used / n_studies / (arms * n_seeds),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-runs", type=Path, help="results/runs of the default study")
    ap.add_argument("--sd", type=float, help="per-variant seed SD (instead of --from-runs)")
    ap.add_argument("--studies", type=int, default=10_000, help="null studies per design")
    ap.add_argument("--alt-studies", type=int, default=2000, help="studies per design, alternative")
    ap.add_argument("--curve", type=float, nargs="*", default=[],
                    help="more true effects (in SDs of the paired difference) for the power curve")
    ap.add_argument("--curve-studies", type=int, default=500)
    ap.add_argument("--variants", type=int, default=5, help="variants besides the baseline")
    ap.add_argument("--effect-sds", type=float, default=2.0,
                    help="min_effect in SDs of the paired difference (sd * sqrt 2)")
    ap.add_argument("--initial", type=int, default=3)
    ap.add_argument("--max", type=int, default=12)
    ap.add_argument("--step", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--figure", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.sd is not None:
        sd, per_variant = args.sd, []
    else:
        sd, per_variant = seed_sd_from_runs(args.from_runs)
    sd_diff = sd * math.sqrt(2)
    min_effect = args.effect_sds * sd_diff
    fixed = Design(alpha=args.alpha, min_effect=min_effect)
    adaptive = Design(alpha=args.alpha, min_effect=min_effect, initial=args.initial,
                      max=args.max, step=args.step)
    t0 = time.perf_counter()
    out: dict = {"sd": sd, "sd_diff": sd_diff, "min_effect": min_effect,
                 "per_variant": per_variant, "null": {}, "alternative": {}, "curve": []}
    out["null"]["fixed"] = simulate(fixed, args.studies, args.variants, sd, {}, 1, args.max,
                                    uncorrected_at=(2, 3))
    print("null fixed:", out["null"]["fixed"], flush=True)
    out["null"]["adaptive"] = simulate(adaptive, args.studies, args.variants, sd, {}, 1, 0)
    print("null adaptive:", out["null"]["adaptive"], flush=True)
    alt = {1: min_effect}
    for name, design in (("fixed_max", fixed), ("adaptive", adaptive)):
        out["alternative"][name] = simulate(design, args.alt_studies, args.variants, sd, alt, 2,
                                            args.max)
        print(f"alternative {name}:", out["alternative"][name], flush=True)
    # Power against the true effect: where each design stands beyond min_effect.
    for k in args.curve:
        eff = {1: k * sd_diff}
        ada = simulate(adaptive, args.curve_studies, args.variants, sd, eff, 3, 0)
        out["curve"].append({
            "effect_sds": k, "studies": args.curve_studies,
            "fixed_max": simulate(fixed, args.curve_studies, args.variants, sd, eff, 3,
                                  args.max)["power"],
            "adaptive": ada["power"], "adaptive_seed_fraction": ada["seed_fraction_of_max"],
        })
        print(out["curve"][-1], flush=True)
    out["seconds"] = time.perf_counter() - t0
    text = json.dumps(out, indent=1)
    print(text, flush=True)
    if args.json:
        args.json.write_text(text + "\n")
    if args.figure:
        plot(out, args, args.figure)


def plot(out: dict, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(out["null"])
    rates = [out["null"][k]["fwer"] for k in names]
    errs = [3 * out["null"][k]["fwer_mc_se"] for k in names]
    a.bar(names, rates, yerr=errs, color="#4a7", label="Holm (+ spending), ±3 MC SE")
    today = out["null"]["fixed"]["uncorrected_fwer"]
    a.bar([f"today, {n} seeds" for n in today], list(today.values()), color="#b44",
          label="today: any uncorrected p < 0.05")
    a.axhline(args.alpha, color="k", ls="--", lw=1, label=f"alpha = {args.alpha}")
    a.set_ylabel("family-wise rate of any better/worse")
    studies = out["null"]["fixed"]["studies"]
    a.set_title(f"Null: {args.variants} variants = baseline, {studies} studies each")
    a.tick_params(axis="x", labelsize=7)
    a.legend(fontsize=8)
    if out["curve"]:
        alt = out["alternative"]
        points = sorted(out["curve"] + [{
            "effect_sds": args.effect_sds, "fixed_max": alt["fixed_max"]["power"],
            "adaptive": alt["adaptive"]["power"],
            "adaptive_seed_fraction": alt["adaptive"]["seed_fraction_of_max"]}],
            key=lambda c: c["effect_sds"])
        xs = [c["effect_sds"] for c in points]
        b.plot(xs, [c["fixed_max"] for c in points], "o-", label=f"fixed, {args.max} seeds")
        b.plot(xs, [c["adaptive"] for c in points], "s-",
               label=f"adaptive {args.initial}+{args.step}..{args.max}")
        b.plot(xs, [c["adaptive_seed_fraction"] for c in points], ":", color="gray",
               label="adaptive: seeds used / fixed")
        b.axvline(args.effect_sds, color="k", ls="--", lw=1, label="min_effect")
        b.set_xlabel("true effect of one variant (SDs of the paired difference)")
    else:
        alt = out["alternative"]
        b.bar(["power fixed", "power adaptive", "seeds adaptive/fixed"],
              [alt["fixed_max"]["power"], alt["adaptive"]["power"],
               alt["adaptive"]["seed_fraction_of_max"]], color=["#47a", "#4a7", "#999"])
        b.axhline(0.6, color="gray", ls=":", lw=1)
    b.set_ylabel("power (better) / seed fraction")
    b.set_title("One variant better by min_effect, the others null")
    b.legend(fontsize=8) if out["curve"] else None
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
