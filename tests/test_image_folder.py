"""The image_folder source: one sub-folder per class, read with PIL."""

from __future__ import annotations

import numpy as np
import pytest

from cnnablate.data import image_folder
from cnnablate.data.synthetic import make_image_folder


def _all(splits):
    images = np.concatenate([splits[s][0] for s in ("train", "val", "test")])
    labels = np.concatenate([splits[s][1] for s in ("train", "val", "test")])
    return images, labels


def _sorted_rows(images):
    flat = images.reshape(len(images), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_round_trip_pixels_labels_and_splits(tmp_path):
    fake = make_image_folder(tmp_path / "root", ("zebra", "ant", "moth"), per_class=10, size=(6, 9))
    splits, names, extra = image_folder.load(fake["spec"])
    assert names == ["ant", "moth", "zebra"] == fake["class_names"]
    assert [len(splits[s][1]) for s in ("train", "val", "test")] == [21, 3, 6]
    for s in ("train", "val", "test"):
        assert (
            np.bincount(splits[s][1], minlength=3).tolist()
            == [{"train": 7, "val": 1, "test": 2}[s]] * 3
        )  # stratified
        assert splits[s][0].dtype == np.uint8 and splits[s][0].shape[1:] == (6, 9, 3)
        assert splits[s][1].dtype == np.int64
    images, labels = _all(splits)
    np.testing.assert_array_equal(_sorted_rows(images), _sorted_rows(fake["images"]))
    assert sorted(labels.tolist()) == sorted(fake["labels"].tolist())
    assert extra["num_files"] == 30 and len(next(iter(extra["checksums"].values()))) == 64
    # deterministic, and a fixed pairing of image and label
    again, _, _ = image_folder.load(fake["spec"])
    for s in splits:
        np.testing.assert_array_equal(again[s][0], splits[s][0])
    by_pixels = {im.tobytes(): lab for im, lab in zip(fake["images"], fake["labels"], strict=True)}
    assert all(by_pixels[im.tobytes()] == lab for im, lab in zip(images, labels, strict=True))


def test_grayscale(tmp_path):
    fake = make_image_folder(tmp_path, ("a", "b"), per_class=5, size=(8, 8), channels=1)
    splits, _, _ = image_folder.load({**fake["spec"], "channels": 1})
    assert splits["train"][0].shape[1:] == (8, 8, 1)
    images, _ = _all(splits)
    np.testing.assert_array_equal(_sorted_rows(images), _sorted_rows(fake["images"]))


def test_rgb_from_grayscale_files(tmp_path):
    fake = make_image_folder(tmp_path, ("a", "b"), per_class=5, size=(8, 8), channels=1)
    splits, _, _ = image_folder.load(fake["spec"])  # channels default 3
    image = splits["train"][0][0]
    assert image.shape == (8, 8, 3) and (image[..., 0] == image[..., 2]).all()


def test_mixed_sizes_need_image_size(tmp_path):
    fake = make_image_folder(tmp_path, ("a", "b"), per_class=4, size=[(8, 8), (10, 6)])
    with pytest.raises(ValueError, match=r"a_0001\.png is 6x10 .*image_size"):
        image_folder.load(fake["spec"])
    splits, _, _ = image_folder.load({**fake["spec"], "image_size": [5, 7]})
    assert all(splits[s][0].shape[1:] == (5, 7, 3) for s in splits)


def test_non_image_file_is_named(tmp_path):
    fake = make_image_folder(tmp_path, ("a", "b"), per_class=4)
    bad = tmp_path / "b" / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"b/notes\.txt is not a readable image.*skip_invalid"):
        image_folder.load(fake["spec"])
    splits, _, extra = image_folder.load({**fake["spec"], "skip_invalid": True})
    assert extra["skipped_files"] == ["b/notes.txt"]
    assert sum(len(splits[s][1]) for s in splits) == 8


def test_truncated_image_is_named(tmp_path):
    fake = make_image_folder(tmp_path, ("a", "b"), per_class=4, size=(40, 40))
    victim = fake["files"][5]
    victim.write_bytes(victim.read_bytes()[:60])
    with pytest.raises(ValueError, match=victim.name):
        image_folder.load(fake["spec"])


def test_hidden_files_ignored(tmp_path):
    fake = make_image_folder(tmp_path, ("a", "b"), per_class=4)
    (tmp_path / "a" / ".DS_Store").write_bytes(b"\0junk")
    (tmp_path / ".cache").mkdir()
    splits, names, _ = image_folder.load(fake["spec"])
    assert names == ["a", "b"] and sum(len(splits[s][1]) for s in splits) == 8


def test_empty_class_and_empty_root(tmp_path):
    fake = make_image_folder(tmp_path / "r", ("a", "b"), per_class=3)
    (tmp_path / "r" / "c").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*/c has no images"):
        image_folder.load(fake["spec"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        image_folder.load({"path": str(tmp_path / "empty")})
    with pytest.raises(FileNotFoundError, match="not a directory"):
        image_folder.load({"path": str(tmp_path / "missing")})


def test_bad_options(tmp_path):
    fake = make_image_folder(tmp_path, ("a",), per_class=2)
    with pytest.raises(ValueError, match="channels"):
        image_folder.load({**fake["spec"], "channels": 4})
    with pytest.raises(ValueError, match="image_size"):
        image_folder.load({**fake["spec"], "image_size": [8]})
