"""cnnablate.decisions.decide: values by hand or from published tables, and the guarantees by
simulation
(small, fast versions of benchmarks/decisions_sim.py; they fail if the guarantee breaks)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as sps

from cnnablate.decisions.decide import (
    Design,
    comparisons,
    decide,
    holm,
    prob_improvement,
    seeds_needed,
)
from cnnablate.decisions.sequential import spend
from cnnablate.decisions.stats import bounded_interval, paired_comparison


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06,
    # 1*0.04 = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert math.isnan(holm([math.nan, 0.01])[0]) and holm([math.nan, 0.01])[1] == 0.02


def test_pocock_spending_sums_to_alpha():
    # alpha * ln(1 + (e - 1) t) at t = 1/4, 1/2, 3/4, 1
    cumulative = [0.05 * math.log(1 + (math.e - 1) * t) for t in (0.25, 0.5, 0.75, 1.0)]
    levels = spend(0.05, [0.25, 0.5, 0.75, 1.0])
    assert levels[0] == pytest.approx(cumulative[0])
    assert levels[2] == pytest.approx(cumulative[2] - cumulative[1])
    assert sum(levels) == pytest.approx(0.05)
    assert Design(initial=3, max=12, step=3).look_sizes() == [3, 6, 9, 12]
    assert Design(initial=3, max=10, step=4).look_sizes() == [3, 7, 10]


def test_prob_improvement_paired_share_and_exact_interval():
    # 3 wins, 1 tie, 1 loss of 5: share (3 + 0.5) / 5 = 0.7
    share, lo, hi = prob_improvement([0.1, 0.2, 0.0, -0.1, 0.3])
    assert share == pytest.approx(0.7)
    # lower: Clopper-Pearson 2.5% bound of 3 wins of 5 = 0.146632 (tables);
    # upper: 97.5% bound of 4 (wins + ties) of 5 = 1 - (lower 2.5% bound of 1 of 5)
    # = 1 - (1 - 0.975 ** (1/5)) = 0.975 ** 0.2
    assert lo == pytest.approx(0.146632, abs=1e-6)
    assert hi == pytest.approx(0.975 ** 0.2, abs=1e-9)
    # 2 of 2 wins: lower bound 0.025 ** (1/2) = 0.158114, upper 1
    assert prob_improvement([0.1, 0.2])[1:] == pytest.approx((math.sqrt(0.025), 1.0))


@pytest.mark.parametrize("n", [2, 3, 4, 5])
@pytest.mark.parametrize("shift", [0.0, 0.5, 1.5])
def test_prob_improvement_interval_covers_at_small_n(n, shift):
    # Paired differences ~ normal(shift, 1): the true P(D > 0) = Phi(shift).
    truth = 0.5 * (1 + math.erf(shift / math.sqrt(2)))
    rng = random.Random(n * 10 + int(shift * 10))
    reps = 1000
    covered = sum(
        lo <= truth <= hi
        for lo, hi in (prob_improvement([rng.gauss(shift, 1) for _ in range(n)])[1:]
                       for _ in range(reps)))
    # at least 95% (exact interval), minus 3 Monte-Carlo standard errors
    assert covered / reps >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps)


def test_seeds_needed_matches_power_tables():
    # One-sample/paired t, two-sided alpha 0.05, power 0.8 (G*Power, Cohen's tables):
    # d = 1 -> 10, d = 0.5 -> 34
    assert seeds_needed(sd=0.01, effect=0.01, alpha=0.05, power=0.8) == 10
    assert seeds_needed(sd=0.02, effect=0.01, alpha=0.05, power=0.8) == 34
    assert seeds_needed(sd=0.0, effect=0.01, alpha=0.05, power=0.8) is None


def test_verdicts_by_hand():
    results = {
        "relu": {0: 0.90, 1: 0.91, 2: 0.92},
        "elu": {0: 0.95, 1: 0.97, 2: 0.96},  # +0.05, +0.06, +0.04: t = 0.05 / (0.01/sqrt 3)
        "none": {0: 0.10, 1: 0.11, 2: 0.10},  # -0.80, -0.80, -0.82
        "same": {0: 0.905, 1: 0.905, 2: 0.925},  # +0.005, -0.005, +0.005
    }
    rows = {r["variant"]: r for r in
            decide(results, "relu", Design(min_effect=0.05)).rows}
    # elu: t = 8.660254, 2 df: p = 1 - t / sqrt(t^2 + 2) = 0.013072
    assert rows["elu"]["p_value"] == pytest.approx(1 - 8.660254 / math.sqrt(8.660254 ** 2 + 2),
                                                   abs=1e-6)
    # Holm over 3: elu is the second-smallest p: 2 * 0.013072 = 0.026145 (none's 3*p is
    # smaller), below 0.05 -> better
    assert rows["elu"]["p_holm"] == pytest.approx(2 * rows["elu"]["p_value"])
    assert rows["elu"]["verdict"] == "better"
    assert rows["none"]["verdict"] == "worse"
    # same: TOST at alpha/2 = the 95% t interval (2 df, t = 4.302653):
    # 0.001667 -+ 4.302653 * 0.005774 / sqrt 3 = [-0.012677, 0.016010], inside +-0.05
    assert rows["same"]["verdict"] == "equivalent"
    assert rows["same"]["seeds_needed"] is None
    # A margin between the 95% interval's edge (0.016010) and the 90% one's (0.011400) tells
    # the two apart: TOST at alpha would call it equivalent, at alpha/2 not.
    tighter = {k: v for k, v in results.items() if k in ("relu", "same")}
    (row,) = decide(tighter, "relu", Design(min_effect=0.014)).rows
    assert row["verdict"] == "undecided"
    assert rows["elu"]["effect_size"] == pytest.approx(0.05 / 0.01)
    assert rows["none"]["prob_improvement"] == 0.0


def test_undecided_reports_seeds_needed():
    results = {"a": {0: 0.90, 1: 0.92, 2: 0.91}, "b": {0: 0.91, 1: 0.91, 2: 0.93}}
    (row,) = decide(results, "a", Design(min_effect=0.01)).rows
    # differences +0.01, -0.01, +0.02: mean 0.006667, sd 0.015275; undecided at 3 seeds
    assert row["verdict"] == "undecided"
    # d = 0.01 / 0.015275 = 0.654654; paired t at alpha 0.05, power 0.8 needs 21 (tables:
    # d = 0.65 -> 21)
    assert row["seeds_needed"] == 21


def test_all_pairs_family():
    assert comparisons(["a", "b", "c"], "a", all_pairs=False) == [("b", "a"), ("c", "a")]
    assert comparisons(["a", "b", "c"], "a", all_pairs=True) == [
        ("b", "a"), ("c", "a"), ("c", "b")]


def test_adaptive_continues_only_undecided_variants():
    design = Design(min_effect=0.02, initial=3, max=9, step=3)
    results = {
        "base": {0: 0.90, 1: 0.91, 2: 0.92},
        "dead": {0: 0.10, 1: 0.10, 2: 0.11},  # decided worse at the first look
        "close": {0: 0.905, 1: 0.92, 2: 0.915},  # not yet decided
    }
    first = decide(results, "base", design)
    assert first.look == 1 and first.continuing == ["base", "close"]
    assert first.stop_reason["dead"].startswith("stopped")
    # Round 2's runs arrive for base and close only: the second look uses them.
    results["base"].update({3: 0.91, 4: 0.90, 5: 0.92})
    results["close"].update({3: 0.915, 4: 0.905, 5: 0.925})
    second = decide(results, "base", design)
    assert second.look == 2
    assert second.seeds_used == {"base": 6, "dead": 3, "close": 6}


def _null_study(rng: random.Random, arms: int, seeds: int, sd: float) -> dict:
    return {f"v{i}": {s: rng.gauss(0.9, sd) for s in range(seeds)} for i in range(arms)}


@pytest.mark.parametrize("design", [Design(min_effect=0.02),
                                    Design(min_effect=0.02, initial=3, max=9, step=3)],
                         ids=["fixed", "adaptive"])
def test_family_wise_error_under_the_null(design):
    # Five variants equal to the baseline: any better/worse verdict is a false positive.
    rng = random.Random(7)
    reps = 1500
    false = uncorrected = 0
    for _ in range(reps):
        study = _null_study(rng, 6, design.max or 3, 0.01)
        rows = decide(study, "v0", design, extras=False).rows
        false += any(r["verdict"] in ("better", "worse") for r in rows)
        if not design.adaptive:
            base = [study["v0"][s] for s in range(3)]
            uncorrected += any(
                paired_comparison(base, [study[v][s] for s in range(3)])["p_value"] < 0.05
                for v in study if v != "v0")
    rate = false / reps
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
    if not design.adaptive:
        # today's uncorrected tests: about one study in five
        assert uncorrected / reps > 0.15


def test_bounded_intervals_stay_in_range():
    # Two accuracies far apart: the plain t interval leaves [0, 1], the logit one does not.
    mean, lo, hi = bounded_interval([0.88, 0.99], bounds=(0.0, 1.0))
    assert mean == pytest.approx(0.935) and 0 < lo < 0.88 and 0.99 < hi < 1
    mean, lo, hi = bounded_interval([0.5, 3.0], bounds=(0.0, None))
    # log scale: logs -0.693147, 1.098612; mean 0.202733, se = 1.791759 / 2 = 0.895880;
    # low = exp(0.202733 - 12.706205 * 0.895880) = exp(-11.180374) = 1.3943e-05
    assert lo == pytest.approx(1.3943e-05, rel=1e-3) and hi > 3.0


def test_identical_differences_on_every_seed_are_tested_with_the_rounding_floor():
    # Accuracies on 270 images: before 246/270 and none 28/270 on every seed (none stuck at
    # chance), so the differences have no spread and the plain t is undefined. The floor is
    # the rounding SD, step / sqrt(6). The values 246/270 = 123/135, 28/270 = 14/135,
    # 174/270 = 87/135 and 180/270 = 90/135 are all whole counts of 1/135 (and of no coarser
    # step): step 1/135. t = (218/270) / (floor / sqrt 2), 1 df: p = 1 - 2/pi * atan(t).
    # Stored as float32, as Keras reports accuracies.
    f32 = lambda k: float(np.float32(k / 270))  # noqa: E731
    results = {"before": {0: f32(246), 1: f32(246)}, "none": {0: f32(28), 1: f32(28)},
               "after": {0: f32(174), 1: f32(180)}}
    rows = {r["variant"]: r for r in decide(results, "before", Design()).rows}
    floor = (1 / 135) / math.sqrt(6)
    t = (218 / 270) / (floor / math.sqrt(2))
    assert rows["none"]["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(t), rel=1e-5)
    assert rows["none"]["verdict"] == "worse"


def test_a_replay_after_more_rounds_decides_each_look_as_it_was():
    # The rounding floor of look 1 comes from look 1's values: seeds added in round 2 (here
    # values on a finer grid, 1/270) must not turn look 1's verdict after the fact.
    design = Design(initial=2, max=4, step=2)
    results = {"before": {0: 0.9, 1: 0.9}, "none": {0: 0.1, 1: 0.1}, "after": {0: 0.5, 1: 0.6}}
    first = decide(results, "before", design)
    rows = {r["variant"]: r for r in first.rows}
    # look 1's values 0.1, 0.5, 0.6, 0.9 are tenths: floor (1/10)/sqrt 6, t = 0.8/(floor/sqrt 2)
    t = 0.8 / ((0.1 / math.sqrt(6)) / math.sqrt(2))
    assert rows["none"]["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(t), rel=1e-6)
    # p = 0.0230 > look 1's level for Holm's first step (alpha/2 spent over looks 2/4: ~0.016)
    assert rows["none"]["verdict"] == "undecided" and "none" in first.continuing
    for v, extra in (("before", {2: 245 / 270, 3: 244 / 270}), ("after", {2: 0.5, 3: 0.55}),
                     ("none", {2: 0.1, 3: 0.1})):
        results[v].update(extra)
    again = {r["variant"]: r for r in decide(results, "before", design).rows}
    # Look 1 replayed as it was (a floor from all values, 1/270, would have decided it there).
    assert again["none"]["look"] == 2 and again["none"]["n_pairs"] == 4


def test_zero_spread_is_not_called_equivalent_on_a_zero_width_interval():
    # The default study's prelu vs relu: +2/270 on both seeds (accuracies on 270 images). A
    # plain t interval has zero width, inside +-0.02 whatever the rounding. With the rounding
    # floor, step 1/270 (246/270 = 41/45 and 248/270 = 124/135 need 270), the 95% interval is
    # 2/270 -+ 12.706205 * ((1/270)/sqrt 6) / sqrt 2 = [-0.006185, 0.021000]: not inside.
    results = {"relu": {0: 246 / 270, 1: 246 / 270}, "prelu": {0: 248 / 270, 1: 248 / 270},
               "elu": {0: 245 / 270, 1: 247 / 270}}
    rows = {r["variant"]: r for r in decide(results, "relu", Design(min_effect=0.02)).rows}
    half = 12.706205 * ((1 / 270) / math.sqrt(6)) / math.sqrt(2)
    assert rows["prelu"]["diff_ci_low"] == pytest.approx(2 / 270 - half, abs=1e-6)
    assert rows["prelu"]["diff_ci_high"] == pytest.approx(2 / 270 + half, abs=1e-6)
    assert rows["prelu"]["verdict"] == "undecided"
    # with a wider margin the same data is equivalent
    rows = {r["variant"]: r for r in decide(results, "relu", Design(min_effect=0.03)).rows}
    assert rows["prelu"]["verdict"] == "equivalent"


def test_seeds_needed_where_scipys_noncentral_t_gives_nan():
    # The default study's leaky_relu vs relu: paired SD 0.00262, min_effect 0.02, Holm's
    # first step over 5 comparisons (0.01). scipy's nct is nan at n = 2 and 3 here; the
    # search used to stop at once and claim 2 seeds (the 2 it had, undecided). Power by
    # simulation of the t-test itself: n = 2 far below 0.8, n = 3 above.
    rng = np.random.default_rng(5)
    def simulated_power(n):
        d = rng.normal(0.02, 0.00262, size=(20_000, n))
        return float(np.mean(sps.ttest_1samp(d, 0.0, axis=1).pvalue < 0.01))
    assert simulated_power(2) < 0.3 and simulated_power(3) > 0.8
    assert seeds_needed(sd=0.00262, effect=0.02, alpha=0.01, power=0.8) == 3


def test_equal_count_differences_recorded_as_float32_are_not_a_spread():
    # Issue #24, values as the runs recorded them (All-CNN-C on digits, 270 validation images,
    # Keras's float32 accuracies): tanh is 2 images better than relu on both seeds. As counts
    # the two differences are equal (no spread: the rounding floor decides); as float32 they
    # differ in the 8th decimal, which used to give p 2.6e-6 and a `better` verdict.
    f32 = lambda k: float(np.float32(k / 270))  # noqa: E731
    results = {"relu": {0: f32(261), 1: f32(259)}, "tanh": {0: f32(263), 1: f32(261)},
               "relu6": {0: f32(260), 1: f32(259)}, "elu": {0: f32(258), 1: f32(262)},
               "selu": {0: f32(255), 1: f32(257)}, "prelu": {0: f32(262), 1: f32(258)}}
    assert len({results["tanh"][s] - results["relu"][s] for s in (0, 1)}) == 2  # the noise
    decided = decide(results, "relu", Design(), metric="best_val_accuracy")
    rows = {r["variant"]: r for r in decided.rows}
    # Every value is a whole count of 1/270 (and 263/270 needs 270): floor (1/270)/sqrt 6,
    # t = (2/270) / (floor / sqrt 2) = 2 sqrt 12 with 1 df: p = 1 - 2/pi * atan(t).
    t = 2 * math.sqrt(12)
    assert rows["tanh"]["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(t), rel=1e-6)
    assert rows["tanh"]["verdict"] == "undecided"
    assert rows["tanh"]["diff_mean"] == pytest.approx(2 / 270, abs=1e-12)
    # the interval is the floor's, not a zero-width [0.0074070, 0.0074078]
    half = 12.706205 * ((1 / 270) / math.sqrt(6)) / math.sqrt(2)
    assert rows["tanh"]["diff_ci_high"] - rows["tanh"]["diff_ci_low"] == pytest.approx(
        2 * half, rel=1e-5)
    assert math.isnan(rows["tanh"]["effect_size"])


def test_float32_noise_in_values_without_a_grid_is_not_a_spread():
    # Losses or seconds have no count grid: a variant 0.3 s slower on both seeds, recorded as
    # float32 around 100 s (ulp 7.6e-6), gives differences 0.2999954 and 0.3000031: a spread
    # of 5e-6 that is only representation (it used to give p ~ 1e-5). It counts as none: the
    # floor without a grid is the smallest gap between distinct values, here 57.4 - 57.1.
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    results = {"base": {0: f32(100 + 1 / 3), 1: f32(57.1)},
               "v": {0: f32(100 + 1 / 3 + 0.3), 1: f32(57.4)}}
    diff = [results["v"][s] - results["base"][s] for s in (0, 1)]
    assert diff[0] != diff[1]
    rows = decide(results, "base", Design(), metric="seconds_per_epoch").rows
    values = sorted(x for d in results.values() for x in d.values())
    gap = min(b - a for a, b in zip(values, values[1:]))
    t = (sum(diff) / 2) / (gap / math.sqrt(6) / math.sqrt(2))
    assert rows[0]["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(t), rel=1e-6)
    assert rows[0]["verdict"] == "undecided"


def test_ties_within_float32_noise_count_half_in_prob_improvement():
    # Seconds per epoch around 100 (no count grid): one ulp of float32 (7.6e-6) apart is the
    # same value; a clear win on the third seed. P(improvement) = (1 + 2 * 1/2) / 3.
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    one_ulp = float(np.nextafter(np.float32(100 + 1 / 3), np.float32(200)))
    results = {"a": {0: f32(100 + 1 / 3), 1: f32(90.5), 2: f32(80.25)},
               "b": {0: one_ulp, 1: f32(90.5), 2: f32(81.25)}}
    assert results["b"][0] != results["a"][0]
    row = decide(results, "a", Design(), metric="seconds_per_epoch").rows[0]
    assert row["prob_improvement"] == pytest.approx(2 / 3)


def test_difference_interval_stays_inside_what_accuracies_allow():
    # Three seeds, one wildly off: the t interval of the differences is wider than [-1, 1];
    # an accuracy difference cannot leave it (issue #22: [-103.5, -51.7] points in the report).
    results = {"before": {0: 0.95, 1: 0.96, 2: 0.94}, "none": {0: 0.10, 1: 0.11, 2: 0.90}}
    row = decide(results, "before", Design(), metric="best_val_accuracy").rows[0]
    diff = [results["none"][s] - results["before"][s] for s in range(3)]
    mean, sd = float(np.mean(diff)), float(np.std(diff, ddof=1))
    half = sps.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert mean - half < -1  # the unbounded interval leaves the range
    assert row["diff_ci_low"] == -1.0
    assert row["diff_ci_high"] == pytest.approx(min(mean + half, 1.0))


def test_three_equal_differences_have_no_spread():
    # 323/359 - 322/359 on three seeds: the mean of three equal doubles computed by fsum / 3
    # is not always the value itself, and the residue used to give an SD of 1e-19 and p 1e-32.
    # With no spread, the rounding floor decides: t = (1/359) / (((1/359)/sqrt 6) / sqrt 3)
    # = sqrt 18, 2 df: p = 1 - t / sqrt(t^2 + 2).
    f32 = lambda k: float(np.float32(k / 359))  # noqa: E731
    results = {"base": {0: f32(322), 1: f32(322), 2: f32(323)},
               "v": {0: f32(323), 1: f32(323), 2: f32(324)}}
    row = decide(results, "base", Design()).rows[0]
    t = math.sqrt(18)
    assert row["p_value"] == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-6)
    assert row["verdict"] == "undecided"
