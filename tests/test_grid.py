"""cnnablate.decisions.grid: count shares recorded through float32 put back on their grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnablate.decisions.grid import denominator, resolution, snap, snap_values


@pytest.mark.parametrize("n", [270, 359, 10_000])
def test_denominator_of_float32_count_shares(n):
    rng = np.random.default_rng(n)
    counts = rng.integers(0, n + 1, 12)
    counts[0] = 1  # 1/n is on no coarser grid
    values = [float(np.float32(k / n)) for k in counts]
    assert denominator(values) == n
    snapped, precision = snap({"a": dict(enumerate(values))})
    assert precision == 0.0
    # the double nearest k/n, exactly as Python computes k / n
    assert [snapped["a"][i] for i in range(12)] == [int(k) / n for k in counts]


def test_coarser_grid_when_the_values_allow_it():
    # 135/270 and 54/270 are 1/2 and 1/5: tenths, and no coarser step fits both.
    assert denominator([float(np.float32(135 / 270)), float(np.float32(54 / 270))]) == 10
    assert resolution({"a": {0: 0.5, 1: 0.2}}) == pytest.approx(0.1)


def test_values_that_are_not_count_shares_have_no_grid():
    rng = np.random.default_rng(0)
    assert denominator(rng.normal(0.9, 0.01, 5).tolist()) is None
    assert denominator([0.5, 1.5]) is None  # a loss above 1
    values = {"a": {0: 100.25, 1: None, 2: math.nan}, "b": {0: 57.0}}
    snapped, precision = snap(values)
    assert snapped["a"][0] == 100.25 and snapped["a"][1] is None and math.isnan(snapped["a"][2])
    # four float32 ulps of the largest value
    assert precision == pytest.approx(4 * 2.0**-23 * 100.25)


def test_a_column_with_gaps_is_snapped_and_keeps_its_gaps():
    values = [float(np.float32(261 / 270)), None, float(np.float32(263 / 270)), math.nan]
    out = snap_values(values)
    assert out[0] == 261 / 270 and out[2] == 263 / 270
    assert out[1] is None and math.isnan(out[3])
