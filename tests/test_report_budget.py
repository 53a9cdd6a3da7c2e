"""A tuned study's budget curves, tuning effort and at_edge reasons in the report and the paper
table (issue #31), from hand-made tuning.csv files (no training). Expected numbers by hand."""

from __future__ import annotations

import html as entities

import pandas as pd
import pytest

from cnnablate.base import catalog
from cnnablate.decisions import sentences
from cnnablate.reporting import tuning
from cnnablate.reporting.figures import figure_function, load_study_data
from cnnablate.reporting.paper import write_paper_tables
from tests.test_report import render, text
from tests.test_report_tuning import TUNE, TUNING_CSV, _embedded, _study, write_csv

# relu: 4 grid candidates, halving (rungs 1, 2, 5; keep 0.5: 4, 2, 1) on one seed, then a zoom
# around 0.03 (0.017, 0.055); selu: the same grid but 0.1 and 0.3 diverged, 0.01 the only
# survivor at rung 1.
STAGED_CSV = """\
variant,train.learning_rate,seed,metric,value,status,selected,at_edge,at_edge_reason,epochs,stage
relu,0.01,7,best_val_accuracy,0.60,ok,False,False,,1,grid
relu,0.03,7,best_val_accuracy,0.90,ok,True,False,,5,grid
relu,0.1,7,best_val_accuracy,0.85,ok,False,False,,2,grid
relu,0.3,7,best_val_accuracy,0.50,ok,False,False,,1,grid
relu,0.017,7,best_val_accuracy,0.88,ok,False,False,,5,zoom
relu,0.055,7,best_val_accuracy,0.80,ok,False,False,,5,zoom
selu,0.01,7,best_val_accuracy,0.70,ok,True,True,only_survivor,5,grid
selu,0.03,7,best_val_accuracy,,diverged,False,True,only_survivor,1,grid
selu,0.1,7,best_val_accuracy,,diverged,False,True,only_survivor,1,grid
selu,0.3,7,best_val_accuracy,,diverged,False,True,only_survivor,1,grid
"""


def test_budget_curves_of_the_candidates_that_trained_the_whole_budget(tmp_path):
    per_variant = tuning.read_tuning(write_csv(tmp_path / "t.csv", STAGED_CSV))
    relu, selu = per_variant
    # relu: 0.03, 0.017, 0.055 trained 5 epochs (0.90, 0.88, 0.80); by hand: E1 = mean,
    # E2 = (0.90 + 0.90 + 0.88) / 3 (the best of each pair), E3 = 0.90
    assert [relu.candidates[i]["train.learning_rate"] for i in tuning.full_budget(relu)] == [
        0.03, 0.017, 0.055]
    assert tuning.budget_curve(relu, True) == pytest.approx([2.58 / 3, 2.68 / 3, 0.90])
    # selu: only 0.01 trained the whole budget
    assert tuning.budget_curve(selu, True) == pytest.approx([0.70])
    chart = tuning.budget_chart(per_variant, "best_val_accuracy", {"relu": "#111"})
    assert chart["equal_budget"] == 1
    assert [(v["name"], v["n"], v["trained"]) for v in chart["variants"]] == [
        ("relu", 3, 6), ("selu", 1, 4)]
    assert chart["variants"][0]["colour"] == "#111"


def test_a_curve_still_rising_gets_a_sentence(tmp_path):
    per_variant = tuning.read_tuning(write_csv(tmp_path / "t.csv", TUNING_CSV))
    # relu: 0.91, 0.96 and 0.1 diverged: E1 undefined (one draw may be the diverged one),
    # E2 = (0.96 + 0.91 + 0.96) / 3 = 0.94333, E3 = 0.96; the last step is the whole rise
    relu = tuning.budget_curve(per_variant[0], True)
    assert relu[0] is None and relu[1:] == pytest.approx([2.83 / 3, 0.96])
    assert tuning.still_rising([0.5, 0.8, 0.9]) == pytest.approx((0.1, 0.4))
    assert tuning.still_rising([0.77, 0.9067, 0.91]) is None  # 0.0033 of 0.14: flat
    assert tuning.still_rising([0.8, 0.8]) is None and tuning.still_rising([None, 0.8]) is None
    lines = tuning.budget_sentences(per_variant, "best_val_accuracy")
    assert lines[0] == (
        "relu's budget curve is still rising at its 3 candidates: the last candidate added 1.7 "
        "points to the expected best best_val_accuracy (100% of the curve's whole rise), so "
        "its best may lie beyond what was tried: a wider or finer grid could change its "
        "verdict.")
    assert [line.split("'")[0] for line in lines] == ["relu", "selu"]  # elu: no curve


