"""What a verdict is about, failure modes, the permutation test and the wording of issue #30
item 4 (cnnablate.decisions.scope, .permutation, .sentences)."""

from __future__ import annotations

import itertools

import pytest

from cnnablate.decisions import scope, sentences
from cnnablate.decisions.decide import Design, decide
from cnnablate.decisions.permutation import min_seeds, sign_flip_p, smallest_p


def _settings(source="sklearn_digits", split="per_seed", eval_split="val", tuned=False,
              augment=("none",)):
    return {"eval_split": eval_split, "tuned": tuned,
            "data": {"source": source, "split": split, "augment": list(augment)}}


def test_scope_of_a_per_seed_partition():
    text = scope.verdict_scope(_settings(augment=("flip",)), "best_val_accuracy")
    assert text == (
        "What the verdicts are about: the mean difference over seeds of best val accuracy; "
        "varied between seeds: initialisation, data order, augmentation and "
        "train/validation/test partition; validation set: drawn per seed with the partition. "
        "They are conditional on the runs that completed (a diverged run leaves its seed out "
        "of its comparisons).")


def test_scope_of_an_official_test_set_with_and_without_predictions():
    cifar = _settings("cifar10_binary", eval_split="test", tuned=True)
    counted = scope.verdict_scope(cifar, "test_accuracy", ["crossed_t", "crossed_t"])
    assert "each variant at the selected settings (the best of its listed candidates" in counted
    assert "initialisation, data order and train/validation partition;" in counted
    assert "test set: fixed, its sampling counted (seeds × images)" in counted
    assert "its sampling not counted (no per-image predictions): the verdicts are about these " \
        "images" in scope.verdict_scope(cifar, "test_accuracy", ["paired_t"])
    assert "counted in 1 of 2 comparisons" in scope.verdict_scope(
        cifar, "test_accuracy", ["crossed_t", "paired_t"])
    fixed = scope.verdict_scope(_settings(split="fixed"), "best_val_accuracy", ["paired_t"])
    assert "varied between seeds: initialisation and data order;" in fixed
    assert "validation set: fixed, its sampling not counted" in fixed


def test_failure_modes_diverged_chance_and_robust_outlier():
    # median of 0.90, 0.91, 0.92, 0.55 is 0.905; MAD = median(0.005, 0.005, 0.015, 0.355) =
    # 0.01; modified z of 0.55 = 0.355 / (1.4826 * 0.01) = 23.9 > 3.5; of 0.92: 1.01.
    modes = scope.failure_modes({0: 0.90, 1: 0.91, 2: 0.92, 3: 0.55, 4: None},
                                {4: "diverged"}, chance=0.1)
    assert modes == ["seed 4 diverged",
                     "seed 3 a robust outlier (0.55 against a median of 0.905)"]
    assert scope.failure_modes({0: 0.9, 1: 0.12, 2: 0.91}, chance=0.1) == [
        "seed 1 at chance (0.12)"]
    # two tied values and a third one image away: the MAD (0) is floored at the step
    assert scope.failure_modes({0: 0.9, 1: 0.9, 2: 0.9 + 1 / 270}, step=1 / 270) == []
    assert scope.failure_modes({0: 0.9, 1: 0.91}) == []  # too few for an outlier rule


def test_sign_flip_p_is_the_share_of_sign_vectors_at_least_as_extreme():
    diff = [0.03, -0.01, 0.02, 0.05, 0.01]
    observed = abs(sum(diff))
    extreme = sum(abs(sum(s * d for s, d in zip(signs, diff))) >= observed - 1e-12
                  for signs in itertools.product((-1, 1), repeat=len(diff)))
    assert sign_flip_p(diff) == pytest.approx(extreme / 32)
    assert sign_flip_p([0.0, 0.0]) == 1.0
    assert smallest_p(4) == 0.125 and min_seeds(0.05) == 6 and min_seeds(0.01) == 8


