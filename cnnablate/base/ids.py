"""A run's identity and the hash of a resolved config: the keys every stage finds a run by."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def run_id(run: Mapping) -> tuple[str, str, int]:
    return run["study"], run["variant"], int(run["seed"])


def config_hash(payload: Any) -> str:
    """A short stable hash of a JSON-able value (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
