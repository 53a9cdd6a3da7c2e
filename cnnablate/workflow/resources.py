"""What one training job asks the scheduler for: memory, wall-time, GPUs.

Pure Python (no TensorFlow): the Snakefile calls this while planning and while submitting jobs
to SLURM. Explicit values under the config's `resources:` (`train_mem_mb`, `train_runtime_min`,
`gpu`) always win; otherwise the numbers are estimated from the resolved run config.

The estimates are deliberately conservative: a job that asks for too little is killed by the
scheduler after hours of work, one that asks for too much only waits a little longer in the
queue. Both formulas are "a floor plus a per-image cost":

mem_mb  = floor (TensorFlow + CUDA libraries)
          + resized image cache (train + val + test at image_size, uint8, held twice: the
            NumPy array and its tf.data copy, or on a CPU its data-on-device copy; a split
            over 1 GiB is streamed, not cached)
          + activations of one batch (batch_size x image_size^2 x KB-per-pixel of the model,
            linear in the width multiplier; on a GPU most of it lives in GPU memory, so only
            GPU_HOST_ACTIVATION_SHARE of it counts against host memory),
          the last two x MEM_SAFETY, rounded up to 256 MB. The floor is already ~2.5x the
          measured peak RSS of a small CPU run.

runtime = start-up (import, data, model build; CUDA init and autotuning on a GPU)
          + epochs x (train images / images-per-second + val images / (3 x images-per-second))
          + test images / (3 x images-per-second)
          then x RUNTIME_SAFETY, in whole minutes, at least MIN_RUNTIME_MIN.

images-per-second is the model's registry entry (`catalog.MODELS[name].images_per_s`) on the
device (measured or read off slow hardware: one CPU thread, a T4-class GPU) at 32x32 and
width 1.0, divided by (image_size / 32)^2 and by width^2 (conv FLOPs grow with both), each
factor floored because small images and thin networks are bound by per-step overhead, not FLOPs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cnnablate.base import catalog
from cnnablate.base.backends import run_backend

# Images per second while training at 32x32 and width 1.0, and activation memory in KB per
# input pixel: per model in its registry entry (cnnablate.base.catalog.MODELS); these for
# others.
UNKNOWN_MODEL_IMAGES_PER_S = {"cpu": 5.0, "gpu": 400.0}
UNKNOWN_MODEL_KB_PER_PIXEL = 8.0

MEM_FLOOR_MB = {"cpu": 2048, "gpu": 4096}  # measured RSS of a CPU run: ~0.8 GB
GPU_HOST_ACTIVATION_SHARE = 0.25
CACHE_BYTES_PER_SPLIT = 1 << 30  # cnnablate.training.held_split.CACHE_BYTES
MEM_SAFETY = 1.5
STARTUP_S = {"cpu": 60.0, "gpu": 180.0}
# TensorFlow's CUDA 12 wheels hold Hopper's (and newer GPUs') kernels only as PTX, which the
# driver compiles on first use: "could take 30 minutes or longer" (TensorFlow's own warning,
# gpu_device.cc), once per node and driver until CUDA's JIT cache holds them (docs/cluster.md,
# "First run on a GPU"). The planner does not know which GPU a job lands on, so every
# TensorFlow GPU job's time limit allows for it; JAX's CUDA plugin ships Hopper kernels.
TF_PTX_JIT_S = 1800.0
RUNTIME_SAFETY = 1.5
MIN_RUNTIME_MIN = 10
# Without a limit or a prepared dataset to count, assume a CIFAR-sized dataset.
DEFAULT_TRAIN_IMAGES = 50_000
DEFAULT_EVAL_IMAGES = 10_000
# gpu: null in the config means "decide": a GPU when the job would run longer than this on a CPU.
AUTO_GPU_CPU_MINUTES = 60
MIN_WIDTH, MIN_PIXEL_FACTOR = 0.25, 0.25


def dataset_counts(meta_path: str | Path) -> dict[str, int] | None:
    """Images per split from a prepared dataset's meta.json, or None before it exists."""
    try:
        counts = json.loads(Path(meta_path).read_text())["counts"]
        return {split: int(n) for split, n in counts.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _limit(limit: Any, available: int | None, default: int) -> int:
    if available is None:
        return int(limit) if limit else default
    return min(int(limit), available) if limit else available


def _images_per_s(run: Mapping, device: str, threads: int, share: int = 1) -> float:
    """`share` runs train on one GPU at once: each counts on 1/share of its throughput (the
    worst case; packing pays off where one run leaves the GPU idle, which this ignores)."""
    model = run["model"]
    entry = catalog.MODELS.get(model["name"])
    ips = entry.images_per_s[device] if entry else UNKNOWN_MODEL_IMAGES_PER_S[device]
    width = max(float(model.get("width", 1.0)), MIN_WIDTH)
    pixels = max((int(run["image_size"]) / 32.0) ** 2, MIN_PIXEL_FACTOR)
    if device == "cpu":
        ips *= math.sqrt(max(1, threads))  # TF scales far from linearly with threads
    return ips / (pixels * width**2 * share)


def _runtime_s(
    run: Mapping, device: str, threads: int, n_train: int, n_eval: int, share: int = 1
) -> float:
    ips = _images_per_s(run, device, threads, share)
    epochs = int(run["train"].get("epochs", 1))
    # Validation each epoch and one test pass; a forward pass is ~1/3 of a training step.
    per_epoch = n_train / ips + n_eval / (3.0 * ips)
    jit = TF_PTX_JIT_S if device == "gpu" and run_backend(run) == "tensorflow" else 0.0
    return STARTUP_S[device] + jit + epochs * per_epoch + n_eval / (3.0 * ips)


def _mem_mb(run: Mapping, device: str, n_train: int, n_eval: int) -> int:
    size = int(run["image_size"])
    image_bytes = size * size * 3
    cached = sum(min(n * image_bytes, CACHE_BYTES_PER_SPLIT) for n in (n_train, n_eval, n_eval))
    model = run["model"]
    entry = catalog.MODELS.get(model["name"])
    kb_per_pixel = entry.activation_kb_per_pixel if entry else UNKNOWN_MODEL_KB_PER_PIXEL
    width = max(float(model.get("width", 1.0)), MIN_WIDTH)
    batch = int(run["train"].get("batch_size", 64))
    activations = batch * size * size * kb_per_pixel * 1024 * width
    if device == "gpu":
        activations *= GPU_HOST_ACTIVATION_SHARE
    total_mb = MEM_FLOOR_MB[device] + MEM_SAFETY * (2 * cached + activations) / 2**20
    return int(math.ceil(total_mb / 256) * 256)


def train_resources(
    run: Mapping,
    resources_cfg: Mapping | None = None,
    counts: Mapping[str, int] | None = None,
    attempt: int = 1,
) -> dict[str, int]:
    """Resources of the training job of `run` (a resolved run config, see
    cnnablate.workflow.config.resolve_runs): {"mem_mb", "runtime" (minutes), "gpu"} plus
    "cpus_per_gpu" when gpu > 0 (SLURM then gets --cpus-per-gpu instead of --cpus-per-task).

    `resources_cfg` is the config's `resources:` section; its non-null `train_mem_mb`,
    `train_runtime_min` and `gpu` are returned as given. `counts` are the prepared dataset's
    images per split (`dataset_counts`); without them the run's max_*_images limits, else
    a CIFAR-sized dataset, are assumed. Estimates grow linearly with Snakemake's `attempt`,
    so a job resubmitted after hitting its limit (`--retries`) gets twice as much; explicit
    values stay as given.
    """
    cfg = dict(resources_cfg or {})
    threads = int(cfg.get("train_threads") or 1)
    train = run.get("train", {})
    counts = counts or {}
    n_train = _limit(train.get("max_train_images"), counts.get("train"), DEFAULT_TRAIN_IMAGES)
    val, test = counts.get("val"), counts.get("test")
    n_eval = _limit(
        train.get("max_eval_images"),
        None if val is None or test is None else max(val, test),
        DEFAULT_EVAL_IMAGES,
    )

    gpu = cfg.get("gpu")
    if gpu is None:
        cpu_minutes = _runtime_s(run, "cpu", threads, n_train, n_eval) / 60.0
        gpu = 1 if cpu_minutes > AUTO_GPU_CPU_MINUTES else 0
    gpu = int(gpu)
    device = "gpu" if gpu > 0 else "cpu"
    share = _runs_per_gpu(cfg) if gpu > 0 else 1

    mem_mb = cfg.get("train_mem_mb")
    attempt = max(1, int(attempt))
    if mem_mb is None:
        mem_mb = _mem_mb(run, device, n_train, n_eval) * attempt
    runtime = cfg.get("train_runtime_min")
    if runtime is None:
        seconds = _runtime_s(run, device, threads, n_train, n_eval, share) * RUNTIME_SAFETY
        runtime = max(MIN_RUNTIME_MIN, math.ceil(seconds / 60.0)) * attempt

    out = {"mem_mb": int(mem_mb), "runtime": int(runtime), "gpu": gpu}
    if share > 1:
        # One slot of a shared GPU: not a whole `gpu` (Snakemake's --resources gpu=N and the
        # SLURM plugin's --gpus would count it as one), but `gpu_slot` locally and a GPU
        # shard on SLURM (gres/shard, which SLURM hands out up to the GPU's shard count).
        shards = int(cfg.get("slurm_gpu_shards") or share)
        if gpu != 1 or shards % share:
            raise ValueError(
                f"resources: runs_per_gpu {share} needs gpu: 1 (got {gpu}) and "
                f"slurm_gpu_shards a multiple of it (got {shards})"
            )
        out.update(gpu=0, gpu_slot=1, gres=f"shard:{shards // share}")
    elif gpu > 0:
        out["cpus_per_gpu"] = max(1, math.ceil(threads / gpu))
    return out


def _runs_per_gpu(cfg: Mapping) -> int:
    return max(1, int(cfg.get("runs_per_gpu") or 1))


def gpus_of(resources: Mapping) -> int:
    """GPUs a job gets, whole or a shared slot: what it should claim and check."""
    return int(resources.get("gpu") or 0) or int(resources.get("gpu_slot") or 0)


def rule_resources(
    run_of: Callable[[Any], Mapping], resources_cfg: Mapping | None
) -> dict[str, Callable[..., int | None]]:
    """Callables for a Snakemake rule's `resources:` (``resources: **rule_resources(...)``).

    `run_of(wildcards)` returns the job's run config. Snakemake passes each callable the job's
    input and attempt (by parameter name); the dataset's meta.json (`input.meta`) is read when
    it exists (Snakemake evaluates resources once the job's inputs are there), so jobs of small
    datasets don't ask for CIFAR-sized time. cpus_per_gpu is None (dropped by Snakemake) for
    CPU jobs, gpu_slot and gres for jobs that do not share a GPU.
    """

    def estimate(wildcards: Any, input: Any, attempt: int) -> dict[str, int]:  # noqa: A002
        meta = getattr(input, "meta", None)
        counts = dataset_counts(meta) if meta else None
        return train_resources(run_of(wildcards), resources_cfg, counts, attempt)

    def field(key: str) -> Callable[..., int | None]:
        def value(wildcards: Any, input: Any, attempt: int = 1) -> int | None:  # noqa: A002
            return estimate(wildcards, input, attempt).get(key)

        value.__name__ = f"train_{key}"
        return value

    keys = ("mem_mb", "runtime", "gpu", "cpus_per_gpu", "gpu_slot", "gres")
    return {key: field(key) for key in keys}


def conda_env_by_gpu(
    run_of: Callable[[Any], Mapping], resources_cfg: Mapping | None, cpu_env: str, gpu_env: str
) -> Callable[..., str]:
    """A function for a rule's `conda:`: `gpu_env` for jobs that get a GPU (the same decision
    as their `gpu` resource, `gpu: null` included), `cpu_env` for the others."""

    def env(wildcards: Any, input: Any = None) -> str:  # noqa: A002
        meta = getattr(input, "meta", None)
        counts = dataset_counts(meta) if meta else None
        resources = train_resources(run_of(wildcards), resources_cfg, counts)
        return gpu_env if gpus_of(resources) > 0 else cpu_env

    return env


def conda_env_by_backend(
    run_of: Callable[[Any], Mapping], env_by_backend: Mapping[str, Callable[..., str]],
) -> Callable[..., str]:
    """A function for the train rule's `conda:`: the env function of the run's backend
    (each a `conda_env_by_gpu`: its CPU or GPU env file)."""

    def env(wildcards: Any, input: Any = None) -> str:  # noqa: A002
        return env_by_backend[run_backend(run_of(wildcards))](wildcards, input)

    return env


# The env file of a training job (relative to rules/), by backend: (CPU, GPU). tensorflow-cpu or
# tensorflow[and-cuda]; jax or jax[cuda12], without TensorFlow.
TRAIN_ENVS = {
    "tensorflow": ("../envs/train.yaml", "../envs/train-gpu.yaml"),
    "jax": ("../envs/train-jax.yaml", "../envs/train-jax-gpu.yaml"),
}


def train_conda_env(
    run_of: Callable[[Any], Mapping], resources_cfg: Mapping | None
) -> Callable[..., str]:
    """The `conda:` of every rule that trains (train, train_tuning): the env of the run's
    backend, its GPU env where the job gets a GPU. One definition, so that no training rule
    can pick TensorFlow's env for a JAX run."""
    return conda_env_by_backend(run_of, {
        backend: conda_env_by_gpu(run_of, resources_cfg, cpu_env, gpu_env)
        for backend, (cpu_env, gpu_env) in TRAIN_ENVS.items()
    })
