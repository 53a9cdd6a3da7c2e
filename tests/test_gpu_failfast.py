"""Fail fast: a training job that asks for a GPU and whose TensorFlow sees none stops before it
loads data, saying why on the console and in its log, and leaves no outputs; with
`allow_cpu_fallback` it trains on the CPU as before. Runs the real workflow on this CPU-only
TensorFlow with fake GPU ids (CNNABLATE_GPUS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnablate.training import gpu
from tests import tiny
from tests.workflow import copy_workflow, snakemake, write_config

pytestmark = pytest.mark.workflow

RUN = "results/runs/f/relu/seed0"
LOG = "logs/train/f/relu/seed0.log"


def config(**resources) -> dict:
    return {
        **tiny.config(f=tiny.study({"epochs": 1, "batch_size": 32, "max_train_images": 64,
                                    "max_eval_images": 32})),
        "resources": {"gpu": 1, **resources},
    }


def run(work: Path, tmp_path: Path, **resources):
    """The config in `work` (a prepared copy of the finished workflow: no data preparation)."""
    write_config(work / "config.yaml", config(**resources))
    env = {gpu.ENV_GPUS: "0", gpu.ENV_LOCK_DIR: str(tmp_path / "locks"),
           "CUDA_VISIBLE_DEVICES": ""}
    proc = snakemake(work, "--cores", "1", f"{RUN}/metrics.json", check=False, env=env)
    return work, proc


def test_gpu_run_on_cpu_only_tensorflow_fails_before_data_with_the_fix(prepared_copy, tmp_path):
    work, proc = run(prepared_copy, tmp_path)
    assert proc.returncode != 0
    console = proc.stdout + proc.stderr
    for text in (work / LOG).read_text(), console:
        assert "1 GPU(s) requested, TensorFlow sees 0" in text, text[-3000:]
        assert "CPU-only build" in text
        assert "requirements-gpu.txt" in text and "allow_cpu_fallback" in text  # the fix
    log = (work / LOG).read_text()
    assert "gpu: claimed ['0']" in log  # it got its (fake) GPU, then TensorFlow saw none
    assert "data:" not in log and "model:" not in log  # stopped before loading data
    run_dir = work / RUN
    leftovers = sorted(p.name for p in run_dir.rglob("*")) if run_dir.exists() else []
    assert leftovers == [], leftovers  # nothing half-written, no resume state


def test_allow_cpu_fallback_trains_on_the_cpu_with_a_warning(prepared_copy, tmp_path):
    work, proc = run(prepared_copy, tmp_path, allow_cpu_fallback=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (work / LOG).read_text()
    assert "WARNING gpu: 1 GPU(s) requested, TensorFlow sees 0" in log
    assert (work / RUN / "metrics.json").exists() and (work / RUN / "model.keras").exists()


def test_cpu_jobs_see_no_gpu_also_under_slurm(tmp_path):
    """`gpu: 0` under SLURM (SLURM_JOB_ID set; a site that leaves every GPU visible) and the
    data preparation job run with CUDA_VISIBLE_DEVICES="": their TensorFlow cannot take a GPU's
    memory from the packed runs on it. metrics.json records what the run saw."""
    import json

    work = copy_workflow(tmp_path / "slurm-cpu")
    write_config(work / "config.yaml", config(gpu=0))
    env = {"SLURM_JOB_ID": "77", "CUDA_VISIBLE_DEVICES": "0", gpu.ENV_GPUS: "0",
           gpu.ENV_LOCK_DIR: str(tmp_path / "locks")}
    proc = snakemake(work, "--cores", "1", f"{RUN}/metrics.json", check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((work / RUN / "metrics.json").read_text())["cuda_visible_devices"] == ""
    assert "GPUs hidden (CUDA_VISIBLE_DEVICES='')" in (work / "logs/data/digits.log").read_text()
