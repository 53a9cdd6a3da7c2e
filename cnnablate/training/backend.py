"""The process set-up each Keras backend needs before Keras is imported (which backend a run
trains with: cnnablate.base.backends; a SLURM node with another KERAS_BACKEND must not train a
different run than the one planned).

Keras reads `KERAS_BACKEND` once, when it is imported, so `prepare_jax` runs before anything
imports Keras: it sets the backend, XLA's determinism flag for GPUs, a single-threaded XLA CPU
client for one-thread jobs, JAX's persistent compilation cache (`default_cache_dir`) and, for
runs packed on a GPU, the per-process memory cap of JAX's allocator. `configure_jax` then fails
fast, like `gpu.configure_tensorflow`, when the job asked for GPUs that JAX does not see.

Plain Python at import time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from cnnablate.base.backends import BackendError

# https://docs.jax.dev/en/latest/gpu_memory_allocation.html: without preallocation, JAX's
# allocator still stops at XLA_PYTHON_CLIENT_MEM_FRACTION of the GPU's memory.
ENV_PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
ENV_MEM_FRACTION = "XLA_PYTHON_CLIENT_MEM_FRACTION"
# XLA's GPU kernels are deterministic only with this flag (scatter-add and reductions otherwise
# use atomics); XLA on the CPU is deterministic without it and accepts it.
DETERMINISM_FLAG = "--xla_gpu_deterministic_ops=true"
# JAX's persistent compilation cache, shared by every job of every workflow of the user: a job
# whose model and shapes were compiled before skips XLA's compile (whole steps, and the small
# eager ops of building a model; BENCHMARKS.md section 6). Compiled code, not results, is
# cached, so a run is the same with or without it.
ENV_CACHE_DIR = "JAX_COMPILATION_CACHE_DIR"
ENV_CACHE_MIN_SECONDS = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
# One thread per job (`train_threads: 1`), as the TensorFlow path sizes its pools.
SINGLE_THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")

JAX_FIX = (
    "Fix: on a GPU host install requirements-jax-gpu.txt (jax[cuda12]) or run with --use-conda "
    "(envs/train-jax-gpu.yaml); or set `resources: {gpu: 0}` to train on the CPU, or "
    "`resources: {allow_cpu_fallback: true}` to let GPU runs fall back to it."
)


def _xla_flags(current: str, threads: int) -> str:
    wanted = [DETERMINISM_FLAG, *(SINGLE_THREAD_FLAGS if threads == 1 else ())]
    flags = current.split()
    names = {flag.split("=")[0] for flag in flags}
    return " ".join([*flags, *(f for f in wanted if f.split("=")[0] not in names)])


def jax_memory_fraction(share: float, memory) -> float | None:
    """The share of a GPU's memory JAX may take when a run may use `share` of it (`gpu.gpu_share`):
    the TensorFlow path's cap (`gpu.memory_cap_mb`: that share, never more than is free, less
    the CUDA context's margin) as a fraction of `memory` (a `gpu.GPUMemory`); None when the run
    is alone on its GPU or the GPU's memory is unknown."""
    if share >= 1.0 or memory is None or not memory.total_mb:
        return None
    from cnnablate.training.gpu import memory_cap_mb

    return round(memory_cap_mb(memory, share) / memory.total_mb, 3)


