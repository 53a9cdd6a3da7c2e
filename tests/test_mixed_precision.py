"""`train: {precision: mixed_float16 | mixed_bfloat16}` end to end on the CPU: a tiny model
trains a few steps in the lower precision with float32 logits (and, for float16, dynamic loss
scaling), writes its outputs, and the saved model reloads with the same policy and predictions.
Each run is its own process: the dtype policy is global to a process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnablate.data.prepare import prepare_dataset
from cnnablate.workflow.config import resolve_runs
from tests import tiny

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from cnnablate.training.train import RunPaths, train_run
    import keras
    run, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    compiled = []  # the optimizer the run trains with, as compile() left it
    keras_compile = keras.Model.compile
    def compile(self, *args, **kwargs):
        keras_compile(self, *args, **kwargs)
        compiled.append(type(self.optimizer).__name__)
    keras.Model.compile = compile
    metrics = train_run(run, data, RunPaths.in_dir(out), log=lambda m: None)
    keras.Model.compile = keras_compile
    keras.mixed_precision.set_dtype_policy("float32")  # as a fresh process that loads it
    model = keras.models.load_model(f"{out}/model.keras")
    x = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    logits = model(x, training=False)
    conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))
    print(json.dumps({
        "status": metrics["status"],
        "losses": [h for h in [metrics["final_val_loss"], metrics["test_loss"]]],
        "policy": keras.mixed_precision.dtype_policy().name,
        "optimizer": compiled[0],
        "logits_dtype": logits.dtype.name,
        "conv_compute": conv.compute_dtype,
        "conv_variable": conv.kernel.dtype,
        "finite": bool(np.isfinite(np.asarray(logits)).all()),
    }))
    """
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "digits"
    prepare_dataset("digits", {"source": "sklearn_digits"}, out)
    return out


def run_config(precision: str) -> dict:
    cfg = tiny.config(mp=tiny.study({"epochs": 1, "batch_size": 32, "max_train_images": 96,
                                     "max_eval_images": 32, "precision": precision}))
    (run,) = resolve_runs(cfg)
    return run


@pytest.mark.parametrize(
    ("precision", "compute", "optimizer"),
    [
        ("mixed_float16", "float16", "LossScaleOptimizer"),  # float16 needs loss scaling
        ("mixed_bfloat16", "bfloat16", "SGD"),  # bfloat16 has float32's range: none
        ("float32", "float32", "SGD"),
    ],
)
def test_precision_end_to_end(digits, tmp_path, precision, compute, optimizer):
    run = run_config(precision)
    assert run["train"]["optimizer"] == "sgd"  # the default the expected names assume
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(run), str(digits), str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["status"] == "completed"
    assert all(loss is not None for loss in got["losses"]), got
    assert got["policy"] == "float32"  # loading leaves the process's policy alone ...
    assert got["conv_compute"] == compute  # ... the layers keep the one they were saved with
    assert got["conv_variable"] == "float32"  # variables stay float32 under mixed policies
    assert got["logits_dtype"] == "float32"  # a stable from_logits loss
    assert got["optimizer"] == optimizer
    assert got["finite"]


def test_float32_run_after_a_mixed_run_in_one_process_is_float32(digits, tmp_path):
    """The dtype policy is global: train_run sets it for every run, not only mixed ones."""
    code = textwrap.dedent(
        """
        import json, sys
        import keras
        from cnnablate.training.train import RunPaths, train_run
        runs, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
        for i, run in enumerate(runs):
            train_run(run, data, RunPaths.in_dir(f"{out}/{i}"), log=lambda m: None)
        print(keras.mixed_precision.dtype_policy().name)
        """
    )
    runs = [run_config("mixed_bfloat16"), run_config("float32")]
    for run in runs:
        run["train"]["max_train_images"] = 32
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(runs), str(digits), str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "float32"
