"""Fixed evaluation images counted as a sample (issue #30 item 2): the seeds x images crossed
test (cnnablate.decisions.crossed) and how `decide` uses it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from cnnablate.decisions.crossed import crossed
from cnnablate.decisions.decide import Design, decide


def test_additive_seed_and_image_effects_give_the_two_way_clustered_variance():
    # d = a_s + b_i exactly (no interaction): MS_error = 0, and the variance of the mean is
    # var(a)/S + var(b)/N with the sample variances (ddof 1) of a and b.
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.02, 5), rng.normal(0, 0.3, 40)
    d = a[:, None] + b[None, :]
    stats = crossed(d)
    assert stats.ms_error == pytest.approx(0, abs=1e-12)
    assert stats.variance == pytest.approx(a.var(ddof=1) / 5 + b.var(ddof=1) / 40, rel=1e-9)


def test_without_an_image_effect_it_is_the_paired_t_test_over_seeds():
    # Every image shows its seed's difference: nothing varies across images, so the test is
    # scipy's one-sample t of the per-seed differences.
    c = np.array([0.02, -0.01, 0.04, 0.03])
    d = np.repeat(c[:, None], 30, axis=1)
    stats = crossed(d)
    assert stats.df == 3
    assert stats.pvalue() == pytest.approx(sps.ttest_1samp(c, 0).pvalue, rel=1e-9)


def _correct(rng, strengths, seeds):
    """Per-seed correctness on fixed images: image i right with probability strengths[i]."""
    return {s: rng.random(len(strengths)) < strengths for s in seeds}


def test_decide_counts_the_images_where_both_arms_have_them():
    rng = np.random.default_rng(2)
    n = 200
    base_p, v_p = rng.uniform(0.6, 1.0, n), rng.uniform(0.6, 1.0, n)
    correct = {"base": _correct(rng, base_p, range(4)), "v": _correct(rng, v_p, range(4)),
               "w": _correct(rng, v_p, range(4))}
    results = {k: {s: float(np.float32(c.mean())) for s, c in by.items()}
               for k, by in correct.items()}
    del correct["w"][3]  # w lacks one seed's predictions: today's test over seeds
    rows = {r["variant"]: r for r in decide(results, "base", Design(), correct=correct).rows}
    assert rows["v"]["test"] == "crossed_t" and rows["w"]["test"] == "paired_t"
    d = (np.stack([correct["v"][s] for s in range(4)]).astype(int)
         - np.stack([correct["base"][s] for s in range(4)]).astype(int))
    assert rows["v"]["diff_mean"] == pytest.approx(d.mean(), abs=1e-12)
    # the interval is mean -+ sqrt(t^2 V_seed + z^2 V_image) from the mean squares, by hand
    rows_m, cols_m, g = d.mean(1), d.mean(0), d.mean()
    ms_s = n * ((rows_m - g) ** 2).sum() / 3
    ms_i = 4 * ((cols_m - g) ** 2).sum() / (n - 1)
    ms_e = ((d - rows_m[:, None] - cols_m[None, :] + g) ** 2).sum() / (3 * (n - 1))
    v_seed, v_image = ms_s / (4 * n), max(ms_i - ms_e, 0) / (4 * n)

    def critical(level):
        return math.sqrt(sps.t.ppf(1 - level / 2, 3) ** 2 * v_seed
                         + sps.norm.ppf(1 - level / 2) ** 2 * v_image)

    assert rows["v"]["diff_ci_low"] == pytest.approx(d.mean() - critical(0.05), rel=1e-9)
    # the p-value is the level whose critical value is |mean|
    assert critical(rows["v"]["p_value"]) == pytest.approx(abs(d.mean()), rel=1e-6)


def test_seeds_needed_counts_the_images_share_that_no_seed_removes():
    # The images' variance component stays whatever the seeds: an effect far below its SD can
    # never be detected on these images ("more than 1000").
    from cnnablate.decisions.decide import MAX_SEEDS_NEEDED, crossed_seeds_needed

    rng = np.random.default_rng(3)
    b = rng.normal(0, 0.5, 100)
    d = np.clip(np.rint(b[None, :] + rng.normal(0, 0.3, (3, 100))), -1, 1)
    stats = crossed(d)
    sd_images = math.sqrt(stats.image_component / 3 / 100)
    assert crossed_seeds_needed(stats, sd_images / 10, 0.05, 0.8) == MAX_SEEDS_NEEDED + 1
    big = crossed_seeds_needed(stats, 6 * math.sqrt(stats.variance), 0.05, 0.8)
    assert big is not None and 2 <= big <= 5


def _write_runs(root, labels, strengths, seeds, with_predictions):
    """metrics.json (+ predictions.npy) per (variant, seed) as the train rule writes them."""
    import json

    rng = np.random.default_rng(4)
    files = []
    for variant, p in strengths.items():
        for seed in seeds:
            right = rng.random(labels.size) < p
            predicted = np.where(right, labels, (labels + 1) % 10).astype(np.int16)
            folder = root / variant / f"seed{seed}"
            folder.mkdir(parents=True)
            metrics = {"variant": variant, "seed": seed, "status": "completed",
                       "test_accuracy": float(np.float32((predicted == labels).mean()))}
            (folder / "metrics.json").write_text(json.dumps(metrics))
            if with_predictions(variant, seed):
                np.save(folder / "predictions.npy", predicted)
            files.append(folder / "metrics.json")
    return files


def test_aggregate_reads_predictions_where_every_run_has_them(tmp_path):
    import pandas as pd

    from cnnablate.reporting.aggregate import aggregate_study

    labels = np.arange(120, dtype=np.int16) % 10
    np.save(tmp_path / "test_labels.npy", labels)
    p = np.linspace(0.5, 0.99, labels.size)
    files = _write_runs(tmp_path / "runs", labels, {"base": p, "v": p[::-1], "w": p},
                        range(3), lambda v, s: not (v == "w" and s == 2))
    study = {"name": "s", "eval_split": "test", "baseline": "base",
             "variant_descriptions": {"base": "", "v": "", "w": ""}, "decisions": {}}
    out = {k: tmp_path / f"{k}.csv" for k in ("runs", "summary", "paired")}
    aggregate_study(files, study, out["runs"], out["summary"], out["paired"],
                    labels=tmp_path / "test_labels.npy")
    paired = pd.read_csv(out["paired"]).set_index("variant")
    # v: predictions at every seed of both arms; w lacks seed 2's: today's test over seeds
    assert paired.loc["v", "test"] == "crossed_t" and paired.loc["w", "test"] == "paired_t"
    aggregate_study(files, study, out["runs"], out["summary"], out["paired"])  # no labels
    assert set(pd.read_csv(out["paired"])["test"]) == {"paired_t"}


def test_prob_improvement_widens_by_the_images_shift_only():
    from cnnablate.decisions.crossed import prob_improvement as crossed_pi
    from cnnablate.decisions.decide import prob_improvement

    # no image effect: the shift is 0 and the bounds are Clopper-Pearson at a quarter of
    # 1 - confidence per side (the other half is the shift's), i.e. the paired bounds at
    # confidence 1 - (1 - 0.95) / 2
    c = np.array([0.02, -0.01, 0.04, 0.03, 0.01])
    flat = crossed(np.repeat(c[:, None], 30, axis=1))
    assert crossed_pi(flat, c.tolist(), 0.95) == pytest.approx(prob_improvement(c.tolist(),
                                                                                 0.975))
    # an image effect: the lower bound counts only the wins by more than the shift
    rng = np.random.default_rng(6)
    d = np.clip(np.rint(rng.normal(0, 0.6, 60)[None, :] + rng.normal(0.05, 0.4, (5, 60))), -1, 1)
    stats = crossed(d)
    rows = d.mean(axis=1).tolist()
    shift = sps.norm.ppf(1 - 0.05 / 4) * math.sqrt(stats.image_component / (5 * 60))
    wins = sum(x > shift for x in rows)
    low = 0.0 if wins == 0 else sps.beta.ppf(0.05 / 4, wins, 5 - wins + 1)
    assert crossed_pi(stats, rows, 0.95)[1] == pytest.approx(low)
