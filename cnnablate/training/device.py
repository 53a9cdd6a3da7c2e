"""Data on the device: a run's prepared splits placed on its accelerator once, every batch made
there inside the compiled training step; on a machine without one, the same code in host memory.

`fit` and `evaluate` are fed only what identifies a batch: its example indices and augmentation
seed (`pipeline.train_indices`: the order and seeds of `Split.train_dataset`), a few hundred
bytes a step. `DeviceTrainer` wraps the run's model; its `train_step` / `test_step` gather the
batch from the split's pixels on the device, resize it (unless the split was resized once on
the host), scale and augment it with the functions `Split` uses (`finish_pixels`,
`augment_batch`: same ops, same stateless seeds, the same 8-bit pixels), then run Keras's own
step on the wrapped model. So the host does no per-batch image work, and nothing is copied to
the device per step but the indices.

Every op of that input work must have a GPU kernel for its dtypes, or TensorFlow (with soft
placement, its default) silently runs it on the CPU and copies the batch there and back each
step. TensorFlow 2.21 registers no GPU kernel for GatherV2 on uint8 and none at all for the
antialiased resize (ScaleAndTranslate): cnnablate/training/gpu_kernels.json lists the GPU kernels
of every op used here, read from the `tensorflow` 2.21.0 wheel (how: `gpu_kernels.py`). So the
pixels live on the device as rows of int64 words (`as_words`: each image's bytes, zero-padded
to a multiple of 8), gathered as int64 and bitcast back to uint8 (`gather_rows`); a split is
enlarged per batch by plain bilinear of float pixels, and never shrunk here (shrinking is
antialiased, on the host: `use_device` declines such splits; pipeline.py).
tests/test_device_data.py checks every op of the traced input steps against that list.

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

from cnnablate.base.errors import UserError
from cnnablate.training.pipeline import (
    Split,
    _without_autotuning,
    augment_batch,
    finish_pixels,
    match_channels,
    train_indices,
)

SPLITS = ("train", "val", "test")  # a split's code in the index batches is its place here
# The dtype pixels are gathered as on the device: GatherV2 has GPU kernels for int64 (and no
# integer type narrower than int32; gpu_kernels.json), and an int64 word holds 8 pixels.
WORD = np.dtype(np.int64)


def device_budget_bytes(share: float = 0.25) -> int:
    """Bytes of data this process may keep on its device: `share` of what TensorFlow may use
    on the first visible GPU (its cap when runs share a GPU, else the memory free as the job
    started: cnnablate.training.gpu.configure_tensorflow) when there is one, else of the
    host's physical memory (the same code then runs on the CPU, where the tf.data path holds
    the same copy: `Split._batch_fn`)."""
    if tf.config.list_logical_devices("GPU"):
        from cnnablate.training.gpu import gpu_memory, tensorflow_memory_mb

        mb = tensorflow_memory_mb(0)
        if mb is None:  # TensorFlow not set up by configure_tensorflow (a notebook)
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            ids = [i for i in (visible or "").split(",") if i] or [None]
            memory = gpu_memory(ids[0] if visible is not None else None)
            mb = memory.free_mb if memory else 0
        return int(share * mb * 2**20)
    return int(share * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def splits_nbytes(splits: Mapping[str, Split]) -> int:
    """What placing `splits` on the device takes: their pixels (`DeviceData`: with the run's
    channels, each image padded to whole words) and int64 labels."""
    total = 0
    for s in splits.values():
        channels = s.channels if not s.presized else s.images.shape[-1]
        row = int(np.prod(s.images.shape[1:-1])) * channels
        total += len(s) * -(-row // WORD.itemsize) * WORD.itemsize + s.labels.nbytes
    return total


class DeviceDataError(UserError):
    """`train.data_on_device: true` for splits the device path cannot make batches of."""


def use_device(setting: str | bool, splits: Mapping[str, Split], budget: int | None = None
               ) -> bool:
    """`train.data_on_device`: true, false, or "auto" (when the splits fit `budget`, by default
    `device_budget_bytes()`, and none is shrunk per batch: antialiased, a CPU-only resize)."""
    if setting not in (True, False, "auto"):
        raise ValueError(f"train.data_on_device: {setting!r} is not auto, true or false")
    if setting is False:
        return False
    shrunk = [name for name, s in splits.items() if s.shrinks_per_batch]
    if shrunk and setting is True:
        first = splits[shrunk[0]]
        raise DeviceDataError(
            f"train.data_on_device: true, but split {shrunk[0]!r} would be shrunk from "
            f"{first.images.shape[1]}x{first.images.shape[2]} to {first.image_size} per batch "
            "(too big to resize once), an antialiased resize TensorFlow runs on the CPU only: "
            "let the dataset source resize it when preparing (`image_size` / `resize`), or "
            "set data_on_device: auto"
        )
    if setting is True:
        return True
    return not shrunk and splits_nbytes(splits) <= (
        device_budget_bytes() if budget is None else budget)


def as_words(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, C) as (N, words) of WORD: each image's bytes in order, padded
    with zeros to a whole number of words (host side, once)."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    pad = -flat.shape[1] % WORD.itemsize
    if pad:
        flat = np.pad(flat, ((0, 0), (0, pad)))
    return flat.view(WORD)


def gather_rows(words: tf.Tensor, indices: tf.Tensor, shape: tuple[int, int, int]) -> tf.Tensor:
    """The uint8 images `indices` (shape (len(indices), *shape)) of `as_words`'s rows: an int64
    gather, then a bitcast back to bytes (both with GPU kernels; the gather copies the bits
    unchanged)."""
    rows = tf.gather(words, indices)
    pixels = tf.reshape(tf.bitcast(rows, tf.uint8), [tf.shape(rows)[0], -1])
    used = int(np.prod(shape))
    if pixels.shape[1] != used:  # drop the padding of the last word
        pixels = pixels[:, :used]
    return tf.reshape(pixels, [-1, *shape])


class DeviceData:
    """Splits placed on the device once: pixels as stored (`Split.images`: resized once when
    that fitted the host cache, else native with the run's channels), as `as_words` rows, and
    labels."""

    def __init__(self, splits: Mapping[str, Split], device: str | None = None):
        if list(splits) != list(SPLITS[: len(splits)]):
            raise ValueError(f"splits must be {SPLITS} in this order, not {list(splits)}")
        if device is None:
            device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
        self.device = device
        self.sizes = [len(s) for s in splits.values()]
        self._shapes = [(s.image_size, s.channels, s.presized) for s in splits.values()]
        stored = [self._stored(s) for s in splits.values()]
        self._pixel_shapes = [tuple(images.shape[1:]) for images in stored]
        with tf.device(device):
            # tf.constant is made in host memory; the identity copies it to the device once.
            self._images = [tf.identity(tf.constant(as_words(images))) for images in stored]
            self._labels = [tf.identity(tf.constant(s.labels)) for s in splits.values()]

    @staticmethod
    def _stored(split: Split) -> np.ndarray:
        """A split's pixels as placed: the run's channel count made once here, not per batch
        (the same pixels: a channel change and a gather commute)."""
        if split.presized or split.images.shape[-1] == split.channels:
            return split.images
        return match_channels(split.images, split.channels).numpy()

    def _one(self, code: int, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        size, channels, presized = self._shapes[code]
        with tf.device(self.device):
            x = gather_rows(self._images[code], indices, self._pixel_shapes[code])
            x = finish_pixels(x, size, channels, presized)
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
    variables. Where the model was compiled with XLA (`model.jit_compile`), the model's step
    stays XLA-compiled as a function of its own while the input ops run as TensorFlow kernels,
    as in tf.data (not every image op has an XLA kernel, and XLA need not round like
    TensorFlow's kernels: the pixels would no longer be the tf.data path's). A training run
    never is: it enables op determinism (train.py), and Keras 3.15 then turns `jit_compile`
    off, also on a GPU ("auto" and True alike; keras/src/trainers/trainer.py,
    `model_supports_jit`: "disable XLA with determinism enabled"; docs/cluster.md says what
    that costs)."""

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

    def predict(self, split: str, batch_size: int) -> np.ndarray:
        """The model's predicted class of every example of `split`, in order: the pixels of
        `eval`'s batches through the run's model in inference mode, as `evaluate` scores
        them."""
        core = self.model.core if self.device is not None else self.model
        classes = []
        for batch in self.eval(split, batch_size):
            on_device = self.device is not None
            x = self.model.inputs_of(batch, training=False)[0] if on_device else batch[0]
            classes.append(np.argmax(np.asarray(core.predict_on_batch(x)), axis=-1))
        return np.concatenate(classes) if classes else np.zeros(0, np.int64)


def make_feed(model: keras.Model, splits: Mapping[str, Split], setting: str | bool = "auto",
              augment: str = "none", metrics: list | None = None) -> Feed:
    """The run's `Feed`: its splits on the device and a `DeviceTrainer` around `model` (compiled
    already) when `setting` says so (`use_device`), else `model` on tf.data batches."""
    if not use_device(setting, splits):
        return Feed(model, splits)
    data = DeviceData(splits)
    return Feed(DeviceTrainer(model, data, augment, metrics), splits, data)
