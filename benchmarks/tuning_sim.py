"""Proof by simulation of tuned comparisons (issue 21): what choosing each variant's learning rate
on tuning seeds, then deciding on fresh seeds, guarantees, and what it does not.

A synthetic study: a baseline and `m` variants. Each arm has a response curve, its expected
accuracy against x = log10(learning rate): a concave bump with a peak location and a height.
Every run's accuracy is a count of images k of `n_images`, drawn around the curve with a seed
spread of `sd` images, and reaches the statistics as the pipeline records it: k/n cast through
float32, as Keras reports accuracies. Each arm's candidate is chosen by
`cnnablate.decisions.tuning.select` (mean over `T` tuning seeds) and the deciding runs (`n`
fresh seeds) at the chosen candidates are decided by `cnnablate.decisions.decide.decide`
(Holm, alpha 0.05): the functions the workflow calls.

Scenarios (docs/statistics.md, "Tuned comparisons: what is guaranteed"; BENCHMARKS.md 9):
- guarantee: a flat curve (every pick the same distribution) in each cell (T, n, m), and a
  shared peaked curve, counting errors only among comparisons whose selected configurations
  are truly equal (the bound covers exactly these); `--exact` runs every cell on exact counts
  k/n instead, for comparison.
- (a) scientific error: every arm shares one non-flat curve; any better/worse verdict is a
  verdict on tuning noise, by tuning seeds, curve shape, grid spacing and seed spread.
- (b) the shortcut: choose on the deciding seeds themselves, under a flat curve; all arms
  tuned alike, and variants tuned against a baseline held at one setting.
- (c) one variant's best learning rate half a decade below the others' (same height):
  everyone at the baseline's chosen learning rate (shared) against each at its own (tuned).

    .venv/bin/python benchmarks/tuning_sim.py --json benchmarks/tuning_sim.json \
        --figure benchmarks/tuning_sim.png
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
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
from cnnablate.decisions.tuning import select  # noqa: E402

# Candidate grids in log10(learning rate).
COARSE = (-2.0, -1.5, -1.0)  # 0.01, 0.0316, 0.1: half a decade apart
FINE = (-2.0, -1.75, -1.5, -1.25, -1.0)  # quarter decades over the same range
EIGHTHS = tuple(-2.0 + i / 8 for i in range(9))  # 9 candidates over the same range
WIDE = (-2.5, -2.0, -1.5, -1.0, -0.5)  # half decades, room for a shifted peak (scenario c)
HALF_DECADE = 0.5
TUNING_SEEDS = (1, 2, 3)
DECIDING_SEEDS = (2, 3, 5)
COMPARISONS = (1, 3, 5)


@dataclass(frozen=True)
class Curve:
    """Expected accuracy at x = log10(lr): height - drop * (|x - peak| / half a decade)^power,
    `drop` in images of the split (0: flat); power 2 is peaked, 4 flat-topped (the same loss
    half a decade away, far less near the peak)."""

    name: str
    height: float = 0.95
    drop: float = 10.0
    power: int = 2

    def accuracy(self, x: np.ndarray, peak: np.ndarray, n_images: int) -> np.ndarray:
        loss = self.drop / n_images * (np.abs(x - peak) / HALF_DECADE) ** self.power
        return np.clip(self.height - loss, 0.0, 1.0)


FLAT = Curve("flat", drop=0.0)
PEAKED = Curve("peaked", power=2)
FLAT_TOPPED = Curve("flat-topped", power=4)


@dataclass(frozen=True)
class Cell:
    """One simulated setting. mode: `fresh` (choose on tuning seeds, decide on fresh ones),
    `shortcut` (choose on the deciding seeds' own values), `shared` (every arm at the
    baseline's choice). `baseline_grid` None: the baseline tunes over `grid` like the others."""

    scenario: str
    curve: Curve
    grid: tuple[float, ...]
    tuning_seeds: int
    deciding_seeds: int
    comparisons: int
    sd: float = 2.0  # seed spread of a run's accuracy, in images
    n_images: int = 270  # digits' validation split
    peak_center: float = -1.5
    peak_width: float = 0.5  # the shared peak is uniform in center +- width/2, per study
    shift: float = 0.0  # variant v1's peak, relative to the others' (scenario c)
    baseline_grid: tuple[float, ...] | None = None
    mode: str = "fresh"
    form: str = "recorded"  # recorded: float32(k/n), as Keras reports; exact: k/n in float64
    design: Design = field(default_factory=Design)

    def seed(self) -> int:
        # Deterministic per cell, the same draws for both value forms (side by side).
        return zlib.crc32(repr(replace(self, form="recorded")).encode())

    def label(self) -> str:
        return f"T{self.tuning_seeds} n{self.deciding_seeds} m{self.comparisons}"


def recorded(counts: np.ndarray, n_images: int, form: str) -> np.ndarray:
    """Accuracies as the statistics see them: through float32 (as recorded) or exact."""
    exact = counts / n_images
    return exact.astype(np.float32).astype(np.float64) if form == "recorded" else exact


def draw_counts(rng: np.random.Generator, p: np.ndarray, sd: float, n_images: int,
                size: tuple[int, ...]) -> np.ndarray:
    """Image counts around the expected accuracy `p` (broadcast over `size`), seed spread `sd`."""
    noise = rng.standard_normal(size)
    return np.clip(np.rint(p * n_images + sd * noise), 0, n_images)


def arm_grids(cell: Cell) -> list[np.ndarray]:
    base = cell.baseline_grid if cell.baseline_grid is not None else cell.grid
    return [np.asarray(base)] + [np.asarray(cell.grid)] * cell.comparisons


def choose(values: np.ndarray) -> int:
    """`select` over one arm's candidates x seeds values (floats as recorded)."""
    pick = select(values.tolist())
    if pick is None:  # cannot happen: every simulated run completes
        raise RuntimeError("no candidate with a value on every seed")
    return pick


def expected_accuracies(cell: Cell, rng: np.random.Generator, studies: int) -> list[np.ndarray]:
    """Per arm, (studies, candidates): each candidate's expected accuracy in each study."""
    arms = cell.comparisons + 1
    shifts = np.zeros(arms)
    if arms > 1:
        shifts[1] = cell.shift
    half = cell.peak_width / 2
    peaks = rng.uniform(cell.peak_center - half, cell.peak_center + half, (studies, 1)) + shifts
    return [cell.curve.accuracy(g[None, :], peaks[:, a:a + 1], cell.n_images)
            for a, g in enumerate(arm_grids(cell))]


def choose_all(values: np.ndarray) -> list[int]:
    """One arm's pick in every study; `values`: (studies, candidates, seeds)."""
    return [choose(v) for v in values]


def shortcut_runs(cell: Cell, rng: np.random.Generator, means: list[np.ndarray],
                  n_dec: int) -> tuple[np.ndarray, np.ndarray]:
    """(picks, deciding counts) when each arm is chosen on the deciding runs themselves."""
    studies = len(means[0])
    picks = np.zeros((studies, len(means)), dtype=int)
    dec_counts = np.zeros((studies, len(means), n_dec))
    for a, mean in enumerate(means):
        counts = draw_counts(rng, mean[:, :, None], cell.sd, cell.n_images,
                             (studies, mean.shape[1], n_dec))
        picks[:, a] = choose_all(recorded(counts, cell.n_images, cell.form))
        dec_counts[:, a] = counts[np.arange(studies), picks[:, a]]
    return picks, dec_counts


def fresh_runs(cell: Cell, rng: np.random.Generator, means: list[np.ndarray],
               n_dec: int) -> tuple[np.ndarray, np.ndarray]:
    """(picks, deciding counts): chosen on tuning runs, then new deciding runs at the picks
    (mode `shared`: every arm at the baseline's pick)."""
    studies = len(means[0])
    picks = np.zeros((studies, len(means)), dtype=int)
    for a, mean in enumerate(means):
        if cell.mode == "shared" and a > 0:
            picks[:, a] = picks[:, 0]  # every arm has the baseline's grid in this mode
            continue
        counts = draw_counts(rng, mean[:, :, None], cell.sd, cell.n_images,
                             (studies, mean.shape[1], cell.tuning_seeds))
        picks[:, a] = choose_all(recorded(counts, cell.n_images, cell.form))
    dec_counts = np.zeros((studies, len(means), n_dec))
    for a, mean in enumerate(means):
        p = mean[np.arange(studies), picks[:, a]]
        dec_counts[:, a] = draw_counts(rng, p[:, None], cell.sd, cell.n_images, (studies, n_dec))
    return picks, dec_counts


def decide_all(cell: Cell, values: np.ndarray) -> tuple[np.ndarray, float]:
    """Every study's verdicts (studies, comparisons) by `decide`, and the seeds used per arm."""
    studies, arms = values.shape[:2]
    names = ["base"] + [f"v{i}" for i in range(1, arms)]
    verdicts = np.empty((studies, arms - 1), dtype=object)
    seeds_used = 0
    for s in range(studies):
        results = {names[a]: dict(enumerate(values[s, a].tolist())) for a in range(arms)}
        out = decide(results, "base", cell.design, extras=False)
        verdicts[s] = [r["verdict"] for r in out.rows]
        seeds_used += sum(out.seeds_used.values())
    return verdicts, seeds_used / studies / arms


def simulate(cell: Cell, studies: int) -> dict:
    """Rates over `studies` synthetic studies of `cell` (see the module docstring)."""
    rng = np.random.default_rng(cell.seed())
    means = expected_accuracies(cell, rng, studies)
    n_dec = cell.design.max if cell.design.adaptive else cell.deciding_seeds
    runs = shortcut_runs if cell.mode == "shortcut" else fresh_runs
    picks, dec_counts = runs(cell, rng, means, n_dec)
    picked = np.stack([m[np.arange(studies), picks[:, a]] for a, m in enumerate(means)], 1)
    # The bound covers comparisons whose selected configurations have the same distribution.
    equal = np.isclose(picked[:, 1:], picked[:, :1], rtol=0, atol=1e-12)
    verdicts, seeds_per_arm = decide_all(cell, recorded(dec_counts, cell.n_images, cell.form))
    return summarize(cell, verdicts, equal, seeds_per_arm)


def rate(hits: np.ndarray) -> dict:
    r = float(np.mean(hits))
    return {"rate": r, "se": math.sqrt(r * (1 - r) / len(hits))}


def summarize(cell: Cell, verdicts: np.ndarray, equal: np.ndarray, seeds_per_arm: float) -> dict:
    studies = len(verdicts)
    claim = np.isin(verdicts, ("better", "worse"))
    alpha = cell.design.alpha
    # Monte-Carlo SE of a rate at alpha's level: the bound tested is alpha + 3 of these.
    se_alpha = math.sqrt(alpha * (1 - alpha) / studies)
    false = rate(np.any(claim & equal, axis=1))
    out = {
        "cell": cell_dict(cell), "studies": studies,
        "fwer_equal_picks": false["rate"], "fwer_equal_picks_se": false["se"],
        "mc_se_at_alpha": se_alpha, "bound": alpha + 3 * se_alpha,
        "holds": false["rate"] <= alpha + 3 * se_alpha,
        "any_verdict": rate(np.any(claim, axis=1)),
        "share_equal_picks": float(np.mean(equal)),
        "seeds_per_arm": seeds_per_arm,
    }
    if cell.shift:
        out["v1_worse"] = rate(verdicts[:, 0] == "worse")
        out["v1_better"] = rate(verdicts[:, 0] == "better")
        out["others_any_verdict"] = rate(np.any(claim[:, 1:], axis=1))
    return out


def cell_dict(cell: Cell) -> dict:
    d = asdict(cell)
    d["grid"] = list(cell.grid)  # as JSON gives it back
    d["baseline_grid"] = None if cell.baseline_grid is None else list(cell.baseline_grid)
    d["design"] = {k: v for k, v in d["design"].items() if v is not None}
    return d


def guarantee_cells() -> list[Cell]:
    """Flat curve, and a shared peaked curve (equal picks), every (T, n, m); an adaptive design;
    a 10,000-image split (CIFAR's test set) with a spread of 15 images."""
    cells = [Cell(f"guarantee-{curve.name}", curve, COARSE, t, n, m)
             for t in TUNING_SEEDS for n in DECIDING_SEEDS for m in COMPARISONS
             for curve in (FLAT, PEAKED)]
    cells.append(Cell("guarantee-adaptive", FLAT, COARSE, 1, 6, 5,
                      design=Design(initial=2, max=6, step=2)))
    cells += [Cell("guarantee-10000", FLAT, COARSE, 1, n, 5, sd=15.0, n_images=10_000)
              for n in DECIDING_SEEDS]
    return cells


def scientific_cells() -> list[Cell]:
    """(a): one shared curve; n = 5 and m = 5, the most sensitive deciding design here."""
    return [Cell("scientific", curve, grid, t, 5, 5, sd=sd)
            for sd in (2.0, 5.0) for curve in (PEAKED, FLAT_TOPPED) for grid in (COARSE, FINE)
            for t in (1, 2, 3, 5)]


def shortcut_cells() -> list[Cell]:
    """(b): flat curve. All arms tuned alike on the deciding seeds; or variants tuned over 5
    or 9 candidates against a baseline held at one setting (a published learning rate, or a
    variant given a wider grid than the others), with fresh tuning seeds beside it."""
    cells = []
    for n in DECIDING_SEEDS:
        for m in COMPARISONS:
            cells.append(Cell("shortcut-all-tuned", FLAT, COARSE, 0, n, m, mode="shortcut"))
            for grid in (FINE, EIGHTHS):
                asym = Cell("shortcut-baseline-fixed", FLAT, grid, 0, n, m, mode="shortcut",
                            baseline_grid=(-1.5,))
                cells += [asym, replace(asym, scenario="fresh-baseline-fixed", tuning_seeds=1,
                                        mode="fresh")]
    return cells


def shifted_cells() -> list[Cell]:
    """(c): v1's peak half a decade lower, same height; shared lr against each tuned."""
    return [Cell("shifted", PEAKED, WIDE, t, n, 3, peak_center=-1.0, shift=-0.5, mode=mode)
            for t in TUNING_SEEDS for n in DECIDING_SEEDS for mode in ("shared", "fresh")]


def run(groups: dict[str, list[Cell]], sizes: dict[str, int]) -> dict:
    out: dict = {"machine": sim_machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                 time.gmtime())}
    t0 = time.perf_counter()
    for group, cells in groups.items():
        out[group] = []
        for cell in cells:
            t = time.perf_counter()
            res = simulate(cell, sizes[group])
            res["seconds"] = time.perf_counter() - t
            out[group].append(res)
            print(f"{group:10s} {cell.scenario:24s} {cell.curve.name:11s} {cell.mode:8s} "
                  f"{cell.form:8s} {cell.label():10s} sd{cell.sd:g} K{len(cell.grid)}: "
                  f"equal-picks FWER {res['fwer_equal_picks']:.4f} (bound {res['bound']:.4f}) "
                  f"any {res['any_verdict']['rate']:.4f} [{res['seconds']:.1f} s]", flush=True)
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=6000,
                    help="studies per guarantee cell (flat curve, equal picks)")
    ap.add_argument("--other-studies", type=int, default=4000,
                    help="studies per cell of (a), (b) and (c)")
    ap.add_argument("--quick", action="store_true", help="300 studies per cell")
    ap.add_argument("--exact", action="store_true",
                    help="values as exact counts k/n instead of as recorded (float32), to compare")
    add_sim_outputs(ap)
    args = ap.parse_args()
    if replay_tables(args, tables, plot):
        return
    groups = {"guarantee": guarantee_cells(), "scientific": scientific_cells(),
              "shortcut": shortcut_cells(), "shifted": shifted_cells()}
    if args.exact:
        groups = {k: [replace(c, form="exact") for c in v] for k, v in groups.items()}
    sizes = {"guarantee": args.studies, "scientific": args.other_studies,
             "shortcut": args.other_studies, "shifted": args.other_studies}
    if args.quick:
        sizes = dict.fromkeys(sizes, 300)
    save_sim_outputs(args, run(groups, sizes), plot)


