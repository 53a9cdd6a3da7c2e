"""cnnablate.training.device: splits held on the device, every batch made inside the compiled step,
pixel for pixel the batches of the tf.data pipeline (here on the CPU, the device of this
machine).

What the model's step receives is captured inside Keras's own compiled train and test
functions (`fit`, `evaluate`) and compared with `Split.train_dataset` / `eval_dataset`. The
8-bit pixels (after gather, resize and augmentation) must be identical; the scaled floats may
differ by one float32 ulp, because TensorFlow's graph optimiser rewrites the division by 127.5
differently inside tf.data than in a tf.function."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from cnnablate.base.errors import is_known  # noqa: E402
from cnnablate.training import gpu_kernels  # noqa: E402
from cnnablate.training.device import (  # noqa: E402
    SPLITS,
    DeviceData,
    DeviceDataError,
    DeviceTrainer,
    Feed,
    as_words,
    device_budget_bytes,
    gather_rows,
    make_feed,
    splits_nbytes,
    use_device,
)
from cnnablate.training.pipeline import Split  # noqa: E402
from cnnablate.training.train import _build_before_fit  # noqa: E402

SIZE, CLASSES = 16, 5


def assert_same_pixels(got, want) -> None:
    got, want = np.asarray(got), np.asarray(want)
    np.testing.assert_array_equal(np.round((got + 1) * 127.5), np.round((want + 1) * 127.5))
    np.testing.assert_allclose(got, want, rtol=0, atol=2.5e-7)


def split(presized: bool, native: int = 12, n: int = 45, seed: int = 7) -> Split:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, native, native, 3), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, n)
    cache = 1 << 30 if presized else 0  # 0: resized per batch
    made = Split.load(images, labels, image_size=SIZE, cache_bytes=cache)
    assert made.presized is presized
    return made


def splits(presized: bool) -> dict[str, Split]:
    # val and test of different sizes and natives: one compiled test step serves both. Made
    # larger per batch (shrinking is the host's: test_splits_shrunk_per_batch_stay_on_the_host).
    return {"train": split(presized), "val": split(presized, native=10, n=21, seed=8),
            "test": split(not presized, native=16, n=13, seed=9)}


def tiny_model(jit_compile: bool | str = "auto") -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(4, 3),
        keras.layers.Dropout(0.3),  # draws random numbers: the trainer must use the model's
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=jit_compile)
    return model


def capture(trainer: DeviceTrainer, training: bool) -> list:
    """Swap the trainer's model step for one that records its (x, y) and trains nothing."""
    seen = []

    def record(data):
        x, y = data
        tf.py_function(lambda a, b: seen.append((a.numpy(), b.numpy())), [x, y], [])
        return {"loss": tf.reduce_sum(x)}

    _build_before_fit(trainer, trainer._data.batch(1, tf.range(2, dtype=tf.int64)))  # as training
    if training:
        trainer._train_on = record
    else:
        trainer._test_on = record
    return seen


@pytest.mark.parametrize("presized", [True, False])
@pytest.mark.parametrize("augment", ["none", "flip", "flip_crop"])
def test_train_step_sees_the_tfdata_pipelines_batches(presized, augment):
    data = splits(presized)
    feed = make_feed(tiny_model(), data, True, augment)
    assert feed.on_device and isinstance(feed.model, DeviceTrainer)
    seen = capture(feed.model, training=True)
    steps = data["train"].steps_per_epoch(8)
    feed.model.fit(feed.train(8, seed=3, first_epoch=1, epochs=3, augment=augment),
                   epochs=3, initial_epoch=1, steps_per_epoch=steps, verbose=0)
    want = list(data["train"].train_dataset(8, seed=3, first_epoch=1, epochs=3, augment=augment))
    assert len(seen) == len(want) == 2 * 6  # two epochs of ceil(45 / 8) batches
    for (gx, gy), (wx, wy) in zip(seen, want, strict=True):
        assert gx.dtype == np.float32 and gx.shape == wx.shape
        assert_same_pixels(gx, wx)
        np.testing.assert_array_equal(gy, wy.numpy())


