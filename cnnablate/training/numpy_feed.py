"""The input feed without TensorFlow (Keras's JAX backend): numpy batches through
`keras.utils.PyDataset`, the same pixels as the TensorFlow path (cnnablate/training/pipeline.py).

- Resize: `resize_uint8` is the TF path's resize in numpy. Enlarging: TensorFlow's plain
  bilinear (ResizeBilinear, half-pixel centers: tensorflow/core/kernels/image/
  resize_bilinear_op.cc), the same float32 weights and order of operations. Shrinking:
  `tf.image.resize(method="bilinear", antialias=True)` (its ScaleAndTranslate kernel,
  scale_and_translate_op.cc): the same triangle-kernel spans and normalised float32 weights,
  applied to the height first and then the width, accumulated in the same order. Then rounded
  half to even and clipped to uint8 as the TF path does. tests/test_jax_backend.py checks it is
  bit-identical to TensorFlow's on the sizes the studies use.
- Subset (`max_*_images`) and scaling: the TF path's (`Split.load`, `_scale`).
- Order and augmentation: a pure function of (seed, epoch) as in the TF path, so a resumed run
  sees what an uninterrupted one saw, but drawn with numpy's generators: the same kind of
  shuffle, flips and crops, not the same draws (the two backends' runs differ anyway).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np

from cnnablate.training.held_split import HeldSplit

CROP_PAD = 4
# Batches are made ahead in Keras's OrderedEnqueuer (threads; numpy releases the GIL in the
# gathers, resizes and flips), so the host makes the next batches while the device runs the
# step: with workers=1 Keras makes each batch in the training loop itself, between steps. The
# enqueuer yields them in index order, and a batch is a pure function of its index, so a run
# is the same either way. PREFETCH bounds the batches held ahead (memory: MobileNetV2's 224 px
# float32 batch of 64 is 38 MB).
FEED_WORKERS = 2
PREFETCH = 4


@functools.cache
def _spans(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """TensorFlow's ComputeSpans for the triangle kernel with antialiasing: each output
    pixel's first input pixel and its weights (zero past the span), all in float32."""
    f = np.float32
    inv_scale = f(1.0) / (f(out_size) / f(in_size))
    kernel_scale = max(inv_scale, f(1.0))  # antialias: widen the kernel when shrinking
    inverse_kernel_scale = f(1.0) / kernel_scale
    span = min(2 * math.ceil(kernel_scale) + 1, in_size)
    starts = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, span), np.float32)
    for x in range(out_size):
        sample = f(f(x) + f(0.5)) * inv_scale
        start = min(max(math.ceil(sample - kernel_scale - f(0.5)), 0), in_size - 1)
        end = min(max(math.floor(sample + kernel_scale - f(0.5)), 0), in_size - 1) + 1
        raw, total = [], f(0.0)
        for source in range(start, end):
            distance = abs(f(f(source) + f(0.5) - sample) * inverse_kernel_scale)
            raw.append(f(1.0) - distance if distance < f(1.0) else f(0.0))
            total = f(total + raw[-1])
        starts[x] = start
        weights[x, : len(raw)] = np.asarray(raw, np.float32) * (f(1.0) / total)
    return starts, weights


