"""Model zoo: ``build_model(name, input_shape, num_classes, ...)`` -> a Keras model of logits.

Models use keras.layers / keras.ops / keras.random only (never TensorFlow directly), so they build
on every Keras backend; ``tests/test_no_tensorflow_import.py`` enforces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from cnnablate import catalog
from cnnablate.models import all_cnn, mobilenet_v2, nin
from cnnablate.models.layers import ActivationSpec, InitSpec, check_norm

BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "mobilenet_v2": mobilenet_v2.build,
    "all_cnn_c": all_cnn.build,
    "nin": nin.build,
}
assert set(BUILDERS) == set(catalog.MODELS), "models registry out of step with catalog.MODELS"


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    activation: ActivationSpec = "relu",
    norm: str = "before",
    init: InitSpec = "auto",
    width: float = 1.0,
    **model_params: Any,
) -> keras.Model:
    """Build zoo model ``name``; it outputs logits (no softmax).

    ``activation``, ``norm`` (``before``/``after``/``none``) and ``init`` apply to every
    conv/activation pair; ``width`` scales channels; ``model_params`` go to the model's builder
    (``dropout`` for all_cnn_c/nin; ``include_top``, ``bn_momentum`` for mobilenet_v2).
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(BUILDERS)}")
    check_norm(norm)
    if num_classes is None and name != "mobilenet_v2":
        raise ValueError(f"{name} needs num_classes (its classifier is a conv)")
    return BUILDERS[name](
        tuple(input_shape), num_classes, activation=activation, norm=norm, init=init,
        width=width, **model_params,
    )
