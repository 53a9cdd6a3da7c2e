"""`prepare_dataset` end to end with every source, and its all-or-nothing failure behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnablate.base import catalog
from cnnablate.data import archive
from cnnablate.data.prepare import loader, prepare_dataset
from cnnablate.data.store import SPLITS, load_meta, load_prepared, output_files, sha256_file
from cnnablate.data.synthetic import (
    CIFAR10_DIR,
    cifar_members,
    make_cifar_archive,
    make_image_folder,
    mock_tfds,
    write_tar,
)


def _check_written(out_dir, meta):
    """Every file is there, consistent with meta.json and with itself."""
    assert load_meta(out_dir) == json.loads(json.dumps(meta, default=str))
    total = 0
    for split in SPLITS:
        images, labels = load_prepared(out_dir, split)
        assert images.dtype == np.uint8 and images.ndim == 4 and labels.dtype == np.int64
        assert list(images.shape[1:]) == meta["image_shape"]
        assert len(images) == len(labels) == meta["counts"][split]
        assert (
            np.bincount(labels, minlength=meta["num_classes"]).tolist()
            == (meta["class_counts"][split])
        )
        total += len(labels)
    for key, path in output_files(out_dir).items():
        if key != "meta":
            assert meta["checksums"][path.name] == sha256_file(path)
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temp files
    return total


@pytest.mark.parametrize("source", sorted(catalog.DATASET_SOURCES))
def test_every_registered_source_has_its_loader(source):
    assert callable(loader(source))


def test_digits(tmp_path):
    meta = prepare_dataset("digits", {"source": "sklearn_digits"}, tmp_path / "out")
    assert _check_written(tmp_path / "out", meta) == 1797
    assert meta["image_shape"] == [8, 8, 1] and meta["num_classes"] == 10


def test_cifar10_binary(tmp_path):
    fake = make_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", "cifar10", 100, 30)
    out = tmp_path / "out"
    meta = prepare_dataset("cifar10", {**fake["spec"], "val_fraction": 0.2}, out)
    assert _check_written(out, meta) == 130
    assert meta["counts"] == {"train": 80, "val": 20, "test": 30}
    assert meta["class_names"] == fake["class_names"] and meta["image_shape"] == [32, 32, 3]
    assert meta["source_checksums"] == {"cifar-10-binary.tar.gz": fake["sha256"]}
    test_images, test_labels = load_prepared(out, "test")
    np.testing.assert_array_equal(test_images, fake["test_images"])
    np.testing.assert_array_equal(test_labels, fake["test_labels"])
    # train + val is exactly the archive's train set
    images = np.concatenate([load_prepared(out, s)[0] for s in ("train", "val")])
    assert {im.tobytes() for im in images} == {im.tobytes() for im in fake["train_images"]}


@pytest.mark.parametrize(("label", "num_classes"), [("fine", 100), ("coarse", 20)])
def test_cifar100_binary(tmp_path, label, num_classes):
    fake = make_cifar_archive(tmp_path / "c100.tar.gz", "cifar100", 200, 50)
    out = tmp_path / "out"
    meta = prepare_dataset("cifar100", {**fake["spec"], "label": label}, out)
    assert _check_written(out, meta) == 250 and meta["num_classes"] == num_classes
    key = "test_labels" if label == "fine" else "test_coarse_labels"
    np.testing.assert_array_equal(load_prepared(out, "test")[1], fake[key])


def test_image_folder(tmp_path):
    fake = make_image_folder(tmp_path / "ndsb", ("b", "a"), per_class=[10, 20], size=(9, 7))
    out = tmp_path / "out"
    meta = prepare_dataset("ndsb", {**fake["spec"], "channels": 3}, out)
    assert _check_written(out, meta) == 30
    assert meta["class_names"] == ["a", "b"] and meta["image_shape"] == [9, 7, 3]
    assert meta["class_counts"]["test"] == [4, 2]


def test_tfds_beans(tmp_path):
    with mock_tfds(num_examples=4):
        meta = prepare_dataset("beans", {"source": "tfds", "name": "beans"}, tmp_path / "out")
    assert _check_written(tmp_path / "out", meta) == 12
    assert meta["class_names"] == ["angular_leaf_spot", "bean_rust", "healthy"]
    assert meta["image_shape"] == [500, 500, 3] and meta["counts"]["val"] == 4


@pytest.mark.parametrize(("name", "num_classes"), [("cifar10", 10), ("cifar100", 100)])
def test_tfds_cifar_val_is_carved(tmp_path, name, num_classes):
    # Enough examples that stratification leaves every class >= 2 (else val can be empty).
    n = 3 * num_classes
    with mock_tfds(num_examples=n):
        meta = prepare_dataset(name, {"source": "tfds", "name": name}, tmp_path / "out")
    assert _check_written(tmp_path / "out", meta) == 2 * n and meta["num_classes"] == num_classes
    assert meta["counts"]["test"] == n and meta["counts"]["val"] > 0
    assert meta["image_shape"] == [32, 32, 3]


# ---- failures: a clear error, and nothing left in (or even created at) out_dir ----------------


def _cifar_with(tmp_path, mutate):
    members, _ = cifar_members("cifar10", n_train=10, n_test=5)
    symlinks = mutate(members)
    path = write_tar(tmp_path / f"{mutate.__name__}.tar.gz", members, symlinks=symlinks)
    return {"source": "cifar10_binary", "archive": str(path), "verify": False}


def _truncated_member(members):
    name = f"{CIFAR10_DIR}/data_batch_2.bin"
    members[name] = members[name][:-1]


def _dotdot_member(members):
    members["../escape.bin"] = b"x"


def _escaping_symlink(members):
    return {f"{CIFAR10_DIR}/link": "../../../etc/passwd"}


def _failure_specs(tmp_path):
    fake = make_cifar_archive(tmp_path / "good.tar.gz", "cifar10", 10, 5)
    truncated_archive = tmp_path / "truncated.tar.gz"
    truncated_archive.write_bytes(fake["path"].read_bytes()[:-200])
    folder = make_image_folder(tmp_path / "imgs", ("a", "b"), per_class=3)
    (tmp_path / "imgs" / "a" / "readme.txt").write_text("hello")
    return {
        "truncated member": (
            _cifar_with(tmp_path, _truncated_member),
            ValueError,
            "partial record",
        ),
        "truncated archive, pinned": (
            {**fake["spec"], "archive": str(truncated_archive)},
            archive.ChecksumError,
            "expected",
        ),
        "truncated archive, unpinned": (
            {"source": "cifar10_binary", "archive": str(truncated_archive), "verify": False},
            archive.ArchiveReadError,
            "truncated or corrupt",
        ),
        "wrong sha256": (
            {**fake["spec"], "expected_sha256": "f" * 64},
            archive.ChecksumError,
            "sha256",
        ),
        "wrong size": (
            {**fake["spec"], "expected_size": fake["size"] + 1},
            archive.ChecksumError,
            "size",
        ),
        "official pins": (
            {"source": "cifar10_binary", "archive": str(fake["path"])},
            archive.ChecksumError,
            "170,052,171",
        ),
        "dotdot member": (
            _cifar_with(tmp_path, _dotdot_member),
            archive.UnsafeArchiveError,
            "escape.bin",
        ),
        "escaping symlink": (
            _cifar_with(tmp_path, _escaping_symlink),
            archive.UnsafeArchiveError,
            "link",
        ),
        "non-image file": (folder["spec"], ValueError, "readme.txt"),
        "tfds not prepared": (
            {"source": "tfds", "name": "beans", "data_dir": str(tmp_path / "nowhere")},
            RuntimeError,
            "not prepared",
        ),
    }


FAILURES = [
    "truncated member",
    "truncated archive, pinned",
    "truncated archive, unpinned",
    "wrong sha256",
    "wrong size",
    "official pins",
    "dotdot member",
    "escaping symlink",
    "non-image file",
    "tfds not prepared",
]


@pytest.mark.parametrize("case", FAILURES)
def test_failure_leaves_no_output(tmp_path, case):
    spec, error, text = _failure_specs(tmp_path)[case]
    out = tmp_path / "results" / "data" / "x"
    with pytest.raises(error, match=text):
        prepare_dataset("x", spec, out)
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "escape.bin").exists()


@pytest.mark.parametrize("case", ["truncated member", "wrong sha256"])
def test_failure_keeps_previous_complete_output_untouched(tmp_path, case):
    # A failed re-preparation must not damage (or half-replace) an earlier good one.
    out = tmp_path / "out"
    meta = prepare_dataset("digits", {"source": "sklearn_digits"}, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    spec, error, _ = _failure_specs(tmp_path)[case]
    with pytest.raises(error):
        prepare_dataset("x", spec, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert load_meta(out)["checksum"] == meta["checksum"]