@functools.cache
def _lerps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TensorFlow's ResizeBilinear (half-pixel centers, no antialiasing: the enlarging path of
    pipeline._resize_uint8) weights: each output pixel's lower and upper input pixel and the
    fraction between them, in float32 as compute_interpolation_weights has them."""
    f = np.float32
    scale = f(f(in_size) / f(out_size))
    lower, upper = np.zeros(out_size, np.int64), np.zeros(out_size, np.int64)
    lerp = np.zeros(out_size, np.float32)
    for x in range(out_size):
        v = f(f(f(x) + f(0.5)) * scale - f(0.5))
        floor = f(math.floor(v))
        lower[x], upper[x] = max(int(floor), 0), min(math.ceil(v), in_size - 1)
        lerp[x] = f(v - floor)
    return lower, upper, lerp


def _enlarge_axis(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    lower, upper, lerp = _lerps(x.shape[axis], size)
    shape = [1] * x.ndim
    shape[axis] = size
    a, b = np.take(x, lower, axis=axis), np.take(x, upper, axis=axis)
    return a + (b - a) * lerp.reshape(shape)


def _resize_axis(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    starts, weights = _spans(x.shape[axis], size)
    shape = [1] * x.ndim
    shape[axis] = size
    out = np.zeros(x.shape[:axis] + (size,) + x.shape[axis + 1:], np.float32)
    for i in range(weights.shape[1]):  # in span order, as TensorFlow accumulates
        rows = np.take(x, np.minimum(starts + i, x.shape[axis] - 1), axis=axis)
        out += weights[:, i].reshape(shape) * rows
    return out


def resize_uint8(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """uint8 NHWC images at (size, size, channels), as pipeline._resize_uint8 makes them."""
    images = np.asarray(images)
    if images.shape[-1] != channels:
        if images.shape[-1] != 1:
            raise ValueError(f"cannot make {channels} channels of {images.shape[-1]}")
        images = np.repeat(images, channels, axis=-1)
    if images.shape[1:3] == (size, size):
        return images
    x = images.astype(np.float32)
    if x.shape[1] <= size and x.shape[2] <= size:
        # enlarging: plain bilinear, as the TF path (its GPU kernel); across each row first,
        # then between rows, in TensorFlow's order (top + (bottom - top) * y_lerp)
        return np.clip(np.round(_enlarge_axis(_enlarge_axis(x, 2, size), 1, size)),
                       0.0, 255.0).astype(np.uint8)
    if x.shape[1] != size:
        x = _resize_axis(x, 1, size)
    if x.shape[2] != size:
        x = _resize_axis(x, 2, size)
    return np.clip(np.round(x), 0.0, 255.0).astype(np.uint8)


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1], as pipeline._scale."""
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def resize_split(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """A whole split resized (`resize_uint8`), 512 images at a time to bound memory."""
    if not len(images):
        return np.zeros((0, size, size, channels), np.uint8)
    return np.concatenate([resize_uint8(images[i:i + 512], size, channels)
                           for i in range(0, len(images), 512)])


class NumpySplit(HeldSplit):
    """One split held for a training job (HeldSplit), resized with numpy."""

    resize = staticmethod(resize_split)

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled pixels and labels of the examples `indices`."""
        x = self.images[indices]
        if not self.presized:
            x = resize_uint8(x, self.image_size, self.channels)
        return scale(x), self.labels[indices]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The examples of one epoch in training order: a pure function of (seed, epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def augment(x: np.ndarray, seed: tuple[int, int], mode: str) -> np.ndarray:
    """`mode` as pipeline.augment_batch: "flip" flips each image left-right with
    probability 1/2; "flip_crop" then takes one random crop of the 4-pixel reflect-padded
    batch (one offset per batch, as tf.image.stateless_random_crop of the batch does)."""
    if mode == "none":
        return x
    rng = np.random.default_rng([int(s) for s in seed])
    flip = rng.random(len(x)) < 0.5
    x = np.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
    if mode == "flip_crop":
        size = x.shape[1]
        padded = np.pad(x, [(0, 0), (CROP_PAD, CROP_PAD), (CROP_PAD, CROP_PAD), (0, 0)],
                        mode="reflect")
        top, left = rng.integers(0, 2 * CROP_PAD + 1, size=2)
        x = padded[:, top:top + size, left:left + size, :]
    return np.ascontiguousarray(x)


class TrainBatches(keras.utils.PyDataset):
    """Training batches of epochs [first_epoch, epochs) as one sequence: batch i is batch
    i % steps of epoch first_epoch + i // steps (fit runs with steps_per_epoch = steps). Its
    augmentation seed is (seed * 7919 + epoch, first index), the TF path's."""

    def __init__(self, split: NumpySplit, batch_size: int, seed: int, first_epoch: int,
                 epochs: int, augment_mode: str = "none", workers: int | None = None):
        super().__init__(workers=workers or FEED_WORKERS, use_multiprocessing=False,
                         max_queue_size=PREFETCH)
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.first_epoch, self.epochs, self.augment_mode = first_epoch, epochs, augment_mode
        self.steps = split.steps_per_epoch(batch_size)

    def __len__(self) -> int:
        return self.steps * max(0, self.epochs - self.first_epoch)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch = self.first_epoch + index // self.steps
        start = (index % self.steps) * self.batch_size
        indices = epoch_order(len(self.split), self.seed, epoch)[start:start + self.batch_size]
        x, y = self.split.batch(indices)
        return augment(x, (self.seed * 7919 + epoch, indices[0]), self.augment_mode), y


class EvalBatches(keras.utils.PyDataset):
    """A split's examples in order, in batches."""

    def __init__(self, split: NumpySplit, batch_size: int, workers: int | None = None):
        super().__init__(workers=workers or FEED_WORKERS, use_multiprocessing=False,
                         max_queue_size=PREFETCH)
        self.split, self.batch_size = split, batch_size

    def __len__(self) -> int:
        return self.split.steps_per_epoch(self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start = index * self.batch_size
        return self.split.batch(np.arange(start, min(start + self.batch_size, len(self.split))))


@dataclass
class NumpyFeed:
    """cnnablate.training.device.Feed's interface on numpy batches: `model` is what `fit` runs
    on, `train`/`eval` give its datasets, `pixels` the first examples of a split."""

    model: object
    splits: Mapping[str, NumpySplit]
    device: None = None
    on_device: bool = False

    def train(self, batch_size: int, seed: int, first_epoch: int, epochs: int,
              augment: str = "none") -> TrainBatches:
        return TrainBatches(self.splits["train"], batch_size, seed, first_epoch, epochs,
                            augment)

    def eval(self, split: str, batch_size: int) -> EvalBatches:
        return EvalBatches(self.splits[split], batch_size)

    def pixels(self, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.splits[split].batch(np.arange(min(n, len(self.splits[split]))))

    def predict(self, split: str, batch_size: int) -> np.ndarray:
        """The model's predicted class of every example of `split`, in order (the batches
        `eval` gives, so the classes `evaluate` scores)."""
        batches = EvalBatches(self.splits[split], batch_size)
        return np.concatenate(
            [np.argmax(np.asarray(self.model.predict_on_batch(batches[i][0])), axis=-1)
             for i in range(len(batches))] or [np.zeros(0, np.int64)])
