"""Successive halving, zoom, edge reasons and the budget curve (cnnablate.decisions.halving,
issue #31), on hand-made values: expected values by hand or by brute force over subsets."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from cnnablate.decisions import halving as hv
from cnnablate.decisions import selection as sel
from cnnablate.decisions.tuning import select

# --- rung plan and cost ---------------------------------------------------------------------


def test_rung_plan_keeps_the_ceiling_of_each_fraction():
    assert hv.rung_plan(4, [1, 2, 5], 0.5) == [4, 2, 1]
    assert hv.rung_plan(5, [1, 2, 5], 0.5) == [5, 3, 2]  # ceil(2.5) = 3, ceil(1.5) = 2
    # 10 * 0.3 is 3.0000000000000004 in floating point: still 3, not 4
    assert hv.rung_plan(10, [1, 3, 9], 0.3) == [10, 3, 1]
    assert hv.rung_plan(1, [1, 2, 5], 0.5) == [1, 1, 1]
    assert hv.rung_plan(3, [4], 0.5) == [3]
    assert hv.rung_plan(6, [1, 2], 1.0) == [6, 6]


def test_halving_epochs_count_resumed_epochs_once():
    # 4 candidates to epoch 1, 2 on to 2 (+1 each), 1 on to 5 (+3): 4 + 2 + 3
    assert hv.halving_epochs(4, [1, 2, 5], 0.5) == 9
    # 9 candidates, rungs 1, 3, 9, keep 1/3: 9*1 + 3*2 + 1*6 = 21 of the grid's 81
    assert hv.halving_epochs(9, [1, 3, 9], 1 / 3) == 21
    assert hv.halving_epochs(3, [5], 0.5) == 15  # one rung: the grid itself


@pytest.mark.parametrize("rungs, keep", [([], 0.5), ([2, 2], 0.5), ([3, 1], 0.5), ([0, 2], 0.5),
                                         ([1.5, 2], 0.5), ([1, 2], 0), ([1, 2], 1.5),
                                         ([1, 2], True)])
def test_bad_schedules_are_refused(rungs, keep):
    with pytest.raises(ValueError):
        hv.rung_plan(4, rungs, keep)


def test_default_rungs_are_the_latest_within_half_the_grid():
    # 4 candidates, 5 epochs: 4 -> 2 -> 1 over rungs [r1, r2, 5] costs 4 r1 + 2 (r2 - r1) +
    # (5 - r2) = 2 r1 + r2 + 5 epochs of the grid's 20; at most 10 leaves r1 = 1, r2 = 3
    assert hv.budget_rungs(5, [4], 0.5) == [1, 3, 5]
    assert hv.budget_rungs(5, [4, 4, 4], 0.5) == [1, 3, 5]  # per variant the same share
    # 5 candidates, 8 epochs: 5 -> 3 -> 2 -> 1; 5*2 + 3*1 + 2*2 + 1*3 = 20 of 40
    assert hv.budget_rungs(8, [5], 0.5) == [2, 3, 5, 8]
    assert hv.budget_rungs(20, [4], 0.5) == [5, 10, 20]  # 20 + 10 + 10 = 40 of 80
    # 3 candidates, 5 epochs: no rungs reach 7.5 epochs; the cheapest, [1, 2, 5]: 3 + 2 + 3
    # (by hand: [1, 5] 11, [1, 3, 5] 9, [2, 3, 5] 10, [1, 4, 5] 10)
    assert hv.budget_rungs(5, [3], 0.5) == [1, 2, 5]
    assert hv.budget_rungs(5, [1], 0.5) == [5]  # one candidate trains straight through
    assert hv.budget_rungs(1, [4], 0.5) == [1]
    assert [hv.rounds_to_one(n, 0.5) for n in (1, 2, 4, 5, 8)] == [1, 2, 3, 4, 4]
    with pytest.raises(ValueError):
        hv.budget_rungs(0, [4], 0.5)


# --- promotion: select's rule ---------------------------------------------------------------


def test_promote_keeps_the_best_means_best_first():
    scores = {"a": 0.50, "b": 0.80, "c": 0.70, "d": 0.60}
    assert hv.promote(scores, 2, True) == ["b", "c"]
    assert hv.promote(scores, 1, False) == ["a"]  # a loss: the smallest
    assert hv.promote(scores, 9, True) == ["b", "c", "d", "a"]


def test_promote_ties_go_to_the_candidate_listed_first():
    assert hv.promote({"a": 0.7, "b": 0.9, "c": 0.9, "d": 0.9}, 2, True) == ["b", "c"]
    assert hv.promote({"d": 0.9, "c": 0.9, "b": 0.9}, 1, True) == ["d"]


def test_promote_snaps_float32_counts_like_select():
    # 200/270 and 201/270 through float32: the counts decide, and equal counts tie in listed
    # order whatever the float32 noise (200/270 as float32 is above the double 200/270)
    import numpy as np
    f32 = [float(np.float32(k / 270)) for k in (200, 201)]
    noisy_equal = [f32[0], 200 / 270]  # the same count, two representations
    assert noisy_equal[0] != noisy_equal[1]
    scores = {"first": min(noisy_equal), "second": max(noisy_equal), "low": 150 / 270}
    assert hv.promote(scores, 1, True) == ["first"]
    assert select([[scores["first"]], [scores["second"]], [scores["low"]]]) == 0


def test_promote_never_promotes_a_diverged_candidate():
    scores = {"a": 0.6, "b": None, "c": math.nan, "d": 0.5}
    assert hv.promote(scores, 3, True) == ["a", "d"]
    assert hv.promote({"a": None, "b": None}, 1, True) == []


def test_promote_seeds_equals_select_on_random_tables():
    rng = random.Random(7)
    for _ in range(300):
        n, t = rng.randint(1, 6), rng.randint(1, 3)
        table = [[rng.choice([None, *(k / 270 for k in range(180, 190))]) if rng.random() < 0.1
                  else rng.randrange(180, 190) / 270 for _ in range(t)] for _ in range(n)]
        names = [f"c{i}" for i in range(n)]
        got = hv.promote_seeds(dict(zip(names, table)), 1, True)
        best = select(table)
        assert got == ([] if best is None else [names[best]])
        # and the full order by hand: valid rows by mean desc, listed order on ties
        valid = [(i, statistics.fmean(r)) for i, r in enumerate(table) if None not in r]
        # counts: compare the integer sums, which are exact
        by_count = sorted(valid, key=lambda iv: (-round(iv[1] * 270 * t), iv[0]))
        assert hv.promote_seeds(dict(zip(names, table)), n, True) == [names[i]
                                                                      for i, _ in by_count]


# --- edge reasons ----------------------------------------------------------------------------

LR = {"train.learning_rate": [0.01, 0.03, 0.1]}
CANDS = {f"lr{v}": {"train.learning_rate": v} for v in LR["train.learning_rate"]}


def test_edge_reason_edge_when_others_trained():
    scores = {"lr0.01": 0.7, "lr0.03": 0.8, "lr0.1": 0.9}
    assert hv.edge_reason(LR, CANDS, "lr0.1", scores) == "edge"
    assert hv.edge_reason(LR, CANDS, "lr0.03", scores) is None
    # an edge pick with some (not all) others diverged is still an edge
    assert hv.edge_reason(LR, CANDS, "lr0.01", {**scores, "lr0.1": None}) == "edge"


def test_edge_reason_only_survivor_when_every_other_diverged():
    scores = {"lr0.01": 0.7, "lr0.03": None, "lr0.1": math.nan}
    assert hv.edge_reason(LR, CANDS, "lr0.01", scores) == "only_survivor"
    # a candidate missing from the scores counts as diverged
    assert hv.edge_reason(LR, CANDS, "lr0.01", {"lr0.01": 0.7}) == "only_survivor"


def test_edge_reason_of_a_single_candidate_follows_at_edge():
    one = {"train.learning_rate": [0.01]}
    cands = {"a": {"train.learning_rate": 0.01}}
    assert sel.at_edge(one, cands["a"])
    assert hv.edge_reason(one, cands, "a", {"a": 0.5}) == "edge"
    text = {"train.optimizer": ["sgd", "adam"]}
    assert hv.edge_reason(text, {"s": {"train.optimizer": "sgd"},
                                 "a": {"train.optimizer": "adam"}}, "s", None) is None


def test_selection_reports_only_survivor(tmp_path):
    spec = {"candidates": [{"name": n, "values": v} for n, v in CANDS.items()], "seeds": [1, 2],
            "metric": "best_val_accuracy", "keys": LR}
    found = {("lr0.01", 1): 0.5, ("lr0.01", 2): 0.6, ("lr0.03", 1): 0.9, ("lr0.03", 2): None}
    chosen = sel.select_variant(spec, found)
    assert chosen["candidate"] == "lr0.01"
    assert chosen["at_edge"] and chosen["at_edge_reason"] == "only_survivor"
    found[("lr0.03", 2)] = 0.4
    assert sel.select_variant(spec, found)["at_edge_reason"] is None  # 0.03 wins, inside


# --- zoom -----------------------------------------------------------------------------------


def test_zoom_inside_takes_geometric_midpoints():
    # sqrt(0.01 * 0.03) = 0.01732, sqrt(0.03 * 0.1) = 0.05477: two significant digits
    assert hv.zoom_candidates([0.01, 0.03, 0.1], 0.03, 1) == [0.017, 0.055]
    # zoom 2: thirds of each log gap: 0.01 * 10**(1/3) = 0.02154, 10**(2/3) -> 0.04642
    assert hv.zoom_candidates([0.001, 0.01, 0.1, 1], 0.01, 2) == [0.0022, 0.0046, 0.022, 0.046]


def test_zoom_at_the_edge_steps_beyond_it():
    # the grid's own ratio (0.1 / 0.03 = 3.33) beyond the largest: 0.333 -> 0.33
    assert hv.zoom_candidates([0.01, 0.03, 0.1], 0.1, 1) == [0.33]
    # bounded by zoom: two steps beyond the smallest (ratio 3): 0.00333, 0.00111
    assert hv.zoom_candidates([0.01, 0.03, 0.1], 0.01, 2) == [0.0011, 0.0033]


def test_zoom_linear_keys_integers_and_bounds():
    # a key with 0 cannot be geometric: arithmetic midpoints, never below 0
    assert hv.zoom_candidates([0.0, 0.25, 0.5], 0.25, 1) == [0.12, 0.38]
    assert hv.zoom_candidates([0.0, 0.25, 0.5], 0.0, 1) == []
    assert hv.zoom_candidates([0.0, 0.25, 0.5], 0.5, 1, valid=lambda v: v < 0.6) == []
    # integer keys stay integers: sqrt(32 * 64) = 45.25, sqrt(64 * 128) = 90.51
    assert hv.zoom_candidates([32, 64, 128], 64, 1) == [45, 91]
    assert all(isinstance(v, int) for v in hv.zoom_candidates([32, 64, 128], 64, 1))


def test_zoom_never_duplicates_and_uses_more_digits_where_needed():
    # midpoint of 0.1 and 0.12 is 0.1095: two digits would give 0.11, distinct: kept
    assert hv.zoom_candidates([0.1, 0.12, 0.2], 0.1, 1) == [0.083]
    new = hv.zoom_candidates([0.100, 0.104, 0.2], 0.104, 1)
    # sqrt(0.1 * 0.104) = 0.10198 -> 0.10 would be 0.1 (a candidate): 3 digits, 0.102
    assert new[0] == 0.102
    # [1, 2] integers: the midpoint 1.41 rounds to 1, a candidate: dropped
    assert hv.zoom_candidates([1, 2, 4], 2, 1) == [3]
    assert hv.zoom_candidates([0.01], 0.01, 1) == []
    assert hv.zoom_candidates([0.01, 0.03], 0.03, 0) == []
    with pytest.raises(ValueError):
        hv.zoom_candidates([0.01, 0.03], 0.02, 1)


def test_zoom_grid_varies_one_numeric_key_at_a_time():
    keys = {"train.learning_rate": [0.01, 0.03, 0.1], "train.optimizer": ["sgd", "adam"]}
    chosen = {"train.learning_rate": 0.03, "train.optimizer": "adam"}
    assert hv.zoom_grid(keys, chosen, 1) == [
        {"train.learning_rate": 0.017, "train.optimizer": "adam"},
        {"train.learning_rate": 0.055, "train.optimizer": "adam"}]


# --- the budget curve -------------------------------------------------------------------------


def _brute(values, n, higher):
    pick = max if higher else min
    subsets = list(itertools.combinations(values, n))
    return sum(pick(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("seed", range(20))
def test_expected_max_curve_is_the_average_over_all_subsets(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 8)
    # counts on a coarse grid: ties are common
    values = [rng.randrange(5) / 4 for _ in range(n)]
    for higher in (True, False):
        curve = hv.expected_max_curve(values, higher)
        assert len(curve) == n
        for k in range(1, n + 1):
            assert curve[k - 1] == pytest.approx(_brute(values, k, higher), abs=1e-12)


def test_expected_max_curve_by_hand_and_with_diverged_candidates():
    # E1 = mean = 0.7333, E2 = (0.8 + 0.9 + 0.9) / 3, E3 = the best
    assert hv.expected_max_curve([0.5, 0.8, 0.9]) == pytest.approx([2.2 / 3, 2.6 / 3, 0.9])
    # one diverged (never wins): n = 1 may draw it alone (None); pairs: {x, .5} .5,
    # {x, .9} .9, {.5, .9} .9
    curve = hv.expected_max_curve([0.5, None, 0.9])
    assert curve[0] is None and curve[1:] == pytest.approx([2.3 / 3, 0.9])
    assert hv.expected_max_curve([None, math.nan]) == [None, None]
    assert hv.expected_max_curve([]) == []


def test_select_ties_equal_total_counts_exactly():
    # 188 + 180 and 185 + 183 images of 270: equal means, though the two sums of doubles
    # differ in the last bit; the first listed wins (main's select picked the third)
    table = [[188 / 270, 180 / 270], [184 / 270, 182 / 270], [185 / 270, 183 / 270]]
    assert select(table) == 0
    assert hv.promote_seeds({"a": table[2], "b": table[0]}, 1, True) == ["a"]
