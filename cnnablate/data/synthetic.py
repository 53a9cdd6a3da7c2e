"""Generate small datasets in the exact on-disk formats of the real sources.

Used by the tests and by smoke mode (`--config smoke=true`), which trains on such a stand-in
where a study's real data is absent (`real_data_present`, `prepare_synthetic`), so that every
study file can be checked end to end offline. Nothing here downloads. The encoders are
written independently of the project's decoders (per-record `tobytes` of each channel plane
rather than one vectorised transpose), so a test that round-trips through both checks the
layout, not the code against itself.

Public API (also used by end-to-end smoke tests of study files):

- `make_cifar_archive(path, dataset="cifar10"|"cifar100", n_train=..., n_test=..., seed=0)`
  writes a tar.gz laid out like the official binary archive and returns the expected arrays,
  plus a ready-to-use dataset `spec` (checksum pins for the synthetic file included).
- `cifar_members(...)` / `write_tar(...)` are the two halves, for tests that corrupt a member.
- `encode_cifar_records(images, labels, coarse_labels=None)` is the raw record encoder.
- `make_image_folder(root, classes, per_class, size)` writes PNGs, one sub-folder per class.
- `mock_tfds(num_examples)` wraps `tfds.testing.mock_data` (no files, no network).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from cnnablate.base.layout import META, PREPARED, Layout

CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
CIFAR100_COARSE_NAMES = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
]  # fmt: skip
CIFAR100_FINE_NAMES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]  # fmt: skip

CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR100_DIR = "cifar-100-binary"


def encode_cifar_records(
    images: np.ndarray, labels: np.ndarray, coarse_labels: np.ndarray | None = None
) -> bytes:
    """CIFAR binary records: [coarse label,] label, then the R, G and B planes row-major."""
    out = bytearray()
    for i in range(len(images)):
        if coarse_labels is not None:
            out.append(int(coarse_labels[i]))
        out.append(int(labels[i]))
        for channel in range(3):
            out += np.ascontiguousarray(images[i, :, :, channel]).tobytes()
    return bytes(out)


def _balanced_labels(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    # Every class present (when n allows), in random order: stratified carving then works.
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def _names_file(names: Sequence[str]) -> bytes:
    # The official files end in a blank line; keep that quirk so the reader must handle it.
    return ("\n".join(names) + "\n\n").encode()


def cifar_members(
    dataset: str = "cifar10", n_train: int = 50, n_test: int = 20, seed: int = 0
) -> tuple[dict[str, bytes], dict]:
    """Archive members (name -> bytes) of a synthetic CIFAR binary archive, and expectations.

    Expectations: `train_images`/`test_images` uint8 NHWC, `train_labels`/`test_labels` int64
    (fine labels for cifar100), `train_coarse_labels`/`test_coarse_labels` (cifar100),
    `class_names` (fine for cifar100) and `coarse_class_names` (cifar100).
    """
    rng = np.random.default_rng(seed)
    expected: dict = {}
    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        if dataset == "cifar10":
            labels, coarse = _balanced_labels(rng, n, 10), None
        elif dataset == "cifar100":
            labels = _balanced_labels(rng, n, 100)
            coarse = rng.integers(0, 20, size=n).astype(np.int64)
        else:
            raise ValueError(f"dataset must be cifar10 or cifar100, got {dataset!r}")
        data[split] = (images, labels, coarse)
        expected[f"{split}_images"] = images
        expected[f"{split}_labels"] = labels
        if coarse is not None:
            expected[f"{split}_coarse_labels"] = coarse

    members: dict[str, bytes] = {}
    if dataset == "cifar10":
        # The official archive spreads train over five batches (of 10,000 each).
        images, labels, _ = data["train"]
        for i, idx in enumerate(np.array_split(np.arange(n_train), 5), start=1):
            members[f"{CIFAR10_DIR}/data_batch_{i}.bin"] = encode_cifar_records(
                images[idx], labels[idx]
            )
        members[f"{CIFAR10_DIR}/test_batch.bin"] = encode_cifar_records(*data["test"][:2])
        members[f"{CIFAR10_DIR}/batches.meta.txt"] = _names_file(CIFAR10_NAMES)
        members[f"{CIFAR10_DIR}/readme.html"] = b"<html>synthetic</html>\n"
        expected["class_names"] = list(CIFAR10_NAMES)
    else:
        for split, member in (("train", "train.bin"), ("test", "test.bin")):
            images, labels, coarse = data[split]
            members[f"{CIFAR100_DIR}/{member}"] = encode_cifar_records(images, labels, coarse)
        members[f"{CIFAR100_DIR}/fine_label_names.txt"] = _names_file(CIFAR100_FINE_NAMES)
        members[f"{CIFAR100_DIR}/coarse_label_names.txt"] = _names_file(CIFAR100_COARSE_NAMES)
        expected["class_names"] = list(CIFAR100_FINE_NAMES)
        expected["coarse_class_names"] = list(CIFAR100_COARSE_NAMES)
    return members, expected


def write_tar(
    path: str | Path,
    members: dict[str, bytes],
    symlinks: dict[str, str] | None = None,
    compression: str = "gz",
) -> Path:
    """A tar archive of `members` (name -> bytes, written in order) and `symlinks` (name -> target).

    Names are written verbatim, so `../evil` or `/abs` members can be built for safety tests.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dirs = sorted({str(Path(n).parent) for n in members if "/" in n and not n.startswith("/")})
    with tarfile.open(path, f"w:{compression}" if compression else "w") as tar:
        for d in dirs:
            if ".." in Path(d).parts:
                continue
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
            tar.addfile(info)
    return path


