"""Statistics over seeds: Student-t intervals, paired tests against the baseline, tied ranks.

Single-seed comparisons read noise as findings; every number here carries its uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cnnablate.base.lazy import lazy_module

sps = lazy_module("scipy.stats")  # imported when a statistic computes: base/lazy.py

WILCOXON_FROM = 6  # pairs from which the signed-rank test gives the p-value
# Differences are rounded before testing: accuracies are multiples of 1/n_images, and
# 0.84 - 0.82 != 0.04 - 0.02 in floating point would otherwise break ties between equal
# differences (changing Wilcoxon ranks) and hide an exactly constant difference.
DECIMALS = 12


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval; (mean, nan, nan) below two values.

    Missing and non-finite values (None, nan, inf) are left out.
    """
    x = np.asarray([float(v) for v in values if _finite(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def paired_comparison(
    baseline: Sequence[float], variant: Sequence[float], confidence: float = 0.95
) -> dict[str, float | int | str]:
    """Variant minus baseline over the same seeds: mean difference, its CI, and a p-value.

    `baseline[i]` and `variant[i]` belong to the same seed; a pair with a missing or
    non-finite value on either side is left out (`n_pairs` counts the pairs used). Below six
    pairs the paired t-test gives the p-value; from six on the Wilcoxon signed-rank test (no
    normality assumption) does, and `test` says which. The CI is the t interval of the
    differences either way.
    """
    if len(baseline) != len(variant):
        raise ValueError(f"paired values differ in length: {len(baseline)} vs {len(variant)}")
    pairs = [(float(a), float(b)) for a, b in zip(baseline, variant) if _finite(a) and _finite(b)]
    diff = np.round(np.asarray([b - a for a, b in pairs], dtype=float), DECIMALS)
    n = len(diff)
    mean, lo, hi = t_interval(diff.tolist(), confidence)
    result: dict[str, float | int | str] = {
        "n_pairs": n, "diff_mean": mean, "diff_ci_low": lo, "diff_ci_high": hi,
        "p_value": math.nan, "test": "none",
    }
    if n < 2:
        return result
    test = "wilcoxon" if n >= WILCOXON_FROM else "paired_t"
    if np.all(diff == 0):
        # Identical results on every seed: no evidence of any difference.
        result.update(p_value=1.0, test=test)
    elif test == "wilcoxon":
        result.update(p_value=float(sps.wilcoxon(diff).pvalue), test=test)
    elif np.all(diff == diff[0]):
        # The same nonzero difference on every seed: t is undefined (no spread), so there is
        # no p-value; the interval (a single point) still shows the difference.
        result.update(test=test)
    else:
        result.update(p_value=float(sps.ttest_1samp(diff, 0.0).pvalue), test=test)
    return result


def tied_ranks(means: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> list[int]:
    """Rank 1 = best (highest); competition ranking over confidence intervals.

    A variant's rank is 1 + the number of variants that beat it with non-overlapping
    intervals (their low end above its high end), so variants whose intervals overlap share a
    rank. A variant without an interval (fewer than two values) cannot be told apart from any
    other: its interval counts as unbounded. One without a mean (no completed run) ranks last.
    """
    n = len(means)
    has_mean = [_finite(m) for m in means]
    lo = [float(lows[i]) if has_mean[i] and _finite(lows[i]) else -math.inf for i in range(n)]
    hi = [float(highs[i]) if has_mean[i] and _finite(highs[i]) else math.inf for i in range(n)]
    ranks = []
    for i in range(n):
        if not has_mean[i]:
            ranks.append(n)
            continue
        better = sum(1 for j in range(n) if j != i and has_mean[j] and lo[j] > hi[i])
        ranks.append(1 + better)
    return ranks


# Metrics with a bounded range: (low, high); None = unbounded on that side.
METRIC_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "best_val_accuracy": (0.0, 1.0), "final_val_accuracy": (0.0, 1.0),
    "test_accuracy": (0.0, 1.0), "final_val_loss": (0.0, None),
    "seconds_per_epoch": (0.0, None),
}


def bounded_interval(
    values: Sequence[float], confidence: float = 0.95,
    bounds: tuple[float | None, float | None] = (None, None),
) -> tuple[float, float, float]:
    """Mean and a confidence interval that stays inside the metric's range.

    A t interval on a scale where the range is unbounded, mapped back: logit for (0, 1)
    (accuracies), log for (0, inf) (losses, seconds), the plain t interval otherwise. The
    mapped-back ends cannot leave the range, however few the values, and the interval keeps its
    real width instead of being cut at the bound. The middle is still the arithmetic mean.
    Values on a bound (an accuracy of exactly 0 or 1) are moved half a step of 1/1000 inside it
    so the transform stays finite.
    """
    x = [float(v) for v in values if _finite(v)]
    mean = float(np.mean(x)) if x else math.nan
    low, high = bounds
    if len(x) < 2 or low is None:
        return t_interval(x, confidence)
    if high is not None:
        eps = 5e-4 * (high - low)
        u = [(min(max(v, low + eps), high - eps) - low) / (high - low) for v in x]
        z = [math.log(p / (1 - p)) for p in u]
        _, zlo, zhi = t_interval(z, confidence)
        back = lambda t: low + (high - low) / (1 + math.exp(-t))  # noqa: E731
    else:
        eps = 1e-12
        z = [math.log(max(v - low, eps)) for v in x]
        _, zlo, zhi = t_interval(z, confidence)
        back = lambda t: low + math.exp(t)  # noqa: E731
    # The transform's round trip is not exact: with no spread, logit-and-back puts both ends an
    # ulp above the mean (an error bar of -1e-17, which matplotlib refuses).
    return mean, min(back(zlo), mean), max(back(zhi), mean)
