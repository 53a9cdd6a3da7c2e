"""The family-wise guarantee on values as the pipeline records them (issue #24): a small
version of benchmarks/recorded_sim.py over its hardest cells (2 seeds, 5 comparisons, spreads
of half an image to two images, float32 k/n)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import recorded_sim  # noqa: E402

from cnnablate.decisions import decide as decide_module  # noqa: E402
from cnnablate.decisions.decide import Design  # noqa: E402

STUDIES = 400
CELLS = [  # (design, comparisons, seeds, n, spread in images)
    (Design(), 5, 2, 270, 1.0),
    (Design(), 5, 3, 359, 1.0),  # three equal differences once had an SD of 1e-19
    (Design(), 5, 3, 10_000, 2.0),
    (Design(initial=2, max=4, step=2), 5, 4, 359, 0.5),
]


@pytest.mark.parametrize("design,m,seeds,n,spread", CELLS)
def test_null_fwer_within_alpha_on_float32_counts(design, m, seeds, n, spread):
    result = recorded_sim.null_fwer(design, STUDIES, m, seeds, n, spread, seed=7, alpha=0.05)
    assert result["ok"], result


def test_the_check_catches_values_taken_as_they_come(monkeypatch):
    # Without the grid (float32 noise read as spread) the first cell errs ~0.2: the same
    # check must fail, or it could not have caught issue #24.
    monkeypatch.setattr(decide_module, "snap_arms",
                        lambda results: ({k: dict(v) for k, v in results.items()},
                                         dict.fromkeys(results, 0.0)))
    design, m, seeds, n, spread = CELLS[0]
    result = recorded_sim.null_fwer(design, STUDIES, m, seeds, n, spread, seed=7, alpha=0.05)
    assert not result["ok"] and result["fwer"] > 0.1, result
