"""actstats on a hand-made model whose activations can be worked out by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnablate.training.actstats import activation_statistics
from cnnablate.zoo.models import build_model

# Two 2x2x1 examples.
BATCH = np.array([[[1, -2], [0, 3]], [[2, -1], [-4, 5]]], "float32")[..., None]


def hand_model() -> keras.Model:
    """1x1 conv to (x, -x) -> ReLU -> 1x1 conv summing channels minus 2 -> linear activation."""
    inputs = keras.Input((2, 2, 1))
    x = keras.layers.Conv2D(2, 1, name="a_conv")(inputs)
    x = keras.layers.ReLU(name="a_conv_act")(x)  # |x| split into relu(x), relu(-x)
    x = keras.layers.Conv2D(1, 1, name="b_conv")(x)
    x = keras.layers.Activation("linear", name="b_conv_act")(x)  # |x| - 2
    model = keras.Model(inputs, x)
    model.get_layer("a_conv").set_weights([np.array([[[[1.0, -1.0]]]]), np.zeros(2)])
    model.get_layer("b_conv").set_weights([np.ones((1, 1, 2, 1)), np.array([-2.0])])
    return model


def test_hand_computed_statistics() -> None:
    stats = activation_statistics(hand_model(), BATCH)
    assert [s["layer"] for s in stats] == ["a_conv_act", "b_conv_act"]
    a, b = stats
    # relu(x):  ex1 [[1,0],[0,3]]  ex2 [[2,0],[0,5]] -> units (0,1), (1,0) never fire
    # relu(-x): ex1 [[0,2],[0,0]]  ex2 [[0,1],[4,0]] -> units (0,0), (1,1) never fire
    assert a["dead_fraction"] == pytest.approx(4 / 8)
    values_a = [1, 0, 0, 3, 2, 0, 0, 5, 0, 2, 0, 0, 0, 1, 4, 0]
    assert a["mean"] == pytest.approx(18 / 16)
    assert a["std"] == pytest.approx(np.std(values_a))
    # |x| - 2: ex1 [[-1,0],[-2,1]]  ex2 [[0,-1],[2,3]] -> (0,0), (0,1) never > 0 (0 is not firing)
    values_b = [-1, 0, -2, 1, 0, -1, 2, 3]
    assert b["dead_fraction"] == pytest.approx(2 / 4)
    assert b["mean"] == pytest.approx(2 / 8)
    assert b["std"] == pytest.approx(np.std(values_b))
    for s in stats:
        assert all(type(s[key]) is float for key in ("dead_fraction", "mean", "std"))


def test_zoo_model_statistics_in_model_order() -> None:
    model = build_model("all_cnn_c", (16, 16, 3), 10, width=0.1, activation="rrelu")
    batch = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
    stats = activation_statistics(model, batch)
    assert [s["layer"] for s in stats] == [f"conv{i}_conv_act" for i in range(1, 9)]
    assert all(0.0 <= s["dead_fraction"] <= 1.0 and s["std"] >= 0.0 for s in stats)
    assert stats == activation_statistics(model, batch)  # inference: dropout/RReLU deterministic


def test_model_without_activations() -> None:
    inputs = keras.Input((3,))
    assert activation_statistics(keras.Model(inputs, keras.layers.Dense(2)(inputs)),
                                 np.zeros((1, 3))) == []