def test_permutation_design_decides_with_sign_flips_and_says_when_it_cannot():
    # 4 seeds, all better: p = 2/16 = 0.125 > 0.05 whatever the size of the difference
    results = {"b": {s: 0.5 for s in range(4)}, "v": {s: 0.9 + s / 1000 for s in range(4)}}
    row = decide(results, "b", Design(test="permutation")).rows[0]
    assert row["test"] == "sign_flip" and row["p_value"] == 0.125
    assert row["verdict"] == "undecided" and row["seeds_needed"] >= 6
    text = sentences.guarantee(Design(test="permutation"), 1, 1, n_seeds=4)
    assert "With the permutation test and 4 seeds no comparison can be decided at alpha 0.05" \
        in text and "at least 6 seeds" in text
    assert "can be decided" not in sentences.guarantee(Design(test="permutation"), 1, 1,
                                                       n_seeds=6)
    six = {"b": {s: 0.5 for s in range(6)}, "v": {s: 0.9 for s in range(6)}}
    assert decide(six, "b", Design(test="permutation")).rows[0]["verdict"] == "better"


def test_a_better_inside_min_effect_says_by_less_than_min_effect():
    row = {"variant": "v", "baseline": "b", "verdict": "better", "diff_mean": 0.012,
           "diff_ci_low": 0.008, "diff_ci_high": 0.016, "n_pairs": 5, "p_holm": 0.01,
           "prob_improvement": 1.0}
    text = sentences.comparison_sentence(row, "best_val_accuracy", 0.02)
    assert text.endswith(": better, by less than min_effect (2.0 points).")
    wide = {**row, "diff_ci_high": 0.025}
    assert sentences.comparison_sentence(wide, "best_val_accuracy", 0.02).endswith(": better.")


def test_tuned_guarantee_is_about_the_selected_settings():
    assert "false about the selected settings is at most 5%" in sentences.guarantee(
        Design(), 3, 1, tuned=True)


def test_config_refuses_an_unknown_test_in_one_line():
    from test_config import base_config

    from cnnablate.workflow import config as cfg

    config = base_config()
    assert cfg.study_settings(cfg.validate(base_config()), "acts")["decisions"]["test"] == "t"
    config["studies"]["acts"]["decisions"] = {"test": "wilcoxon"}
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(config)
    line = str(err.value).splitlines()[1]
    assert "studies.acts.decisions.test" in line and "'wilcoxon'" in line
    config["studies"]["acts"]["decisions"] = {"test": "permutation"}
    settings = cfg.study_settings(cfg.validate(config), "acts")
    assert settings["decisions"]["test"] == "permutation" and not settings["tuned"]
    assert settings["data"] == {"source": "sklearn_digits", "split": "per_seed",
                                "augment": ["none"]}


def test_report_and_paper_say_what_the_verdicts_are_about_and_flag_failures(tmp_path):
    import html as entities
    import re

    from cnnablate.reporting.paper import write_paper_tables
    from tests.test_report import make_study, render, text

    # "bad" diverged on seed 2 and stays at chance (0.1 of 10 classes) on seed 0
    values = {"relu": [0.80, 0.81, 0.82, 0.80], "bad": [0.10, 0.79, None, 0.80]}
    made = make_study(tmp_path, "acts", values, baseline="relu")
    made["settings"].update(tuned=True, data={"source": "sklearn_digits", "split": "fixed",
                                              "augment": ["none"]})
    page = entities.unescape(text(render(tmp_path, [made])))
    assert ("What the verdicts are about: the mean difference over seeds of best val accuracy, "
            "each variant at the selected settings") in page
    assert "validation set: fixed, its sampling not counted (no per-image predictions)" in page
    assert "conditional on the runs that completed" in page
    assert ("Flag: bad has runs in a failure mode (seed 2 diverged; seed 0 at chance (0.1))"
            in page)
    assert "Flagged: bad has runs in a failure mode (below)." in page
    tex, md = tmp_path / "table.tex", tmp_path / "table.md"
    write_paper_tables(made["runs"], made["summary"], made["paired"], made["settings"], tex, md)
    caption = md.read_text().split("\n\n", 1)[1]
    assert "false about the selected settings is at most 5%" in caption
    assert re.search(r"What the verdicts are about: .* each variant at the selected settings",
                     caption)


def test_planning_says_when_the_permutation_test_cannot_decide():
    from test_config import base_config

    from cnnablate.workflow import config as cfg

    config = base_config()
    config["studies"]["acts"]["decisions"] = {"test": "permutation"}
    config["studies"]["acts"]["seeds"] = [0, 1, 2, 3]
    text = sentences.configured_reach(cfg.study_settings(cfg.validate(config), "acts"))
    assert text.startswith("study acts: With the permutation test and 4 seeds no comparison")
    config["studies"]["acts"]["seeds"] = list(range(6))
    assert sentences.configured_reach(cfg.study_settings(cfg.validate(config), "acts")) is None
