"""Group-sequential levels for paired t-tests: the p-value level each look may test at so
that, over all looks of one comparison, the chance of a false rejection is the level spent.

Spending a level `a` over looks at n_1 < ... < n_K seeds with the Pocock-type function
a*ln(1 + (e-1)t), t = n_k / n_K, gives increments that sum to `a`. Testing each look at its
increment is valid whatever the looks' correlation (a Bonferroni bound across looks) but wastes
level: the looks share seeds, so a comparison that would cross at look 3 has often crossed at
look 2 already. Exact boundaries take that correlation into account (Lan & DeMets 1983) and
let the later looks test at about twice the Bonferroni level for the same guarantee.

The textbook boundaries assume normal statistics; the paired t-tests here have 1-11 degrees of
freedom, and normal-theory levels applied to their p-values erred 0.058-0.062 for a nominal
0.05 (single comparison, 40,000 simulated studies, looks 3/6/9/12 and 3..12). Under the null
the joint law of a paired t-test's statistics over the looks does not depend on the unknown
mean or SD (normal differences), so it is simulated once per look schedule with a fixed seed
(PATHS paths; deterministic) and each look's level is read off as the quantile that spends
exactly the increment. Monte-Carlo error of the levels: about 1% of alpha. Checked against
independent simulations of whole studies (tests/test_sequential.py, BENCHMARKS 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from cnnablate.base.lazy import lazy_module

special = lazy_module("scipy.special")  # imported when a decision computes: base/lazy.py

PATHS = 200_000
CALIBRATION_SEED = 20261130
_CHUNK = 20_000


def spend(alpha: float, fractions: Sequence[float]) -> list[float]:
    """Per-look increments of the Pocock-type spending function alpha*ln(1 + (e-1)t).

    Pocock-type spends early, which is what lets an adaptive study stop a clear comparison at
    the first looks; O'Brien-Fleming-type spends almost nothing at 3 seeds (about 1e-4), where
    a t-test with 2 degrees of freedom could then decide nothing.
    """
    cumulative = [alpha * math.log1p((math.e - 1) * min(1.0, t)) for t in fractions]
    cumulative[-1] = alpha  # the last look spends what is left (exactly alpha in total)
    return [c - p for c, p in zip(cumulative, [0.0] + cumulative[:-1])]


def nominal_levels(alpha: float, sizes: Sequence[int]) -> list[float]:
    """Two-sided p-value level per look (seeds per arm at each look: `sizes`) of one paired
    t-test whose chance of rejecting at any look under the null is `alpha`, spent Pocock-type.
    A single look tests at `alpha` itself."""
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) == 1:
        return [float(alpha)]
    return list(_levels(float(alpha), sizes))


@lru_cache(maxsize=4096)
def _levels(alpha: float, sizes: tuple[int, ...]) -> tuple[float, ...]:
    pvalues = _null_pvalues(sizes)
    increments = spend(alpha, [n / sizes[-1] for n in sizes])
    alive = np.ones(pvalues.shape[1], dtype=bool)
    levels = []
    for p_k, spent in zip(pvalues, increments):
        level = _quantile_spending(p_k[alive], round(spent * len(alive)))
        levels.append(level)
        alive &= ~(p_k <= level)
    return tuple(levels)


def _quantile_spending(pvalues: np.ndarray, count: int) -> float:
    """The level at which exactly `count` of these p-values reject (midway between order
    statistics, so that ties in the simulation cannot tip it)."""
    if count <= 0 or pvalues.size == 0:
        return 0.0
    if count >= pvalues.size:
        return 1.0
    lowest = np.partition(pvalues, (count - 1, count))[count - 1:count + 1]
    return float((lowest[0] + lowest[1]) / 2)


@lru_cache(maxsize=16)
def _null_pvalues(sizes: tuple[int, ...]) -> np.ndarray:
    """Two-sided paired t-test p-values at each look (rows) of PATHS simulated null studies."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    out = np.empty((len(sizes), PATHS))
    for start in range(0, PATHS, _CHUNK):
        x = rng.standard_normal((_CHUNK, sizes[-1]))
        sums, squares = np.cumsum(x, axis=1), np.cumsum(x * x, axis=1)
        for k, n in enumerate(sizes):
            mean = sums[:, n - 1] / n
            var = (squares[:, n - 1] - n * mean * mean) / (n - 1)
            t = mean / np.sqrt(var / n)
            out[k, start:start + _CHUNK] = 2 * special.stdtr(n - 1, -np.abs(t))
    return out
