"""The exact paired sign-flip permutation test: the distribution-free option
(`decisions: {test: permutation}`).

Under the null that each seed's difference is symmetric about 0 (the two arms exchangeable at
each seed), every assignment of signs to the observed differences is equally likely, so the
two-sided p-value is the share of the 2**n sign vectors whose |sum| is at least the observed
one. It holds whatever the noise's shape (Bahadur & Savage 1956: no test of a *mean* can at
2-5 seeds), at a price: its smallest p-value with n seeds is 2 / 2**n, so at alpha 0.05 it can
decide nothing with 2-4 seeds (1/8 at 4), and under Holm's first step (alpha / m) it needs
log2(2 m / alpha) seeds or more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

EXACT_UP_TO = 16  # 65 536 sign vectors; beyond that a fixed-seed random sample of as many
SAMPLES = 2**16
SAMPLING_SEED = 20261207


@lru_cache(maxsize=32)
def _signs(n: int) -> np.ndarray:
    """Every sign vector of length n (n <= EXACT_UP_TO), or SAMPLES random ones."""
    if n <= EXACT_UP_TO:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        return 1 - 2 * ((codes >> np.arange(n)) & 1).astype(np.float64)
    rng = np.random.default_rng(SAMPLING_SEED)
    return rng.choice(np.array([-1.0, 1.0]), size=(SAMPLES, n))


def sign_flip_p(diff: Sequence[float], precision: float = 0.0) -> float:
    """Two-sided p-value of the paired sign-flip test of `diff` against 0 (exact up to
    EXACT_UP_TO seeds; beyond, (1 + hits) / (1 + SAMPLES) over a fixed random sample). A
    difference within `precision` of 0 is 0."""
    x = np.asarray([0.0 if abs(v) <= precision else float(v) for v in diff], dtype=np.float64)
    n = len(x)
    if n == 0:
        return math.nan
    observed = abs(float(x.sum()))
    if observed == 0:
        return 1.0
    # Sums of count shares carry float noise in the 16th digit: ties must stay ties.
    tol = 1e-9 * max(1.0, float(np.abs(x).sum())) + n * precision
    sums = np.abs(_signs(n) @ x)
    hits = int((sums >= observed - tol).sum())
    if n <= EXACT_UP_TO:
        return hits / 2**n
    return (1 + hits) / (1 + SAMPLES)


def smallest_p(n: int) -> float:
    """The smallest two-sided p-value the test can give with n seeds."""
    return 2.0 / 2**n if n > 0 else 1.0


def min_seeds(level: float) -> int:
    """The fewest seeds with which the test can reach `level` (two-sided)."""
    return max(1, math.ceil(math.log2(2.0 / level) - 1e-12))
