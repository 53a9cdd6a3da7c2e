"""Successive halving and zoom (issue 31, item 6): a small, fast version of
benchmarks/halving_sim.py, with `select`, `decide` and the halving functions the workflow uses.

The claims that hold in the benchmark and that a few hundred studies resolve: halving spends at
most half the grid's tuning epochs and, without a short-horizon bias, errs no more than the grid;
the zoom stage spends no more than the grid and cuts the error where each optimum lies between
grid points; the family-wise bound about the selected configurations holds for all three.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.halving_sim import (
    EPOCHS,
    GRID_LR,
    SHAPES,
    Cell,
    Runs,
    learning_fraction,
    simulate,
    tune_grid,
    tune_halving,
)

ALPHA = 0.05
STUDIES = 200
BY_NAME = {s.name: s for s in SHAPES}


def bound(studies: int) -> float:
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / studies)


def test_learning_curves_end_at_the_response_curve_and_rise():
    h = learning_fraction(np.log10(np.array(GRID_LR)), -2.0, 0.5)
    assert h[:, -1] == pytest.approx(1.0)
    assert np.all(np.diff(h, axis=1) > 0)
    # a smaller learning rate has come less of the way after one epoch (gamma > 0) ...
    assert np.all(np.diff(h[:, 0]) > 0)
    # ... and every learning rate the same share without the short-horizon bias
    assert np.ptp(learning_fraction(np.log10(np.array(GRID_LR)), -2.0, 0.0)[:, 0]) == 0


def test_halving_reads_a_prefix_of_the_grids_runs():
    cell = Cell(BY_NAME["between"], gamma=0.5)
    runs = Runs(cell, cell.shape.arms[0], -2.0, (1, 0))
    pick_grid, spent_grid = tune_grid(runs)
    pick_halving, spent_halving = tune_halving(runs)
    assert spent_grid == len(GRID_LR) * cell.tuning_seeds * EPOCHS
    # 5 to epoch 2, 3 on to 3, 2 on to 5, 1 on to 8 (per seed): 10 + 3 + 4 + 3 = 20
    assert spent_halving == 20 * cell.tuning_seeds
    # the best-so-far metric never falls over a run's epochs
    for lr in GRID_LR:
        values = [runs.at(lr, e) for e in range(1, EPOCHS + 1)]
        assert all(a <= b for a, b in zip(values, values[1:]))
    assert pick_grid in GRID_LR and pick_halving in GRID_LR
    # a candidate's runs are its own: the same asked for alone, later, or in another order
    again = Runs(cell, cell.shape.arms[0], -2.0, (1, 0))
    again.of([0.1, 0.017])
    assert np.array_equal(again.cache[0.1][0], runs.cache[0.1][0], equal_nan=True)


@pytest.fixture(scope="module")
def between():
    return simulate(Cell(BY_NAME["between"], gamma=0.0), STUDIES)


def test_halving_costs_at_most_half_and_errs_no_more_without_horizon_bias(between):
    halving = between["ways"]["halving"]
    assert halving["epochs_share_of_grid"] <= 0.5
    assert halving["error_minus_grid"] <= 2 * halving["error_minus_grid_se"] + 1e-12


def test_zoom_cuts_the_error_between_grid_points_within_the_grids_epochs(between):
    zoom = between["ways"]["halving+zoom"]
    assert zoom["epochs_share_of_grid"] <= 1.0
    # benchmark: 0.43 -> 0.12; here by more than 4 paired MC SE
    assert zoom["error_minus_grid"] < -4 * zoom["error_minus_grid_se"]


def test_the_bound_about_the_selected_configurations_holds(between):
    for way in between["ways"].values():
        assert way["fwer"]["rate"] <= bound(STUDIES)
