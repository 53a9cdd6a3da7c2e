"""The grid the headline values live on, and their precision: done before any statistic.

An accuracy is a count of images, k/n (n = 270 on digits' validation split, 10 000 on CIFAR's
test split), but it reaches the decisions as Keras reports it: a float32, read back as a Python
float. Two arms that differ by the same number of images on every seed then give paired
differences that agree as counts yet differ in the 8th decimal, and a test that reads that
representation noise as a real spread returns an absurd p-value (issue #24). So:

- `snap`: where every value is a count share (`denominator` finds the smallest n, up to
  MAX_DENOMINATOR, with each value within float32 rounding of some k/n), each value is replaced
  by the double nearest to its k/n: equal counts give equal values, and equal count differences
  give equal differences.
- `precision`: where no such n exists (losses, seconds), a spread or difference at or below the
  values' own float32 precision is no information: the callers treat it as zero.
- `resolution`: the grid's step (1/n), the rounding floor of a difference with no spread at all.

Per arm (issue #30): each variant's values are snapped to that variant's own grid
(`snap_arms`), and a comparison's rounding floor comes from its two arms' steps (`pair_floor`).
A grid found by mixing arms is never used: a variant evaluated on 128 images beside others on
270 made the common grid 1/17 280, far finer than either arm's one-image step, and an unrelated
comparison lost its floor (`undecided`, p 0.091 became `better`, p 0.0014, its numbers
unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

MAX_DENOMINATOR = 100_000
# A float32 in [0, 1] is within half an ulp (<= 2**-25 relative, 6e-8 at 1) of the value Keras
# computed as count / total; 1e-7 leaves room and is still far below 1 / MAX_DENOMINATOR.
TOLERANCE = 1e-7
FLOAT32_EPS = 2.0**-23
# A difference of two float32 values carries up to one ulp of each; 4 ulps of the largest value
# is a margin for the means and SDs computed from them.
PRECISION_ULPS = 4

Results = Mapping[str, Mapping[int, float | None]]


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


_CANDIDATES = np.arange(1, MAX_DENOMINATOR + 1, dtype=np.float64)
_last_found: list[int | None] = [None]


def denominator(values: Iterable[float]) -> int | None:
    """Smallest n <= MAX_DENOMINATOR with every value within float32 rounding of some k/n;
    None when the values are not count shares (outside [0, 1], or no such n).

    A sieve over n, value by value: non-counts leave no candidate after two or three values
    (0.5 ms, where testing every n against every value took 0.1 s), and it is exact where the
    simplest fraction near each value is not (at n = 10 000, a fraction with a denominator of
    2 000 can lie within float32 rounding of k/n).
    """
    unique = {float(x) for x in values}
    if any(not 0.0 <= v <= 1.0 for v in unique):
        return None
    # The last grid found, where it fits, bounds the smallest one: sieving 1..n_last alone
    # gives the same answer ~100x faster (a study's values, a simulation's studies).
    n_last = _last_found[0]
    fits = n_last is not None and all(
        abs(v * n_last - round(v * n_last)) <= n_last * TOLERANCE for v in unique)
    n = _CANDIDATES[:n_last] if fits else _CANDIDATES
    for v in unique:
        scaled = n * v
        n = n[np.abs(scaled - np.round(scaled)) <= n * TOLERANCE]
        if n.size == 0:
            return None
    _last_found[0] = int(n[0])
    return int(n[0])


def _values(results: Results, seeds: Iterable[int] | None = None) -> list[float]:
    keep = None if seeds is None else set(seeds)
    return [float(x) for d in results.values() for s, x in d.items()
            if (keep is None or s in keep) and _finite(x)]


def snap(results: Results) -> tuple[dict[str, dict[int, float | None]], float]:
    """(`results` on their grid, precision): each value moved to the double nearest its k/n
    where the values have a denominator (precision 0: the values are then exact), else
    unchanged with the precision below which a spread or difference is representation noise.
    Missing and non-finite values are kept as they are."""
    values = _values(results)
    n = denominator(values)
    if n is None:
        top = max((abs(v) for v in values), default=0.0)
        return {v: dict(d) for v, d in results.items()}, PRECISION_ULPS * FLOAT32_EPS * top
    return {v: {s: (round(float(x) * n) / n if _finite(x) else x) for s, x in d.items()}
            for v, d in results.items()}, 0.0


def snap_values(values: Sequence[float | None]) -> list[float | None]:
    """One column of values (one metric on one split) on its grid, as `snap` does."""
    snapped, _ = snap({"values": dict(enumerate(values))})
    return [snapped["values"][i] for i in range(len(values))]


def resolution(results: Results, seeds: Sequence[int] | None = None) -> float:
    """The values' rounding step (of the given seeds' values; all when None); 0 when unknown.

    1/n for the grid's n (`denominator`): the true n always fits, so the step found is never
    finer than the true one (a coarser step only makes a test more conservative). Other
    values: bounded by the smallest gap between distinct values. The SD of a difference of two
    values each rounded to this step is step / sqrt(6): the floor the paired test uses.
    """
    values = sorted(set(_values(results, seeds)))
    if not values:
        return 0.0
    n = denominator(values)
    if n:
        return 1.0 / n
    gaps = [b - a for a, b in zip(values, values[1:]) if b - a > 0]
    return min(gaps) if gaps else 0.0


def snap_arms(results: Results) -> tuple[dict[str, dict[int, float | None]], dict[str, float]]:
    """Each arm (variant) on its own grid, as `snap` does for that arm's values alone:
    (`results` snapped, arm -> its precision). A value is never moved to a grid found only by
    mixing arms with different denominators."""
    out: dict[str, dict[int, float | None]] = {}
    precision: dict[str, float] = {}
    for arm, values in results.items():
        snapped, precision[arm] = snap({arm: values})
        out[arm] = snapped[arm]
    return out, precision


def pair_floor(step_a: float, step_b: float) -> float:
    """SD of the difference of two values, each rounded to its own arm's step: a value rounded
    to a step s carries a uniform error of variance s**2 / 12, so sqrt((a**2 + b**2) / 12)
    (s / sqrt(6) for equal steps)."""
    return math.sqrt((step_a * step_a + step_b * step_b) / 12.0)


def pair_floors(results: Results, seeds: Sequence[int] | None = None):
    """(arm, arm) -> the rounding floor of that comparison's differences, from its own arms'
    grids (of the given seeds' values).

    A grid is used only where some arm needs it by itself: the study's grid (all arms' values)
    where it is one arm's own grid (the usual case, every arm on the same images: the values
    of all arms pin the grid down best); else the two arms' common grid where it is one of the
    two's own; else each arm's own step (`pair_floor`). A grid that no arm needs alone comes
    only from mixing denominators (270 and 128 give 1/17 280) and is never used. Values that
    are not count shares keep the study's `resolution` (the smallest gap; issue #24).
    """
    keep = None if seeds is None else set(seeds)
    own_values = {a: [float(x) for s, x in d.items() if (keep is None or s in keep) and _finite(x)]
                  for a, d in results.items()}
    every = [x for v in own_values.values() for x in v]
    study = denominator(every) if every else None
    if study is None:
        floor = resolution(results, seeds) / math.sqrt(6)
        return lambda a, b: floor
    own = {a: denominator(v) for a, v in own_values.items() if v}
    if study in own.values():
        return lambda a, b: (1.0 / study) / math.sqrt(6)

    def floor_of(a: str, b: str) -> float:
        mine = [n for n in (own.get(a), own.get(b)) if n]
        both = own_values.get(a, []) + own_values.get(b, [])
        common = denominator(both) if both else None
        if common is not None and common in mine:
            return (1.0 / common) / math.sqrt(6)
        steps = [1.0 / own[x] if own.get(x) else 0.0 for x in (a, b)]
        return pair_floor(*steps)

    return floor_of
