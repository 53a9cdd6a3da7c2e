"""Data on the device: a run's prepared splits placed on its accelerator once, every batch made
there inside the compiled training step; on a machine without one, the same code in host memory.

`fit` and `evaluate` are fed only what identifies a batch: its example indices and augmentation
seed (`pipeline.train_indices`: the order and seeds of `Split.train_dataset`), a few hundred
bytes a step. `DeviceTrainer` wraps the run's model; its `train_step` / `test_step` gather the
batch from the split's uint8 array on the device, resize it (unless the split was resized once
on the host), scale and augment it with the functions `Split` uses (`batch_pixels`,
`augment_batch`: same ops, same stateless seeds, the same 8-bit pixels), then run Keras's own
step on the wrapped model. So the host does no per-batch image work, and nothing is copied to
the device per step but the indices.

The wrapper owns nothing: its variables are the wrapped model's, its optimizer is the wrapped
model's optimizer object, so the model saved, the epoch backup and the activation statistics
are those of the run's model whichever path trained it.

`Feed` is what training runs on: `host_feed` (the tf.data path, `Split`'s batches of pixels) or
`device_feed` (this path); `train.data_on_device` (auto: when the splits fit
`device_budget_bytes`) picks one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cnnablate.data.pipeline import (
    Split,
    _without_autotuning,
    augment_batch,
    batch_pixels,
    train_indices,
)

SPLITS = ("train", "val", "test")  # a split's code in the index batches is its place here


def device_budget_bytes(share: float = 0.25) -> int:
    """Bytes of data this process may keep on its device: `share` of the first visible GPU's
    memory (nvidia-smi, or $CNNABLATE_GPU_MEMORY_MB; of the run's capped share when runs share
    a GPU) when there is one, else of the host's physical memory (the same code then runs on
    the CPU, where the tf.data path holds the same copy: `Split._batch_fn`)."""
    if tf.config.list_logical_devices("GPU"):
        from cnnablate.training.gpu import ENV_RUNS_PER_GPU, gpu_total_mb, memory_cap_mb

        ids = [i for i in os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",") if i]
        total = gpu_total_mb(ids[0] if ids else "0") or 0
        runs = max(1, int(os.environ.get(ENV_RUNS_PER_GPU) or 1))
        mine = memory_cap_mb(total, runs) if runs > 1 and total else total
        return int(share * mine * 2**20)
    return int(share * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def splits_nbytes(splits: Mapping[str, Split]) -> int:
    """What placing `splits` on the device takes: their uint8 pixels and int64 labels."""
    return sum(s.images.nbytes + s.labels.nbytes for s in splits.values())


def use_device(setting: str | bool, splits: Mapping[str, Split], budget: int | None = None
               ) -> bool:
    """`train.data_on_device`: true, false, or "auto" (when the splits fit `budget`, by default
    `device_budget_bytes()`)."""
    if setting in (True, False):
        return bool(setting)
    if setting != "auto":
        raise ValueError(f"train.data_on_device: {setting!r} is not auto, true or false")
    return splits_nbytes(splits) <= (device_budget_bytes() if budget is None else budget)


class DeviceData:
    """Splits placed on the device once: pixels as stored (`Split.images`: resized once when
    that fitted the host cache, else native) and labels."""

    def __init__(self, splits: Mapping[str, Split], device: str | None = None):
        if list(splits) != list(SPLITS[: len(splits)]):
            raise ValueError(f"splits must be {SPLITS} in this order, not {list(splits)}")
        if device is None:
            device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
        self.device = device
        self.sizes = [len(s) for s in splits.values()]
        self._shapes = [(s.image_size, s.channels, s.presized) for s in splits.values()]
        with tf.device(device):
            # tf.constant is made in host memory; the identity copies it to the device once.
            self._images = [tf.identity(tf.constant(s.images)) for s in splits.values()]
            self._labels = [tf.identity(tf.constant(s.labels)) for s in splits.values()]

    def _one(self, code: int, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        size, channels, presized = self._shapes[code]
        with tf.device(self.device):
            x = batch_pixels(self._images[code], indices, size, channels, presized)
            return x, tf.gather(self._labels[code], indices)

    def batch(self, split: int | tf.Tensor, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Scaled pixels and labels of examples `indices` of split `split` (a code: the place
        in SPLITS; a Python int, or a scalar int32 tensor chosen per batch, as validation and
        test batches share one compiled test step)."""
        if isinstance(split, (int, np.integer)):
            return self._one(int(split), indices)
        return tf.switch_case(
            split, [lambda code=code: self._one(code, indices) for code in range(len(self.sizes))]
        )


