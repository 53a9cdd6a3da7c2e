"""Fixed, stratified splits for sources that ship fewer splits than train/val/test."""

from __future__ import annotations

import numpy as np

SplitArrays = tuple[np.ndarray, np.ndarray]  # (images uint8 NHWC, labels int64)


def stratified_split(
    images: np.ndarray, labels: np.ndarray, fractions: dict[str, float], seed: int = 0
) -> dict[str, SplitArrays]:
    """Split into `train` plus one split per entry of `fractions`, stratified by label.

    Deterministic for a given seed, so every job and every machine sees the same split.
    """
    rng = np.random.default_rng(seed)
    buckets: dict[str, list[np.ndarray]] = {name: [] for name in ["train", *fractions]}
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        start = 0
        for name, fraction in fractions.items():
            take = int(round(fraction * len(idx)))
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
