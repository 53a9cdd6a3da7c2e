"""The training input pipeline: prepared uint8 arrays -> resized, scaled, shuffled batches.

Resizing and scaling happen here, not at preparation time, so one prepared copy serves every
image size (CIFAR-10 at 224x224 would be 7.5 GB pre-resized). When the resized split fits in
`cache_bytes` it is resized once per job; otherwise every batch is resized on the fly. Both
paths round to uint8 after resizing, so they give identical pixels.

Enlarging (digits, CIFAR at 224) is plain bilinear (half-pixel centres) of float pixels: the
only resize TensorFlow runs on a GPU (ResizeBilinear, float types;
cnnablate/training/gpu_kernels.json), and the same pixels as the antialiased resize, which
changes nothing when enlarging. Shrinking
(beans at 224) is antialiased (ScaleAndTranslate, which has no GPU kernel), so it is done on the
host only: once when the split fits the cache, else per batch by tf.data; the device path
(cnnablate/training/device.py) takes only splits it never has to shrink (`Split.shrinks_per_batch`).

The order of examples is a pure function of (seed, epoch): a run resumed at epoch k sees
exactly the batches an uninterrupted run sees from epoch k on.

`Split`'s datasets make batches on the host (tf.data). cnnablate/training/device.py makes the same
batches, from the same functions here (`train_indices`, `batch_pixels`, `augment_batch`), inside
the compiled training step from splits placed on the device once.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from cnnablate.training.held_split import HeldSplit


def match_channels(images: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 images with `channels` channels (grey repeated, or RGB made grey)."""
    images = tf.convert_to_tensor(images)
    if images.shape[-1] != channels:
        if images.shape[-1] == 1:
            images = tf.repeat(images, channels, axis=-1)
        elif channels == 1:
            images = tf.cast(tf.image.rgb_to_grayscale(images), tf.uint8)
    return images


def _resize_uint8(images: tf.Tensor, size: int, channels: int) -> tf.Tensor:
    images = match_channels(images, channels)
    if images.shape[1] != size or images.shape[2] != size:
        # float in: ResizeBilinear's GPU kernels take float types only (uint8 would run it on
        # the CPU); same values, as the CPU kernel computes in float from uint8 too.
        shrink = images.shape[1] > size or images.shape[2] > size
        resized = tf.image.resize(
            tf.cast(images, tf.float32), (size, size), method="bilinear", antialias=shrink
        )
        images = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
    return images


def _scale(images: tf.Tensor) -> tf.Tensor:
    # [-1, 1], the range the MobileNetV2 family expects.
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def batch_pixels(
    images: tf.Tensor, indices: tf.Tensor, size: int, channels: int, presized: bool
) -> tf.Tensor:
    """One batch as the model sees it (before augmentation): the examples `indices` of
    `images`, resized unless `presized`, scaled. Shared by the tf.data path and the
    device path (cnnablate.training.device, through `finish_pixels`), so both give the same
    pixels."""
    return finish_pixels(tf.gather(images, indices), size, channels, presized)


def finish_pixels(x: tf.Tensor, size: int, channels: int, presized: bool) -> tf.Tensor:
    """A gathered uint8 batch as the model sees it (before augmentation): resized unless
    `presized`, scaled."""
    if not presized:
        x = _resize_uint8(x, size, channels)
    return _scale(x)


def augment_batch(x: tf.Tensor, seed: tf.Tensor, mode: str) -> tf.Tensor:
    """`mode` ("none", "flip", "flip_crop") applied to a scaled batch with a stateless `seed`."""
    return x if mode == "none" else _augment(x, seed, mode)


def train_indices(
    n: int, batch_size: int, seed: int, first_epoch: int, epochs: int
) -> tf.data.Dataset:
    """(indices, augmentation seed) of each training batch of epochs [first_epoch, epochs).

    The order is a stateless shuffle of range(n) per (seed, epoch); a batch's augmentation
    seed is (seed * 7919 + epoch, its first index). A pure function of its arguments: what a
    resumed run sees from its first epoch on is what an uninterrupted run saw."""

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(
            lambda idx: (idx, tf.stack([tf.cast(seed, tf.int64) * 7919 + epoch, idx[0]]))
        )

    return tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)


def resize_all(images: np.ndarray, size: int, channels: int, chunk: int = 512) -> np.ndarray:
    """Resize a whole split to (size, size, channels) uint8, in chunks to bound memory."""
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        stop = min(start + chunk, len(images))
        out[start:stop] = _resize_uint8(np.asarray(images[start:stop]), size, channels).numpy()
    return out


class Split(HeldSplit):
    """One split held for a training job (HeldSplit), resized with TensorFlow, as tf.data."""

    resize = staticmethod(resize_all)

    @property
    def shrinks_per_batch(self) -> bool:
        """Whether every batch is made smaller (antialiased: a resize without GPU kernels)."""
        return not self.presized and max(self.images.shape[1:3]) > self.image_size

    def _batch_fn(self):
        images = tf.constant(self.images)
        labels = tf.constant(self.labels)
        size, channels, presized = self.image_size, self.channels, self.presized

        def batch(indices):
            return batch_pixels(images, indices, size, channels, presized), tf.gather(
                labels, indices
            )

        return batch

    def eval_dataset(self, batch_size: int) -> tf.data.Dataset:
        ds = tf.data.Dataset.range(len(self)).batch(batch_size)
        ds = ds.map(self._batch_fn(), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
        return _without_autotuning(ds)

    def train_dataset(
        self, batch_size: int, seed: int, first_epoch: int, epochs: int, augment: str = "none"
    ) -> tf.data.Dataset:
        """Batches for epochs [first_epoch, epochs), shuffled per (seed, epoch)."""
        batch = self._batch_fn()

        def load(idx, aug_seed):
            x, y = batch(idx)
            return augment_batch(x, aug_seed, augment), y

        ds = train_indices(len(self), batch_size, seed, first_epoch, epochs)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)
        return _without_autotuning(ds)

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)


def _without_autotuning(ds: tf.data.Dataset) -> tf.data.Dataset:
    """No tf.data autotuning thread (a gather and a cast leave nothing to tune; AUTOTUNE then
    stands for a fixed parallelism of about one call per core). Deleting an iterator waits for
    that thread, and on CPUs shared by parallel jobs it often missed its wake-up and held up
    the end of `fit` for 4-20 s (BENCHMARKS.md). Same batches, same order."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _augment(x: tf.Tensor, seed: tf.Tensor, mode: str) -> tf.Tensor:
    x = tf.image.stateless_random_flip_left_right(x, seed=seed)
    if mode == "flip_crop":
        size = x.shape[1]
        pad = 4
        padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        x = tf.image.stateless_random_crop(
            padded, size=tf.concat([[tf.shape(x)[0]], [size, size, x.shape[-1]]], 0), seed=seed + 1
        )
    return x
