"""Resolve an ``init`` spec into a fresh Keras initializer.

``init`` is ``"auto"`` (picked from the activation by :func:`auto_initializer`),
any Keras initializer name (``"he_normal"``, ``"HeNormal"``, ...), or
``{"type": name, "params": {...}}``. Call :func:`get` once per layer: Keras initializers with an
integer (or no) seed return the same values on every call, so sharing one instance would give
equally shaped layers identical weights. The same caveat applies to an explicit ``seed`` param.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cnnablate.base import catalog

if TYPE_CHECKING:
    import keras


def _invalid(detail: str) -> ValueError:
    return ValueError(f"{detail}; valid: {', '.join(catalog.INITIALIZERS)} (or any Keras name)")


def auto_initializer(activation: str | Mapping[str, Any]) -> str:
    """The initializer `init: auto` means for an activation (seed 004's conclusion)."""
    kind = catalog.activation_type(activation)
    if kind == "selu":
        return "lecun_normal"
    if kind in ("sigmoid", "tanh", "linear"):
        return "glorot_uniform"
    return "he_normal"


def get(
    spec: str | Mapping[str, Any] = "auto", activation: str | Mapping[str, Any] = "relu"
) -> keras.initializers.Initializer:
    """A fresh initializer for ``spec``; ``activation`` only matters for ``"auto"``."""
    # Imported here: planning resolves `auto` (auto_initializer) without Keras or TensorFlow.
    import keras

    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"type", "params"})
        if unknown or not isinstance(spec.get("type"), str):
            raise _invalid(f"init dict must be {{'type': name, 'params': {{...}}}}, got {spec!r}")
        name, params = spec["type"], dict(spec.get("params") or {})
    elif isinstance(spec, str):
        name, params = spec, {}
    else:
        raise _invalid(f"init must be a name or a dict, got {spec!r}")
    if name == "auto":
        if params:
            raise ValueError("init 'auto' takes no params")
        name = auto_initializer(activation)
    try:
        return keras.initializers.get({"class_name": name, "config": params} if params else name)
    except (ValueError, TypeError) as err:
        raise _invalid(f"unknown init {name!r} or bad params {params!r} ({err})") from err
