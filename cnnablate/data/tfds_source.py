"""Any TensorFlow Datasets image-classification dataset, as uint8 NHWC numpy arrays.

tfds is imported inside the functions: planning (`snakemake -n`) imports the data layer and
must not pay for TensorFlow. Offline, `tfds.load(download=True)` retries for minutes before
failing, so this module checks first and fails within a second with instructions instead.
"""

from __future__ import annotations

import socket

import numpy as np

from cnnablate.data.image_folder import resize_uint8
from cnnablate.data.splits import SplitArrays

# our split -> tfds split; datasets not listed use {train, test} and prepare carves val.
DEFAULT_SPLITS: dict[str, dict[str, str]] = {
    "beans": {"train": "train", "val": "validation", "test": "test"},
}
_TRAIN_TEST = {"train": "train", "test": "test"}

# Where each dataset's files come from, for the quick connectivity probe before downloading.
DOWNLOAD_HOSTS: dict[str, str] = {
    "beans": "storage.googleapis.com",
    "cifar10": "www.cs.toronto.edu",
    "cifar100": "www.cs.toronto.edu",
}
_DEFAULT_HOST = "storage.googleapis.com"
_PROBE_TIMEOUT_S = 3.0
_BATCH = 256


class DatasetNotPreparedError(RuntimeError):
    """The tfds dataset is not in `data_dir` and may not (or cannot) be downloaded."""


def _base_name(name: str) -> str:
    # "cifar100:3.0.2" or "beans/config" -> "cifar100" / "beans"
    return name.split(":")[0].split("/")[0]


def not_prepared_message(name: str, data_dir: str | None, reason: str) -> str:
    where = data_dir or "the tfds default data_dir (~/tensorflow_datasets, or $TFDS_DATA_DIR)"
    dir_arg = repr(data_dir) if data_dir else "None"
    return (
        f"tfds dataset {name!r} is not prepared in {where} ({reason}). On a machine with "
        "internet access, pre-download it with\n"
        f"    python -c \"import tensorflow_datasets as tfds; tfds.load('{name}', "
        f'data_dir={dir_arg})"\n'
        f"or `tfds build {_base_name(name)}"
        + (f" --data_dir {data_dir}" if data_dir else "")
        + "`, then copy that folder here; or point the dataset's `data_dir` at an existing "
        "copy (download stays false)."
    )


def check_online(host: str, timeout: float = _PROBE_TIMEOUT_S) -> None:
    """Raise OSError quickly when `host:443` cannot be reached."""
    with socket.create_connection((host, 443), timeout=timeout):
        pass


def _to_numpy(ds, image_key: str, label_key: str, resize, static_shape: bool, where: str):
    import tensorflow_datasets as tfds

    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    if static_shape and resize is None:
        # Fixed-size images batch cleanly, which is ~50x faster than one example at a time.
        for batch in tfds.as_numpy(ds.batch(_BATCH)):
            images.append(np.asarray(batch[image_key], dtype=np.uint8))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        if not images:
            raise ValueError(f"{where}: the split is empty")
        return np.concatenate(images), np.concatenate(labels)
    first_shape = None
    for example in tfds.as_numpy(ds):
        image = np.asarray(example[image_key], dtype=np.uint8)
        if resize is not None:
            image = resize_uint8(image, resize)
        elif first_shape is None:
            first_shape = image.shape
        elif image.shape != first_shape:
            raise ValueError(
                f"{where}: images differ in size ({first_shape} then {image.shape}); "
                "set `resize: [H, W]` for this dataset"
            )
        images.append(image)
        labels.append(np.asarray(example[label_key], dtype=np.int64))
    if not images:
        raise ValueError(f"{where}: the split is empty")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def load(spec: dict) -> tuple[dict[str, SplitArrays], list[str], dict]:
    """Loader for `tfds`: the configured splits of `spec["name"]` via `builder.as_dataset`."""
    name = spec.get("name")
    if not name:
        raise ValueError("source tfds: `name` (the tfds dataset name, e.g. beans) is required")
    data_dir = spec.get("data_dir")
    download = bool(spec.get("download", False))
    split_map = dict(spec.get("splits") or DEFAULT_SPLITS.get(_base_name(name), _TRAIN_TEST))
    image_key = spec.get("image_key", "image")
    label_key = spec.get("label_key", "label")
    resize = spec.get("resize")
    if resize is not None and (len(resize) != 2 or any(int(s) <= 0 for s in resize)):
        raise ValueError(f"source tfds: `resize` must be [H, W], got {resize!r}")
    if "train" not in split_map:
        raise ValueError(f"source tfds: `splits` must map `train`, got {split_map}")

    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    # Probe only when something must be fetched: an offline machine with the data prepared
    # must not fail because the download host is unreachable.
    if download and not builder.is_prepared():
        host = spec.get("probe_host") or DOWNLOAD_HOSTS.get(_base_name(name), _DEFAULT_HOST)
        try:
            check_online(host)
        except OSError as exc:
            raise DatasetNotPreparedError(
                not_prepared_message(
                    name, data_dir, f"download: true but {host} is unreachable: {exc}"
                )
            ) from exc
        builder.download_and_prepare()
    features = builder.info.features
    if image_key not in features or label_key not in features:
        raise ValueError(
            f"source tfds: {name!r} has features {sorted(features.keys())}; set `image_key`/"
            "`label_key`"
        )
    class_names = list(getattr(features[label_key], "names", None) or [])
    if not class_names:
        raise ValueError(f"source tfds: {name!r} feature {label_key!r} is not a ClassLabel")
    shape = features[image_key].shape
    static_shape = shape is not None and all(d is not None for d in shape)

    splits: dict[str, SplitArrays] = {}
    for ours, theirs in split_map.items():
        try:
            ds = builder.as_dataset(split=theirs, shuffle_files=False)
        except AssertionError as exc:
            # tfds signals "not downloaded" with an AssertionError ("could not find data").
            raise DatasetNotPreparedError(
                not_prepared_message(name, data_dir, "download: false")
            ) from exc
        splits[ours] = _to_numpy(
            ds, image_key, label_key, resize, static_shape, f"tfds {name} {theirs}"
        )
    extra = {
        "origin": f"tfds:{name}",
        "tfds_version": str(builder.version),
        "tfds_splits": split_map,
    }
    return splits, class_names, extra
