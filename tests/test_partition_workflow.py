"""Per-seed partitions in the workflow's runs: the session's finished tiny workflow (default
`split: per_seed`) records a different partition per seed and the same one across variants and
studies at a seed; `split: fixed` reruns exactly the runs of its dataset, without preparing the
data again; a run whose headline is a fixed test set saves its per-image predictions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests import tiny
from tests.workflow import planned_jobs, write_config

REPO = Path(__file__).resolve().parents[1]


def _metrics(work: Path, study: str, variant: str, seed: int) -> dict:
    return json.loads((work / f"results/runs/{study}/{variant}/seed{seed}/metrics.json")
                      .read_text())


@pytest.mark.workflow
def test_each_seed_has_its_own_partition_shared_by_every_variant_and_study(finished):
    work = finished.work
    meta = json.loads((work / "results/data/digits/meta.json").read_text())
    by_seed: dict[int, set[str]] = {}
    for study, variant, seed in tiny.FINISHED_RUNS:
        partition = _metrics(work, study, variant, seed)["partition"]
        assert partition["mode"] == "per_seed"
        assert partition["redrawn"] == ["train", "val", "test"]  # digits: no official test
        assert partition["sizes"] == meta["counts"]  # the prepared split's sizes
        by_seed.setdefault(seed, set()).add(partition["id"])
    # one partition per seed (acts, tiny and other at seed 0 alike), and seeds differ
    assert {seed: len(ids) for seed, ids in by_seed.items()} == {0: 1, 1: 1}
    assert by_seed[0] != by_seed[1]


@pytest.mark.workflow
def test_runs_without_a_fixed_test_headline_save_empty_predictions(finished):
    """predictions.npy is in every run folder (a run file: copied runs carry it too); the
    default study validates on a partition drawn per seed, so it is empty."""
    for study, variant, seed in tiny.FINISHED_RUNS:
        path = finished.work / f"results/runs/{study}/{variant}/seed{seed}/predictions.npy"
        predictions = np.load(path)
        assert predictions.dtype == np.int16 and predictions.shape == (0,)


@pytest.mark.workflow
def test_split_fixed_retrains_the_datasets_runs_and_prepares_nothing(finished_copy):
    config = tiny.finished()
    config["datasets"]["digits"]["split"] = "fixed"
    write_config(finished_copy / "config.yaml", config)
    jobs = planned_jobs(finished_copy)
    trained = {job[1:] for job in jobs if job[0] == "train"}
    shared = {tuple(map(str, ident)) for ident in tiny.FINISHED_SHARED}
    expected = {tuple(map(str, ident)) for ident in tiny.FINISHED_RUNS} - shared
    assert trained == expected
    assert not [job for job in jobs if job[0] == "prepare_dataset"]


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from cnnablate.data.prepare import prepare_dataset
    from cnnablate.workflow.config import resolve_runs
    from cnnablate.training.train import RunPaths, train_run
    out = sys.argv[1]
    prepare_dataset("digits", {"source": "sklearn_digits"}, f"{out}/data")
    results = {}
    for on_device in (True, False):
        config = {
            "datasets": {"digits": {"source": "sklearn_digits", "split": "fixed"}},
            "studies": {"s": {
                "dataset": "digits", "image_size": 16, "eval_split": "test",
                "model": {"name": "all_cnn_c", "width": 0.125, "bn_momentum": 0.9},
                "train": {"epochs": 1, "batch_size": 32, "learning_rate": 0.05,
                          "max_train_images": 128, "max_eval_images": 96,
                          "data_on_device": on_device},
                "seeds": [0], "variants": {"relu": {"activation": "relu"}}}},
        }
        (run,) = resolve_runs(config)
        folder = f"{out}/run{int(on_device)}"
        metrics = train_run(run, f"{out}/data", RunPaths.in_dir(folder), log=lambda m: None)
        results[str(on_device)] = {"folder": folder, "test_accuracy": metrics["test_accuracy"],
                                   "partition": metrics["partition"]}
    print(json.dumps(results))
    """
)


def test_a_fixed_test_headline_saves_the_predicted_class_of_every_test_image(tmp_path):
    """`split: fixed`, `eval_split: test`: predictions.npy holds the class the model predicts
    for each image of the prepared test split, in its order, -1 where `max_eval_images` left
    it out; scored against the prepared labels it gives the run's test accuracy (on the
    device and on tf.data alike)."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    labels = np.load(tmp_path / "data/test_labels.npy")
    for got in results.values():
        predictions = np.load(Path(got["folder"]) / "predictions.npy")
        assert predictions.dtype == np.int16 and predictions.shape == labels.shape
        scored = predictions >= 0
        assert scored.sum() == 96  # max_eval_images
        assert set(np.unique(predictions[~scored])) == {-1}
        assert predictions[scored].max() < 10
        correct = int((predictions[scored] == labels[scored]).sum())
        assert got["test_accuracy"] == pytest.approx(correct / 96, abs=1e-6)
        assert got["partition"]["mode"] == "fixed" and got["partition"]["redrawn"] == []
