"""The CIFAR binary reader: record layout, validation errors and the archive loader."""

from __future__ import annotations

import numpy as np
import pytest

from cnnablate.data import archive, cifar_binary
from cnnablate.data.synthetic import (
    CIFAR10_DIR,
    CIFAR100_DIR,
    cifar_members,
    encode_cifar_records,
    make_cifar_archive,
    write_tar,
)


def _record(labels: list[int], r: np.ndarray, g: np.ndarray, b: np.ndarray) -> bytes:
    return bytes(labels) + r.tobytes() + g.tobytes() + b.tobytes()


def test_layout_cifar10_planes_are_rgb_row_major():
    # Hand-built record, independent of any encoder: each plane holds distinct values.
    r = np.arange(1024, dtype=np.uint16).astype(np.uint8)  # r[y*32+x] = (y*32+x) % 256
    g = np.full(1024, 7, np.uint8)
    b = (255 - np.arange(1024) % 256).astype(np.uint8)
    out = cifar_binary.parse(_record([3], r, g, b), "cifar10")
    assert out["image"].shape == (1, 32, 32, 3) and out["image"].dtype == np.uint8
    assert out["label"].tolist() == [3] and out["label"].dtype == np.int64
    y, x = 5, 9
    assert out["image"][0, y, x].tolist() == [(y * 32 + x) % 256, 7, 255 - (y * 32 + x) % 256]
    assert out["image"].flags.c_contiguous and out["image"].flags.writeable


def test_layout_cifar100_coarse_byte_comes_first():
    pixels = np.zeros(1024, np.uint8)
    out = cifar_binary.parse(_record([7, 42], pixels, pixels, pixels), "cifar100")
    assert out["label"].tolist() == [42]  # fine, as tfds names it
    assert out["coarse_label"].tolist() == [7]


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_parse_round_trips_encoder(dataset):
    rng = np.random.default_rng(1)
    n = 37  # not a multiple of the block size, and more than one block below
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n)
    coarse = rng.integers(0, 20, size=n) if dataset == "cifar100" else None
    out = cifar_binary.parse(encode_cifar_records(images, labels, coarse), dataset)
    np.testing.assert_array_equal(out["image"], images)
    np.testing.assert_array_equal(out["label"], labels)
    if coarse is not None:
        np.testing.assert_array_equal(out["coarse_label"], coarse)


def test_parse_spans_several_blocks(monkeypatch):
    monkeypatch.setattr(cifar_binary, "_BLOCK", 4)
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8)
    out = cifar_binary.parse(encode_cifar_records(images, np.arange(10)), "cifar10")
    np.testing.assert_array_equal(out["image"], images)


def test_parse_empty_buffer():
    out = cifar_binary.parse(b"", "cifar100")
    assert out["image"].shape == (0, 32, 32, 3) and out["label"].shape == (0,)


def test_partial_record_names_source_and_offset():
    data = encode_cifar_records(np.zeros((3, 32, 32, 3), np.uint8), [1, 2, 3])[:-5]
    with pytest.raises(ValueError, match=r"batch\.bin.*partial record at byte offset 6,146"):
        cifar_binary.parse(data, "cifar10", source_name="batch.bin")


@pytest.mark.parametrize(
    ("dataset", "labels", "bad_record", "offset", "what"),
    [
        ("cifar10", [[1], [9], [10]], 2, 2 * 3073, "label 10"),
        ("cifar100", [[0, 0], [20, 5]], 1, 3074, "coarse_label 20"),
        ("cifar100", [[0, 0], [1, 1], [3, 100]], 2, 2 * 3074 + 1, "label 100"),
    ],
)
def test_label_out_of_range_names_offset(dataset, labels, bad_record, offset, what):
    pixels = np.zeros(1024, np.uint8)
    data = b"".join(_record(lab, pixels, pixels, pixels) for lab in labels)
    with pytest.raises(ValueError) as err:
        cifar_binary.parse(data, dataset, source_name="x.bin")
    message = str(err.value)
    assert "x.bin" in message and f"record {bad_record}" in message
    assert f"byte offset {offset:,}" in message and what in message


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown CIFAR dataset"):
        cifar_binary.parse(b"", "cifar1000")


