"""Tuning: choosing each variant's nuisance settings on tuning seeds that never decide."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cnnablate.decisions.grid import snap_values


def select(values: Sequence[Sequence[float | None]], higher_is_better: bool = True) -> int | None:
    """Index of the best candidate. `values[i]` holds candidate i's metric on each tuning seed
    (None or NaN: the run diverged or failed). The mean over seeds decides; a candidate with any
    diverged seed never wins; a tie goes to the candidate listed first. None when no candidate
    has a valid value on every seed.

    Accuracies are image counts recorded through float32: on their grid first (`grid.py`), or
    two candidates with the same total count would be ordered by representation noise, not
    by the order they are listed in (1 613 of 9 800 such ties in BENCHMARKS 9's draws)."""
    flat = snap_values([v for seeds in values for v in seeds])
    values = [flat[sum(map(len, values[:i])):][:len(seeds)] for i, seeds in enumerate(values)]
    best, best_mean = None, None
    for i, seeds in enumerate(values):
        vals = [float(v) for v in seeds if v is not None and not math.isnan(float(v))]
        if not seeds or len(vals) < len(seeds):
            continue
        mean = math.fsum(vals) / len(vals)
        if best_mean is None or (mean > best_mean if higher_is_better else mean < best_mean):
            best, best_mean = i, mean
    return best
