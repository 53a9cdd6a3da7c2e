"""The report's decisions in words (cnnablate/decisions/sentences.py), from hand-made rows."""

from __future__ import annotations

from cnnablate.decisions.decide import MAX_SEEDS_NEEDED, Design, seeds_needed
from cnnablate.decisions.sentences import comparison_sentence, cross_study, did_not_learn, guarantee

ROW = {"variant": "elu", "baseline": "relu", "n_pairs": 6, "diff_mean": 0.012,
       "diff_ci_low": 0.004, "diff_ci_high": 0.020, "p_holm": 0.01, "prob_improvement": 0.83,
       "verdict": "better", "seeds_needed": None}


def test_better_sentence_reads_in_points():
    assert comparison_sentence(ROW, "best_val_accuracy", 0.01) == (
        "elu beats relu by 1.2 points [0.4, 2.0], P(improvement) 0.83, Holm p = 0.01: better.")


def test_undecided_sentence_gives_seeds_needed():
    row = {**ROW, "variant": "prelu", "verdict": "undecided", "diff_mean": 0.003,
           "diff_ci_low": -0.01, "diff_ci_high": 0.016, "p_holm": 0.6, "seeds_needed": 14}
    text = comparison_sentence(row, "best_val_accuracy", 0.01)
    assert text.startswith("prelu vs relu: undecided after 6 seeds")
    assert text.endswith("about 14 seeds per arm would detect a 1.0-point difference.")


def test_guarantee_names_alpha_and_design():
    assert "at most 5%" in guarantee(Design(), 5, 1)
    assert "4 looks" in guarantee(Design(initial=3, max=12, step=3), 5, 4)


def test_chance_level_variant_did_not_learn():
    rows = [{"variant": "none", "n": 2, "best_val_accuracy_mean": 0.104},
            {"variant": "before", "n": 2, "best_val_accuracy_mean": 0.88}]
    (dead,) = did_not_learn(rows, "best_val_accuracy", 10,
                            {"none": {"learning_rate": 0.01, "epochs": 6}})
    assert (dead["variant"], dead["learning_rate"], dead["epochs"]) == ("none", 0.01, 6)


def test_cross_study_table_only_for_shared_variants():
    sections = [
        {"name": "c10", "baseline": "relu",
         "paired": [{"variant": "elu", "baseline": "relu", "verdict": "better"},
                    {"variant": "only10", "baseline": "relu", "verdict": "worse"}]},
        {"name": "c100", "baseline": "relu",
         "paired": [{"variant": "elu", "baseline": "relu", "verdict": "undecided"}]},
    ]
    table = cross_study(sections)
    assert table["rows"] == {"elu": {"c10": "better", "c100": "undecided"},
                             "relu": {"c10": "baseline", "c100": "baseline"}}


def test_seeds_needed_past_the_cap_reads_more_than():
    # sd 1, effect 0.001: the normal approximation alone asks for ~7.8 million seeds; the
    # search stops at its cap and says so instead of printing a number it never checked.
    needed = seeds_needed(sd=1.0, effect=0.001, alpha=0.05, power=0.8)
    assert needed == MAX_SEEDS_NEEDED + 1
    row = {**ROW, "verdict": "undecided", "diff_mean": 0.0005, "p_holm": 0.9,
           "seeds_needed": needed}
    text = comparison_sentence(row, "best_val_accuracy", 0.001)
    assert text.endswith(f"; more than {MAX_SEEDS_NEEDED} seeds per arm would detect a "
                         "0.1-point difference.")


def test_adaptive_designs_do_not_call_the_adjusted_value_a_p_value():
    fixed = comparison_sentence(ROW, "best_val_accuracy", 0.01)
    adaptive = comparison_sentence(ROW, "best_val_accuracy", 0.01, adaptive=True)
    assert "Holm p = 0.01" in fixed
    assert "sequential Holm score = 0.01" in adaptive and "Holm p" not in adaptive
