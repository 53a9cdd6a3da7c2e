"""The tfds source, under `tfds.testing.mock_data` (no files, no network).

Under the mock a load without a split returns nothing useful and split names are not checked,
so every call here names its splits explicitly (the loader always does).
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from cnnablate.data import tfds_source
from cnnablate.data.synthetic import mock_tfds

pytest.importorskip("tensorflow_datasets")


def test_beans_has_three_splits_and_real_names():
    with mock_tfds(num_examples=3):
        splits, names, extra = tfds_source.load({"name": "beans"})
    assert names == ["angular_leaf_spot", "bean_rust", "healthy"]
    assert set(splits) == {"train", "val", "test"}
    for images, labels in splits.values():
        assert images.shape == (3, 500, 500, 3) and images.dtype == np.uint8
        assert labels.dtype == np.int64 and ((labels >= 0) & (labels < 3)).all()
    assert extra["tfds_splits"] == {"train": "train", "val": "validation", "test": "test"}


def test_cifar10_train_test_only():
    with mock_tfds(num_examples=5):
        splits, names, _ = tfds_source.load({"name": "cifar10"})
    assert set(splits) == {"train", "test"} and len(names) == 10
    assert splits["train"][0].shape == (5, 32, 32, 3)


def test_cifar100_coarse_label_key_and_explicit_splits():
    spec = {"name": "cifar100", "label_key": "coarse_label", "splits": {"train": "train[:50%]"}}
    with mock_tfds(num_examples=4):
        splits, names, _ = tfds_source.load(spec)
    assert set(splits) == {"train"} and len(names) == 20
    assert splits["train"][1].max() < 20


def test_variable_size_needs_resize():
    spec = {"name": "tf_flowers", "splits": {"train": "train", "test": "train"}}
    with mock_tfds(num_examples=4):
        with pytest.raises(ValueError, match="differ in size.*resize"):
            tfds_source.load(spec)
        splits, names, _ = tfds_source.load({**spec, "resize": [24, 20]})
    assert splits["train"][0].shape == (4, 24, 20, 3) and len(names) == 5


def test_unknown_feature_key():
    with mock_tfds(num_examples=2):
        with pytest.raises(ValueError, match="label_key"):
            tfds_source.load({"name": "beans", "label_key": "nope"})


def test_not_prepared_fails_fast_with_instructions(tmp_path):
    data_dir = str(tmp_path / "no_tfds_here")
    start = time.monotonic()
    with pytest.raises(tfds_source.DatasetNotPreparedError) as err:
        tfds_source.load({"name": "beans", "data_dir": data_dir, "download": False})
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert data_dir in message and "tfds build beans" in message
    assert "tfds.load('beans'" in message and "data_dir" in message


def test_download_offline_fails_fast(tmp_path, monkeypatch):
    def unreachable(address, timeout=None, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.monotonic()
    with pytest.raises(tfds_source.DatasetNotPreparedError) as err:
        tfds_source.load({"name": "cifar10", "data_dir": str(tmp_path), "download": True})
    assert time.monotonic() - start < 5
    assert "www.cs.toronto.edu" in str(err.value) and "tfds build cifar10" in str(err.value)


def test_spec_errors():
    with pytest.raises(ValueError, match="`name`"):
        tfds_source.load({})
    with pytest.raises(ValueError, match="resize"):
        tfds_source.load({"name": "beans", "resize": [1, 2, 3]})
