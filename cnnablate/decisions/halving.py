"""Tuning at a fraction of the cost and a finer resolution (issue #31), pure Python: successive
halving's rung plan and promotions, the zoom stage's new candidates, why a pick sits at the edge
of its grid, and the budget curve (expected best of n candidates).

- **Successive halving** (Jamieson & Talwalkar 2016; the rungs of Hyperband, Li et al. 2018, and
  ASHA, Li et al. 2020): every candidate trains to the first rung's epochs on each tuning seed,
  the best `keep` fraction (by the tuning metric's mean over the tuning seeds, ties and
  divergence as `cnnablate.decisions.tuning.select` has them) continues to the next rung by
  resuming its own runs, and so on; the last rung is the tuning runs' full budget.
- **Zoom**: after the grid (or halving), a numeric key is refined around its pick (geometric
  midpoints to its neighbours for positive keys such as a learning rate); a pick at the edge of
  the grid is resolved by stepping beyond the edge instead.
- **Budget curve** (Dodge et al. 2019, "Show your work"): the expected best tuning metric of n
  candidates drawn without replacement from the N tried, with Tang et al. 2020's unbiased
  order-statistics estimator (exactly the average over all n-subsets).

No TensorFlow, no Snakemake: the workflow (rules/tuning*.smk) and the report import this.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cnnablate.decisions.tuning import rank

# A product like 10 * 0.3 is 3.0000000000000004 in floating point: ceil must not make it 4.
_CEIL_SLACK = 1e-9
# New zoom values carry the fewest significant digits (from 2, up to 6) that keep them apart
# from each other and from the grid: 0.017, not 0.0173205.
_MIN_DIGITS, _MAX_DIGITS = 2, 6
_SAME = 1e-9  # relative: two settings this close are the same candidate

EDGE = "edge"
ONLY_SURVIVOR = "only_survivor"


# --- successive halving ------------------------------------------------------------------------

def check_schedule(rungs: Sequence[int], keep: float) -> None:
    """ValueError (one line) unless `rungs` are increasing positive integers and 0 < keep <= 1."""
    if not rungs:
        raise ValueError("rungs: at least one rung (epochs) is needed")
    if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs):
        raise ValueError(f"rungs: {list(rungs)} must be positive whole epochs")
    if any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise ValueError(f"rungs: {list(rungs)} must increase")
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0 < keep <= 1:
        raise ValueError(f"keep: {keep!r} must be a fraction in (0, 1]")


def rung_plan(n_candidates: int, rungs: Sequence[int], keep: float) -> list[int]:
    """How many candidates train to each rung: all at the first, then ceil(previous * keep),
    at least 1. `rung_plan(4, [1, 2, 5], 0.5) == [4, 2, 1]`."""
    check_schedule(rungs, keep)
    if n_candidates < 1:
        raise ValueError(f"n_candidates: {n_candidates} (at least 1)")
    plan = [int(n_candidates)]
    for _ in rungs[1:]:
        plan.append(max(1, math.ceil(plan[-1] * keep - _CEIL_SLACK)))
    return plan


def halving_epochs(n_candidates: int, rungs: Sequence[int], keep: float) -> int:
    """Epochs one tuning seed costs under halving: a promoted candidate resumes its run, so
    rung i adds (rungs[i] - rungs[i-1]) epochs for each of its candidates. The full grid
    costs n_candidates * rungs[-1]: `halving_epochs(4, [1, 2, 5], 0.5) == 9` of 20."""
    plan = rung_plan(n_candidates, rungs, keep)
    starts = [0, *rungs[:-1]]
    return sum(n * (end - start) for n, start, end in zip(plan, starts, rungs))


# The default rungs' cost: at most half the full grid's tuning epochs (issue #31's target).
DEFAULT_SHARE = 0.5
_RATIOS = [r / 100 for r in range(99, 0, -1)]  # the rungs' ratio c, latest first


def rounds_to_one(n_candidates: int, keep: float) -> int:
    """How many rungs halving needs until one candidate is left: 3 for 4 candidates at keep
    0.5 (4 -> 2 -> 1), 4 for 5 (5 -> 3 -> 2 -> 1), 1 for a single candidate."""
    count, alive = 1, int(n_candidates)
    while alive > 1:
        alive = max(1, math.ceil(alive * keep - _CEIL_SLACK))
        count += 1
    return count


def budget_rungs(epochs: int, n_candidates: Sequence[int], keep: float,
                 share: float = DEFAULT_SHARE) -> list[int]:
    """The default rungs: the latest geometric rungs that cost at most `share` of the full
    grid's epochs. Rungs epochs * c**k (k = m-1 .. 1, rounded down, at least 1, duplicates
    dropped) and the full `epochs`, m the rungs halving needs to reach one candidate (the
    largest of `n_candidates`, one count per variant), c the largest ratio (in steps of 0.01)
    at which the variants together cost at most `share` of their grid; where none does (few
    epochs), the cheapest. `budget_rungs(5, [4, 4], 0.5) == [1, 3, 5]` (10 of 20 epochs each).

    Why late rungs, not the budget halved down to one epoch ([1, 2, 5]): a rung decides on runs
    that have trained only so far, and early epochs favour fast starters (the short-horizon
    bias): on digits, [1, 2, 5] picked each variant's rate a decade below the grid's and
    [1, 3, 5] the grid's (BENCHMARKS.md §13); deciding as late as the budget allows is where
    that bias is smallest."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: {epochs!r} must be a positive whole number")
    if not n_candidates or min(n_candidates) < 1:
        raise ValueError(f"n_candidates: {list(n_candidates)} (at least 1 each)")
    m = min(rounds_to_one(max(n_candidates), keep), epochs)
    grid = sum(n * epochs for n in n_candidates)
    best: tuple[int, list[int]] | None = None
    for c in _RATIOS:
        early = {max(1, math.floor(round(epochs * c**k, 9))) for k in range(m - 1, 0, -1)}
        rungs = [*sorted(r for r in early if r < epochs), epochs]
        cost = sum(halving_epochs(n, rungs, keep) for n in n_candidates)
        if cost <= share * grid + _CEIL_SLACK:
            return rungs
        if best is None or cost < best[0]:
            best = (cost, rungs)
    return best[1]


