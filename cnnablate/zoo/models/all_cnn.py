"""All-CNN-C (Springenberg et al. 2014, "Striving for Simplicity", Table 2, model C).

Pooling is replaced by stride-2 3x3 convs. 1,369,738 parameters at 32x32x3, 10 classes,
width 1.0, ``norm="none"`` (conv biases on). Deviation from the paper, on purpose: the final 1x1
conv to ``num_classes`` is linear (no activation, no BN) because the model outputs logits for a
``from_logits=True`` loss; the paper applies ReLU before global averaging and softmax.
"""

from __future__ import annotations

import keras

from cnnablate.zoo.models.layers import (
    ActivationSpec,
    InitSpec,
    classifier_conv,
    conv_norm_act,
    scale,
)

# (channels, kernel, stride, padding) of the eight conv -> act units, before the classifier.
LAYERS: tuple[tuple[int, int, int, str], ...] = (
    (96, 3, 1, "same"),
    (96, 3, 1, "same"),
    (96, 3, 2, "same"),
    (192, 3, 1, "same"),
    (192, 3, 1, "same"),
    (192, 3, 2, "same"),
    (192, 3, 1, "valid"),
    (192, 1, 1, "same"),
)


def build(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    activation: ActivationSpec = "relu",
    norm: str = "none",
    init: InitSpec = "auto",
    width: float = 1.0,
    dropout: bool = True,
    bn_momentum: float = 0.99,
) -> keras.Model:
    """All-CNN-C with logits out; ``width`` scales the 96/192 channels; ``dropout`` toggles the
    paper's 0.2 input dropout and 0.5 dropout after each stride-2 conv; ``bn_momentum`` is
    BatchNorm's moving-average momentum (lower it for short runs)."""
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = keras.layers.Dropout(0.2, name="input_dropout")(inputs) if dropout else inputs
    for i, (channels, kernel, stride, padding) in enumerate(LAYERS, start=1):
        x = conv_norm_act(x, scale(channels, width), kernel, strides=stride, padding=padding,
                          name=f"conv{i}_conv", activation=activation, norm=norm, init=init,
                          bn_momentum=bn_momentum)
        if stride == 2 and dropout:
            x = keras.layers.Dropout(0.5, name=f"conv{i}_dropout")(x)
    x = classifier_conv(x, num_classes, init=init, activation=activation)
    # float32 logits even under a mixed-precision policy (a stable from_logits loss).
    x = keras.layers.GlobalAveragePooling2D(name="logits", dtype="float32")(x)
    return keras.Model(inputs, x, name="all_cnn_c")