def _r(row: dict, key: str = "fwer_equal_picks") -> str:
    """A rate with its Monte-Carlo SE, as the tables print it."""
    if key == "fwer_equal_picks":
        return f"{row[key]:.3f} ± {row[key + '_se']:.3f}"
    return f"{row[key]['rate']:.3f} ± {row[key]['se']:.3f}"


def _one(rows: list[dict], **where) -> dict:
    (row,) = _pick(rows, **where)
    return row


def tables(out: dict) -> str:
    """The tables of BENCHMARKS.md section 9, from the JSON of a run (no retyping)."""
    g, lines = out["guarantee"], []
    lines += ["| T | n | m | flat curve | shared peaked curve: equal picks | share of equal picks "
              "| shared peaked curve: any better/worse |", "|---|---|---|---|---|---|---|"]
    for t in TUNING_SEEDS:
        for n in DECIDING_SEEDS:
            for m in COMPARISONS:
                at = {"tuning_seeds": t, "deciding_seeds": n, "comparisons": m}
                flat = _one(g, scenario="guarantee-flat", **at)
                peaked = _one(g, scenario="guarantee-peaked", **at)
                lines.append(f"| {t} | {n} | {m} | {_r(flat)} | {_r(peaked)} | "
                             f"{peaked['share_equal_picks']:.2f} | "
                             f"{_r(peaked, 'any_verdict')} |")
    lines += ["", "| extra cell (flat curve, T 1, m 5) | family-wise error |", "|---|---|"]
    lines.append(f"| adaptive, looks at 2, 4, 6 seeds | "
                 f"{_r(_one(g, scenario='guarantee-adaptive'))} |")
    for row in _pick(g, scenario="guarantee-10000"):
        lines.append(f"| 10,000 images, spread 15, n {row['cell']['deciding_seeds']} | "
                     f"{_r(row)} |")
    lines += ["", "| spread (images) | curve | grid | T = 1 | T = 2 | T = 3 | T = 5 |",
              "|---|---|---|---|---|---|---|"]
    for sd in (2.0, 5.0):
        for curve in ("peaked", "flat-topped"):
            for grid, name in ((COARSE, "half decade (3)"), (FINE, "quarter decade (5)")):
                sel = [r for r in _pick(out["scientific"], sd=sd, grid=list(grid))
                       if r["cell"]["curve"]["name"] == curve]
                lines.append(f"| {sd:g} | {curve} | {name} | "
                             + " | ".join(_r(r, "any_verdict") for r in sel) + " |")
    lines += ["", "| n | m | shortcut, all tuned (3) | shortcut, baseline fixed (5) | fresh (5) "
              "| shortcut, baseline fixed (9) | fresh (9) |", "|---|---|---|---|---|---|---|"]
    sc = out["shortcut"]
    for n in DECIDING_SEEDS:
        for m in COMPARISONS:
            at = {"deciding_seeds": n, "comparisons": m}
            cells = [_one(sc, scenario="shortcut-all-tuned", **at)] + [
                _one(sc, scenario=s, grid=list(grid), **at) for grid in (FINE, EIGHTHS)
                for s in ("shortcut-baseline-fixed", "fresh-baseline-fixed")]
            lines.append(f"| {n} | {m} | " + " | ".join(_r(c) for c in cells) + " |")
    lines += ["", "| T | n | v1 worse, shared lr | v1 worse, tuned | v1 better, tuned "
              "| others: any verdict, shared | tuned |", "|---|---|---|---|---|---|---|"]
    for t in TUNING_SEEDS:
        for n in DECIDING_SEEDS:
            sh, tu = (_one(out["shifted"], tuning_seeds=t, deciding_seeds=n, mode=mode)
                      for mode in ("shared", "fresh"))
            lines.append(f"| {t} | {n} | {_r(sh, 'v1_worse')} | {_r(tu, 'v1_worse')} | "
                         f"{_r(tu, 'v1_better')} | {_r(sh, 'others_any_verdict')} | "
                         f"{_r(tu, 'others_any_verdict')} |")
    return "\n".join(lines)


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    plot_guarantee(axes[0, 0], out["guarantee"])
    plot_scientific(axes[0, 1], out["scientific"])
    plot_shortcut(axes[1, 0], out["shortcut"])
    plot_shifted(axes[1, 1], out["shifted"])
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _pick(rows: list[dict], **where) -> list[dict]:
    return [r for r in rows if all(r["cell"][k] == v for k, v in where.items())]


