"""Fixed, stratified splits for sources that ship fewer splits than train/val/test."""

from __future__ import annotations

import numpy as np

SplitArrays = tuple[np.ndarray, np.ndarray]  # (images uint8 NHWC, labels int64)


def _allocate(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Per-class sizes summing to round(fraction * total): floors plus the largest remainders,
    so that many small classes still give a split of the intended size."""
    exact = counts * fraction
    take = np.floor(exact).astype(int)
    missing = int(round(fraction * counts.sum())) - int(take.sum())
    if missing > 0:
        order = np.argsort(-(exact - take), kind="stable")
        take[order[:missing]] += 1
    return np.minimum(take, counts)


def stratified_split(
    images: np.ndarray, labels: np.ndarray, fractions: dict[str, float], seed: int = 0
) -> dict[str, SplitArrays]:
    """Split into `train` plus one split per entry of `fractions`, stratified by label.

    Deterministic for a given seed, so every job and every machine sees the same split.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    sizes = {name: _allocate(counts, fraction) for name, fraction in fractions.items()}
    buckets: dict[str, list[np.ndarray]] = {name: [] for name in ["train", *fractions]}
    for c, label in enumerate(classes):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        start = 0
        for name in fractions:
            take = min(int(sizes[name][c]), len(idx) - start)
            buckets[name].append(idx[start : start + take])
            start += take
        buckets["train"].append(idx[start:])
    out: dict[str, SplitArrays] = {}
    for name, parts in buckets.items():
        sel = np.sort(np.concatenate(parts))
        out[name] = (images[sel], labels[sel].astype(np.int64))
    return out


def carve_validation(
    splits: dict[str, SplitArrays], fraction: float, seed: int = 0
) -> dict[str, SplitArrays]:
    """Give a source without a validation split one: a fixed stratified slice of train."""
    if "val" in splits:
        return splits
    images, labels = splits["train"]
    parts = stratified_split(images, labels, {"val": fraction}, seed=seed)
    return {**splits, "train": parts["train"], "val": parts["val"]}


def subset_indices(n: int, limit: int | None) -> np.ndarray | None:
    """The examples a run keeps of a split of `n` under `max_*_images` = `limit` (None: all):
    a fixed, class-balanced-enough subset, the first `limit` of a seeded permutation, in
    order. One definition for both input feeds (cnnablate.training.held_split.HeldSplit)."""
    if limit is None or limit >= n:
        return None
    return np.sort(np.random.default_rng(12345).permutation(n)[:limit])
