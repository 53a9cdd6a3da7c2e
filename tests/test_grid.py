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


def _f32(k: int, n: int) -> float:
    return float(np.float32(k / n))


def test_mixed_denominators_keep_each_comparisons_rounding_floor():
    # Issue #30's reproduction: base and v1 on 270 images, v2 on 128 (a variant with
    # max_eval_images 128), values float32 as recorded. v1 - base = 2/270 on both seeds: no
    # spread, so the test uses the rounding floor, (1/270)/sqrt(6) from v1's own grid (its
    # values 245/270 = 49/54 and 248/270 = 124/135 need 270). t = (2/270) / (floor / sqrt 2),
    # 1 df: p = 1 - 2/pi * atan(t) = 0.0911. Adding v2 must change neither: the common grid of
    # 270 and 128 (1/17 280) is needed by no arm alone.
    from cnnablate.decisions.decide import Design, decide

    base = {0: _f32(243, 270), 1: _f32(246, 270)}
    v1 = {0: _f32(245, 270), 1: _f32(248, 270)}
    v2 = {0: _f32(115, 128), 1: _f32(116, 128)}
    t = (2 / 270) / ((1 / 270) / math.sqrt(6) / math.sqrt(2))
    expected = 1 - 2 / math.pi * math.atan(t)
    assert expected == pytest.approx(0.0913, abs=1e-4)
    for results in ({"base": base, "v1": v1}, {"base": base, "v1": v1, "v2": v2}):
        rows = {r["variant"]: r for r in decide(results, "base", Design()).rows}
        assert rows["v1"]["p_value"] == pytest.approx(expected, rel=1e-9), results.keys()
        assert rows["v1"]["verdict"] == "undecided"
    # v2 against base: neither's grid is the other's; each arm its own step, base's values
    # 243/270 = 9/10 and 246/270 = 41/45 give 1/90, v2's 115/128 and 116/128 give 1/128.
    # v2 - base differs between seeds (a spread), so the floor is not used: the plain paired t.
    diff = [115 / 128 - 243 / 270, 116 / 128 - 246 / 270]
    mean, sd = sum(diff) / 2, abs(diff[0] - diff[1]) / math.sqrt(2)
    t2 = mean / (sd / math.sqrt(2))
    assert rows["v2"]["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(abs(t2)), rel=1e-6)


def test_a_constant_difference_between_mixed_denominators_uses_each_arms_own_step():
    # base on 270 images, v on 128, each the same count on both seeds: no spread. The floor is
    # sqrt((a^2 + b^2) / 12) from each arm's own step: base's 250/270 = 25/27 -> 1/27 (one value
    # pins down no finer grid), v's 119/128 -> 1/128. Never 1/17 280 (the grid of both).
    from cnnablate.decisions.decide import Design, decide

    results = {"base": {0: _f32(250, 270), 1: _f32(250, 270)},
               "v": {0: _f32(119, 128), 1: _f32(119, 128)}}
    row = decide(results, "base", Design()).rows[0]
    floor = math.sqrt(((1 / 27) ** 2 + (1 / 128) ** 2) / 12)
    t = (119 / 128 - 250 / 270) / (floor / math.sqrt(2))
    assert row["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(abs(t)), rel=1e-6)


def test_snap_arms_puts_each_arm_on_its_own_grid():
    from cnnablate.decisions.grid import snap_arms

    snapped, precision = snap_arms({"a": {0: _f32(243, 270)}, "b": {0: _f32(115, 128)},
                                    "loss": {0: 1.5}})
    assert snapped["a"][0] == 243 / 270 and snapped["b"][0] == 115 / 128
    assert precision["a"] == precision["b"] == 0.0 and precision["loss"] > 0
