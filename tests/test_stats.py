"""The statistics over seeds, checked against values computed by hand (the arithmetic is
written out in each test; scipy is never asked for an expected value)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from cnnablate.decisions.stats import bounded_interval, paired_comparison, t_interval, tied_ranks
from cnnablate.reporting.aggregate import aggregate_study

T975_DF1 = 12.706204736174704  # Student t quantile 0.975, 1 degree of freedom (tables)
T975_DF2 = 4.302652729911275  # ... 2 degrees of freedom


# --- t intervals ---------------------------------------------------------------------------

def test_t_interval_by_hand():
    # mean (0.80 + 0.82 + 0.84) / 3 = 0.82; deviations -0.02, 0, 0.02;
    # sd = sqrt((0.0004 + 0 + 0.0004) / 2) = 0.02; half-width = t(0.975, 2) * 0.02 / sqrt(3)
    half = T975_DF2 * 0.02 / math.sqrt(3)
    assert half == pytest.approx(0.0496827, abs=1e-7)
    mean, lo, hi = t_interval([0.80, 0.82, 0.84])
    assert mean == pytest.approx(0.82)
    assert lo == pytest.approx(0.82 - half, abs=1e-10)
    assert hi == pytest.approx(0.82 + half, abs=1e-10)


def test_t_interval_two_values_and_other_confidence():
    # [0.5, 0.7]: mean 0.6, sd = sqrt(2 * 0.01 / 1) = 0.141421; se = sd / sqrt(2) = 0.1
    mean, lo, hi = t_interval([0.5, 0.7])
    assert (mean, lo, hi) == pytest.approx((0.6, 0.6 - T975_DF1 * 0.1, 0.6 + T975_DF1 * 0.1))
    # 50% interval with 1 df: t(0.75, 1) = tan(pi / 4) = 1 (Cauchy), so mean -+ se
    assert t_interval([0.5, 0.7], confidence=0.5) == pytest.approx((0.6, 0.5, 0.7))


def test_t_interval_needs_two_finite_values():
    assert t_interval([0.9]) == (0.9, pytest.approx(math.nan, nan_ok=True),
                                 pytest.approx(math.nan, nan_ok=True))
    assert all(math.isnan(v) for v in t_interval([]))
    # None, nan and inf are left out, not averaged in
    assert t_interval([0.80, None, float("nan"), 0.82, float("inf"), 0.84])[0] == (
        pytest.approx(0.82))


# --- paired comparison ---------------------------------------------------------------------

BASE = [0.80, 0.82, 0.84]
VARIANT = [0.83, 0.86, 0.85]


def test_paired_t_by_hand():
    # differences (x 0.01): 3, 4, 1 -> mean 8/3; deviations 1/3, 4/3, -5/3;
    # sum of squares (1 + 16 + 25) / 9 = 14/3; variance 7/3; sd = sqrt(7/3)
    # se = sd / sqrt(3) = sqrt(7) / 3; t = (8/3) / (sqrt(7)/3) = 8 / sqrt(7) = 3.0237
    # With 2 df the t distribution has a closed form: P(|T| > t) = 1 - t / sqrt(t^2 + 2),
    # and t^2 + 2 = 64/7 + 14/7 = 78/7, so p = 1 - (8/sqrt(7)) / sqrt(78/7) = 1 - 8/sqrt(78).
    p = 1 - 8 / math.sqrt(78)
    assert p == pytest.approx(0.0941784, abs=1e-7)
    mean = 0.08 / 3
    half = T975_DF2 * 0.01 * math.sqrt(7) / 3
    r = paired_comparison(BASE, VARIANT)
    assert r["test"] == "paired_t" and r["n_pairs"] == 3
    assert r["diff_mean"] == pytest.approx(mean, abs=1e-10)
    assert r["diff_ci_low"] == pytest.approx(mean - half, abs=1e-10)
    assert r["diff_ci_high"] == pytest.approx(mean + half, abs=1e-10)
    assert r["p_value"] == pytest.approx(p, abs=1e-9)
    # the other way round: the difference flips sign, the p-value stays
    back = paired_comparison(VARIANT, BASE)
    assert back["diff_mean"] == pytest.approx(-mean) and back["p_value"] == pytest.approx(p)


def test_paired_t_two_pairs_cauchy():
    # differences 0.03, 0.04: mean 0.035, sd 0.00707107, se 0.005, t = 7 with 1 df
    # (Cauchy): two-sided p = 1 - (2/pi) * atan(7) = 0.0903344
    r = paired_comparison([0.80, 0.82], [0.83, 0.86])
    assert r["p_value"] == pytest.approx(1 - 2 / math.pi * math.atan(7), abs=1e-9)
    assert r["diff_ci_low"] == pytest.approx(0.035 - T975_DF1 * 0.005, abs=1e-10)


def test_wilcoxon_from_six_pairs_by_hand():
    # differences (x 0.01): 1, 2, 3, 4, 5, -6 -> ranks of |d| 1..6, negative rank sum W- = 6.
    # Under H0 each of the 2^6 = 64 sign patterns is equally likely; patterns with a negative
    # rank sum <= 6 are the subsets of {1..6} with sum <= 6: {} (1), singletons (6),
    # {1,2} {1,3} {1,4} {1,5} {2,3} {2,4} (6), {1,2,3} (1) = 14. Two-sided p = 2 * 14/64.
    base = [0.5] * 6
    variant = [0.51, 0.52, 0.53, 0.54, 0.55, 0.44]
    r = paired_comparison(base, variant)
    assert r["test"] == "wilcoxon" and r["n_pairs"] == 6
    assert r["p_value"] == pytest.approx(28 / 64)
    # all six better: only the empty subset has W- <= 0, p = 2 * 1/64
    assert paired_comparison(base, [0.51, 0.52, 0.53, 0.54, 0.55, 0.56])["p_value"] == (
        pytest.approx(2 / 64))
    # five pairs: still the t-test
    assert paired_comparison(base[:5], variant[:5])["test"] == "paired_t"


def test_wilcoxon_equal_differences_tie_despite_floating_point():
    # 0.84 - 0.82 = 0.020000000000000018 and 0.04 - 0.02 = 0.02 in floating point; both are
    # the same difference and must share a rank. Differences (x 0.01): 2, 2, 5, 7, 11, -13 ->
    # mid-ranks 1.5, 1.5, 3, 4, 5, 6; W- = 6. Sign patterns with negative rank sum <= 6:
    # {} (1); singletons 1.5, 1.5, 3, 4, 5, 6 (6); pairs 1.5+1.5, 1.5+3 (x2), 1.5+4 (x2) (5);
    # triple 1.5+1.5+3 (1) -> 13 of 64; two-sided p = 26/64. (Ranked 1 and 2 instead, the two
    # differences would give 28/64.)
    assert 0.84 - 0.82 != 0.04 - 0.02
    base = [0.82, 0.02, 0.50, 0.50, 0.50, 0.50]
    variant = [0.84, 0.04, 0.55, 0.57, 0.61, 0.37]
    r = paired_comparison(base, variant)
    assert r["test"] == "wilcoxon" and r["p_value"] == pytest.approx(26 / 64)


def test_paired_degenerate_cases():
    same = paired_comparison(BASE, BASE)
    assert same["p_value"] == 1.0 and same["diff_mean"] == 0.0
    # the same nonzero difference on every seed (0.84-0.82 vs 0.04-0.02 included): t undefined
    shifted = paired_comparison([0.82, 0.02, 0.50], [0.84, 0.04, 0.52])
    assert math.isnan(shifted["p_value"]) and shifted["test"] == "paired_t"
    assert shifted["diff_mean"] == pytest.approx(0.02)
    one = paired_comparison([0.8], [0.9])
    assert one["test"] == "none" and math.isnan(one["p_value"]) and one["n_pairs"] == 1
    with pytest.raises(ValueError):
        paired_comparison([0.8, 0.9], [0.9])


def test_paired_leaves_out_pairs_with_a_missing_value():
    r = paired_comparison([*BASE, 0.9, None], [*VARIANT, float("nan"), 0.7])
    assert r["n_pairs"] == 3 and r["p_value"] == pytest.approx(1 - 8 / math.sqrt(78))


# --- tied ranks ----------------------------------------------------------------------------

def test_tied_ranks_overlapping_intervals_share_a_rank():
    # A [0.88, 0.92] and B [0.80, 0.90] overlap -> both 1; C [0.65, 0.75] lies below both
    # -> 1 + 2 = 3; D [0.74, 0.86] overlaps B (0.80 < 0.86) but not A (0.88 > 0.86) -> 2
    means = [0.90, 0.85, 0.70, 0.80]
    lows = [0.88, 0.80, 0.65, 0.74]
    highs = [0.92, 0.90, 0.75, 0.86]
    assert tied_ranks(means, lows, highs) == [1, 1, 3, 2]


def test_tied_ranks_without_intervals_and_without_means():
    nan = math.nan
    # one seed each: no interval, nothing can be told apart
    assert tied_ranks([0.9, 0.5, 0.7], [nan] * 3, [nan] * 3) == [1, 1, 1]
    # a variant with no completed run ranks last
    assert tied_ranks([0.9, nan, 0.5], [0.85, nan, 0.45], [0.95, nan, 0.55]) == [1, 3, 2]


# --- aggregate_study over metrics.json files -----------------------------------------------

def write_run(root: Path, study: str, variant: str, seed: int, best: float | None,
              status: str = "completed", **extra) -> Path:
    """A run's metrics.json and history.csv as the training job writes them."""
    run = root / "results" / "runs" / study / variant / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    diverged = status == "diverged"
    metrics = {
        "study": study, "variant": variant, "seed": seed, "status": status,
        "epochs_completed": 1 if diverged else 2, "diverged_epoch": 2 if diverged else None,
        "best_val_accuracy": best, "best_epoch": 1 if diverged else 2,
        "final_val_accuracy": None if diverged else best,
        "final_val_loss": None if diverged else 1.0 - (best or 0),
        "test_accuracy": None if diverged else best,
        "parameters": 1000 + len(variant), "train_seconds": 2.0, "seconds_per_epoch": 1.0,
        "device": ["CPU"],
        "activation_stats": [{"dead_fraction": 0.1, "mean": 0.5},
                             {"dead_fraction": 0.2, "mean": 0.4}],
        "activation_curve": {"x": [-1.0, 0.0, 1.0], "y": [0.0, 0.0, 1.0],
                             "dy": [0.0, 0.0, 1.0]},
        "provenance": {
            "packages": {"keras": "3.15.1", "numpy": "2.4.6"},
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
            "config_hash": "feedfacecafebeef", "dataset": "digits",
            "dataset_checksum": "ab" * 32,
            "machine": {"hostname": "box", "platform": "Linux-x86_64", "cpu": "x86_64",
                        "cpu_count": 2, "python": "3.11.7"},
            "keras_backend": "tensorflow",
        },
        **extra,
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    val = "nan" if diverged else best
    (run / "history.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n"
        f"1,1.0,0.5,1.0,{(best or 0) - 0.05},1.0\n2,{'nan' if diverged else 0.5},0.6,"
        f"{'nan' if diverged else 0.4},{val},1.0\n"
    )
    return run


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_aggregate_study_counts_diverged_runs_and_leaves_them_out(tmp_path):
    runs = [
        write_run(tmp_path, "acts", "relu", 0, 0.80),
        write_run(tmp_path, "acts", "relu", 1, 0.82),
        write_run(tmp_path, "acts", "relu", 2, 0.84),
        write_run(tmp_path, "acts", "elu", 0, 0.83),
        write_run(tmp_path, "acts", "elu", 1, 0.86),
        # diverged: its 0.99 must not reach any mean, interval or paired test
        write_run(tmp_path, "acts", "elu", 2, 0.99, status="diverged"),
    ]
    study = {"name": "acts", "eval_split": "val", "baseline": "relu",
             "variant_descriptions": {"relu": "", "elu": ""}}
    out = {k: tmp_path / f"{k}.csv" for k in ("runs", "summary", "paired")}
    aggregate_study([r / "metrics.json" for r in runs], study, out["runs"], out["summary"],
                    out["paired"])

    table = _rows(out["runs"])
    assert len(table) == 6  # never dropped
    assert [r["status"] for r in table if r["variant"] == "elu"].count("diverged") == 1

    summary = {r["variant"]: r for r in _rows(out["summary"])}
    assert list(summary) == ["relu", "elu"]  # the study's order
    relu, elu = summary["relu"], summary["elu"]
    assert (relu["n"], relu["n_diverged"]) == ("3", "0")
    assert (elu["n"], elu["n_diverged"]) == ("2", "1")
    # Accuracy intervals are t intervals on the logit scale, mapped back (they stay in [0, 1]):
    # logits 1.386294, 1.516347, 1.658228: mean 1.520290, sd 0.136010, se 0.078525,
    # half-width 4.302653 * 0.078525 = 0.337867 -> [1.182423, 1.858157] -> [0.765383, 0.865082]
    assert float(relu["best_val_accuracy_mean"]) == pytest.approx(0.82)
    assert float(relu["best_val_accuracy_std"]) == pytest.approx(0.02)
    assert float(relu["best_val_accuracy_ci_low"]) == pytest.approx(0.765383, abs=2e-6)
    assert float(relu["best_val_accuracy_ci_high"]) == pytest.approx(0.865082, abs=2e-6)
    # elu over its two completed seeds only: mean (0.83 + 0.86) / 2 = 0.845 (with the
    # diverged 0.99 averaged in the mean would be 0.8933); its logit interval with 1 df:
    # logits 1.585627, 1.815290, se = 0.229663 / 2 = 0.114832, high = 1.700459 + 12.706205 *
    # 0.114831 = 3.159543 -> 0.959283
    assert float(elu["best_val_accuracy_mean"]) == pytest.approx(0.845)
    assert float(elu["best_val_accuracy_ci_high"]) == pytest.approx(0.959283, abs=2e-6)
    assert float(elu["final_val_loss_mean"]) == pytest.approx(1 - 0.845)
    assert float(elu["test_accuracy_mean"]) == pytest.approx(0.845)
    assert relu["parameters"] == "1004" and elu["parameters"] == "1003"
    # intervals [0.765, 0.865] and [<0.6, 0.959] overlap: tied
    assert (relu["rank"], elu["rank"]) == ("1", "1")
    assert relu["tied_with_best"] == elu["tied_with_best"] == "True"

    (paired,) = _rows(out["paired"])
    # seeds 0 and 1 only (elu seed 2 diverged): differences 0.03, 0.04 -> t = 7, 1 df
    assert (paired["variant"], paired["baseline"], paired["metric"]) == (
        "elu", "relu", "best_val_accuracy")
    assert paired["n_pairs"] == "2" and paired["test"] == "paired_t"
    assert float(paired["diff_mean"]) == pytest.approx(0.035)
    assert float(paired["p_value"]) == pytest.approx(1 - 2 / math.pi * math.atan(7))


def test_aggregate_study_ranks_by_test_accuracy_when_asked(tmp_path):
    runs = [write_run(tmp_path, "s", v, seed, best)
            for v, values in (("a", [0.90, 0.91, 0.92]), ("b", [0.50, 0.51, 0.52]))
            for seed, best in enumerate(values)]
    study = {"name": "s", "eval_split": "test", "baseline": "b",
             "variant_descriptions": {"a": "", "b": ""}}
    out = [tmp_path / f"{k}.csv" for k in ("runs", "summary", "paired")]
    aggregate_study([r / "metrics.json" for r in runs], study, *out)
    summary = {r["variant"]: r for r in _rows(out[1])}
    assert (summary["a"]["rank"], summary["b"]["rank"]) == ("1", "2")
    assert _rows(out[2])[0]["metric"] == "test_accuracy"


def test_bounded_interval_of_identical_values_contains_the_mean():
    # 28/270 on both seeds (a variant stuck at chance, values on their grid): the logit round
    # trip put both ends 1 ulp above the mean, and the final-metric figure's error bar failed.
    mean, low, high = bounded_interval([28 / 270, 28 / 270], 0.95, (0.0, 1.0))
    assert low <= mean <= high
    assert mean == 28 / 270
