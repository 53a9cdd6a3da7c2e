"""Images in one sub-folder per class (e.g. NDSB after a manual Kaggle download).

Class names are the sorted sub-folder names, files are read in sorted order, and the
train/val/test split is a fixed stratified one, so the result is the same on every machine.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cnnablate.data.splits import SplitArrays, stratified_split

_MODES = {1: "L", 3: "RGB"}


def resize_uint8(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HWC uint8 image to (H, W) with PIL's (antialiased) bilinear filter."""
    height, width = int(size[0]), int(size[1])
    if image.shape[:2] == (height, width):
        return image
    channels = image.shape[2]
    pil = Image.fromarray(image[..., 0] if channels == 1 else image)
    out = np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out[..., np.newaxis] if channels == 1 else out


def _image_size(spec: dict) -> tuple[int, int] | None:
    size = spec.get("image_size")
    if size is None:
        return None
    if len(size) != 2 or any(int(s) <= 0 for s in size):
        raise ValueError(f"source image_folder: `image_size` must be [H, W], got {size!r}")
    return int(size[0]), int(size[1])


def _visible_files(folder: Path) -> list[Path]:
    # Hidden files (.DS_Store, editor droppings) are never images; skip them silently.
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def load(spec: dict) -> tuple[dict[str, SplitArrays], list[str], dict]:
    """Loader for `image_folder`: every image under `path/<class>/`, as uint8 NHWC."""
    if not spec.get("path"):
        raise ValueError("source image_folder: `path` (folder with one sub-folder per class)")
    root = Path(spec["path"])
    if not root.is_dir():
        raise FileNotFoundError(f"source image_folder: {root} is not a directory")
    channels = int(spec.get("channels", 3))
    if channels not in _MODES:
        raise ValueError(f"source image_folder: `channels` must be 1 or 3, got {channels}")
    size = _image_size(spec)
    skip_invalid = bool(spec.get("skip_invalid", False))

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"source image_folder: {root} has no class sub-folders")
    images: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[str] = []
    digest = hashlib.sha256()
    first: tuple[Path, tuple[int, ...]] | None = None
    for label, class_dir in enumerate(class_dirs):
        files = _visible_files(class_dir)
        count = 0
        for file in files:
            data = file.read_bytes()
            try:
                with Image.open(io.BytesIO(data)) as pil:
                    array = np.asarray(pil.convert(_MODES[channels]), dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                if skip_invalid:
                    skipped.append(str(file.relative_to(root)))
                    continue
                raise ValueError(
                    f"source image_folder: {file} is not a readable image ({exc}); remove it "
                    "or set `skip_invalid: true`"
                ) from exc
            if channels == 1:
                array = array[..., np.newaxis]
            if size is not None:
                array = resize_uint8(array, size)
            elif first is None:
                first = (file, array.shape)
            elif array.shape != first[1]:
                raise ValueError(
                    f"source image_folder: {file} is {array.shape[1]}x{array.shape[0]} but "
                    f"{first[0]} is {first[1][1]}x{first[1][0]} (WxH); set `image_size: [H, W]` "
                    "to resize every image"
                )
            # Content and location both count: a file moved to another class changes the data.
            digest.update(str(file.relative_to(root).as_posix()).encode() + b"\0")
            digest.update(hashlib.sha256(data).digest())
            images.append(array)
            labels.append(label)
            count += 1
        if count == 0:
            raise ValueError(f"source image_folder: class folder {class_dir} has no images")

    stacked = np.stack(images)
    splits = stratified_split(
        stacked,
        np.asarray(labels, dtype=np.int64),
        fractions={"val": spec.get("val_fraction", 0.1), "test": spec.get("test_fraction", 0.2)},
        seed=spec.get("split_seed", 0),
    )
    extra = {
        "origin": str(root),
        "num_files": len(labels),
        "skipped_files": skipped,
        "checksums": {root.name or str(root): digest.hexdigest()},
    }
    return splits, [d.name for d in class_dirs], extra
