"""Which Keras backend a run trains with: the config's `train.backend`, else the planning
environment's KERAS_BACKEND, else tensorflow.

Planning resolves it into every run config (`resolve_backend`), so switching backends reruns
exactly the runs concerned, and the job reads it from there (`run_backend`): the job's own
environment never decides. The process set-up each backend needs is cnnablate.training.backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

BACKENDS = ("tensorflow", "jax")
DEFAULT_BACKEND = "tensorflow"


class BackendError(ValueError):
    """A backend cnnablate cannot train with; the message names where it came from."""


def resolve_backend(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The backend of a run: `configured` (the config's train.backend) when set, else the
    environment's KERAS_BACKEND when it names one of BACKENDS, else tensorflow. A
    KERAS_BACKEND naming another backend (torch, numpy) is an error only where it would decide."""
    if configured:
        return configured
    env = (os.environ if environ is None else environ).get("KERAS_BACKEND", "").strip()
    if not env:
        return DEFAULT_BACKEND
    if env not in BACKENDS:
        raise BackendError(
            f"KERAS_BACKEND: {env!r} is not a backend cnnablate trains with "
            f"({', '.join(BACKENDS)}); unset it or set train.backend in the config"
        )
    return env


def run_backend(run: Mapping) -> str:
    """The backend a resolved run config names (runs planned before backends: tensorflow)."""
    return run.get("train", {}).get("backend") or DEFAULT_BACKEND
