"""Prepare a dataset once, at native resolution, to `results/data/{dataset}/`.

Layout (the paths contract): `{split}_images.npy` (uint8 NHWC), `{split}_labels.npy` (int64)
for split in train/val/test, and `meta.json` (class names, counts, source, checksums).
Every file is written under a temporary name and renamed into place, `meta.json` last, so an
interrupted preparation never leaves a folder that looks complete.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnablate.base import catalog
from cnnablate.base.atomic import atomic_path
from cnnablate.data.splits import SplitArrays, carve_validation
from cnnablate.data.store import SPLITS, output_files, sha256_file, write_json_atomic

Loader = Callable[[dict], tuple[dict[str, SplitArrays], list[str], dict]]


def loader(source: str) -> Loader:
    """The loader of dataset source `source` (`catalog.DATASET_SOURCES`), its module imported
    now: a source's heavy dependencies (tfds, PIL) load only when it is used."""
    entry = catalog.DATASET_SOURCES[source]
    function = getattr(importlib.import_module(f"cnnablate.data.{entry.module}"), entry.loader)
    return lambda spec: function(spec, *entry.args)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)
        fh.flush()
        os.fsync(fh.fileno())


def validate_splits(splits: dict[str, SplitArrays], num_classes: int, name: str) -> None:
    """Refuse arrays that would silently break training later."""
    for split in SPLITS:
        if split not in splits:
            raise ValueError(f"dataset {name!r}: the source produced no {split!r} split")
        images, labels = splits[split]
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"dataset {name!r}: {split} images must be uint8 NHWC, "
                f"got {images.dtype} {images.shape}"
            )
        if len(labels) == 0:
            raise ValueError(
                f"dataset {name!r}: the {split} split is empty (too few images per class for "
                "the split fractions); give the source more data or change val_fraction"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"dataset {name!r}: {split} has {len(images)} images but {len(labels)} labels"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"dataset {name!r}: {split} labels outside [0, {num_classes}) "
                f"(min {labels.min()}, max {labels.max()})"
            )


def prepare_dataset(name: str, spec: dict, out_dir: str | Path) -> dict:
    """Load dataset `name` as `spec` describes and write it to `out_dir`; returns its meta."""
    source = spec.get("source")
    if source not in catalog.DATASET_SOURCES:
        raise ValueError(
            f"datasets.{name}.source: unknown source {source!r}; "
            f"valid: {sorted(catalog.DATASET_SOURCES)}"
        )
    splits, class_names, extra = loader(source)(spec)
    splits = carve_validation(splits, spec.get("val_fraction", 0.1), seed=spec.get("split_seed", 0))
    validate_splits(splits, len(class_names), name)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = output_files(out)
    (files["meta"]).unlink(missing_ok=True)  # not complete until rewritten last
    checksums: dict[str, str] = {}
    counts: dict[str, int] = {}
    for split in SPLITS:
        images, labels = splits[split]
        _atomic_save_npy(files[f"{split}_images"], np.ascontiguousarray(images, dtype=np.uint8))
        _atomic_save_npy(files[f"{split}_labels"], np.asarray(labels, dtype=np.int64))
        counts[split] = int(len(labels))
        for kind in ("images", "labels"):
            checksums[files[f"{split}_{kind}"].name] = sha256_file(files[f"{split}_{kind}"])
    combined = hashlib.sha256("".join(checksums[k] for k in sorted(checksums)).encode()).hexdigest()
    meta = {
        "name": name,
        "source": source,
        "spec": spec,
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "image_shape": list(splits["train"][0].shape[1:]),
        "counts": counts,
        "class_counts": {
            split: np.bincount(splits[split][1], minlength=len(class_names)).tolist()
            for split in SPLITS
        },
        "checksums": checksums,
        "checksum": combined,
        **{k: v for k, v in extra.items() if k not in ("checksums",)},
    }
    if "checksums" in extra:
        meta["source_checksums"] = extra["checksums"]
    write_json_atomic(files["meta"], meta)
    return meta


