"""The conv -> norm -> activation unit every model is built from.

Naming is systematic so analysis code can find layers by suffix: the conv is named by the caller
(ending ``_conv``, ``_dwconv`` or ``_project``), its BatchNormalization is ``<conv name>_bn`` and
its activation ``<conv name>_act``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from cnnablate.base import catalog
from cnnablate.zoo import activations, initializers

ActivationSpec = str | Mapping[str, Any]
InitSpec = str | Mapping[str, Any]


def check_norm(norm: str) -> None:
    if norm not in catalog.NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(catalog.NORMS)}")


def conv_norm_act(
    x: Any,
    filters: int | None,
    kernel_size: int,
    *,
    name: str,
    activation: ActivationSpec | None,
    norm: str,
    init: InitSpec,
    init_activation: ActivationSpec = "relu",
    strides: int = 1,
    padding: str = "same",
    depthwise: bool = False,
    bn_momentum: float = 0.99,
    bn_epsilon: float = 1e-3,
) -> Any:
    """Conv (or DepthwiseConv when ``depthwise``, ``filters`` then ignored) plus BN and activation.

    ``norm``: ``"before"`` = Conv -> BN -> Act, ``"after"`` = Conv -> Act -> BN, ``"none"`` =
    Conv -> Act. The conv has a bias only with ``"none"`` (a bias before BN is cancelled by BN's
    mean subtraction, and BN's beta replaces it). ``activation=None`` makes a linear unit
    (MobileNetV2's projection): Conv -> BN, or Conv with bias when ``norm == "none"``.
    ``init_activation`` is what ``init: auto`` looks at when this unit itself is linear.
    """
    check_norm(norm)
    use_bias = norm == "none"
    kernel_init = initializers.get(init, activation if activation is not None else init_activation)
    if depthwise:
        conv = keras.layers.DepthwiseConv2D(
            kernel_size, strides=strides, padding=padding, use_bias=use_bias,
            depthwise_initializer=kernel_init, name=name,
        )
    else:
        conv = keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
            kernel_initializer=kernel_init, name=name,
        )

    def bn(t: Any) -> Any:
        return keras.layers.BatchNormalization(
            momentum=bn_momentum, epsilon=bn_epsilon, name=f"{name}_bn"
        )(t)

    def act(t: Any) -> Any:
        return t if activation is None else activations.get(activation, name=f"{name}_act")(t)

    x = conv(x)
    if norm == "before":
        return act(bn(x))
    if norm == "after":
        return bn(act(x)) if activation is not None else bn(x)
    return act(x)


def scale(channels: int, width: float) -> int:
    """Width-scaled channel count: rounded, at least 1."""
    return max(1, round(channels * width))


def classifier_conv(x: Any, num_classes: int, *, init: InitSpec, activation: ActivationSpec) -> Any:
    """The final linear 1x1 conv to class logits (bias, no BN, no activation)."""
    return keras.layers.Conv2D(
        num_classes, 1, kernel_initializer=initializers.get(init, activation),
        name="classifier_conv",
    )(x)
