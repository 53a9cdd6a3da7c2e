"""The report's decisions in words (cnnablate/decisions/sentences.py), from hand-made rows."""

from __future__ import annotations

from cnnablate.decisions.decide import Design
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
