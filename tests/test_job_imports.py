"""A training job's start-up: Keras and TensorFlow are imported with the optional libraries a
job never uses hidden (cnnablate/training/train.py, SKIPPED_IMPORTS; BENCHMARKS.md §3), and
the job still trains (every end-to-end test). Each of those libraries is installed here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cnnablate.training.train import SKIPPED_IMPORTS

ROOT = Path(__file__).resolve().parents[1]

SET_UP = """
import json, sys
from cnnablate.training.train import set_up
keras, tf = set_up({"seed": 0, "train": {"backend": "tensorflow"}}, 1, log=lambda m: None)
print(json.dumps(sorted(m for m in sys.modules if "." not in m)))
"""


def test_a_tensorflow_job_imports_none_of_the_libraries_it_never_uses():
    proc = subprocess.run([sys.executable, "-c", SET_UP], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert {"tensorflow", "keras"} <= imported
    # Keras's optional integrations, and JAX (TensorFlow's tf.lite imports it where installed)
    never_used = {"sklearn", "matplotlib", "pandas", "scipy", "jax"}
    assert not never_used & imported, sorted(never_used & imported)
    assert not SKIPPED_IMPORTS & imported
