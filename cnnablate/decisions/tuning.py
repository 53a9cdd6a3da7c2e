"""Tuning: choosing each variant's nuisance settings on tuning seeds that never decide."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from cnnablate.decisions.grid import denominator


def rank(values: Sequence[Sequence[float | None]], higher_is_better: bool = True) -> list[int]:
    """Indices of the candidates that can be chosen, best first. `values[i]` holds candidate
    i's metric on each tuning seed (None or NaN: the run diverged or failed). The mean over
    seeds orders them; a candidate with any diverged seed is left out; a tie goes to the
    candidate listed first.

    Accuracies are image counts recorded through float32: they are compared as counts
    (`grid.py`), or two candidates with the same total count would be ordered by
    representation noise, not by the order they are listed in (1 613 of 9 800 such ties in
    BENCHMARKS 9's draws). Snapping each value is not enough: 188/270 + 180/270 and
    185/270 + 183/270 are both 368/270 but differ in the last bit as doubles, so on a count
    grid the means are exact fractions."""
    flat = [float(v) for seeds in values for v in seeds
            if v is not None and not math.isnan(float(v))]
    n = denominator(flat) if flat else None
    means = []
    for i, seeds in enumerate(values):
        vals = [float(v) for v in seeds if v is not None and not math.isnan(float(v))]
        if not seeds or len(vals) < len(seeds):
            continue
        mean = (Fraction(sum(round(v * n) for v in vals), n * len(vals)) if n
                else math.fsum(vals) / len(vals))
        means.append((-mean if higher_is_better else mean, i))
    return [i for _, i in sorted(means)]  # equal means: the smaller index (listed first)


def select(values: Sequence[Sequence[float | None]], higher_is_better: bool = True) -> int | None:
    """Index of the best candidate (the first of `rank`): the mean over seeds decides; a
    candidate with any diverged seed never wins; a tie goes to the candidate listed first.
    None when no candidate has a valid value on every seed."""
    order = rank(values, higher_is_better)
    return order[0] if order else None