def promote(scores: Mapping[str, float | None], n_keep: int,
            higher_is_better: bool) -> list[str]:
    """The candidates that continue to the next rung, best first: the `n_keep` best means
    (`scores`: candidate -> its tuning metric's mean over the tuning seeds at this rung; None or
    NaN: a run diverged or is absent). Exactly `select`'s rule, by its own code
    (`tuning.rank`): values snapped to their count grid, a tie goes to the candidate listed
    first (the mapping's order), a diverged candidate is never promoted. Fewer than `n_keep`
    when fewer have a value (none when none has: the caller stops, as `select` does)."""
    if n_keep < 1:
        raise ValueError(f"n_keep: {n_keep} (at least 1)")
    names = list(scores)
    order = rank([[scores[name]] for name in names], higher_is_better)
    return [names[i] for i in order[:n_keep]]


def promote_seeds(values: Mapping[str, Sequence[float | None]], n_keep: int,
                  higher_is_better: bool) -> list[str]:
    """`promote` from each candidate's value per tuning seed (`select`'s own input): values
    snapped per seed, then averaged, as `select` does; a candidate with any diverged seed is
    never promoted."""
    if n_keep < 1:
        raise ValueError(f"n_keep: {n_keep} (at least 1)")
    names = list(values)
    order = rank([list(values[name]) for name in names], higher_is_better)
    return [names[i] for i in order[:n_keep]]


# --- why a pick sits at the edge ---------------------------------------------------------------

def _numeric(values: Sequence) -> bool:
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in values)


