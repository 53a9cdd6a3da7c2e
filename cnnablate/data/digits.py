"""scikit-learn's handwritten digits: real data that ships inside the wheel, so no download."""

from __future__ import annotations

import numpy as np

from cnnablate.data.splits import SplitArrays, stratified_split


def load(spec: dict) -> tuple[dict[str, SplitArrays], list[str], dict]:
    """Digits as uint8 8x8x1 images (0-16 scaled to 0-255) with a fixed stratified split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    splits = stratified_split(
        images,
        labels,
        fractions={"val": spec.get("val_fraction", 0.15), "test": spec.get("test_fraction", 0.2)},
        seed=spec.get("split_seed", 0),
    )
    class_names = [str(int(c)) for c in bunch.target_names]
    return splits, class_names, {"origin": "sklearn.datasets.load_digits"}
