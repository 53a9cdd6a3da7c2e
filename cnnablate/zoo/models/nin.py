"""Network in Network (Lin et al. 2013), the CIFAR-10 variant.

Source: the authors' Caffe CIFAR-10 model (``cifar10_deploy.prototxt`` / ``train_val.prototxt``
of the NIN model-zoo release), the network Xu et al. 2015 used to compare rectified activations:
three mlpconv blocks (a spatial conv followed by two 1x1 "cccp" convs), 3x3/2 max pooling after
block 1 and 3x3/2 average pooling after block 2, each followed by dropout 0.5, then global
average pooling. Caffe pools with ceil rounding; 'same' pooling gives the same 32->16->8 sizes.
Deviation: the last 1x1 conv to ``num_classes`` is linear (Caffe has a ReLU there) because the
model outputs logits for a ``from_logits=True`` loss.
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

# Per block: (kernel, channels) of the three convs and the pooling after it (None: none).
BLOCKS: tuple[tuple[tuple[tuple[int, int], ...], str | None], ...] = (
    (((5, 192), (1, 160), (1, 96)), "max"),
    (((5, 192), (1, 192), (1, 192)), "avg"),
    (((3, 192), (1, 192)), None),  # + the linear 1x1 classifier conv
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
    """NIN with logits out; ``width`` scales all hidden channels; ``bn_momentum`` is
    BatchNorm's moving-average momentum (lower it for short runs)."""
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for b, (convs, pool) in enumerate(BLOCKS, start=1):
        for i, (kernel, channels) in enumerate(convs, start=1):
            x = conv_norm_act(x, scale(channels, width), kernel, name=f"mlp{b}_{i}_conv",
                              activation=activation, norm=norm, init=init,
                              bn_momentum=bn_momentum)
        if pool is not None:
            pool_cls = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
            x = pool_cls[pool](3, strides=2, padding="same", name=f"mlp{b}_pool")(x)
            if dropout:
                x = keras.layers.Dropout(0.5, name=f"mlp{b}_dropout")(x)
    x = classifier_conv(x, num_classes, init=init, activation=activation)
    # float32 logits even under a mixed-precision policy (a stable from_logits loss).
    x = keras.layers.GlobalAveragePooling2D(name="logits", dtype="float32")(x)
    return keras.Model(inputs, x, name="nin")