def _at_edge(keys: Mapping[str, Sequence], chosen: Mapping[str, Any]) -> bool:
    # As cnnablate.decisions.selection.at_edge (tuning.csv's `at_edge`): a key with a single
    # candidate is at both ends (nothing was searched).
    return any(_numeric(candidates) and chosen.get(key) in (min(candidates), max(candidates))
               for key, candidates in keys.items())


def edge_reason(keys: Mapping[str, Sequence], values_by_candidate: Mapping[str, Mapping],
                picked: str, scores: Mapping[str, float | None] | None = None) -> str | None:
    """Why a pick may not be the variant's best: `"only_survivor"` when every other candidate
    diverged (it won by default, whatever its place in the grid: add smaller values),
    `"edge"` when a numeric key's selected value is its smallest or largest candidate while
    other candidates trained (the best may lie outside the grid: widen it), None otherwise.

    `keys`: each tuned key's candidates; `values_by_candidate`: candidate name -> its settings
    (key -> value); `picked`: the selected candidate's name; `scores`: candidate name -> its
    tuning metric's mean (None: diverged on some tuning seed; a name left out counts as
    diverged; `scores` None: nothing diverged)."""
    others = [name for name in values_by_candidate if name != picked]
    if scores is not None and others and all(
            scores.get(name) is None or _nan(scores.get(name)) for name in others):
        return ONLY_SURVIVOR
    if _at_edge(keys, values_by_candidate[picked]):
        return EDGE
    return None


def _nan(value) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


# --- the zoom stage -------------------------------------------------------------------------------

def _log_scale(values: Sequence[float], scale: str | None) -> bool:
    if scale not in (None, "log", "linear"):
        raise ValueError(f"scale: {scale!r} (log, linear or None)")
    if scale == "log" and min(values) <= 0:
        raise ValueError("scale: log needs positive values")
    # Positive settings (learning rates, weight decays, widths) are searched on a log scale
    # (the Tuning Playbook's default); 0 or negative ones cannot be.
    return scale == "log" or (scale is None and min(values) > 0)


def _round_sig(value: float, digits: int) -> float:
    if value == 0:
        return 0.0
    return float(f"{value:.{digits - 1}e}")


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME * max(abs(a), abs(b), 1e-300)


def _tidy(raw: Sequence[float], existing: Sequence[float], integer: bool) -> list[float]:
    """`raw` rounded to the fewest significant digits (2..6) at which they differ from each
    other and from `existing`; integers for integer keys. A value that equals an existing
    candidate even at 6 digits (or as an integer) is dropped."""
    for digits in range(_MIN_DIGITS, _MAX_DIGITS + 1):
        out = [float(round(v)) if integer else _round_sig(v, digits) for v in raw]
        clash = any(_same(a, b) for a in out for b in existing) or any(
            _same(a, b) for i, a in enumerate(out) for b in out[i + 1:])
        if not clash or integer:
            break
    kept: list[float] = []
    for v in out:
        if not any(_same(v, e) for e in [*existing, *kept]):
            kept.append(v)
    return kept


