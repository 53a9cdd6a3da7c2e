"""The activation zoo: ``get(spec)`` turns a config spec into a fresh Keras layer.

A spec is a name (``"relu"``) or a dict ``{"type": name, **params}``, in the registry style of
config-driven ``build_activation_layer({"type": ...})``. The names and default parameters come
from :mod:`cnnablate.base.catalog` (the Snakefile validates configs against it without importing
Keras); a test keeps this registry and the catalog in step.

Only ``keras.layers`` / ``keras.ops`` / ``keras.random`` are used so the layers run on every Keras
backend. Custom layers are registered under the ``cnnablate`` package so ``.keras`` files reload
once this module has been imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
from keras import ops

from cnnablate.base import catalog

# SELU's fixed-point constants (Klambauer et al. 2017), the same ones keras.activations.selu uses.
SELU_SCALE = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


@keras.saving.register_keras_serializable(package="cnnablate")
class CELU(keras.layers.Layer):
    """CELU (Barron 2017): ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    A layer rather than ``Activation(lambda ...)`` so ``alpha`` survives serialisation.
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if alpha <= 0:
            raise ValueError(f"celu: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def call(self, inputs):
        return keras.activations.celu(inputs, alpha=self.alpha)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="cnnablate")
class GELU(keras.layers.Layer):
    """GELU (Hendrycks & Gimpel 2016): exact ``x * Phi(x)`` (erf form) unless ``approximate``,
    which switches to the tanh approximation."""

    def __init__(self, approximate: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def call(self, inputs):
        return keras.activations.gelu(inputs, approximate=self.approximate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "approximate": self.approximate}


@keras.saving.register_keras_serializable(package="cnnablate")
class ChannelPReLU(keras.layers.PReLU):
    """PReLU (He et al. 2015) with one learned slope per channel, shared over all other axes.

    The rank is only known at build time, so the shared axes are chosen there: every axis
    between batch and channel (``[1, 2]`` for NHWC images -> alpha of shape ``(1, 1, C)``;
    none for ``(batch, features)`` inputs -> one alpha per feature).
    """

    def __init__(self, alpha_init: float = 0.25, **kwargs: Any) -> None:
        kwargs.setdefault("alpha_initializer", keras.initializers.Constant(alpha_init))
        kwargs.pop("shared_axes", None)  # always derived from the rank in build()
        super().__init__(**kwargs)
        self.alpha_init = float(alpha_init)

    def build(self, input_shape):
        self.shared_axes = list(range(1, len(input_shape) - 1)) or None
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("shared_axes", None)
        return {**config, "alpha_init": self.alpha_init}


@keras.saving.register_keras_serializable(package="cnnablate")
class RReLU(keras.layers.Layer):
    """Randomized leaky ReLU: ``x`` for ``x >= 0``, ``slope * x`` otherwise.

    Two conventions exist and differ in how the random slope is parametrised:

    * ``"pytorch"`` (``torch.nn.RReLU``, the default): in training every element draws its own
      ``slope ~ U(lower, upper)`` (defaults 1/8 and 1/3); at inference the slope is the fixed
      mean ``(lower + upper) / 2`` (= 11/48 with the defaults).
    * ``"xu2015"`` (Xu et al. 2015, "Empirical Evaluation of Rectified Activations"): in
      training ``slope = 1 / a`` with ``a ~ U(a_lower, a_upper)`` (3 and 8), so slopes lie in
      ``[1/8, 1/3]`` but are *not* uniform in the slope; at test time the slope is
      ``2 / (a_lower + a_upper)`` (= 1/5.5 = 2/11), the inverse of the mean of ``a``.

    ``lower``/``upper`` only apply to ``"pytorch"``, ``a_lower``/``a_upper`` only to
    ``"xu2015"``. Randomness comes from a ``keras.random.SeedGenerator(seed)``, so a fixed
    ``seed`` (or ``keras.utils.set_random_seed`` when ``seed`` is None) makes runs reproducible.
    """

    def __init__(
        self,
        lower: float = 1.0 / 8.0,
        upper: float = 1.0 / 3.0,
        convention: str = "pytorch",
        a_lower: float = 3.0,
        a_upper: float = 8.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if convention not in ("pytorch", "xu2015"):
            raise ValueError(f"rrelu: convention must be 'pytorch' or 'xu2015', got {convention!r}")
        if not 0 <= lower <= upper:
            raise ValueError(f"rrelu: need 0 <= lower <= upper, got {lower}, {upper}")
        if not 0 < a_lower <= a_upper:
            raise ValueError(f"rrelu: need 0 < a_lower <= a_upper, got {a_lower}, {a_upper}")
        self.lower, self.upper = float(lower), float(upper)
        self.convention = convention
        self.a_lower, self.a_upper = float(a_lower), float(a_upper)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def inference_slope(self) -> float:
        if self.convention == "xu2015":
            return 2.0 / (self.a_lower + self.a_upper)
        return (self.lower + self.upper) / 2.0

    def call(self, inputs, training=None):
        if training:
            if self.convention == "xu2015":
                a = keras.random.uniform(
                    ops.shape(inputs), self.a_lower, self.a_upper,
                    dtype=inputs.dtype, seed=self.seed_generator,
                )
                slope = 1.0 / a
            else:
                slope = keras.random.uniform(
                    ops.shape(inputs), self.lower, self.upper,
                    dtype=inputs.dtype, seed=self.seed_generator,
                )
        else:
            slope = self.inference_slope
        # where() rather than max(x, slope*x): identical for slope <= 1, and the gradient is
        # exactly 1 / slope on each side as in the published definitions.
        return ops.where(inputs >= 0, inputs, inputs * slope)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "lower": self.lower,
            "upper": self.upper,
            "convention": self.convention,
            "a_lower": self.a_lower,
            "a_upper": self.a_upper,
            "seed": self.seed,
        }


def _simple(name: str) -> Callable[..., keras.layers.Layer]:
    """A parameterless activation; ``Activation("name")`` serialises by name."""
    return lambda *, name_=None, **_: keras.layers.Activation(name, name=name_)


# name -> factory(name_=layer name, **params). Params were already checked against the catalog.
_FACTORIES: dict[str, Callable[..., keras.layers.Layer]] = {
    "relu": lambda *, name_=None: keras.layers.ReLU(name=name_),
    "relu6": lambda *, name_=None: keras.layers.ReLU(max_value=6.0, name=name_),
    "leaky_relu": lambda *, name_=None, negative_slope: keras.layers.LeakyReLU(
        negative_slope=negative_slope, name=name_
    ),
    "prelu": lambda *, name_=None, alpha_init: ChannelPReLU(alpha_init=alpha_init, name=name_),
    "rrelu": lambda *, name_=None, **p: RReLU(name=name_, **p),
    "elu": lambda *, name_=None, alpha: keras.layers.ELU(alpha=alpha, name=name_),
    "selu": _simple("selu"),
    "celu": lambda *, name_=None, alpha: CELU(alpha=alpha, name=name_),
    "gelu": lambda *, name_=None, approximate: GELU(approximate=bool(approximate), name=name_),
    "swish": _simple("silu"),  # swish with beta=1 is SiLU: x * sigmoid(x)
    "silu": _simple("silu"),
    "mish": _simple("mish"),  # x * tanh(softplus(x))
    "hard_swish": _simple("hard_swish"),  # x * relu6(x + 3) / 6
    "sigmoid": _simple("sigmoid"),
    "tanh": _simple("tanh"),
    "linear": _simple("linear"),
}

# Accepted beyond the catalog defaults (no sensible config-wide default to put there).
_EXTRA_PARAMS: dict[str, dict[str, Any]] = {"rrelu": {"seed": None}}

NAMES: tuple[str, ...] = tuple(_FACTORIES)


def resolve(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(type, params)`` of a spec with the catalog defaults filled in; validates both."""
    if isinstance(spec, str):
        kind, given = spec, {}
    elif isinstance(spec, Mapping):
        given = dict(spec)
        kind = given.pop("type", None)
        if not isinstance(kind, str):
            # ValueError throughout: config errors are one kind for callers to catch.
            raise ValueError(f"activation spec needs a string 'type': {dict(spec)!r}")
    else:
        raise ValueError(f"activation spec must be a name or a dict, got {spec!r}")
    if kind not in _FACTORIES:
        raise ValueError(f"unknown activation {kind!r}; valid: {', '.join(sorted(NAMES))}")
    defaults = {**catalog.ACTIVATIONS[kind], **_EXTRA_PARAMS.get(kind, {})}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "none"
        raise ValueError(f"activation {kind!r}: unknown param(s) {unknown}; valid: {valid}")
    return kind, {**defaults, **given}


def get(spec: str | Mapping[str, Any], *, name: str | None = None) -> keras.layers.Layer:
    """A fresh activation layer for ``spec`` (a name or ``{"type": name, **params}``).

    Raises ``ValueError`` for an unknown type (listing the valid ones) or an unknown param.
    """
    kind, params = resolve(spec)
    return _FACTORIES[kind](name_=name, **params)
