"""cnnablate.workflow.resources: what a training job asks the scheduler for."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from cnnablate.workflow.resources import (
    MEM_FLOOR_MB,
    MIN_RUNTIME_MIN,
    dataset_counts,
    rule_resources,
    train_resources,
)

DIGITS = {"train": 1169, "val": 269, "test": 359}


def make_run(size=32, model="all_cnn_c", width=0.25, epochs=6, batch=64, **train) -> dict:
    return {
        "study": "s",
        "variant": "v",
        "seed": 0,
        "image_size": size,
        "model": {"name": model, "width": width},
        "train": {"epochs": epochs, "batch_size": batch, **train},
    }


def test_small_cpu_job_gets_the_floors():
    res = train_resources(make_run(), {"gpu": 0}, DIGITS)
    assert res == {"mem_mb": res["mem_mb"], "runtime": MIN_RUNTIME_MIN, "gpu": 0}
    assert MEM_FLOOR_MB["cpu"] <= res["mem_mb"] < MEM_FLOOR_MB["cpu"] + 1024
    assert res["mem_mb"] % 256 == 0


def test_explicit_values_win():
    cfg = {"gpu": 2, "train_mem_mb": 1234, "train_runtime_min": 7, "train_threads": 6}
    res = train_resources(make_run(size=224, epochs=100), cfg)
    assert res == {"mem_mb": 1234, "runtime": 7, "gpu": 2, "cpus_per_gpu": 3}


def test_cpus_per_gpu_only_with_gpus():
    assert "cpus_per_gpu" not in train_resources(make_run(), {"gpu": 0, "train_threads": 4})
    assert train_resources(make_run(), {"gpu": 1, "train_threads": 4})["cpus_per_gpu"] == 4
    assert train_resources(make_run(), {"gpu": 1})["cpus_per_gpu"] == 1


def test_memory_grows_with_image_size_batch_and_width():
    def mem(**kw):
        return train_resources(make_run(**kw), {"gpu": 0})["mem_mb"]

    assert mem(size=64) > mem(size=32)
    assert mem(size=128, batch=256) > mem(size=128, batch=64)
    assert mem(size=128, width=1.0) > mem(size=128, width=0.25)


def test_runtime_grows_with_epochs_images_and_image_size():
    def runtime(cfg=None, counts=None, **kw):
        return train_resources(make_run(**kw), cfg or {"gpu": 0}, counts)["runtime"]

    assert runtime(epochs=60) > runtime(epochs=6) > MIN_RUNTIME_MIN
    assert runtime(size=96) > runtime(size=32)
    assert runtime(max_train_images=50_000) > runtime(max_train_images=5_000)
    # a GPU is faster than one CPU thread
    assert runtime({"gpu": 1}, size=128) < runtime({"gpu": 0}, size=128)
    # epochs scale the training part roughly linearly
    assert runtime(epochs=200) == pytest.approx(2 * runtime(epochs=100), rel=0.05)


def test_counts_and_limits():
    big = train_resources(make_run(), {"gpu": 0})  # unknown dataset: CIFAR-sized
    small = train_resources(make_run(), {"gpu": 0}, DIGITS)
    assert big["runtime"] > small["runtime"]
    # a limit caps the dataset, and a limit above the dataset size counts the dataset
    capped = train_resources(make_run(max_train_images=500, max_eval_images=100), {"gpu": 0})
    assert capped["runtime"] == MIN_RUNTIME_MIN
    assert train_resources(make_run(max_train_images=10**6), {"gpu": 0}, DIGITS) == small


def test_retries_get_more_unless_explicit():
    first = train_resources(make_run(), {"gpu": 0}, DIGITS)
    second = train_resources(make_run(), {"gpu": 0}, DIGITS, attempt=2)
    assert second["mem_mb"] == 2 * first["mem_mb"] and second["runtime"] == 2 * first["runtime"]
    cfg = {"gpu": 0, "train_mem_mb": 3000, "train_runtime_min": 20}
    assert train_resources(make_run(), cfg, attempt=3) == {"mem_mb": 3000, "runtime": 20, "gpu": 0}


def test_auto_gpu_for_long_jobs():
    assert train_resources(make_run(), {"gpu": None}, DIGITS)["gpu"] == 0
    long = train_resources(make_run(size=224, width=1.0, epochs=90), {"gpu": None})
    assert long["gpu"] == 1 and long["cpus_per_gpu"] == 1


def test_realistic_numbers_stay_schedulable():
    # MobileNetV2 at 224 px, 90 epochs of a CIFAR-sized set on one GPU: under a day, under 32 GB
    res = train_resources(make_run(224, "mobilenet_v2", 1.0, 90, 128), {"gpu": 1})
    assert 120 < res["runtime"] < 24 * 60
    assert 4096 < res["mem_mb"] < 32 * 1024


def test_unknown_model_is_estimated_conservatively():
    known = train_resources(make_run(model="all_cnn_c", width=1.0), {"gpu": 0})
    unknown = train_resources(make_run(model="resnet_x", width=1.0), {"gpu": 0})
    assert unknown["runtime"] >= known["runtime"]
    assert unknown["mem_mb"] >= known["mem_mb"]


def test_dataset_counts(tmp_path):
    meta = tmp_path / "meta.json"
    assert dataset_counts(meta) is None
    meta.write_text(json.dumps({"counts": DIGITS, "name": "digits"}))
    assert dataset_counts(meta) == DIGITS
    meta.write_text("{not json")
    assert dataset_counts(meta) is None


def test_rule_resources_callables(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"counts": DIGITS}))
    run = make_run()
    funcs = rule_resources(lambda wc: run, {"gpu": 0})
    assert set(funcs) == {"mem_mb", "runtime", "gpu", "cpus_per_gpu", "gpu_slot", "gres"}
    job_input = SimpleNamespace(meta=str(meta))
    expected = train_resources(run, {"gpu": 0}, DIGITS)
    unset = {"cpus_per_gpu": None, "gpu_slot": None, "gres": None}
    assert {k: f({}, job_input) for k, f in funcs.items()} == {**expected, **unset}
    gpu_funcs = rule_resources(lambda wc: run, {"gpu": 1, "train_threads": 2})
    assert gpu_funcs["cpus_per_gpu"]({}, job_input) == 2
    assert funcs["runtime"]({}, job_input, attempt=2) == 2 * expected["runtime"]
    # before the dataset is prepared the estimate falls back to the defaults, never fails
    missing = SimpleNamespace(meta=str(tmp_path / "absent.json"))
    assert funcs["runtime"]({}, missing) == train_resources(run, {"gpu": 0})["runtime"]


def test_no_tensorflow_import():
    import subprocess
    import sys

    code = "import sys, cnnablate.workflow.resources; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runs_per_gpu_asks_for_a_gpu_slot_and_a_shard_not_a_whole_gpu():
    run = make_run(size=32, epochs=50, max_train_images=50_000)
    alone = train_resources(run, {"gpu": 1})
    packed = train_resources(run, {"gpu": 1, "runs_per_gpu": 4})
    assert alone["gpu"] == 1 and "gres" not in alone and "gpu_slot" not in alone
    assert packed["gpu"] == 0 and packed["gpu_slot"] == 1 and packed["gres"] == "shard:1"
    assert "cpus_per_gpu" not in packed  # no --gpus: the plugin then uses --cpus-per-task
    # the site gives each GPU 8 shards: a quarter of a GPU is 2 of them
    site = train_resources(run, {"gpu": 1, "runs_per_gpu": 4, "slurm_gpu_shards": 8})
    assert site["gres"] == "shard:2"
    # host memory is per run either way (each run is its own process and SLURM job)
    assert packed["mem_mb"] == alone["mem_mb"]


def test_packed_run_time_counts_on_a_share_of_the_gpu():
    from cnnablate.base import catalog
    from cnnablate.workflow.resources import RUNTIME_SAFETY, STARTUP_S

    run = make_run(size=32, width=1.0, epochs=100, batch=128, max_train_images=50_000,
                   max_eval_images=10_000)
    ips = catalog.MODELS["all_cnn_c"].images_per_s["gpu"]
    for k in (1, 4):
        # 100 epochs of 50k images + 10k validation images (a third of a step each) + test,
        # and 30 minutes for TensorFlow's PTX compile on a GPU it has no kernels for
        seconds = (STARTUP_S["gpu"] + 1800 + 100 * (50_000 + 10_000 / 3) * k / ips
                   + 10_000 / 3 * k / ips)
        want = max(MIN_RUNTIME_MIN, -(-seconds * RUNTIME_SAFETY // 60))
        got = train_resources(run, {"gpu": 1, "runs_per_gpu": k})["runtime"]
        assert got == int(want), (k, got, want)


def test_tensorflow_gpu_jobs_allow_for_the_ptx_compile_but_jax_and_cpu_jobs_do_not():
    """TensorFlow's wheels run Hopper from PTX: the first job on such a node compiles every
    kernel ("30 minutes or longer", TensorFlow's warning), which a 180 s start-up allowance
    would not cover. JAX's plugin has Hopper kernels; CPU jobs compile nothing."""
    run = make_run(size=32, width=1.0, epochs=10, batch=128)
    jax_run = make_run(size=32, width=1.0, epochs=10, batch=128, backend="jax")
    tf_gpu = train_resources(run, {"gpu": 1})["runtime"]
    jax_gpu = train_resources(jax_run, {"gpu": 1})["runtime"]
    assert jax_gpu > 10 and tf_gpu - jax_gpu == 45  # minutes: 1800 s x the safety factor 1.5
    assert train_resources(run, {"gpu": 0})["runtime"] == train_resources(
        jax_run, {"gpu": 0})["runtime"]


@pytest.mark.parametrize(
    "cfg", [{"gpu": 2, "runs_per_gpu": 2}, {"gpu": 1, "runs_per_gpu": 4, "slurm_gpu_shards": 6}]
)
def test_bad_packing_is_a_clear_error(cfg):
    with pytest.raises(ValueError, match="runs_per_gpu"):
        train_resources(make_run(), cfg)


def test_cpu_runs_ignore_runs_per_gpu():
    assert "gres" not in train_resources(make_run(), {"gpu": 0, "runs_per_gpu": 4})