def default_cache_dir() -> Path:
    """Where JAX's persistent compilation cache lives unless JAX_COMPILATION_CACHE_DIR says."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnnablate" / "jax"


def prepare_jax(threads: int, log: Callable[[str], None] = print) -> None:
    """Set up the process for Keras on JAX; must run before Keras (or JAX) is imported.

    Values the user set are kept (XLA_FLAGS gains only the flags it lacks)."""
    imported = sys.modules.get("keras")
    if imported is not None and imported.backend.backend() != "jax":
        raise BackendError(
            f"train.backend: jax, but Keras is already imported with the "
            f"{imported.backend.backend()} backend in this process; run it in a fresh process "
            "(Keras picks its backend once, at import)"
        )
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["XLA_FLAGS"] = _xla_flags(os.environ.get("XLA_FLAGS", ""), threads)
    os.environ.setdefault(ENV_CACHE_DIR, str(default_cache_dir()))
    os.environ.setdefault(ENV_CACHE_MIN_SECONDS, "0")
    # JAX's cache does its file I/O through etils.epath where that is installed (tfds brings
    # it), which looks for TensorFlow on every access: with TensorFlow hidden from the job
    # every cache read and write failed (a warning each, nothing cached). etils's own switch.
    os.environ.setdefault("EPATH_USE_TF", "false")
    from cnnablate.training.gpu import ENV_RUNS_PER_GPU, _split_ids, gpu_memory, gpu_share

    runs = max(1, int(os.environ.get(ENV_RUNS_PER_GPU) or 1))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = _split_ids(visible or "")
    share, _ = gpu_share(runs)
    # unset CUDA_VISIBLE_DEVICES: every GPU visible, gpu_memory(None) takes the smallest
    memory = gpu_memory(ids[0] if ids else None) if (ids or visible is None) else None
    fraction = jax_memory_fraction(share, memory)
    if fraction is not None and ENV_MEM_FRACTION not in os.environ:
        os.environ[ENV_MEM_FRACTION] = str(fraction)
        os.environ.setdefault(ENV_PREALLOCATE, "false")
        log(f"gpu: JAX capped at {fraction:.3f} of the GPU's memory (a share of {share:.3g})")
    elif share < 1.0 and ENV_MEM_FRACTION not in os.environ:
        log("gpu: WARNING memory of the GPU unknown (no nvidia-smi; set "
            "CNNABLATE_GPU_MEMORY_MB): JAX not capped, it grows as needed")
        os.environ.setdefault(ENV_PREALLOCATE, "false")


def jax_gpus(jax) -> tuple[list, str | None]:
    """JAX's GPU devices, and the error JAX raised when it has no GPU backend."""
    try:
        return list(jax.devices("gpu")), None
    except RuntimeError as error:  # "Unknown backend: 'gpu' requested, but no platforms ..."
        return [], str(error).splitlines()[0]


def configure_jax(jax, log: Callable[[str], None] = print) -> list:
    """Right after JAX is imported, before any data: the GPUs claim_gpus asked for are visible
    to JAX (else GPUUnavailable, or a warning with allow_cpu_fallback). Returns them."""
    from cnnablate.training.gpu import ENV_ALLOW_CPU, ENV_REQUEST, GPUUnavailable

    requested = int(os.environ.get(ENV_REQUEST) or 0)
    gpus, error = jax_gpus(jax)
    if len(gpus) < requested:
        shown = os.environ.get("CUDA_VISIBLE_DEVICES")
        message = (
            f"gpu: {requested} GPU(s) requested, JAX {jax.__version__} sees {len(gpus)} with "
            f"CUDA_VISIBLE_DEVICES={'unset' if shown is None else repr(shown)}"
            f"{f' ({error})' if error else ''}: a CPU-only jaxlib (requirements-jax.txt), "
            f"no usable device among those, or a driver too old for jax's CUDA 12 wheels. "
            f"{JAX_FIX}"
        )
        if os.environ.get(ENV_ALLOW_CPU) != "1":
            log(message)
            raise GPUUnavailable(message)
        log(f"WARNING {message} -- allow_cpu_fallback: training on the CPU")
    return gpus


def device_names(backend: str, tf=None) -> list[str]:
    """The accelerators the run trained on, as the backend names them (empty: the CPU)."""
    if backend == "jax":
        import jax

        return [device.device_kind for device in jax_gpus(jax)[0]]
    return [
        tf.config.experimental.get_device_details(d).get("device_name", d.name)
        for d in tf.config.list_physical_devices("GPU")
    ]