def file_pins(path: str | Path) -> tuple[int, str]:
    """(size, sha256) of a file, to pin a synthetic archive as the loader would."""
    data = Path(path).read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def make_cifar_archive(
    path: str | Path,
    dataset: str = "cifar10",
    n_train: int = 50,
    n_test: int = 20,
    seed: int = 0,
) -> dict:
    """Write a synthetic `cifar-10-binary.tar.gz`-style archive to `path`.

    Returns the expectations of `cifar_members` plus `path`, `size`, `sha256` and `spec`, a
    dataset config for `prepare_dataset` (`source`, `archive` and the synthetic checksum pins).
    """
    members, expected = cifar_members(dataset, n_train=n_train, n_test=n_test, seed=seed)
    path = write_tar(path, members)
    size, sha256 = file_pins(path)
    expected.update(
        path=path,
        size=size,
        sha256=sha256,
        spec={
            "source": f"{dataset}_binary",
            "archive": str(path),
            "expected_size": size,
            "expected_sha256": sha256,
        },
    )
    return expected


def make_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("cat", "dog", "fish"),
    per_class: int | Sequence[int] = 10,
    size: tuple[int, int] | Sequence[tuple[int, int]] = (12, 16),
    channels: int = 3,
    seed: int = 0,
) -> dict:
    """PNG files in `root/<class>/<class>_<i>.png` (lossless, so pixels round-trip exactly).

    `size` is (H, W), or a list of sizes cycled through to make mixed-size folders. Returns
    `root`, `class_names` (sorted, as the loader orders them), `files` and, in loader order
    (sorted class, then sorted file name), `images` uint8 NHWC (when all one size) and `labels`.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = [per_class] * len(classes) if isinstance(per_class, int) else list(per_class)
    sizes = [tuple(size)] if isinstance(size[0], int) else [tuple(s) for s in size]
    written: dict[str, list[tuple[Path, np.ndarray]]] = {}
    k = 0
    for name, count in zip(classes, counts, strict=True):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = []
        for i in range(count):
            h, w = sizes[k % len(sizes)]
            k += 1
            pixels = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
            file = folder / f"{name}_{i:04d}.png"
            Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(file)
            written[name].append((file, pixels))
    class_names = sorted(classes)
    files, images, labels = [], [], []
    for label, name in enumerate(class_names):
        for file, pixels in sorted(written[name], key=lambda item: item[0].name):
            files.append(file)
            images.append(pixels)
            labels.append(label)
    out = {
        "root": root,
        "class_names": class_names,
        "files": files,
        "labels": np.asarray(labels, dtype=np.int64),
        "spec": {"source": "image_folder", "path": str(root)},
    }
    if len({im.shape for im in images}) == 1:
        out["images"] = np.stack(images)
    return out


@contextlib.contextmanager
def mock_tfds(num_examples: int = 8) -> Iterator[None]:
    """Random tfds data for any dataset: no files, no network (always name a split)."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=num_examples):
        yield


