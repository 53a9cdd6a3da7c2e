"""Proof by simulation of successive halving and zoom for tuned studies (issue 31, item 6): does
tuning each variant by successive halving (and a zoom stage) find what the full grid finds, at
what cost, and does the family-wise bound about the selected configurations still hold?

A synthetic study: a baseline and two variants. Each arm has a response curve f(x), its
expected validation accuracy after the tuning runs' full budget against x = log10(learning
rate), and a learning curve over epochs: epoch e reaches chance + (f(x) - chance) * h(e, x),
h(R, x) = 1, where a smaller learning rate learns more slowly (speed ∝ lr**GAMMA), so early
rungs are informative but biased towards larger learning rates (the short-horizon bias). A run
is a seed: every epoch's accuracy is a count of `n_images` drawn around the learning curve with
a spread of `sd` images, half of it the seed's own offset (kept over the epochs), half new each
epoch; the tuning metric at a rung is the best validation accuracy so far (best_val_accuracy),
recorded as Keras does (k/n through float32). Beyond a curve's cliff the run collapses to
chance, and diverges (no value) with a given probability, at a random epoch.

Three ways to tune each arm over the grid 0.001, 0.003, 0.01, 0.03, 0.1 (half decades, as a
user writes them) on `T` tuning seeds, all reading the *same* tuning runs (a promoted candidate
resumes its run bit-identically, so halving sees a prefix of the grid's runs):
- grid: every candidate trains the full budget, `select` picks;
- halving: the workflow's default rungs, `budget_rungs(R, [5, 5, 5], 0.5)` = 2, 3, 5, 8 epochs
  (the latest geometric rungs within half the grid's epochs), keep 0.5 (rung plan 5, 3, 2, 1),
  `promote_seeds` (select's rule) at each rung;
- halving + zoom: halving, then `zoom_candidates(grid, pick, 1)` (geometric midpoints to the
  pick's neighbours; one step beyond an edge pick) train the full budget, and `select` picks
  among the pick and the new candidates.
Then `n` fresh deciding seeds per arm at each pick (the same deciding noise for the three ways
where their picks agree), decided by `cnnablate.decisions.decide.decide` (Holm, alpha 0.05).

Measured per shape and way: the error of the verdict about the variants at their *true* best
(any better/worse verdict whose sign the true bests contradict, equal bests included), the
FWER about the *selected configurations* (any better/worse verdict their expected accuracies
contradict: the guarantee; must stay <= alpha + 3 MC SE), the tuning epochs trained (a diverged
run stops), and the studies stopped because a variant had no candidate left.

    .venv/bin/python benchmarks/halving_sim.py --json benchmarks/halving_sim.json \
        --figure benchmarks/halving_sim.png
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import (  # noqa: E402
    add_sim_outputs,
    replay_tables,
    save_sim_outputs,
    sim_machine,
)
from cnnablate.decisions.decide import Design, decide  # noqa: E402
from cnnablate.decisions.halving import (  # noqa: E402
    budget_rungs,
    promote_seeds,
    rung_plan,
    zoom_candidates,
)
from cnnablate.decisions.tuning import select  # noqa: E402

GRID_LR = (0.001, 0.003, 0.01, 0.03, 0.1)  # as a user writes a half-decade grid
EPOCHS = 8  # the tuning runs' (and deciding runs') full budget R
KEEP = 0.5
RUNGS = tuple(budget_rungs(EPOCHS, [len(GRID_LR)] * 3, KEEP))  # (2, 3, 5, 8)
CHANCE = 0.1  # ten classes
HALF_DECADE = 0.5
K_PEAK = 1.2  # learning speed at the arm's best lr: epoch 1 gets 70 % of the way (R = 8)
RHO = 0.5  # share of a run's noise variance that is the seed's own (kept over epochs)
WAYS = ("grid", "halving", "halving+zoom")


@dataclass(frozen=True)
class Arm:
    """One arm's response curve: `height` at its best lr (x = `peak`, uniform per study in
    the interval), `drop` images lost half a decade away (power 2: a parabola in log lr);
    from x >= peak + `cliff` training collapses to chance, a run diverging with probability
    `diverge` (at a uniform epoch)."""

    height: float = 0.95
    drop: float = 10.0
    peak: tuple[float, float] = (-2.5, -1.5)
    cliff: float | None = None
    diverge: float = 0.0

    def final(self, x: np.ndarray, peak: float, n_images: int) -> np.ndarray:
        """f(x): expected accuracy after the full budget."""
        loss = self.drop / n_images * (np.abs(x - peak) / HALF_DECADE) ** 2
        f = np.clip(self.height - loss, CHANCE, 1.0)
        if self.cliff is not None:
            f = np.where(x >= peak + self.cliff, CHANCE, f)
        return f

    def collapsed(self, x: np.ndarray, peak: float) -> np.ndarray:
        return (np.zeros_like(x, dtype=bool) if self.cliff is None
                else x >= peak + self.cliff)


@dataclass(frozen=True)
class Shape:
    name: str
    arms: tuple[Arm, ...]  # the baseline first
    sd: float = 2.0  # seed spread in images (tuning and deciding runs)
    about: str = ""


SHAPES = (
    Shape("between", (Arm(drop=30.0),) * 3,
          about="narrow optimum (30 images lost half a decade away), each arm's best lr "
                "uniform in 10^-2.5..10^-1.5: mostly between grid points; equal bests"),
    Shape("peaked_vs_flat", (Arm(drop=30.0), Arm(drop=4.0), Arm(drop=30.0)),
          about="equal bests; v1 flat (4 images half a decade away), the others peaked (30)"),
    Shape("beyond_edge", (Arm(), Arm(peak=(-0.75, -0.5)), Arm()),
          about="v1's best lr a quarter to half a decade above the grid's largest; equal "
                "bests, 10 images half a decade away"),
    Shape("divergence", (Arm(peak=(-1.75, -1.25), cliff=0.35, diverge=0.5),
                         Arm(peak=(-1.75, -1.25), cliff=0.35, diverge=0.5),
                         Arm(peak=(-2.75, -2.25), cliff=0.35, diverge=0.5)),
          about="a cliff 0.35 decade above each best lr: beyond it accuracy is chance and half "
                "the runs diverge; v2's best low in the grid (most of its grid beyond the "
                "cliff); equal bests"),
    Shape("noisy", (Arm(drop=2.0),) * 3, sd=5.0,
          about="tuning noise (spread 5 images) larger than the candidates' differences "
                "(2 images half a decade away); equal bests"),
    Shape("real_difference", (Arm(), Arm(height=0.95 + 6 / 270, peak=(-2.0, -1.5)), Arm()),
          about="v1 truly better by 6 images at its best; v2 equal to the baseline"),
)


@dataclass(frozen=True)
class Cell:
    shape: Shape
    tuning_seeds: int = 2
    deciding_seeds: int = 5
    gamma: float = 0.5  # learning speed ∝ lr**gamma: the short-horizon bias of early rungs
    rungs: tuple[int, ...] = RUNGS
    keep: float = KEEP
    n_images: int = 270  # digits' validation split
    design: Design = field(default_factory=Design)

    def seed(self) -> int:
        # not the schedule's: the same studies (peaks, runs) under every schedule
        return zlib.crc32(f"{self.shape.name}|{self.tuning_seeds}|{self.deciding_seeds}|"
                          f"{self.gamma}|{self.n_images}".encode())


def learning_fraction(x: np.ndarray, peak: float, gamma: float) -> np.ndarray:
    """h(e, x) for e = 1..R, shape x.shape + (R,): the share of the final gain reached."""
    k = K_PEAK * 10.0 ** (gamma * (np.asarray(x)[..., None] - peak))
    e = np.arange(1, EPOCHS + 1)
    return (1 - np.exp(-k * e)) / (1 - np.exp(-k * EPOCHS))


class Runs:
    """The tuning runs of one arm in one study, made on demand per lr (the grid's, then any
    zoom candidates'): per candidate, (T seeds, R epochs) of best-so-far recorded values, NaN
    from the epoch a run diverged, and the epoch it diverged (R + 1: never). Each candidate's
    runs come from a random stream of its own (study, arm, lr): the same runs whatever the
    schedule asks for, so schedules compare study by study."""

    def __init__(self, cell: Cell, arm: Arm, peak: float, stream: tuple[int, int]):
        self.cell, self.arm, self.peak, self.stream = cell, arm, peak, stream
        self.cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def of(self, lrs: list[float]) -> None:
        for lr in lrs:
            if lr not in self.cache:
                self.cache[lr] = self._make(lr)

    def _make(self, lr: float) -> tuple[np.ndarray, np.ndarray]:
        c, n = self.cell, self.cell.n_images
        rng = np.random.default_rng([*self.stream, int(round(lr * 1e12))])
        x = np.log10(np.asarray([lr]))
        f = self.arm.final(x, self.peak, n)
        mean = CHANCE + (f - CHANCE)[:, None] * learning_fraction(x, self.peak, c.gamma)
        shape = (c.tuning_seeds, EPOCHS)
        z = (math.sqrt(RHO) * rng.standard_normal(shape[:1])[:, None]
             + math.sqrt(1 - RHO) * rng.standard_normal(shape))
        counts = np.clip(np.rint(mean * n + c.shape.sd * z), 0, n)
        best = np.maximum.accumulate(counts, axis=1)
        values = (best / n).astype(np.float32).astype(np.float64)
        # a run beyond the cliff diverges with probability `diverge` at a uniform epoch
        collapsed = bool(self.arm.collapsed(x, self.peak)[0])
        div = rng.random(shape[:1]) < self.arm.diverge * collapsed
        when = np.where(div, rng.integers(1, EPOCHS + 1, shape[:1]), EPOCHS + 1)
        values = np.where(np.arange(1, EPOCHS + 1) >= when[:, None], np.nan, values)
        return values, when

    def at(self, lr: float, epoch: int) -> list[float | None]:
        """Each tuning seed's metric at `epoch` (None: diverged by then)."""
        values, _ = self.cache[lr]
        return [None if math.isnan(v) else float(v) for v in values[:, epoch - 1]]

    def epochs(self, lr: float, start: int, end: int) -> int:
        """Epochs trained from `start` to `end` over the seeds (a diverged run stops)."""
        _, when = self.cache[lr]
        return int(np.sum(np.clip(np.minimum(when, end) - start, 0, None)))


def tune_grid(runs: Runs) -> tuple[float | None, int]:
    lrs = list(GRID_LR)
    runs.of(lrs)
    best = select([runs.at(lr, EPOCHS) for lr in lrs])
    spent = sum(runs.epochs(lr, 0, EPOCHS) for lr in lrs)
    return (None if best is None else lrs[best]), spent


def tune_halving(runs: Runs) -> tuple[float | None, int]:
    """Successive halving over the grid; the survivors resume their runs at each rung."""
    alive = list(GRID_LR)
    runs.of(alive)
    rungs = runs.cell.rungs
    plan = rung_plan(len(alive), rungs, runs.cell.keep)
    spent, start = 0, 0
    for i, rung in enumerate(rungs):
        spent += sum(runs.epochs(lr, start, rung) for lr in alive)
        n_next = plan[i + 1] if i + 1 < len(rungs) else 1
        names = {str(lr): runs.at(lr, rung) for lr in alive}
        alive = [float(name) for name in promote_seeds(names, n_next, True)]
        if not alive:
            return None, spent
        start = rung
    return alive[0], spent


def tune_zoom(runs: Runs, pick: float | None, spent: int) -> tuple[float | None, int]:
    """The zoom stage after halving: the new candidates train the full budget; the best of the
    pick and them by `select` (listed in ascending lr: a tie goes to the smaller)."""
    if pick is None:
        return None, spent
    new = zoom_candidates(GRID_LR, pick, 1)
    runs.of(new)
    spent += sum(runs.epochs(lr, 0, EPOCHS) for lr in new)
    lrs = sorted([pick, *new])
    best = select([runs.at(lr, EPOCHS) for lr in lrs])
    return lrs[best], spent


def simulate(cell: Cell, studies: int) -> dict:
    rng = np.random.default_rng(cell.seed())
    arms = len(cell.shape.arms)
    n, n_img = cell.deciding_seeds, cell.n_images
    names = ["base"] + [f"v{i}" for i in range(1, arms)]
    true_best = np.array([a.height for a in cell.shape.arms])
    truth = np.sign(np.round((true_best[1:] - true_best[0]) * n_img, 9))  # images
    out = {w: {"error": [], "fwer": [], "stopped": [], "epochs": [], "v1_better": [],
               "picks": []} for w in WAYS}
    for _ in range(studies):
        study_seed = int(rng.integers(2**62))
        peaks = [rng.uniform(*a.peak) for a in cell.shape.arms]
        # one deciding noise per (arm, seed), shared by the three ways: paired comparisons
        z_dec = rng.standard_normal((arms, n))
        u_div = rng.random((arms, n))
        picks = {w: [] for w in WAYS}
        spent = dict.fromkeys(WAYS, 0)
        for a, arm in enumerate(cell.shape.arms):
            runs = Runs(cell, arm, peaks[a], (study_seed, a))
            g, e_g = tune_grid(runs)
            h, e_h = tune_halving(runs)
            z, e_z = tune_zoom(runs, h, e_h)
            for w, (p, e) in zip(WAYS, ((g, e_g), (h, e_h), (z, e_z))):
                picks[w].append(p)
                spent[w] += e
        for w in WAYS:
            rec = out[w]
            rec["epochs"].append(spent[w])
            if any(p is None for p in picks[w]):
                rec["stopped"].append(True)
                for key in ("error", "fwer", "v1_better"):
                    rec[key].append(False)
                rec["picks"].append(None)
                continue
            rec["stopped"].append(False)
            x = np.log10(picks[w])
            f = np.array([arm.final(x[a], peaks[a], n_img)
                          for a, arm in enumerate(cell.shape.arms)])
            diverges = np.array([arm.diverge * arm.collapsed(x[a], peaks[a])
                                 for a, arm in enumerate(cell.shape.arms)])
            counts = np.clip(np.rint(f[:, None] * n_img + cell.shape.sd * z_dec), 0, n_img)
            values = (counts / n_img).astype(np.float32).astype(np.float64)
            results = {names[a]: {s: (None if u_div[a, s] < diverges[a] else values[a, s])
                                  for s in range(n)} for a in range(arms)}
            verdicts = [r["verdict"] for r in
                        decide(results, "base", cell.design, extras=False).rows]
            sign = np.array([{"better": 1, "worse": -1}.get(v, 0) for v in verdicts])
            picked = np.sign(np.round((f[1:] - f[0]) * n_img, 9))
            claim = sign != 0
            rec["error"].append(bool(np.any(claim & (sign != truth))))
            rec["fwer"].append(bool(np.any(claim & (sign != picked))))
            rec["v1_better"].append(verdicts[0] == "better")
            rec["picks"].append(list(picks[w]))
    return summarize(cell, out, studies)


def rate(hits: list[bool]) -> dict:
    r = float(np.mean(hits))
    return {"rate": r, "se": math.sqrt(r * (1 - r) / len(hits))}


def summarize(cell: Cell, out: dict, studies: int) -> dict:
    alpha = cell.design.alpha
    se_alpha = math.sqrt(alpha * (1 - alpha) / studies)
    grid_epochs = len(GRID_LR) * cell.tuning_seeds * EPOCHS * len(cell.shape.arms)
    res: dict = {"shape": cell.shape.name, "about": cell.shape.about,
                 "cell": {"tuning_seeds": cell.tuning_seeds,
                          "deciding_seeds": cell.deciding_seeds, "gamma": cell.gamma,
                          "n_images": cell.n_images, "sd": cell.shape.sd,
                          "rungs": list(cell.rungs), "keep": cell.keep,
                          "arms": [asdict(a) for a in cell.shape.arms]},
                 "studies": studies, "bound": alpha + 3 * se_alpha,
                 "planned_grid_epochs": grid_epochs, "ways": {}}
    base_err = np.array(out["grid"]["error"])
    for w in WAYS:
        rec = out[w]
        err = np.array(rec["error"])
        diff = err.astype(float) - base_err.astype(float)  # paired, same studies
        res["ways"][w] = {
            "error": rate(rec["error"]), "fwer": rate(rec["fwer"]),
            "fwer_holds": float(np.mean(rec["fwer"])) <= alpha + 3 * se_alpha,
            "stopped": rate(rec["stopped"]), "v1_better": rate(rec["v1_better"]),
            "epochs_mean": float(np.mean(rec["epochs"])),
            "epochs_share_of_grid": float(np.mean(rec["epochs"]))
            / float(np.mean(out["grid"]["epochs"])),
            "error_minus_grid": float(diff.mean()),
            "error_minus_grid_se": float(diff.std(ddof=1) / math.sqrt(studies))
            if studies > 1 else 0.0,
            "same_picks_as_grid": float(np.mean([p == g for p, g in
                                                 zip(rec["picks"], out["grid"]["picks"])])),
        }
    return res


def verdict_on_targets(res: dict) -> dict:
    """The issue's targets, read off one shape's result (no higher error: at most 2 paired MC
    SE above the grid's; lower: at least 2 below)."""
    ways = res["ways"]
    h, z = ways["halving"], ways["halving+zoom"]
    return {
        "halving_epochs_le_50pct": h["epochs_share_of_grid"] <= 0.5,
        "halving_no_higher_error": h["error_minus_grid"] <= 2 * h["error_minus_grid_se"],
        "zoom_epochs_le_grid": z["epochs_share_of_grid"] <= 1.0,
        "zoom_no_higher_error": z["error_minus_grid"] <= 2 * z["error_minus_grid_se"],
        "zoom_lower_error": z["error_minus_grid"] < -2 * z["error_minus_grid_se"],
        "fwer_holds": all(w["fwer_holds"] for w in ways.values()),
    }


def cells(gammas: tuple[float, ...], rungs: tuple[int, ...] = RUNGS,
          keep: float = KEEP) -> list[Cell]:
    return [Cell(shape, gamma=g, rungs=rungs, keep=keep) for g in gammas for shape in SHAPES]


def run(cell_list: list[Cell], studies: int) -> dict:
    out: dict = {"machine": sim_machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                 time.gmtime()),
                 "grid_lr": list(GRID_LR), "rungs": list(cell_list[0].rungs),
                 "keep": cell_list[0].keep,
                 "epochs": EPOCHS, "results": []}
    t0 = time.perf_counter()
    for cell in cell_list:
        t = time.perf_counter()
        res = simulate(cell, studies)
        res["targets"] = verdict_on_targets(res)
        res["seconds"] = time.perf_counter() - t
        out["results"].append(res)
        line = " | ".join(f"{w}: err {r['error']['rate']:.3f} fwer {r['fwer']['rate']:.3f} "
                          f"ep {r['epochs_share_of_grid']:.2f}" for w, r in res["ways"].items())
        print(f"gamma {cell.gamma:g} {cell.shape.name:16s} {line} [{res['seconds']:.0f} s]",
              flush=True)
    out["seconds"] = time.perf_counter() - t0
    return out