def zoom_candidates(values: Sequence[float], picked: float, zoom: int, *,
                    scale: str | None = None,
                    valid: Callable[[float], bool] | None = None) -> list[float]:
    """The new candidates of a numeric key's zoom stage around `picked` (one of `values`),
    ascending. `zoom` (k >= 1) new values on each side: inside the grid, k points evenly
    spaced between the pick and each neighbour (k = 1: the midpoints; geometric for positive
    keys such as a learning rate, `scale` forces log or linear); at the edge of the grid, the
    grid's own step (edge to neighbour) repeated k times beyond the edge instead of the
    midpoints, so that an edge pick is resolved, not only reported (at most k steps beyond).
    New values are rounded to 2 significant digits (more where 2 would collide), integers for
    an all-integer key; never an existing candidate. `valid`: a setting the key accepts (a
    beyond-the-edge value it refuses is dropped); without it, a key whose candidates are all
    non-negative never steps below 0. A grid of one value has no step: no candidates."""
    if isinstance(zoom, bool) or not isinstance(zoom, int) or zoom < 0:
        raise ValueError(f"zoom: {zoom!r} must be a whole number >= 0")
    if not _numeric(list(values)):
        raise ValueError(f"zoom: {list(values)} is not a numeric key's candidates")
    grid = sorted({float(v) for v in values})
    if not any(_same(float(picked), g) for g in grid):
        raise ValueError(f"zoom: the pick {picked!r} is not among the candidates {grid}")
    if zoom == 0 or len(grid) < 2:
        return []
    log = _log_scale(grid, scale)
    fwd = math.log if log else (lambda x: x)
    back = math.exp if log else (lambda x: x)
    at = min(range(len(grid)), key=lambda i: abs(grid[i] - float(picked)))
    x = fwd(grid[at])
    raw: list[float] = []
    if at in (0, len(grid) - 1):
        inner = grid[1] if at == 0 else grid[-2]
        step = x - fwd(inner)  # away from the grid
        raw = [back(x + j * step) for j in range(1, zoom + 1)]
        if valid is None and min(grid) >= 0:
            raw = [v for v in raw if v >= 0]
    else:
        for neighbour in (grid[at - 1], grid[at + 1]):
            gap = fwd(neighbour) - x
            raw += [back(x + gap * j / (zoom + 1)) for j in range(1, zoom + 1)]
    integer = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    new = _tidy(raw, grid, integer)
    if valid is not None:
        new = [v for v in new if valid(int(v) if integer else v)]
    return sorted(int(v) if integer else v for v in new)


def zoom_grid(keys: Mapping[str, Sequence], chosen: Mapping[str, Any], zoom: int,
              valid: Mapping[str, Callable[[Any], bool]] | None = None) -> list[dict]:
    """The zoom stage's new candidate settings for one variant: each numeric key's
    `zoom_candidates` around the chosen setting, the other keys held at their chosen values
    (one key at a time, as the tuning figure slices). Text keys are not zoomed."""
    out: list[dict] = []
    for key, candidates in keys.items():
        if not _numeric(list(candidates)):
            continue
        check = (valid or {}).get(key)
        for value in zoom_candidates(candidates, chosen[key], zoom, valid=check):
            out.append({**chosen, key: value})
    return out


# --- the budget curve ----------------------------------------------------------------------------

def expected_max_curve(values: Sequence[float | None],
                       higher_is_better: bool = True) -> list[float | None]:
    """E[best of n candidates drawn without replacement from the N tried], n = 1..N: the
    expected best tuning metric of a budget of n candidates (Dodge et al. 2019), by Tang et
    al. 2020's unbiased estimator: with the values sorted worst to best, v(1)..v(N), the i-th
    is the best of a random n-subset with probability C(i-1, n-1) / C(N, n), so
    E_n = sum_i v(i) C(i-1, n-1) / C(N, n) (the average over all n-subsets, ties included).

    None (or NaN) values are candidates that diverged: they never win, and E_n is None where
    an n-subset can hold only such candidates (n <= their number)."""
    finite = [float(v) for v in values if v is not None and not _nan(v)]
    n_bad = len(values) - len(finite)
    worst_first = sorted(finite, reverse=not higher_is_better)
    total = len(values)
    curve: list[float | None] = []
    for n in range(1, total + 1):
        if n <= n_bad:
            curve.append(None)
            continue
        # i counts all N candidates, the diverged ones first (they are worst); math.comb is
        # exact, so the weights sum to 1 up to one rounding.
        denominator = math.comb(total, n)
        expected = math.fsum(
            v * math.comb(n_bad + j, n - 1) for j, v in enumerate(worst_first)) / denominator
        curve.append(expected)
    return curve
