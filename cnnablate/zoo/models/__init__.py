"""Model zoo: ``build_model(name, input_shape, num_classes, ...)`` -> a Keras model of logits.

Which module builds which model is `cnnablate.base.catalog.MODELS`; the module is imported by
name
when a model is built, so a run imports (and its code fingerprint covers) only its own model's
module and the shared layers. Models use keras.layers / keras.ops / keras.random only (never
TensorFlow directly), so they build on every Keras backend;
``tests/test_no_tensorflow_import.py`` enforces it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnnablate.base import catalog

if TYPE_CHECKING:
    import keras


def builder(name: str) -> Callable[..., keras.Model]:
    """The `build` function of zoo model `name` (its module imported now)."""
    if name not in catalog.MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(catalog.MODELS)}")
    return importlib.import_module(f"cnnablate.zoo.models.{catalog.MODELS[name].module}").build


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    *,
    activation: Any = "relu",
    norm: str = "before",
    init: Any = "auto",
    width: float = 1.0,
    **model_params: Any,
) -> keras.Model:
    """Build zoo model ``name``; it outputs logits (no softmax).

    ``activation``, ``norm`` (``before``/``after``/``none``) and ``init`` apply to every
    conv/activation pair; ``width`` scales channels; ``model_params`` are the model's own
    options (``catalog.MODELS[name].options``: ``dropout`` for all_cnn_c/nin; ``include_top``
    for mobilenet_v2; ``bn_momentum`` for all).
    """
    build = builder(name)
    from cnnablate.zoo.models.layers import check_norm

    check_norm(norm)
    if num_classes is None and name != "mobilenet_v2":
        raise ValueError(f"{name} needs num_classes (its classifier is a conv)")
    return build(
        tuple(input_shape), num_classes, activation=activation, norm=norm, init=init,
        width=width, **model_params,
    )
