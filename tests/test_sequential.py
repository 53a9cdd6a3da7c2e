"""Group-sequential levels of paired t-tests (cnnablate.decisions.sequential), checked against fresh
simulations made here with scipy's own t-test, and against the spending function by hand."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from cnnablate.decisions.sequential import nominal_levels, spend


def _null_rate(levels, sizes, paths=40_000, seed=12345):
    """Share of fresh null paired studies (normal differences, any mean-0 SD) that reject at
    some look, with scipy.stats.ttest_1samp as the test."""
    rng = np.random.default_rng(seed)
    diffs = rng.normal(0.0, 0.03, size=(paths, sizes[-1]))
    crossed = np.zeros(paths, dtype=bool)
    for n, level in zip(sizes, levels):
        crossed |= sps.ttest_1samp(diffs[:, :n], 0.0, axis=1).pvalue <= level
    return crossed.mean(), math.sqrt(0.05 * 0.95 / paths)


@pytest.mark.parametrize("sizes", [(3, 6, 9, 12), (2, 4), (2, 3, 4, 5, 6, 7, 8)])
def test_levels_spend_exactly_alpha_over_the_looks(sizes):
    levels = nominal_levels(0.05, sizes)
    rate, se = _null_rate(levels, sizes)
    # Exact, not merely valid: the Bonferroni levels (spend's increments) would err ~0.03-0.04,
    # normal-theory boundaries 0.055-0.06 (docs/statistics.md).
    assert abs(rate - 0.05) < 4 * se, (sizes, levels, rate)


def test_bonferroni_increments_would_be_caught_as_wasteful():
    # The check above can fail: testing at the increments spends visibly less than alpha.
    sizes = (3, 6, 9, 12)
    rate, se = _null_rate(spend(0.05, [n / 12 for n in sizes]), sizes)
    assert rate < 0.05 - 4 * se


def test_first_look_is_the_first_increment_and_later_looks_gain():
    sizes = (3, 6, 9, 12)
    levels = nominal_levels(0.05, sizes)
    increments = spend(0.05, [n / 12 for n in sizes])
    # The first look has nothing to condition on: its p-value is uniform, so its level is the
    # increment 0.05 * ln(1 + (e - 1) / 4) = 0.017869 (up to the calibration's MC error).
    assert increments[0] == pytest.approx(0.05 * math.log(1 + (math.e - 1) / 4))
    assert levels[0] == pytest.approx(increments[0], rel=0.03)
    # Later looks share seeds with earlier ones: each tests well above its increment.
    assert all(lv > 1.1 * inc for lv, inc in zip(levels[1:], increments[1:]))
    assert levels[-1] > 1.5 * increments[-1]


def test_levels_are_deterministic_and_a_single_look_tests_at_alpha():
    assert nominal_levels(0.05, (3, 6, 9, 12)) == nominal_levels(0.05, [3, 6, 9, 12])
    assert nominal_levels(0.01, (5,)) == [0.01]
    smaller = nominal_levels(0.01, (3, 6, 9, 12))
    assert all(s < b for s, b in zip(smaller, nominal_levels(0.05, (3, 6, 9, 12))))
