"""Names the zoo understands, importable without Keras or TensorFlow.

The Snakefile validates configs against this catalog while planning, and planning must never
import TensorFlow (8 s per `snakemake -n`). `cnnablate.activations` and `cnnablate.models`
build their registries from the same names, and a test keeps the two in step.
"""

from __future__ import annotations

# name -> default parameters (the defaults the seeds and the papers use).
ACTIVATIONS: dict[str, dict[str, float | str]] = {
    "relu": {},
    "relu6": {},
    "leaky_relu": {"negative_slope": 0.3},  # Keras's layer default, what seed 000 used
    "prelu": {"alpha_init": 0.25},
    # lower/upper: slope ~ U(lower, upper) ("pytorch"); a_lower/a_upper: slope = 1/a,
    # a ~ U(a_lower, a_upper) ("xu2015"). See cnnablate.activations.RReLU.
    "rrelu": {
        "lower": 1.0 / 8.0,
        "upper": 1.0 / 3.0,
        "convention": "pytorch",
        "a_lower": 3.0,
        "a_upper": 8.0,
    },
    "elu": {"alpha": 1.0},
    "selu": {},
    "celu": {"alpha": 1.0},
    "gelu": {"approximate": 0},
    "swish": {},
    "silu": {},
    "mish": {},
    "hard_swish": {},
    "sigmoid": {},
    "tanh": {},
    "linear": {},
}

NORMS: tuple[str, ...] = ("before", "after", "none")

# Keras initializer names accepted for `init` (plus "auto", which picks by activation).
INITIALIZERS: tuple[str, ...] = (
    "auto",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "variance_scaling",
    "zeros",
    "ones",
)

# name -> smallest input side the network accepts (its total stride / valid convolutions).
MODELS: dict[str, dict[str, int]] = {
    "mobilenet_v2": {"min_image_size": 32},
    "all_cnn_c": {"min_image_size": 12},
    "nin": {"min_image_size": 16},
}

DATASET_SOURCES: tuple[str, ...] = (
    "sklearn_digits",
    "tfds",
    "cifar10_binary",
    "cifar100_binary",
    "image_folder",
)


def activation_type(spec: str | dict) -> str:
    """The registry name of an activation spec (a name or ``{"type": name, ...}``)."""
    return spec if isinstance(spec, str) else str(spec.get("type", ""))


def auto_initializer(activation: str | dict) -> str:
    """The initializer `init: auto` means for an activation (seed 004's conclusion)."""
    kind = activation_type(activation)
    if kind == "selu":
        return "lecun_normal"
    if kind in ("sigmoid", "tanh", "linear"):
        return "glorot_uniform"
    return "he_normal"
