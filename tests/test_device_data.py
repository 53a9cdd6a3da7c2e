"""cnnablate.data.pipeline.DeviceBatches: a split held on the device, batches made there, pixel
for pixel the batches of the tf.data pipeline (here on the CPU, the device of this machine).

The 8-bit pixels (after gather, resize and augmentation) must be identical; the scaled floats
may differ by one float32 ulp, because TensorFlow's graph optimiser rewrites the division by
127.5 differently inside tf.data than in a tf.function."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from cnnablate.data.pipeline import DeviceBatches, Split, device_budget_bytes  # noqa: E402


def assert_same_pixels(got, want) -> None:
    got, want = got.numpy(), want.numpy()
    np.testing.assert_array_equal(np.round((got + 1) * 127.5), np.round((want + 1) * 127.5))
    np.testing.assert_allclose(got, want, rtol=0, atol=2.5e-7)


def split(presized: bool, native: int = 20, size: int = 16, n: int = 45) -> Split:
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (n, native, native, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, n)
    cache = 1 << 30 if presized else 0  # 0: resized per batch
    made = Split.load(images, labels, image_size=size, cache_bytes=cache)
    assert made.presized is presized
    return made


@pytest.mark.parametrize("presized", [True, False])
@pytest.mark.parametrize("augment", ["none", "flip", "flip_crop"])
def test_train_batches_match_the_tfdata_pipeline(presized, augment):
    data = split(presized)
    want = list(data.train_dataset(8, seed=3, first_epoch=1, epochs=3, augment=augment))
    got = list(DeviceBatches(data).train_batches(8, seed=3, first_epoch=1, epochs=3,
                                                 augment=augment))
    assert len(got) == len(want) == 2 * 6  # two epochs of ceil(45 / 8) batches
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert_same_pixels(gx, wx)
        np.testing.assert_array_equal(gy.numpy(), wy.numpy())


def test_eval_batches_match_and_budget():
    data = split(False)
    for (gx, gy), (wx, wy) in zip(DeviceBatches(data).eval_batches(16), data.eval_dataset(16),
                                  strict=True):
        assert_same_pixels(gx, wx)
        np.testing.assert_array_equal(gy.numpy(), wy.numpy())
    assert DeviceBatches.fits(data, data.images.nbytes + data.labels.nbytes)
    assert not DeviceBatches.fits(data, data.images.nbytes)
    assert device_budget_bytes() > 0