def test_read_file(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    path = tmp_path / "train.bin"
    path.write_bytes(encode_cifar_records(images, [5, 6, 7, 8], [1, 2, 3, 4]))
    out = cifar_binary.read(path, "cifar100")
    np.testing.assert_array_equal(out["image"], images)
    assert out["label"].tolist() == [5, 6, 7, 8] and out["coarse_label"].tolist() == [1, 2, 3, 4]


def test_read_errors_and_empty_file(tmp_path):
    path = tmp_path / "test.bin"
    path.write_bytes(encode_cifar_records(np.zeros((2, 32, 32, 3), np.uint8), [1, 2])[:-1])
    with pytest.raises(ValueError, match=r"test\.bin.*partial record at byte offset 3,073"):
        cifar_binary.read(path, "cifar10")
    path.write_bytes(b"")
    assert cifar_binary.read(path, "cifar10")["image"].shape == (0, 32, 32, 3)
    with pytest.raises(FileNotFoundError):
        cifar_binary.read(tmp_path / "missing.bin", "cifar10")


def test_load_cifar10_archive(tmp_path):
    fake = make_cifar_archive(tmp_path / "c10.tar.gz", "cifar10", n_train=23, n_test=7)
    splits, names, extra = cifar_binary.load(fake["spec"], "cifar10")
    assert set(splits) == {"train", "test"}
    np.testing.assert_array_equal(splits["train"][0], fake["train_images"])
    np.testing.assert_array_equal(splits["train"][1], fake["train_labels"])
    np.testing.assert_array_equal(splits["test"][0], fake["test_images"])
    np.testing.assert_array_equal(splits["test"][1], fake["test_labels"])
    assert names == fake["class_names"] and names[0] == "airplane"
    assert extra["checksums"] == {"c10.tar.gz": fake["sha256"]}


@pytest.mark.parametrize("label", ["fine", "coarse"])
def test_load_cifar100_archive(tmp_path, label):
    fake = make_cifar_archive(tmp_path / "c100.tar.gz", "cifar100", n_train=30, n_test=10)
    splits, names, _ = cifar_binary.load({**fake["spec"], "label": label}, "cifar100")
    key = "labels" if label == "fine" else "coarse_labels"
    np.testing.assert_array_equal(splits["train"][1], fake[f"train_{key}"])
    np.testing.assert_array_equal(splits["test"][1], fake[f"test_{key}"])
    np.testing.assert_array_equal(splits["test"][0], fake["test_images"])
    expected = fake["class_names"] if label == "fine" else fake["coarse_class_names"]
    assert names == expected and len(names) == (100 if label == "fine" else 20)


def test_official_pins_reject_synthetic_archive(tmp_path):
    fake = make_cifar_archive(tmp_path / "c10.tar.gz", "cifar10", n_train=5, n_test=5)
    spec = {"source": "cifar10_binary", "archive": str(fake["path"])}
    with pytest.raises(archive.ChecksumError) as err:
        cifar_binary.load(spec, "cifar10")
    assert "c10.tar.gz" in str(err.value) and "170,052,171" in str(err.value)
    # verify: false skips the pins but still records what was read
    _, _, extra = cifar_binary.load({**spec, "verify": False}, "cifar10")
    assert extra["checksums"]["c10.tar.gz"] == fake["sha256"]


def test_wrong_sha256_pin(tmp_path):
    fake = make_cifar_archive(tmp_path / "c10.tar.gz", "cifar10", n_train=5, n_test=5)
    with pytest.raises(archive.ChecksumError, match="sha256 is .* expected 0{64}"):
        cifar_binary.load({**fake["spec"], "expected_sha256": "0" * 64}, "cifar10")


def test_truncated_member_names_member_and_offset(tmp_path):
    members, _ = cifar_members("cifar100", n_train=3, n_test=2)
    name = f"{CIFAR100_DIR}/train.bin"
    members[name] = members[name][:-10]
    path = write_tar(tmp_path / "c100.tar.gz", members)
    with pytest.raises(ValueError, match=rf"{name}.*partial record at byte offset 6,148"):
        cifar_binary.load({"archive": str(path), "verify": False}, "cifar100")


def test_missing_member(tmp_path):
    members, _ = cifar_members("cifar10", n_train=5, n_test=2)
    del members[f"{CIFAR10_DIR}/data_batch_4.bin"]
    path = write_tar(tmp_path / "c10.tar.gz", members)
    with pytest.raises(archive.ArchiveReadError, match="data_batch_4.bin"):
        cifar_binary.load({"archive": str(path), "verify": False}, "cifar10")


def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="`archive`"):
        cifar_binary.load({}, "cifar10")
    with pytest.raises(ValueError, match="fine or coarse"):
        cifar_binary.load({"archive": "x", "label": "medium"}, "cifar100")
    with pytest.raises(FileNotFoundError, match="nope.tar.gz"):
        cifar_binary.load({"archive": str(tmp_path / "nope.tar.gz")}, "cifar10")
