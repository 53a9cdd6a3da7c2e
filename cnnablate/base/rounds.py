"""Adaptive seeds: which seeds each round of a study runs (plain Python, used while planning).

`seeds: [0, 1, 2]` is the fixed design (one round, those seeds). `seeds: {initial, max, step}`
runs seeds 0..initial-1 in round 1 and the next `step` seeds (up to `max`) in each later round,
for the variants cnnablate.decisions.decide says are still undecided.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

# The schema's default for `seeds.step` (schemas/config.schema.yaml; a test keeps them equal),
# for a spec that did not pass through the schema's defaults.
DEFAULT_STEP = 3


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
    initial, top, step = _schedule(seeds)
    return 1 + -(-(top - initial) // step)  # ceil


def round_seeds(seeds: Any, k: int) -> list[int]:
    """The seeds round `k` (1-based) adds."""
    if not is_adaptive(seeds):
        return all_seeds(seeds) if k == 1 else []
    initial, top, step = _schedule(seeds)
    start = 0 if k == 1 else min(top, initial + (k - 2) * step)
    end = initial if k == 1 else min(top, initial + (k - 1) * step)
    return list(range(start, end))


def _schedule(seeds: Mapping) -> tuple[int, int, int]:
    return int(seeds["initial"]), int(seeds["max"]), int(seeds.get("step", DEFAULT_STEP))


def look_sizes(seeds: Any) -> list[int]:
    """Seeds per variant after each round (the looks of the sequential test)."""
    sizes, total = [], 0
    for k in range(1, n_rounds(seeds) + 1):
        total += len(round_seeds(seeds, k))
        sizes.append(total)
    return sizes


def walk(seeds: Any, variants: Sequence[str],
         continuing: Callable[[int], Sequence[str] | None]) -> Iterator[tuple[int, list[str]]]:
    """(round k, the variants that run its seeds) for each round a study runs, in order.

    Round 1 runs every variant; round k+1 those that the decision after round k continues.
    `continuing(k)` is that decision (the variants that go on), asked only when the caller
    moves on past round k (so also after the last round, as a plan that waits for every
    decision needs); None means not decided yet, and everything still running may go on.
    A fixed seed list is one round.
    """
    active = list(variants)
    for k in range(1, n_rounds(seeds) + 1):
        if not active:
            return
        yield k, active
        if not is_adaptive(seeds):
            return
        decided = continuing(k)
        if decided is not None:
            active = [v for v in active if v in set(decided)]


def smoke_seeds(seeds: Any, n: int) -> Any:
    """Smoke mode's seeds: the first `n` of a list; for adaptive seeds one round of at most `n`
    seeds and its decision (the round checkpoint runs, on a fraction of the compute)."""
    if is_adaptive(seeds):
        first = min(int(seeds["initial"]), n)
        return {**seeds, "initial": first, "max": first}
    return all_seeds(seeds)[:n]


def check_seeds(seeds: Any, where: str) -> str | None:
    """An error message naming the key, or None (what the schema cannot say: max >= initial)."""
    if is_adaptive(seeds) and int(seeds["max"]) < int(seeds["initial"]):
        return (f"{where}.seeds.max: {seeds['max']} is less than seeds.initial "
                f"({seeds['initial']}); max must be at least initial")
    return None
