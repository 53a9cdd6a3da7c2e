"""Tuning: choosing each variant's nuisance settings on tuning seeds that never decide."""

from __future__ import annotations

import math
from collections.abc import Sequence


def select(values: Sequence[Sequence[float | None]], higher_is_better: bool = True) -> int | None:
    """Index of the best candidate. `values[i]` holds candidate i's metric on each tuning seed
    (None or NaN: the run diverged or failed). The mean over seeds decides; a candidate with any
    diverged seed never wins; a tie goes to the candidate listed first. None when no candidate
    has a valid value on every seed."""
    best, best_mean = None, None
    for i, seeds in enumerate(values):
        vals = [float(v) for v in seeds if v is not None and not math.isnan(float(v))]
        if not seeds or len(vals) < len(seeds):
            continue
        mean = sum(vals) / len(vals)
        if best_mean is None or (mean > best_mean if higher_is_better else mean < best_mean):
            best, best_mean = i, mean
    return best
