"""`train: {precision: mixed_float16 | mixed_bfloat16}` end to end on the CPU: a tiny model
trains a few steps in the lower precision with float32 logits (and, for float16, dynamic loss
scaling), writes its outputs, and the saved model reloads with the same policy and predictions.

The dtype policy is global to a process: the three precisions train one after the other in one
process (one TensorFlow start instead of three), and each run must set its own policy (a
float32 run after mixed ones is float32) and each saved model must load with the policy it was
saved with, whatever the process's policy is then."""

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

# Before loading a run's model the script sets a policy other than the run's (OTHER_POLICY),
# so neither the load nor the next run can pass by inheriting the right one.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from cnnablate.training.train import RunPaths, train_run
    import keras
    runs, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    compiled = []  # the optimizer each run trains with, as compile() left it
    keras_compile = keras.Model.compile
    def compile(self, *args, **kwargs):
        keras_compile(self, *args, **kwargs)
        compiled.append(type(self.optimizer).__name__)
    keras.Model.compile = compile
    for i, (run, other) in enumerate(runs):
        metrics = train_run(run, data, RunPaths.in_dir(f"{out}/{i}"), log=lambda m: None)
        trained_with = keras.mixed_precision.dtype_policy().name
        keras.mixed_precision.set_dtype_policy(other)
        model = keras.models.load_model(f"{out}/{i}/model.keras")
        x = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
        logits = model(x, training=False)
        conv = next(l for l in model.layers if isinstance(l, keras.layers.Conv2D))
        print(json.dumps({
            "precision": run["train"]["precision"],
            "status": metrics["status"],
            "losses": [metrics["final_val_loss"], metrics["test_loss"]],
            "trained_with": trained_with,
            "policy": keras.mixed_precision.dtype_policy().name,
            "optimizer": compiled[-1],
            "logits_dtype": logits.dtype.name,
            "conv_compute": conv.compute_dtype,
            "conv_variable": conv.kernel.dtype,
            "finite": bool(np.isfinite(np.asarray(logits)).all()),
        }))
    """
)
# precision -> (compute dtype, optimizer): float16 needs loss scaling, bfloat16 (float32's
# range) none; float32 last, after two mixed runs
EXPECTED = {
    "mixed_float16": ("float16", "LossScaleOptimizer"),
    "mixed_bfloat16": ("bfloat16", "SGD"),
    "float32": ("float32", "SGD"),
}
OTHER_POLICY = {"mixed_float16": "mixed_bfloat16", "mixed_bfloat16": "mixed_float16",
                "float32": "mixed_float16"}


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


def test_every_precision_end_to_end_in_one_process(digits, tmp_path):
    runs = [(run_config(p), OTHER_POLICY[p]) for p in EXPECTED]
    assert {run["train"]["optimizer"] for run, _ in runs} == {"sgd"}  # what EXPECTED assumes
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(runs), str(digits), str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [got["precision"] for got in results] == list(EXPECTED)
    for got in results:
        precision = got["precision"]
        compute, optimizer = EXPECTED[precision]
        assert got["status"] == "completed", got
        assert all(loss is not None for loss in got["losses"]), got
        assert got["trained_with"] == precision, got  # each run sets its own policy
        assert got["policy"] == OTHER_POLICY[precision], got  # loading leaves it alone ...
        assert got["conv_compute"] == compute, got  # ... the layers keep the saved one
        assert got["conv_variable"] == "float32", got  # variables stay float32 when mixed
        assert got["logits_dtype"] == "float32", got  # a stable from_logits loss
        assert got["optimizer"] == optimizer, got
        assert got["finite"], got
