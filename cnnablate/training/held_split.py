"""One split held for a training job, as both input feeds keep it (`pipeline.Split` on
TensorFlow, `numpy_feed.NumpySplit` on JAX): uint8 pixels resized once when the resized split
fits `cache_bytes`, else native (each batch resized on the fly), and int64 labels. Each feed
brings its own resize (`resize`), which gives the same pixels (tests/test_jax_backend.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnablate.data.splits import subset_indices

CACHE_BYTES = 1 << 30  # presize a split when it fits


@dataclass(frozen=True)
class HeldSplit:
    images: np.ndarray
    labels: np.ndarray
    image_size: int
    channels: int
    presized: bool

    @staticmethod
    def resize(images: np.ndarray, size: int, channels: int) -> np.ndarray:
        """A whole split at (size, size, channels), uint8: the feed's own resize."""
        raise NotImplementedError

    @classmethod
    def load(cls, images: np.ndarray, labels: np.ndarray, image_size: int, channels: int = 3,
             limit: int | None = None, cache_bytes: int = CACHE_BYTES) -> HeldSplit:
        keep = subset_indices(len(labels), limit)
        if keep is not None:
            images, labels = images[keep], labels[keep]
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) * image_size * image_size * channels <= cache_bytes:
            return cls(cls.resize(images, image_size, channels), labels, image_size, channels,
                       True)
        return cls(np.asarray(images), labels, image_size, channels, False)

    def __len__(self) -> int:
        return len(self.labels)
