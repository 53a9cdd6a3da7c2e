"""The training step is traced once per run (a second trace doubled MobileNetV2's first epoch)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnablate.training.train import _build_before_fit
from cnnablate.zoo.models import build_model


def _traces_of_first_fit(prebuild: bool) -> int:
    keras.utils.set_random_seed(0)
    model = build_model("all_cnn_c", (16, 16, 3), 4, width=0.125)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
    y = np.arange(32) % 4
    if prebuild:
        _build_before_fit(model, (x[:8], y[:8]))
    traces = []
    train_step = model.train_step

    def counting_train_step(data):
        traces.append(1)  # a Python side effect: runs once per trace, not per step
        return train_step(data)

    model.train_step = counting_train_step
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    return len(traces)


@pytest.mark.parametrize("prebuild, expected", [(True, 1), (False, 2)])
def test_variables_built_before_fit_spare_the_second_trace(prebuild, expected):
    # The False case pins the Keras behaviour the fix is for: if Keras stops retracing, the
    # helper can go.
    assert _traces_of_first_fit(prebuild) == expected


def test_build_before_fit_leaves_metrics_empty():
    model = build_model("all_cnn_c", (16, 16, 3), 4, width=0.125)
    model.compile(optimizer="sgd", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.zeros((8, 16, 16, 3), np.float32)
    _build_before_fit(model, (x, np.zeros(8, np.int64)))
    assert model.optimizer.built
    assert all(float(v.numpy()) == 0.0 for m in model.metrics for v in m.variables)
