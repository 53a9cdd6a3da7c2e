"""Activation statistics of a zoo model on one batch (dead units, mean, spread)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

ACT_SUFFIX = "_act"


def activation_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's activation layers, in model order (zoo layers are named ``*_act``)."""
    return [layer for layer in model.layers if layer.name.endswith(ACT_SUFFIX)]


def activation_statistics(model: keras.Model, batch: Any) -> list[dict[str, Any]]:
    """One dict per activation layer, in model order: ``{"layer", "dead_fraction", "mean", "std"}``.

    Definitions, over the outputs of one inference-mode forward pass (``training=False``: BN uses
    its moving statistics, dropout is off, RReLU uses its fixed test slope) of ``batch``:

    * a *unit* is one element of the layer's per-example output, i.e. one ``(h, w, c)`` position
      of a feature map (one feature for 2D outputs);
    * a unit is *dead* on the batch when its output is ``<= 0`` for every example in it (it never
      fires); ``dead_fraction`` is the fraction of the layer's units that are dead. For
      activations with negative outputs (ELU, tanh, ...) this counts units that are never
      positive;
    * ``mean`` and ``std`` are the mean and (population) standard deviation of all output
      elements, over examples, positions and channels.

    All activations come from a single forward pass of a probe model with every activation output
    as an output. Values are plain Python floats.
    """
    layers = activation_layers(model)
    if not layers:
        return []
    probe = keras.Model(model.input, [layer.output for layer in layers])
    outputs = probe(np.asarray(batch, dtype="float32"), training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    stats = []
    for layer, out in zip(layers, outputs, strict=True):
        # float64 accumulation without a float64 copy: a quarter of the time on All-CNN-C.
        values = keras.ops.convert_to_numpy(out)
        dead = np.all(values <= 0, axis=0)
        stats.append({
            "layer": layer.name,
            "dead_fraction": float(dead.mean()),
            "mean": float(values.mean(dtype=np.float64)),
            "std": float(values.std(dtype=np.float64)),
        })
    return stats
