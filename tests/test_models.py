"""Model zoo: exact parameter counts, layer order per norm mode, and a training step for every
activation x norm x init combination (tiny widths, eager steps: tracing a graph per model would
cost seconds each)."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from cnnablate.base import catalog
from cnnablate.zoo.models import build_model
from cnnablate.zoo.models.mobilenet_v2 import _make_divisible

SMALL = {  # name -> (input shape, width) small enough for quick steps, from the registry
    name: ((entry.test_image_size, entry.test_image_size, 3), entry.test_width)
    for name, entry in catalog.MODELS.items()
}
CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def small(name: str, **kwargs) -> keras.Model:
    shape, width = SMALL[name]
    return build_model(name, shape, 10, width=width, **kwargs)


def train_one_step(model: keras.Model, *, eager: bool = True) -> float:
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=eager,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *model.input_shape[1:])).astype("float32")
    loss = model.train_on_batch(x, np.array([0, 1]))
    assert np.isfinite(loss)
    return float(loss)


# --- parameter counts ---------------------------------------------------------------------------


def test_mobilenet_v2_matches_keras_applications() -> None:
    ours = build_model("mobilenet_v2", (224, 224, 3), None, activation="relu6")
    ref = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3))
    assert ours.count_params() == ref.count_params() == 2_257_984
    assert ours.output_shape == ref.output_shape == (None, 7, 7, 1280)

    # Layer for layer: the same weight shapes in the same order, the same layer-type counts.
    def shapes(model):
        return [tuple(w.shape) for w in model.weights]

    def types(model):
        return sorted(type(layer).__name__ for layer in model.layers
                      if not isinstance(layer, keras.layers.ReLU))

    assert shapes(ours) == shapes(ref)
    assert types(ours) == types(ref)
    assert sum(isinstance(layer, keras.layers.Add) for layer in ours.layers) == 10


def test_mobilenet_v2_head_and_include_top() -> None:
    model = build_model("mobilenet_v2", (224, 224, 3), 10)
    assert model.count_params() == 2_270_794
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation is keras.activations.linear  # logits, no softmax
    headless = build_model("mobilenet_v2", (224, 224, 3), 10, include_top=False)
    assert headless.count_params() == 2_257_984


def test_make_divisible() -> None:
    assert _make_divisible(32 * 0.25, 8) == 8
    assert _make_divisible(16 * 0.35, 8) == 8
    assert _make_divisible(24 * 1.4, 8) == 32
    assert _make_divisible(1280 * 1.3, 8) == 1664


@pytest.mark.parametrize("side", [32, 33, 57, 96])
def test_mobilenet_v2_any_input_size(side: int) -> None:
    model = build_model("mobilenet_v2", (side, side, 3), 10, width=0.35)
    assert model.output_shape == (None, 10)
    x = np.zeros((1, side, side, 3), "float32")
    assert keras.ops.convert_to_numpy(model(x)).shape == (1, 10)


def test_all_cnn_c_param_count() -> None:
    model = build_model("all_cnn_c", (32, 32, 3), 10, norm="none")
    assert model.count_params() == 1_369_738
    assert model.output_shape == (None, 10)


def test_nin_param_count() -> None:
    # 5x5x3x192 + 192x160 + 160x96 + 5x5x96x192 + 2x(192x192) + 3x3x192x192 + 192x192 + 192x10,
    # plus biases (norm none).
    model = build_model("nin", (32, 32, 3), 10, norm="none")
    assert model.count_params() == 966_986
    assert model.output_shape == (None, 10)


def test_width_scales_channels() -> None:
    model = build_model("all_cnn_c", (32, 32, 3), 10, width=0.5)
    assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [
        48, 48, 48, 96, 96, 96, 96, 96, 10]
    tiny = build_model("nin", (32, 32, 3), 10, width=0.001)
    assert min(la.filters for la in tiny.layers if isinstance(la, keras.layers.Conv2D)) == 1


@pytest.mark.parametrize(("name", "channels"), list(itertools.product(catalog.MODELS, [1, 5])))
def test_any_channel_count(name: str, channels: int) -> None:
    shape, width = SMALL[name]
    model = build_model(name, (*shape[:2], channels), 3, width=width)
    out = model(np.zeros((1, *shape[:2], channels), "float32"))
    assert keras.ops.convert_to_numpy(out).shape == (1, 3)


@pytest.mark.parametrize("name", list(catalog.MODELS))
def test_min_image_size_builds(name: str) -> None:
    side = catalog.MODELS[name].min_image_size
    model = build_model(name, (side, side, 3), 10, width=SMALL[name][1])
    assert model.output_shape == (None, 10)


def test_all_cnn_c_dropout_toggle() -> None:
    with_dropout = small("all_cnn_c")
    without = small("all_cnn_c", dropout=False)
    assert sum(isinstance(la, keras.layers.Dropout) for la in with_dropout.layers) == 3
    assert not any(isinstance(la, keras.layers.Dropout) for la in without.layers)


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_model_lists_valid() -> None:
    with pytest.raises(ValueError, match="all_cnn_c.*mobilenet_v2|mobilenet_v2.*all_cnn_c"):
        build_model("resnet", (32, 32, 3), 10)


def test_unknown_norm_lists_valid() -> None:
    with pytest.raises(ValueError, match="before.*after.*none"):
        build_model("all_cnn_c", (32, 32, 3), 10, norm="inside")


def test_unknown_init_lists_valid() -> None:
    with pytest.raises(ValueError, match="he_normal"):
        small("all_cnn_c", init="kaiming_magic")


# --- layer order per norm mode ------------------------------------------------------------------


def parent(model: keras.Model, name: str) -> str:
    """Name of the layer feeding ``name`` (each unit is a simple chain)."""
    return model.get_layer(name).input._keras_history[0].name


@pytest.mark.parametrize(("name", "norm"), list(itertools.product(catalog.MODELS, catalog.NORMS)))
def test_norm_placement(name: str, norm: str) -> None:
    model = small(name, norm=norm, activation="elu")
    names = {layer.name for layer in model.layers}
    convs = [layer for layer in model.layers if isinstance(layer, CONVS)]
    assert convs
    for conv in convs:
        c = conv.name
        assert c.endswith(("_conv", "_dwconv", "_project")), c
        if c == "classifier_conv":  # linear logits conv: bias, no BN, no activation
            assert conv.use_bias and f"{c}_bn" not in names and f"{c}_act" not in names
            continue
        assert conv.use_bias == (norm == "none"), c
        if c.endswith("_project"):  # MobileNetV2's projection stays linear in every mode
            assert f"{c}_act" not in names
            if norm == "none":
                assert f"{c}_bn" not in names
            else:
                assert parent(model, f"{c}_bn") == c
        elif norm == "before":
            assert (parent(model, f"{c}_bn"), parent(model, f"{c}_act")) == (c, f"{c}_bn")
        elif norm == "after":
            assert (parent(model, f"{c}_act"), parent(model, f"{c}_bn")) == (c, f"{c}_act")
        else:
            assert f"{c}_bn" not in names and parent(model, f"{c}_act") == c
    # Every BN and every activation belongs to a conv by name.
    conv_names = {conv.name for conv in convs}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.name.removesuffix("_bn") in conv_names
        if layer.name.endswith("_act"):
            assert layer.name.removesuffix("_act") in conv_names


def test_mobilenet_v2_block_structure() -> None:
    model = small("mobilenet_v2")
    names = {layer.name for layer in model.layers}
    assert "block_0_expand_conv" not in names and "block_1_expand_conv" in names
    for block_id in (1, 3, 6, 13):  # the stride-2 blocks: explicit pad, valid depthwise
        assert parent(model, f"block_{block_id}_dwconv") == f"block_{block_id}_pad"
        assert model.get_layer(f"block_{block_id}_dwconv").padding == "valid"
    assert "block_1_add" not in names and "block_2_add" in names


# --- every combination trains one step ----------------------------------------------------------

ACTS = sorted(catalog.ACTIVATIONS)


@pytest.mark.parametrize(
    ("name", "activation", "norm"),
    list(itertools.product(["all_cnn_c", "nin"], ACTS, catalog.NORMS)),
)
def test_small_models_train_every_activation_and_norm(name: str, activation: str, norm: str):
    train_one_step(small(name, activation=activation, norm=norm))


@pytest.mark.parametrize("activation", ACTS)
def test_mobilenet_v2_trains_every_activation(activation: str) -> None:
    train_one_step(small("mobilenet_v2", activation=activation))


@pytest.mark.parametrize("norm", catalog.NORMS)
def test_mobilenet_v2_trains_every_norm(norm: str) -> None:
    train_one_step(small("mobilenet_v2", activation="relu6", norm=norm))


INITS = [*catalog.INITIALIZERS, {"type": "variance_scaling", "params": {"scale": 2.0}}]


@pytest.mark.parametrize("init", INITS, ids=str)
def test_every_init_trains(init) -> None:
    train_one_step(small("all_cnn_c", init=init))


def test_init_reaches_every_kernel() -> None:
    model = small("mobilenet_v2", init="ones")
    layers = [layer for layer in model.layers if isinstance(layer, (*CONVS, keras.layers.Dense))]
    assert len(layers) == 2 + 3 * 17 - 1 + 1  # stem, head, 3 per block but block 0, Dense
    assert all(np.all(layer.get_weights()[0] == 1.0) for layer in layers)


@pytest.mark.parametrize(("activation", "expected"), [
    ("relu", "HeNormal"), ("selu", "LecunNormal"), ("tanh", "GlorotUniform"),
    ({"type": "leaky_relu", "negative_slope": 0.01}, "HeNormal"),
])
def test_auto_init_follows_activation(activation, expected: str) -> None:
    model = small("mobilenet_v2", activation=activation)
    dw = model.get_layer("block_1_dwconv")
    assert type(dw.depthwise_initializer).__name__ == expected
    assert type(model.get_layer("logits").kernel_initializer).__name__ == expected


def test_layers_get_independent_initial_weights() -> None:
    model = small("all_cnn_c")
    k1, k2 = (model.get_layer(n).get_weights()[0] for n in ("conv4_conv", "conv5_conv"))
    assert not np.array_equal(k1, k2)


@pytest.mark.parametrize("name", list(catalog.MODELS))
def test_graph_mode_step_with_custom_layers(name: str) -> None:
    """One traced (non-eager) step per model, with the custom RReLU in it."""
    train_one_step(small(name, activation={"type": "rrelu", "seed": 1}), eager=False)


# Keras's TF backend trips numpy 2's __array__ deprecation while saving: Keras's, not ours.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_saved_model_reloads(tmp_path) -> None:
    for spec in ({"type": "rrelu", "convention": "xu2015"}, "prelu", "celu", "gelu", "relu6"):
        model = small("all_cnn_c", activation=spec)
        path = tmp_path / "m.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)),
            rtol=1e-5, atol=1e-6,
        )


@pytest.mark.parametrize("name", list(catalog.MODELS))
def test_registered_options_are_the_builders_own_keywords(name: str) -> None:
    """The options a config may set (checked while planning) are exactly what build() takes."""
    import inspect

    from cnnablate.zoo.models import builder

    params = inspect.signature(builder(name)).parameters.values()
    keywords = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    assert keywords - {"activation", "norm", "init", "width"} == set(catalog.MODELS[name].options)
