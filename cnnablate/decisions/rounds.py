"""Adaptive seeds: which seeds each round of a study runs (plain Python, used while planning).

`seeds: [0, 1, 2]` is the fixed design (one round, those seeds). `seeds: {initial, max, step}`
runs seeds 0..initial-1 in round 1 and the next `step` seeds (up to `max`) in each later round,
for the variants cnnablate.decisions.decide says are still undecided.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_adaptive(seeds: Any) -> bool:
    return isinstance(seeds, Mapping)


def all_seeds(seeds: Any) -> list[int]:
    """Every seed a study may run: the list, or 0..max-1 (each must resolve for the train rule)."""
    if is_adaptive(seeds):
        return list(range(int(seeds["max"])))
    return [int(s) for s in seeds]


def n_rounds(seeds: Any) -> int:
    if not is_adaptive(seeds):
        return 1
    initial, top, step = int(seeds["initial"]), int(seeds["max"]), int(seeds.get("step", 3))
    return 1 + -(-(top - initial) // step)  # ceil


def round_seeds(seeds: Any, k: int) -> list[int]:
    """The seeds round `k` (1-based) adds."""
    if not is_adaptive(seeds):
        return all_seeds(seeds) if k == 1 else []
    initial, top, step = int(seeds["initial"]), int(seeds["max"]), int(seeds.get("step", 3))
    start = 0 if k == 1 else min(top, initial + (k - 2) * step)
    end = initial if k == 1 else min(top, initial + (k - 1) * step)
    return list(range(start, end))


def check_seeds(seeds: Any, where: str) -> str | None:
    """An error message naming the key, or None (what the schema cannot say: max >= initial)."""
    if is_adaptive(seeds) and int(seeds["max"]) < int(seeds["initial"]):
        return (f"{where}.seeds.max: {seeds['max']} is less than seeds.initial "
                f"({seeds['initial']}); max must be at least initial")
    return None
