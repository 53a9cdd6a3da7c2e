"""Write a file so that readers see the old version or the complete new one, never a part.

Every output a job or a concurrent job may read is written under a temporary name beside it and
renamed into place (`os.replace` is atomic on one file system); a crash leaves only a hidden
temporary file, which the next write replaces.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed onto `path` when the block ends
    without an error and removed when it raises. The name is per process (concurrent writers
    never share one) and ends like `path` (`model.save` and `np.savez` go by the suffix)."""
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """JSON, indented and with sorted keys (stable, diff-friendly), written atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
