"""MobileNetV2 (Sandler et al. 2018), rebuilt from its block table with swappable blocks.

Layer-for-layer the same as ``keras.applications.MobileNetV2`` (2,257,984 parameters without the
head at width 1.0) when ``activation="relu6"``, ``norm="before"``: stem conv 3x3/2 'same',
block 0 without expand conv, explicit ``correct_pad`` zero padding then a 'valid' depthwise conv
for stride 2, linear projection, residual add only for stride 1 and equal channels, head conv
1x1 to 1280, BN momentum 0.999 / epsilon 1e-3. Only the head differs: Dense outputs logits.
"""

from __future__ import annotations

from typing import Any

import keras

from cnnablate.zoo import initializers
from cnnablate.zoo.models.layers import ActivationSpec, InitSpec, conv_norm_act

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round to a multiple of ``divisor``, never more than 10% down (as the reference code)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _correct_pad(x: Any, kernel_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """keras.applications' correct_pad: TF-'same'-like padding for a stride-2 'valid' conv,
    computed from the actual (static) spatial shape so any input size works."""
    rows, cols = x.shape[1], x.shape[2]
    adjust = (1, 1) if rows is None or cols is None else (1 - rows % 2, 1 - cols % 2)
    half = kernel_size // 2
    return ((half - adjust[0], half), (half - adjust[1], half))


def _inverted_res_block(
    x: Any, *, expansion: int, filters: int, stride: int, block_id: int, width: float,
    activation: ActivationSpec, norm: str, init: InitSpec, bn_momentum: float,
) -> Any:
    unit = {"norm": norm, "init": init, "bn_momentum": bn_momentum}
    in_channels = x.shape[-1]
    out_channels = _make_divisible(int(filters * width), 8)
    prefix = f"block_{block_id}"
    inputs = x
    if block_id:  # block 0 has expansion 1 and no expand conv
        x = conv_norm_act(x, expansion * in_channels, 1, name=f"{prefix}_expand_conv",
                          activation=activation, **unit)
    padding = "same"
    if stride == 2:
        x = keras.layers.ZeroPadding2D(_correct_pad(x, 3), name=f"{prefix}_pad")(x)
        padding = "valid"
    x = conv_norm_act(x, None, 3, name=f"{prefix}_dwconv", strides=stride, padding=padding,
                      depthwise=True, activation=activation, **unit)
    x = conv_norm_act(x, out_channels, 1, name=f"{prefix}_project", activation=None,
                      init_activation=activation, **unit)
    if in_channels == out_channels and stride == 1:
        x = keras.layers.Add(name=f"{prefix}_add")([inputs, x])
    return x


def build(
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    activation: ActivationSpec = "relu6",
    norm: str = "before",
    init: InitSpec = "auto",
    width: float = 1.0,
    include_top: bool = True,
    bn_momentum: float = 0.999,
) -> keras.Model:
    """MobileNetV2 with width multiplier ``width`` (the paper's alpha); logits out.

    ``num_classes=None`` or ``include_top=False`` stops after the head conv (no pooling/Dense),
    like ``keras.applications.MobileNetV2(include_top=False)``.
    """
    unit = {"activation": activation, "norm": norm, "init": init, "bn_momentum": bn_momentum}
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = conv_norm_act(inputs, _make_divisible(32 * width, 8), 3, strides=2, name="stem_conv",
                      **unit)
    block_id = 0
    for t, c, n, s in BLOCKS:
        for i in range(n):
            x = _inverted_res_block(x, expansion=t, filters=c, stride=s if i == 0 else 1,
                                    block_id=block_id, width=width, **unit)
            block_id += 1
    last = _make_divisible(1280 * width, 8) if width > 1.0 else 1280
    x = conv_norm_act(x, last, 1, name="head_conv", **unit)
    if include_top and num_classes is not None:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # float32 logits even under a mixed-precision policy (a stable from_logits loss).
        x = keras.layers.Dense(num_classes, kernel_initializer=initializers.get(init, activation),
                               name="logits", dtype="float32")(x)
    return keras.Model(inputs, x, name="mobilenet_v2")
