"""A prepared dataset on disk (`results/data/{dataset}/`): its files, and atomic writes.

Training jobs read datasets through this module only, so they do not depend on (and are not
rerun for changes to) the loaders that prepare them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from cnnablate.base.atomic import write_json_atomic  # noqa: F401 - re-exported for its users
from cnnablate.base.layout import META, SPLITS, prepared_files  # noqa: F401 - SPLITS too
from cnnablate.data.splits import SplitArrays


def output_files(out_dir: str | Path) -> dict[str, Path]:
    """Every file `prepare_dataset` writes, keyed `{split}_images` / `{split}_labels` / `meta`."""
    return prepared_files(out_dir)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_prepared(data_dir: str | Path, split: str, mmap: bool = True) -> SplitArrays:
    """A prepared split, memory-mapped so that jobs share the page cache instead of copying."""
    data_dir = Path(data_dir)
    mode = "r" if mmap else None
    files = prepared_files(data_dir)
    images = np.load(files[f"{split}_images"], mmap_mode=mode)
    labels = np.load(files[f"{split}_labels"], mmap_mode=mode)
    return images, labels


def load_meta(data_dir: str | Path) -> dict:
    return json.loads((Path(data_dir) / META).read_text())