def plot_guarantee(ax, rows: list[dict]) -> None:
    for scenario, marker, label in (("guarantee-flat", "o", "flat curve"),
                                    ("guarantee-peaked", "^", "shared peaked curve, equal picks")):
        sel = _pick(rows, scenario=scenario)
        xs = np.arange(len(sel)) + (-0.15 if marker == "o" else 0.15)
        ax.plot(xs, [r["fwer_equal_picks"] for r in sel], marker, ms=5, label=label)
    sel = _pick(rows, scenario="guarantee-flat")
    ax.axhline(0.05, color="k", ls="--", lw=1, label="alpha = 0.05")
    ax.axhline(sel[0]["bound"], color="k", ls=":", lw=1, label="alpha + 3 MC SE")
    ax.set_xticks(range(len(sel)), [row_label(r) for r in sel], rotation=90, fontsize=6)
    ax.set_ylabel("family-wise error (equal selected configurations)")
    ax.set_title(f"Guarantee: fresh deciding seeds, {sel[0]['studies']} studies per cell "
                 f"({sel[0]['cell']['form']} values)")
    top = max(r["fwer_equal_picks"] for r in rows)
    ax.set_ylim(0, max(1.4 * sel[0]["bound"], 1.1 * top))  # room for the legend above
    ax.legend(fontsize=7, ncol=2, loc="upper left")


