"""Every activation's values and gradients against its published formula, written in numpy."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnablate.base import catalog
from cnnablate.zoo import activations

# Negative, zero-ish and positive points; none on a kink (0, +-3 for hard_swish, 6 for relu6).
X = np.array([-4.0, -2.5, -1.0, -0.3, -0.01, 0.01, 0.3, 1.0, 2.5, 4.0, 5.9, 7.5])

LAMBDA, ALPHA = 1.0507009873554805, 1.6732632423543772  # Klambauer et al. 2017
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


erf = np.vectorize(math.erf)


def norm_cdf(x):
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def phi(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def leaky(slope):
    return (lambda x: np.where(x > 0, x, slope * x), lambda x: np.where(x > 0, 1.0, slope))


def elu(a):
    return (
        lambda x: np.where(x > 0, x, a * (np.exp(x) - 1)),
        lambda x: np.where(x > 0, 1.0, a * np.exp(x)),
    )


def celu(a):
    return (
        lambda x: np.maximum(0, x) + np.minimum(0, a * (np.exp(x / a) - 1)),
        lambda x: np.where(x > 0, 1.0, np.exp(x / a)),
    )


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def gelu_tanh_grad(x):
    t = np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)


def swish(x):
    return x * sigmoid(x)


def swish_grad(x):
    return sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x))


# spec -> (f, f'), the published definitions.
CASES: dict[str, tuple] = {
    "relu": leaky(0.0),
    "relu6": (lambda x: np.clip(x, 0, 6), lambda x: ((x > 0) & (x < 6)).astype(float)),
    "leaky_relu": leaky(0.3),
    "leaky_relu:0.01": leaky(0.01),  # Xu et al.'s a = 100
    "leaky_relu:0.18181818181818182": leaky(1 / 5.5),  # Xu et al.'s a = 5.5
    "prelu": leaky(0.25),  # at initialisation
    "rrelu": leaky((1 / 8 + 1 / 3) / 2),  # inference slope
    "rrelu:xu2015": leaky(2 / 11),
    "elu": elu(1.0),
    "elu:0.5": elu(0.5),
    "selu": (
        lambda x: LAMBDA * np.where(x > 0, x, ALPHA * (np.exp(x) - 1)),
        lambda x: LAMBDA * np.where(x > 0, 1.0, ALPHA * np.exp(x)),
    ),
    "celu": celu(1.0),
    "celu:2.0": celu(2.0),
    "gelu": (lambda x: x * norm_cdf(x), lambda x: norm_cdf(x) + x * phi(x)),
    "gelu:approximate": (gelu_tanh, gelu_tanh_grad),
    "swish": (swish, swish_grad),
    "silu": (swish, swish_grad),
    "mish": (
        lambda x: x * np.tanh(softplus(x)),
        lambda x: np.tanh(softplus(x)) + x * (1 - np.tanh(softplus(x)) ** 2) * sigmoid(x),
    ),
    "hard_swish": (
        lambda x: x * np.clip(x + 3, 0, 6) / 6,
        lambda x: np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2 * x + 3) / 6)),
    ),
    "sigmoid": (sigmoid, lambda x: sigmoid(x) * (1 - sigmoid(x))),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "linear": (lambda x: x, lambda x: np.ones_like(x)),
}

SPECS: dict[str, str | dict] = {
    "leaky_relu:0.01": {"type": "leaky_relu", "negative_slope": 0.01},
    "leaky_relu:0.18181818181818182": {"type": "leaky_relu", "negative_slope": 1 / 5.5},
    "rrelu:xu2015": {"type": "rrelu", "convention": "xu2015"},
    "elu:0.5": {"type": "elu", "alpha": 0.5},
    "celu:2.0": {"type": "celu", "alpha": 2.0},
    "gelu:approximate": {"type": "gelu", "approximate": True},
}


def value_and_grad(layer, x: np.ndarray, training: bool = False):
    xt = tf.Variable(x[None, :].astype(np.float32))
    with tf.GradientTape() as tape:
        y = layer(xt, training=training)
        total = tf.reduce_sum(y)
    return y.numpy()[0], tape.gradient(total, xt).numpy()[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_value_and_gradient_match_formula(case: str) -> None:
    f, df = CASES[case]
    layer = activations.get(SPECS.get(case, case))
    y, g = value_and_grad(layer, X)
    np.testing.assert_allclose(y, f(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, df(X), rtol=1e-5, atol=1e-6)


def test_every_catalog_name_is_pinned_and_registered() -> None:
    assert set(activations.NAMES) == set(catalog.ACTIVATIONS)
    assert set(catalog.ACTIVATIONS) <= {case.split(":")[0] for case in CASES}


@pytest.mark.parametrize("name", sorted(catalog.ACTIVATIONS))
def test_catalog_defaults_are_accepted(name: str) -> None:
    layer = activations.get({"type": name, **catalog.ACTIVATIONS[name]}, name=f"x_{name}_act")
    assert isinstance(layer, keras.layers.Layer)
    assert layer.name == f"x_{name}_act"


def test_selu_constants() -> None:
    assert activations.SELU_SCALE == LAMBDA and activations.SELU_ALPHA == ALPHA
    y = keras.ops.convert_to_numpy(activations.get("selu")(np.array([[1.0, -30.0]], "float32")))
    np.testing.assert_allclose(y[0], [LAMBDA, -LAMBDA * ALPHA], rtol=1e-6)


def test_gelu_is_exact_by_default() -> None:
    x = np.array([[-1.5, 1.0]], "float32")
    exact = keras.ops.convert_to_numpy(activations.get("gelu")(x))
    approx = keras.ops.convert_to_numpy(activations.get({"type": "gelu", "approximate": 1})(x))
    np.testing.assert_allclose(exact, x * norm_cdf(x), rtol=1e-6)
    assert np.abs(exact - approx).max() > 1e-5  # the two forms really differ


def test_get_returns_fresh_layers() -> None:
    assert activations.get("relu") is not activations.get("relu")


def test_unknown_type_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"valid:.*relu6.*") as err:
        activations.get({"type": "swishy"})
    assert "swishy" in str(err.value)


def test_unknown_param_is_named() -> None:
    with pytest.raises(ValueError, match="beta"):
        activations.get({"type": "elu", "beta": 2.0})
    with pytest.raises(ValueError, match="negative_slope"):
        activations.get({"type": "relu", "negative_slope": 0.1})


def test_prelu_has_one_alpha_per_channel() -> None:
    layer = activations.get("prelu")
    layer.build((None, 6, 6, 5))
    assert tuple(layer.alpha.shape) == (1, 1, 5)
    np.testing.assert_array_equal(layer.get_weights()[0], 0.25)
    dense = activations.get({"type": "prelu", "alpha_init": 0.1})
    dense.build((None, 7))
    assert tuple(dense.alpha.shape) == (7,)
    np.testing.assert_allclose(dense.get_weights()[0], 0.1)


def train_slopes(spec: dict, shape=(64, 64)) -> np.ndarray:
    """The per-element negative slopes RReLU draws in training (input all -1)."""
    y = activations.get(spec)(-np.ones(shape, "float32"), training=True)
    return -keras.ops.convert_to_numpy(y)


def test_rrelu_pytorch_training_slopes() -> None:
    slopes = train_slopes({"type": "rrelu", "seed": 1})
    assert slopes.min() >= 1 / 8 - 1e-7 and slopes.max() <= 1 / 3 + 1e-7
    assert len(np.unique(slopes)) > 1000  # one draw per element
    assert abs(slopes.mean() - (1 / 8 + 1 / 3) / 2) < 0.01  # uniform in the slope
    custom = train_slopes({"type": "rrelu", "lower": 0.01, "upper": 0.02, "seed": 1})
    assert custom.min() >= 0.01 - 1e-7 and custom.max() <= 0.02 + 1e-7


def test_rrelu_xu2015_training_slopes() -> None:
    slopes = train_slopes({"type": "rrelu", "convention": "xu2015", "seed": 2})
    assert slopes.min() >= 1 / 8 - 1e-7 and slopes.max() <= 1 / 3 + 1e-7
    assert len(np.unique(slopes)) > 1000
    assert abs((1 / slopes).mean() - 5.5) < 0.1  # uniform in a = 1/slope, not in the slope


def test_rrelu_training_keeps_positives_and_gradient_is_the_slope() -> None:
    x = np.concatenate([-np.ones(500), np.full(500, 2.0)])
    y, g = value_and_grad(activations.get({"type": "rrelu", "seed": 3}), x, training=True)
    np.testing.assert_array_equal(y[500:], 2.0)
    np.testing.assert_array_equal(g[500:], 1.0)
    np.testing.assert_allclose(g[:500], -y[:500], rtol=1e-6)


@pytest.mark.parametrize(
    ("spec", "slope"),
    [({"type": "rrelu"}, (1 / 8 + 1 / 3) / 2), ({"type": "rrelu", "convention": "xu2015"}, 2 / 11)],
)
def test_rrelu_inference_slope_is_exact(spec: dict, slope: float) -> None:
    layer = activations.get(spec)
    assert layer.inference_slope == slope
    y = keras.ops.convert_to_numpy(layer(-np.ones((3, 4), "float32"), training=False))
    np.testing.assert_array_equal(y, -np.float32(slope))


def test_rrelu_same_seed_same_output() -> None:
    x = -np.ones((16, 16), "float32")

    def draw(seed):
        return keras.ops.convert_to_numpy(activations.get({"type": "rrelu", "seed": seed})(
            x, training=True))

    np.testing.assert_array_equal(draw(7), draw(7))
    assert not np.array_equal(draw(7), draw(8))


def test_rrelu_bad_convention() -> None:
    with pytest.raises(ValueError, match="convention"):
        activations.get({"type": "rrelu", "convention": "caffe"})


@pytest.mark.parametrize("spec", [
    {"type": "rrelu", "convention": "xu2015", "a_lower": 4.0, "seed": 5},
    {"type": "celu", "alpha": 2.0},
    {"type": "gelu", "approximate": True},
    {"type": "prelu", "alpha_init": 0.1},
])
def test_custom_layers_round_trip_config(spec: dict) -> None:
    layer = activations.get(spec, name="a_act")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    x = np.linspace(-3, 3, 24, dtype="float32").reshape(1, 2, 3, 4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(layer(x)), rtol=1e-6
    )
