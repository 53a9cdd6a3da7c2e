"""Statistics over seeds: Student-t intervals, paired tests against the baseline, tied ranks.

Single-seed comparisons read noise as findings; every number here carries its uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval; (mean, nan, nan) below two values."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
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

    The paired t-test is used throughout; from six pairs on, the Wilcoxon signed-rank test
    (no normality assumption) gives the p-value instead, and `test` says which.
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(variant, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {len(a)} vs {len(b)}")
    diff = b - a
    n = len(diff)
    mean, lo, hi = t_interval(diff.tolist(), confidence)
    result: dict[str, float | int | str] = {
        "n_pairs": n, "diff_mean": mean, "diff_ci_low": lo, "diff_ci_high": hi,
        "p_value": math.nan, "test": "none",
    }
    if n < 2:
        return result
    if np.allclose(diff, diff[0]):
        # No spread: t is undefined; identical results are no evidence of a difference.
        result.update(p_value=1.0 if diff[0] == 0 else math.nan, test="paired_t")
        return result
    if n >= 6:
        result.update(p_value=float(sps.wilcoxon(b, a).pvalue), test="wilcoxon")
    else:
        result.update(p_value=float(sps.ttest_rel(b, a).pvalue), test="paired_t")
    return result


def tied_ranks(means: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> list[int]:
    """Rank 1 = best; a variant's rank is 1 + the number of variants that beat it with
    non-overlapping intervals, so variants whose intervals overlap share a rank."""
    ranks = []
    for i in range(len(means)):
        if not math.isfinite(means[i]):
            ranks.append(len(means))
            continue
        hi_i = highs[i] if math.isfinite(highs[i]) else means[i]
        better = sum(
            1
            for j in range(len(means))
            if j != i and math.isfinite(means[j])
            and (lows[j] if math.isfinite(lows[j]) else means[j]) > hi_i
        )
        ranks.append(1 + better)
    return ranks
