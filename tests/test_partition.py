"""Per-seed partitions (cnnablate/data/partition.py) and `split: per_seed | fixed`: a run's
train/validation (and drawn test) split comes from (dataset, seed), stratified with the prepared
split's per-class counts, the same for every variant and study at that seed; `fixed` is the
prepared split itself. Cheap: numpy only (the workflow's runs: tests/test_workflow.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cnnablate.base.ids import config_hash, run_id
from cnnablate.data import partition as part
from cnnablate.data.digits import load as load_digits
from cnnablate.workflow import config as cfg
from tests import tiny


@pytest.fixture(scope="module")
def digits() -> dict:
    """The prepared digits splits (as prepare.py writes them), split -> (images, labels)."""
    splits, _, _ = load_digits({})
    return {s: splits[s] for s in part.SPLITS}


def _pool(files: dict) -> tuple[np.ndarray, np.ndarray]:
    """The pool written out by hand: the three prepared splits end to end."""
    return (np.concatenate([files[s][0] for s in part.SPLITS]),
            np.concatenate([files[s][1] for s in part.SPLITS]))


def _labels(files: dict) -> dict:
    return {s: files[s][1] for s in part.SPLITS}


def test_a_drawn_partition_is_a_stratified_reshuffle_of_the_redrawn_splits(digits):
    pool_images, pool_labels = _pool(digits)
    indices = part.draw_partition(_labels(digits), ["train", "val", "test"], "digits", 0)
    together = np.concatenate([indices[s] for s in part.SPLITS])
    assert np.array_equal(np.sort(together), np.arange(len(pool_labels)))  # each image once
    for split in part.SPLITS:
        prepared = np.bincount(digits[split][1], minlength=10)
        drawn = np.bincount(pool_labels[indices[split]], minlength=10)
        assert np.array_equal(drawn, prepared)  # same per-class counts as the prepared split
        assert np.array_equal(indices[split], np.sort(indices[split]))  # in prepared order
    # it is not the prepared split: most validation images come from elsewhere
    fixed = part.fixed_partition({s: len(digits[s][1]) for s in part.SPLITS})
    assert len(np.intersect1d(indices["val"], fixed["val"])) < len(fixed["val"]) // 2


def test_partitions_differ_by_seed_and_dataset_and_repeat_exactly(digits):
    labels, redrawn = _labels(digits), ["train", "val", "test"]
    ids = {(name, seed): part.partition_id(part.draw_partition(labels, redrawn, name, seed))
           for name in ("digits", "other") for seed in range(4)}
    assert len(set(ids.values())) == len(ids)  # 8 pairs, 8 partitions
    again = part.partition_id(part.draw_partition(labels, redrawn, "digits", 2))
    assert again == ids[("digits", 2)]


def test_an_official_test_set_is_never_redrawn(digits):
    """CIFAR / tfds: train and validation are pooled and dealt again; test stays as it is."""
    assert part.redrawn_splits("per_seed", "cifar10_binary") == ["train", "val"]
    assert part.redrawn_splits("per_seed", "tfds") == ["train", "val"]
    assert part.redrawn_splits("per_seed", "sklearn_digits") == ["train", "val", "test"]
    assert part.redrawn_splits("per_seed", "image_folder") == ["train", "val", "test"]
    assert part.redrawn_splits("fixed", "sklearn_digits") == []
    sizes = {s: len(digits[s][1]) for s in part.SPLITS}
    indices = part.draw_partition(_labels(digits), ["train", "val"], "c", 5)
    test_start = sizes["train"] + sizes["val"]
    assert np.array_equal(indices["test"], test_start + np.arange(sizes["test"]))
    assert np.array_equal(np.sort(np.concatenate([indices["train"], indices["val"]])),
                          np.arange(test_start))


def test_load_partition_gathers_the_pool_images_at_its_indices(digits):
    pool_images, pool_labels = _pool(digits)
    run_partition = part.run_partition("per_seed", "sklearn_digits")
    arrays, record = part.load_partition(digits, run_partition, "digits", 3)
    indices = part.draw_partition(_labels(digits), run_partition["redrawn"], "digits", 3)
    for split in part.SPLITS:
        assert np.array_equal(arrays[split][0], pool_images[indices[split]])
        assert np.array_equal(arrays[split][1], pool_labels[indices[split]])
    assert record == {"mode": "per_seed", "id": part.partition_id(indices),
                      "sizes": {s: len(digits[s][1]) for s in part.SPLITS},
                      "redrawn": ["train", "val", "test"]}
    assert len(record["id"]) == 12


def test_split_fixed_is_the_prepared_split_as_before(digits):
    """`split: fixed` (and a run config from before partitions, None) trains on the prepared
    arrays themselves, whatever the seed."""
    for spec in (part.run_partition("fixed", "sklearn_digits"), None):
        for seed in (0, 7):
            arrays, record = part.load_partition(digits, spec, "digits", seed)
            for split in part.SPLITS:
                assert arrays[split] is digits[split]
            assert record["mode"] == "fixed" and record["redrawn"] == []
            sizes = {s: len(digits[s][1]) for s in part.SPLITS}
            assert record["id"] == part.partition_id(part.fixed_partition(sizes))


def test_predictions_are_saved_exactly_where_the_headline_test_set_is_fixed():
    def run(eval_split, mode, source):
        return {"eval_split": eval_split, "partition": part.run_partition(mode, source)}

    assert part.saves_predictions(run("test", "fixed", "sklearn_digits"))
    assert part.saves_predictions(run("test", "per_seed", "cifar10_binary"))
    assert part.saves_predictions(run("test", "fixed", "tfds"))
    assert not part.saves_predictions(run("test", "per_seed", "sklearn_digits"))
    assert not part.saves_predictions(run("test", "per_seed", "image_folder"))
    assert not part.saves_predictions(run("val", "fixed", "cifar10_binary"))


def _runs(split=None):
    config = tiny.finished()
    if split is not None:
        config["datasets"]["digits"]["split"] = split
    return cfg.resolve_runs(config)


def test_runs_hold_their_datasets_split_per_seed_by_default():
    assert {str(r["partition"]) for r in _runs()} == {
        str({"mode": "per_seed", "redrawn": ["train", "val", "test"]})}
    assert {str(r["partition"]) for r in _runs("fixed")} == {
        str({"mode": "fixed", "redrawn": []})}


def test_changing_split_changes_exactly_the_runs_of_that_dataset():
    config = tiny.finished()
    config["datasets"]["more"] = {"source": "sklearn_digits", "val_fraction": 0.2}
    config["studies"]["other"]["dataset"] = "more"
    before = {run_id(r): config_hash(r) for r in cfg.resolve_runs(config)}
    edited = copy.deepcopy(config)
    edited["datasets"]["digits"]["split"] = "fixed"
    after = {run_id(r): config_hash(r) for r in cfg.resolve_runs(edited)}
    changed = {ident for ident in before if before[ident] != after[ident]}
    assert changed == {ident for ident in before if ident[0] != "other"}


def test_split_is_not_part_of_what_preparing_a_dataset_reads():
    spec = {"source": "sklearn_digits", "split": "fixed", "split_seed": 3}
    assert cfg.prepared_spec(spec) == {"source": "sklearn_digits", "split_seed": 3}


@pytest.mark.parametrize("value", ["perseed", "random", True, 1, None])
def test_a_bad_split_is_refused_in_one_line_naming_key_and_value(value):
    config = tiny.finished()
    config["datasets"]["digits"]["split"] = value
    with pytest.raises(cfg.ConfigError) as info:
        cfg.resolve_runs(config)
    lines = [line for line in str(info.value).splitlines() if "datasets.digits.split" in line]
    assert len(lines) == 1, str(info.value)
    assert repr(value) in lines[0] or str(value) in lines[0]
    assert "per_seed" in lines[0] and "fixed" in lines[0]


def test_study_settings_say_which_splits_the_seeds_draw():
    config = cfg.validate(tiny.finished())
    assert cfg.study_settings(config, "acts")["partition"] == {
        "mode": "per_seed", "redrawn": ["train", "val", "test"]}