class DeviceTrainer(keras.Model):
    """The run's model with its input work moved into the step: `fit` on
    `DeviceFeed.train()`'s (indices, augmentation seed) batches, `evaluate` on
    `DeviceFeed.eval()`'s (split code, indices) batches. Calling it on pixels calls the model.

    Compiled with the model's optimizer object and loss, so it trains exactly the model's
    variables. Where the model's compile chose XLA (`jit_compile`, Keras's default on a GPU),
    the model's step stays XLA-compiled as a function of its own while the input ops run as
    TensorFlow kernels, as in tf.data (not every image op has an XLA kernel, and XLA need not
    round like TensorFlow's kernels: the pixels would no longer be the tf.data path's)."""

    def __init__(self, model: keras.Model, data: DeviceData, augment: str = "none",
                 metrics: list | None = None):
        # No autocast: under a mixed policy the model gets the float32 pixels it gets from
        # tf.data, and casts them itself.
        super().__init__(name=f"{model.name}_on_device", autocast=False)
        self.core = model
        self._data = data  # not a Keras-tracked object: its tensors are no variables
        self._augment = augment
        jit = bool(model.jit_compile)
        self.compile(optimizer=model.optimizer, loss=model.loss,
                     metrics=metrics or ["accuracy"], jit_compile=False)
        train_on, test_on = super().train_step, super().test_step
        self._train_on = tf.function(train_on, jit_compile=True) if jit else train_on
        self._test_on = tf.function(test_on, jit_compile=True) if jit else test_on

    def call(self, x, training=False):
        return self.core(x, training=training)

    def inputs_of(self, data, training: bool):
        """(pixels, labels) a step makes of its batch `data` (a test compares them with the
        tf.data path's)."""
        if training:
            indices, aug_seed = data
            x, y = self._data.batch(0, indices)
            return augment_batch(x, aug_seed, self._augment), y
        split, indices = data
        return self._data.batch(split, indices)

    def train_step(self, data):
        return self._train_on(self.inputs_of(data, training=True))

    def test_step(self, data):
        return self._test_on(self.inputs_of(data, training=False))


@dataclass
class Feed:
    """What training runs on: `model` (what `fit` and `evaluate` are called on) and the
    datasets it takes. `pixels` gives the first examples of a split as the model sees them
    (for building the model's step before `fit` and for activation statistics)."""

    model: Any
    splits: Mapping[str, Split]
    device: DeviceData | None = None

    @property
    def on_device(self) -> bool:
        return self.device is not None

    def train(self, batch_size: int, seed: int, first_epoch: int, epochs: int,
              augment: str = "none") -> tf.data.Dataset:
        if self.device is None:
            return self.splits["train"].train_dataset(batch_size, seed, first_epoch, epochs,
                                                      augment=augment)
        ds = train_indices(len(self.splits["train"]), batch_size, seed, first_epoch, epochs)
        return _without_autotuning(ds.prefetch(2))

    def eval(self, split: str, batch_size: int) -> tf.data.Dataset:
        if self.device is None:
            return self.splits[split].eval_dataset(batch_size)
        code = tf.constant(SPLITS.index(split), tf.int32)
        ds = tf.data.Dataset.range(len(self.splits[split])).batch(batch_size)
        return _without_autotuning(ds.map(lambda idx: (code, idx)).prefetch(2))

    def pixels(self, split: str, n: int) -> tuple[tf.Tensor, tf.Tensor]:
        n = min(n, len(self.splits[split]))
        if self.device is None:
            return next(iter(self.splits[split].eval_dataset(n)))
        return self.device.batch(SPLITS.index(split), tf.range(n, dtype=tf.int64))


def make_feed(model: keras.Model, splits: Mapping[str, Split], setting: str | bool = "auto",
              augment: str = "none", metrics: list | None = None) -> Feed:
    """The run's `Feed`: its splits on the device and a `DeviceTrainer` around `model` (compiled
    already) when `setting` says so (`use_device`), else `model` on tf.data batches."""
    if not use_device(setting, splits):
        return Feed(model, splits)
    data = DeviceData(splits)
    return Feed(DeviceTrainer(model, data, augment, metrics), splits, data)
