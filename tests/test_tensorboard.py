"""TensorBoard logs of a training run, read back with TensorBoard's own reader."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import tiny

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

CONFIG = tiny.config(t=tiny.study(
    {"epochs": 3, "batch_size": 32, "max_train_images": 128, "max_eval_images": 64},
    model={"bn_momentum": 0.9},
))


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a TensorBoard run folder, 'train/epoch_loss' -> [(step, value)]."""
    out = {}
    for sub in ("train", "validation"):
        acc = EventAccumulator(str(run_dir / sub), size_guidance={"tensors": 0})
        acc.Reload()
        for tag in acc.Tags()["tensors"]:
            out[f"{sub}/{tag}"] = [
                (e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                for e in acc.Tensors(tag)
            ]
    return out


def _train(tmp_path: Path, tensorboard: bool) -> Path:
    """One run through `train_run` in a fresh process (it sets TensorFlow's global state)."""
    from benchmarks._common import prepare_digits
    from cnnablate.workflow.config import resolve_runs

    config = json.loads(json.dumps(CONFIG))
    config["studies"]["t"]["train"]["tensorboard"] = tensorboard
    run = resolve_runs(config)[0]
    data = prepare_digits(tmp_path.parent / "digits-data")
    run_dir = tmp_path / "run"
    (tmp_path / "run.json").write_text(json.dumps(run))
    subprocess.run(
        [sys.executable, "-c",
         "import json, sys; from cnnablate.training.train import RunPaths, train_run; "
         "train_run(json.load(open(sys.argv[1])), sys.argv[2], RunPaths.in_dir(sys.argv[3]), "
         "log=lambda m: None)", str(tmp_path / "run.json"), str(data), str(run_dir)],
        cwd=ROOT, check=True, timeout=600,
    )
    return run_dir


def test_epoch_scalars_are_read_back_by_tensorboard(tmp_path):
    run_dir = _train(tmp_path, tensorboard=True)
    with open(run_dir / "history.csv") as fh:
        history = list(csv.DictReader(fh))
    scalars = _scalars(run_dir / "tensorboard")
    # One point per epoch, at steps 0, 1, 2, equal (float32) to the history's values.
    for tag, column in [("validation/epoch_accuracy", "val_accuracy"),
                        ("train/epoch_loss", "loss"), ("train/epoch_seconds", "seconds")]:
        assert [step for step, _ in scalars[tag]] == [0, 1, 2], tag
        np.testing.assert_allclose([v for _, v in scalars[tag]],
                                   [float(r[column]) for r in history], rtol=1e-6)
    assert "train/epoch_learning_rate" in scalars
    # epoch scalars only (no batch scalars, no second copy of validation per iteration)
    assert all(tag.split("/")[1].startswith("epoch_") for tag in scalars), sorted(scalars)
    assert not (run_dir / ".resume").exists()


def test_tensorboard_off_writes_no_logs(tmp_path):
    run_dir = _train(tmp_path, tensorboard=False)
    assert (run_dir / "metrics.json").exists()
    assert not (run_dir / "tensorboard").exists()


def test_resume_drops_the_killed_attempts_unsaved_epochs(tmp_path):
    import tensorflow as tf

    from cnnablate.training.monitor import _keep_saved_epochs

    # A killed attempt logged epochs 0..3; its backup holds 2 epochs.
    log_dir = tmp_path / "tensorboard"
    writer = tf.summary.create_file_writer(str(log_dir / "validation"))
    with writer.as_default():
        for epoch in range(4):
            tf.summary.scalar("epoch_loss", 2.0 + epoch, step=epoch)
            tf.summary.scalar("epoch_accuracy", 0.5 + epoch / 10, step=epoch)
    writer.close()
    _keep_saved_epochs(log_dir, first_epoch=2)
    acc = EventAccumulator(str(log_dir / "validation"), size_guidance={"tensors": 0})
    acc.Reload()
    read = {tag: [(e.step, round(float(tensor_util.make_ndarray(e.tensor_proto)), 6))
                  for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}
    assert read == {"epoch_loss": [(0, 2.0), (1, 3.0)], "epoch_accuracy": [(0, 0.5), (1, 0.6)]}