# ---- smoke mode's stand-ins for absent real data ---------------------------------------------

# Images per split of a stand-in: enough for smoke mode's stratified splits and one epoch.
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 300, 100
SYNTHETIC_FOLDER_CLASSES = ("class_a", "class_b", "class_c")


def _tfds_data_dir(spec: dict) -> Path:
    import os

    return Path(spec.get("data_dir") or os.environ.get("TFDS_DATA_DIR")
                or Path.home() / "tensorflow_datasets")


def real_data_present(name: str, spec: dict, prepared_root: str | Path = PREPARED) -> bool:
    """Whether dataset `name` can be prepared from local files, without a download.

    Cheap and TensorFlow-free (the Snakefile asks while planning): a prepared folder, the
    archive (the user's `archive:` or an earlier download), the image folder, or a tfds folder
    with a `dataset_info.json` under `data_dir`.
    """
    from cnnablate.data.archive import ARCHIVES

    source = spec.get("source")
    if (Path(prepared_root) / name / META).exists() or source == "sklearn_digits":
        return True
    if source in ARCHIVES:
        archive = spec.get("archive") or Layout().download(ARCHIVES[source]["filename"])
        return Path(archive).is_file()
    if source == "image_folder":
        return Path(spec.get("path", "")).is_dir()
    if source == "tfds":
        base = str(spec.get("name", "")).split(":")[0].split("/")[0]
        folder = _tfds_data_dir(spec) / base
        return base != "" and any(folder.glob("**/dataset_info.json"))
    return False


def prepare_synthetic(name: str, spec: dict, out_dir: str | Path, workdir: str | Path) -> dict:
    """Prepare a SYNTHETIC stand-in for dataset `name` in `out_dir`, as the real one would be.

    The stand-in is written in the source's own format (a CIFAR binary archive, an image folder,
    tfds's mock data with the real dataset's features) and read by the real loader and
    `prepare_dataset`, so smoke mode exercises the same code; its meta.json says
    `"synthetic": true` so the run configs, tables and report can say so.
    """
    from cnnablate.data.archive import ARCHIVES
    from cnnablate.data.prepare import prepare_dataset
    from cnnablate.data.store import write_json_atomic

    workdir = Path(workdir)
    source = spec.get("source")
    stand_in = dict(spec)
    context: contextlib.AbstractContextManager = contextlib.nullcontext()
    if source in ARCHIVES:
        kind = "cifar100" if source == "cifar100_binary" else "cifar10"
        made = make_cifar_archive(workdir / ARCHIVES[source]["filename"], kind,
                                  n_train=SYNTHETIC_TRAIN * (3 if kind == "cifar100" else 1),
                                  n_test=SYNTHETIC_TEST * (3 if kind == "cifar100" else 1))
        stand_in.update(made["spec"])
    elif source == "image_folder":
        made = make_image_folder(workdir / "images", SYNTHETIC_FOLDER_CLASSES, per_class=30,
                                 size=[(40, 30), (70, 52)], channels=int(spec.get("channels", 3)))
        stand_in["path"] = str(made["root"])
    elif source == "tfds":
        context = mock_tfds(num_examples=40)  # per split, at the real 500x500 for beans
    elif source != "sklearn_digits":
        raise ValueError(f"datasets.{name}.source: no synthetic stand-in for {source!r}")
    with context:
        meta = prepare_dataset(name, stand_in, out_dir)
    meta["synthetic"] = True
    meta["spec"] = spec  # the user's, not the stand-in's temporary paths
    write_json_atomic(Path(out_dir) / META, meta)
    return meta