def row_label(row: dict) -> str:
    c = row["cell"]
    return f"T{c['tuning_seeds']} n{c['deciding_seeds']} m{c['comparisons']}"


def plot_scientific(ax, rows: list[dict]) -> None:
    for sd, ls in ((2.0, "-"), (5.0, ":")):
        for curve, color in (("peaked", "#b44"), ("flat-topped", "#47a")):
            for grid, marker in ((list(COARSE), "o"), (list(FINE), "s")):
                sel = [r for r in _pick(rows, sd=sd, grid=grid)
                       if r["cell"]["curve"]["name"] == curve]
                spacing = "half" if grid == list(COARSE) else "quarter"
                ax.plot([r["cell"]["tuning_seeds"] for r in sel],
                        [r["any_verdict"]["rate"] for r in sel], ls=ls, marker=marker,
                        color=color, label=f"{curve}, {spacing}-decade grid, sd {sd:g} images")
    ax.axhline(0.05, color="k", ls="--", lw=1)
    ax.set_xlabel("tuning seeds T")
    ax.set_ylabel("P(any better/worse) with one shared curve")
    ax.set_title("(a) One shared curve (n = 5, m = 5; 10 images lost half a decade off)")
    ax.legend(fontsize=6)


def plot_shortcut(ax, rows: list[dict]) -> None:
    series = (("shortcut-all-tuned", COARSE, "shortcut, all arms tuned alike (3 candidates)"),
              ("fresh-baseline-fixed", EIGHTHS, "fresh seeds, baseline at one setting (9)"),
              ("shortcut-baseline-fixed", FINE, "shortcut, baseline at one setting (5)"),
              ("shortcut-baseline-fixed", EIGHTHS, "shortcut, baseline at one setting (9)"))
    for i, (scenario, grid, label) in enumerate(series):
        sel = _pick(rows, scenario=scenario, grid=list(grid))
        ax.plot(np.arange(len(sel)) + 0.15 * (i - 1.5), [r["fwer_equal_picks"] for r in sel],
                "o", ms=5, label=label)
    sel = _pick(rows, scenario="shortcut-all-tuned")
    ax.set_xticks(range(len(sel)), [f"n{r['cell']['deciding_seeds']} m{r['cell']['comparisons']}"
                                    for r in sel])
    ax.axhline(0.05, color="k", ls="--", lw=1, label="alpha = 0.05")
    ax.axhline(sel[0]["bound"], color="k", ls=":", lw=1, label="alpha + 3 MC SE")
    ax.set_ylabel("family-wise error, flat curve")
    ax.set_title("(b) Choosing on the deciding seeds themselves")
    ax.set_ylim(0, 0.16)
    ax.legend(fontsize=7, ncol=2, loc="upper center")


def plot_shifted(ax, rows: list[dict]) -> None:
    labels = []
    for i, (mode, color) in enumerate((("shared", "#b44"), ("fresh", "#4a7"))):
        sel = _pick(rows, mode=mode)
        xs = np.arange(len(sel)) + 0.2 * (i - 0.5)
        ax.bar(xs, [r["v1_worse"]["rate"] for r in sel], width=0.4, color=color,
               label="everyone at the baseline's chosen lr" if mode == "shared"
               else "each arm at its own chosen lr")
        labels = [row_label(r) for r in sel]
    ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
    ax.set_ylabel("P(v1 called worse)")
    ax.set_title("(c) v1's best lr half a decade lower, same height (m = 3)")
    ax.legend(fontsize=7)


if __name__ == "__main__":
    main()