@pytest.mark.parametrize("presized", [True, False])
def test_test_step_sees_the_eval_batches_of_each_split(presized):
    data = splits(presized)
    feed = make_feed(tiny_model(), data, True, "flip_crop")  # no augmentation when evaluating
    seen = capture(feed.model, training=False)
    for name in ("val", "test"):
        seen.clear()
        feed.model.evaluate(feed.eval(name, 8), verbose=0)
        want = list(data[name].eval_dataset(8))
        assert len(seen) == len(want) == data[name].steps_per_epoch(8)
        for (gx, gy), (wx, wy) in zip(seen, want, strict=True):
            assert_same_pixels(gx, wx)
            np.testing.assert_array_equal(gy, wy.numpy())
        x, y = feed.pixels(name, 100)  # all of it: pixels() clips to the split
        assert_same_pixels(x, np.concatenate([b[0] for b in want]))
        assert len(y) == len(data[name])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_device_training_matches_tfdata_training(jit_compile):
    """Same model, same batches: the weights after an epoch agree with the tf.data path's (to
    float rounding: the inputs may differ by an ulp), the trainer trained the model's own
    variables with the model's optimizer, and its evaluation matches."""
    data = splits(False)
    results = []
    for on_device in (False, True):
        model = tiny_model(jit_compile)
        feed = make_feed(model, data, on_device, "flip")
        assert feed.on_device is on_device
        _build_before_fit(feed.model, feed.pixels("val", 8))
        feed.model.fit(feed.train(8, 3, 0, 2, "flip"), epochs=2, verbose=0,
                       steps_per_epoch=data["train"].steps_per_epoch(8),
                       validation_data=feed.eval("val", 8))
        assert int(model.optimizer.iterations.numpy()) == 12
        loss, acc = feed.model.evaluate(feed.eval("test", 8), verbose=0)
        results.append(([w.numpy() for w in model.weights], loss, acc))
    (host_w, host_loss, host_acc), (dev_w, dev_loss, dev_acc) = results
    for a, b in zip(host_w, dev_w, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert dev_loss == pytest.approx(host_loss, rel=1e-4) and dev_acc == host_acc


def test_trainer_adds_no_state_of_its_own():
    model = tiny_model()
    feed = make_feed(model, splits(True), True)
    trainer = feed.model
    trainer(feed.pixels("val", 4)[0])
    assert [v.path for v in trainer.variables] == [v.path for v in model.variables]
    assert trainer.optimizer is model.optimizer
    assert not any(v.dtype == "uint8" for v in trainer.variables)


def test_choice_and_budget():
    data = splits(True)
    need = splits_nbytes(data)
    assert need == sum(s.images.nbytes + s.labels.nbytes for s in data.values())
    assert use_device("auto", data, budget=need) and not use_device("auto", data, need - 1)
    assert use_device(True, data, budget=0) and not use_device(False, data, budget=1 << 40)
    with pytest.raises(ValueError, match="data_on_device"):
        use_device("yes", data)
    assert device_budget_bytes() > 0
    feed = make_feed(tiny_model(), data, False)
    assert isinstance(feed, Feed) and not feed.on_device and feed.device is None
    with pytest.raises(ValueError, match="order"):
        DeviceData({"val": data["val"]})
    assert SPLITS == ("train", "val", "test")


def test_one_trace_of_each_step_for_a_whole_run():
    """As on the tf.data path (tests/test_train_tracing.py): one trace of the train step, and
    validation and test share one trace of the test step."""
    data = splits(False)
    feed = make_feed(tiny_model(), data, True, "flip_crop")
    trainer = feed.model
    _build_before_fit(trainer, feed.pixels("val", 8))
    traces = {"train": 0, "test": 0}
    train_step, test_step = trainer.train_step, trainer.test_step

    def counting(kind, step):
        def counted(batch):
            traces[kind] += 1  # a Python side effect: once per trace, not per step
            return step(batch)
        return counted

    trainer.train_step = counting("train", train_step)
    trainer.test_step = counting("test", test_step)
    trainer.fit(feed.train(8, 3, 0, 2, "flip_crop"), epochs=2, verbose=0,
                steps_per_epoch=data["train"].steps_per_epoch(8),
                validation_data=feed.eval("val", 8))
    trainer.evaluate(feed.eval("test", 8), verbose=0)
    assert traces == {"train": 1, "test": 1}


def traced_input_steps(trainer: DeviceTrainer) -> list:
    """GraphDefs of the input work of both steps, as `fit` and `evaluate` trace it: a training
    batch (indices, augmentation seed) and an evaluation batch (split code, indices)."""
    train = tf.function(lambda idx, seed: trainer.inputs_of((idx, seed), training=True))
    test = tf.function(lambda code, idx: trainer.inputs_of((code, idx), training=False))
    return [
        train.get_concrete_function(tf.TensorSpec([None], tf.int64),
                                    tf.TensorSpec([2], tf.int64)).graph.as_graph_def(),
        test.get_concrete_function(tf.TensorSpec([], tf.int32),
                                   tf.TensorSpec([None], tf.int64)).graph.as_graph_def(),
    ]


@pytest.mark.parametrize("presized", [True, False])
@pytest.mark.parametrize("augment", ["none", "flip_crop"])
def test_every_input_op_has_a_gpu_kernel_for_its_dtypes(presized, augment):
    """No op of the device path would fall back to the CPU on a GPU (with soft placement,
    silently, every step): each op and dtype of the traced steps is one TensorFlow registers a
    GPU kernel for (gpu_kernels.json, read from the tensorflow wheel). Today's alternatives
    are not: a uint8 gather and the antialiased resize."""
    feed = make_feed(tiny_model(), splits(presized), True, augment)
    for graph_def in traced_input_steps(feed.model):
        ops = {node.op for node in gpu_kernels.graph_nodes(graph_def)}
        assert "GatherV2" in ops and "Bitcast" in ops
        assert ("ResizeBilinear" in ops) is not presized  # the test split is never resized
        assert gpu_kernels.missing(graph_def) == []


def test_the_kernel_list_rejects_what_has_no_gpu_kernel():
    """The check can fail: a uint8 gather and an antialiased resize, traced here, are named."""
    images = tf.zeros((4, 20, 20, 3), tf.uint8)

    @tf.function
    def old_style(indices):
        x = tf.gather(images, indices)
        return tf.image.resize(x, (SIZE, SIZE), antialias=True)

    graph_def = old_style.get_concrete_function(tf.TensorSpec([None], tf.int64)).graph
    missing = gpu_kernels.missing(graph_def.as_graph_def())
    assert any(m.startswith("GatherV2(") and "Tparams=DT_UINT8" in m for m in missing), missing
    assert any(m.startswith("ScaleAndTranslate(") for m in missing), missing


def test_the_kernel_list_came_from_the_tensorflow_in_use():
    """gpu_kernels.json was read from the wheel of the pinned TensorFlow: regenerate it (see
    cnnablate/training/gpu_kernels.py) when the pin moves."""
    data = gpu_kernels.load()
    assert f"tensorflow {tf.__version__} wheel" in data["source"]
    assert set(gpu_kernels.OPS) <= set(data["kernels"])


@pytest.mark.parametrize("native", [(3, 5, 7), (2, 2, 2), (4, 4, 1)])
def test_word_rows_gather_the_same_bytes(native):
    """Rows of int64 words, padded or not, give back exactly the uint8 images asked for."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, *native), dtype=np.uint8)
    words = tf.constant(as_words(images))
    assert words.dtype == tf.int64
    indices = tf.constant([8, 0, 3, 3], tf.int64)
    got = gather_rows(words, indices, native).numpy()
    np.testing.assert_array_equal(got, images[[8, 0, 3, 3]])


def test_soft_placement_off_runs_the_input_steps_on_this_device():
    """With soft placement off every op must run where it is placed (here the CPU: the same
    code path as on a GPU, the kernels differ), and the batches stay those of tf.data."""
    data = splits(False)
    previous = tf.config.get_soft_device_placement()
    tf.config.set_soft_device_placement(False)
    try:
        feed = make_feed(tiny_model(), data, True, "flip_crop")
        x, y = feed.pixels("val", 100)
        want = np.concatenate([b[0] for b in data["val"].eval_dataset(8)])
        assert_same_pixels(x, want)
    finally:
        tf.config.set_soft_device_placement(previous)


def test_splits_shrunk_per_batch_stay_on_the_host():
    """Shrinking is antialiased (a resize without GPU kernels): a split too big to shrink
    once is shrunk per batch by tf.data, to the pixels of shrinking it once, and the device
    path declines it (auto) or says why it cannot take it (true)."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (30, 24, 24, 3), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, 30)
    per_batch = Split.load(images, labels, image_size=SIZE, cache_bytes=0)
    once = Split.load(images, labels, image_size=SIZE)
    assert per_batch.shrinks_per_batch and not once.shrinks_per_batch and once.presized
    np.testing.assert_array_equal(
        np.concatenate([b[0] for b in per_batch.eval_dataset(8)]),
        np.concatenate([b[0] for b in once.eval_dataset(8)]))
    data = {"train": per_batch, "val": once, "test": once}
    assert not use_device("auto", data, budget=1 << 40)
    with pytest.raises(DeviceDataError, match="split 'train' would be shrunk from 24x24 to 16"):
        use_device(True, data)
    assert is_known(DeviceDataError("x"))  # one line on the console, not a traceback