def tables(out: dict) -> str:
    """BENCHMARKS.md's table from a finished run's JSON (no retyping)."""
    lines = [f"rungs {out['rungs']}, keep {out['keep']}", "",
             "| γ | shape | way | verdict wrong about true bests | − grid's (paired) "
             "| FWER, selected configs | stopped | tuning epochs (share of grid) |",
             "|---|---|---|---|---|---|---|---|"]
    for res in out["results"]:
        for w, r in res["ways"].items():
            d = ("–" if w == "grid" else
                 f"{r['error_minus_grid']:+.3f} ± {r['error_minus_grid_se']:.3f}")
            lines.append(
                f"| {res['cell']['gamma']:g} | {res['shape']} | {w} | "
                f"{r['error']['rate']:.3f} ± {r['error']['se']:.3f} | {d} | "
                f"{r['fwer']['rate']:.3f} ± {r['fwer']['se']:.3f} | "
                f"{r['stopped']['rate']:.3f} | {r['epochs_mean']:.0f} "
                f"({100 * r['epochs_share_of_grid']:.0f} %) |")
    return "\n".join(lines)


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gammas = sorted({r["cell"]["gamma"] for r in out["results"]})
    fig, axes = plt.subplots(len(gammas), 3, figsize=(16, 4.2 * len(gammas)), squeeze=False)
    colours = {"grid": "#555", "halving": "#1f77b4", "halving+zoom": "#2ca02c"}
    for row, gamma in zip(axes, gammas):
        results = [r for r in out["results"] if r["cell"]["gamma"] == gamma]
        xs = np.arange(len(results))
        for k, w in enumerate(WAYS):
            off = (k - 1) * 0.27
            for ax, key in ((row[0], "error"), (row[1], "fwer")):
                ax.bar(xs + off, [r["ways"][w][key]["rate"] for r in results], 0.27,
                       yerr=[r["ways"][w][key]["se"] for r in results], color=colours[w],
                       label=w)
            row[2].bar(xs + off, [100 * r["ways"][w]["epochs_share_of_grid"] for r in results],
                       0.27, color=colours[w], label=w)
        row[1].axhline(results[0]["bound"], color="k", ls=":", lw=1, label="alpha + 3 MC SE")
        row[2].axhline(50, color="k", ls="--", lw=1, label="50 % of the grid")
        titles = ("verdict wrong about the variants at their true best",
                  "FWER about the selected configurations", "tuning epochs, % of the grid's")
        for ax, title in zip(row, titles):
            ax.set_xticks(xs, [r["shape"] for r in results], rotation=20, fontsize=8)
            ax.set_title(f"{title} (γ {gamma:g})", fontsize=10)
            ax.legend(fontsize=7)
    fig.suptitle(f"Grid vs successive halving (rungs {out['rungs']}, keep {out['keep']}) vs "
                 f"halving + zoom; {out['results'][0]['studies']} studies per shape, "
                 f"T = {out['results'][0]['cell']['tuning_seeds']} tuning seeds, n = "
                 f"{out['results'][0]['cell']['deciding_seeds']} deciding seeds", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=2000, help="studies per shape")
    ap.add_argument("--gamma", type=float, nargs="+", default=[0.5, 1.0],
                    help="learning speed ∝ lr**gamma (the short-horizon bias of early rungs)")
    ap.add_argument("--rungs", type=int, nargs="+", default=list(RUNGS),
                    help=f"halving's rungs in epochs, the last {EPOCHS} (default: budget_rungs)")
    ap.add_argument("--keep", type=float, default=KEEP)
    add_sim_outputs(ap)
    args = ap.parse_args()
    if replay_tables(args, tables, plot):
        return
    if args.rungs[-1] != EPOCHS:
        ap.error(f"--rungs: the last rung is the full budget, {EPOCHS}")
    out = run(cells(tuple(args.gamma), tuple(args.rungs), args.keep), args.studies)
    save_sim_outputs(args, out, plot)
    print(tables(out))


if __name__ == "__main__":
    main()