def test_tuning_effort_per_variant_and_unequal_grids_flagged(tmp_path):
    per_variant = tuning.read_tuning(write_csv(tmp_path / "t.csv", TUNING_CSV))
    # 3 candidates x 2 seeds, tune.epochs 3 each
    assert tuning.effort_sentence(per_variant, TUNE, {}) == (
        "Tuning effort: relu 3 candidates, 6 runs, 18 epochs; selu 3 candidates, 6 runs, 18 "
        "epochs; elu 3 candidates, 6 runs, 18 epochs.")
    staged = tuning.read_tuning(write_csv(tmp_path / "s.csv", STAGED_CSV))
    # relu: epochs 1 + 5 + 2 + 1 + 5 + 5 = 19 over 6 runs, 2 of them zoomed
    assert tuning.effort(staged, {}, {}) == [
        {"variant": "relu", "candidates": 4, "zoom": 2, "runs": 6, "epochs": 19},
        {"variant": "selu", "candidates": 4, "zoom": 0, "runs": 4, "epochs": 8}]
    assert sentences.tuning_effort(tuning.effort(staged, {}, {})) == (
        "Tuning effort: relu 4 + 2 zoomed candidates, 6 runs, 19 epochs; selu 4 candidates, "
        "4 runs, 8 epochs.")
    unequal = sentences.tuning_effort([
        {"variant": "relu", "candidates": 3, "runs": 3, "epochs": 9},
        {"variant": "selu", "candidates": 9, "runs": 9, "epochs": 27},
        {"variant": "elu", "candidates": 3, "runs": 3, "epochs": 9}])
    assert unequal.endswith(
        "Unequal effort: selu was given a larger grid (9 candidates against 3), so its best "
        "was sought harder than the others': a verdict in its favour may be partly that "
        "effort.")


def test_at_edge_reason_in_the_sentences(tmp_path):
    staged = tuning.read_tuning(write_csv(tmp_path / "s.csv", STAGED_CSV))
    assert [t.at_edge_reason for t in staged] == [None, "only_survivor"]
    assert tuning.variant_sentences(staged)[1] == (
        "selu: best at learning_rate 0.01 of 0.01, 0.03, 0.1, 0.3 (0.03, 0.1, 0.3 diverged) — "
        "the only candidate that did not diverge, chosen by default, not against the others: "
        "add smaller values (e.g. a smaller learning rate) before reading its verdict.")
    # an older tuning.csv without the column: the reason is worked out from the values
    old = tuning.read_tuning(write_csv(tmp_path / "o.csv", TUNING_CSV))
    assert [t.at_edge_reason for t in old] == [None, "edge", None]


def test_budget_png_and_pdf_through_the_figure_registry(tmp_path):
    assert "budget_curves" in catalog.TUNING_FIGURES and "budget_curves" not in catalog.FIGURES
    study = _study(tmp_path, "tuned", tune=TUNE)
    data = load_study_data(study["metrics_files"], study["history_files"], study["summary"],
                           study["settings"], tuning_csv=study["tuning"])
    out = tmp_path / "budget_curves.png"
    figure_function("budget_curves")(data, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_report_states_effort_budget_curves_and_reasons(tmp_path):
    html = render(tmp_path, [_study(tmp_path, "tuned", tune=TUNE)])
    page = entities.unescape(text(html))
    assert "Tuning effort: relu 3 candidates, 6 runs, 18 epochs;" in page
    assert "relu's budget curve is still rising at its 3 candidates" in page
    assert "elu: every candidate diverged (learning_rate 0.01, 0.03, 0.1): no setting " \
           "selected; add smaller values" in page
    budget = _embedded(html, "tuned")["budget"]
    assert budget["equal_budget"] == 3
    assert [v["name"] for v in budget["variants"]] == ["relu", "selu", "elu"]
    assert html.count('data-kind="budget"') == 1
    assert html.count('src="figures/tuned/budget_curves.png"') == 1


def test_paper_caption_states_each_variants_tuning_effort(tmp_path):
    study = _study(tmp_path, "tuned", tune=TUNE)
    settings = {**study["settings"], "decisions": {"alpha": 0.05, "seeds": [0, 1, 2]}}
    unequal = TUNING_CSV + "".join(
        f"selu,{lr},{seed},best_val_accuracy,0.5,ok,False,True\n"
        for lr in (0.3, 1.0) for seed in (1000, 1001))
    path = write_csv(tmp_path / "unequal.csv", unequal)
    tex, md = tmp_path / "table.tex", tmp_path / "table.md"
    write_paper_tables(study["runs"], study["summary"], study["paired"], settings, tex, md,
                       tuning_csv=path)
    caption = md.read_text()
    assert ("Tuning effort: relu 3 candidates, 6 runs, 18 epochs; selu 5 candidates, 10 runs, "
            "30 epochs; elu 3 candidates, 6 runs, 18 epochs. Unequal effort: selu was given a "
            "larger grid (5 candidates against 3)") in caption
    assert "Unequal effort: selu was given a larger grid" in tex.read_text()
    # an untuned study's caption says nothing about tuning
    write_paper_tables(study["runs"], study["summary"], study["paired"], settings, tex, md)
    assert "Tuning effort" not in md.read_text()


def test_tuning_csv_reserved_columns_are_not_tuned_keys():
    table = pd.DataFrame(columns=["variant", "train.learning_rate", "seed", "metric", "value",
                                  "status", "selected", "at_edge", "at_edge_reason", "epochs",
                                  "stage"])
    assert tuning.tuned_keys(table) == ["train.learning_rate"]

