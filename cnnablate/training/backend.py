"""The process set-up each Keras backend needs before Keras is imported (which backend a run
trains with: cnnablate.base.backends; a SLURM node with another KERAS_BACKEND must not train a
different run than the one planned).

Keras reads `KERAS_BACKEND` once, when it is imported, so `prepare_jax` runs before anything
imports Keras: it sets the backend, XLA's determinism flag for GPUs, a single-threaded XLA CPU
client for one-thread jobs, JAX's persistent compilation cache (`default_cache_dir`) and, for
runs packed on a GPU, the per-process memory cap of JAX's allocator. `configure_jax` then fails
fast, like `gpu.configure_tensorflow`, when the job asked for GPUs that JAX does not see, or
when one of them cannot run a small conv and gather (`check_jax_kernels`).

Plain Python at import time.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from cnnablate.base.backends import BackendError

# https://docs.jax.dev/en/latest/gpu_memory_allocation.html: without preallocation, JAX's
# allocator still stops at its memory fraction of the GPU's memory. jaxlib reads the fraction
# from XLA_CLIENT_MEM_FRACTION, and from the older name where only that is set; it refuses to
# start (ValueError) when both are set (jaxlib/xla_client.py, generate_pjrt_gpu_plugin_options).
# Older jaxlibs read only the older name.
ENV_PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
ENV_MEM_FRACTION = "XLA_CLIENT_MEM_FRACTION"
ENV_MEM_FRACTION_OLD = "XLA_PYTHON_CLIENT_MEM_FRACTION"
JAXLIB_READS_NEW_FRACTION = (0, 10)  # jaxlib 0.10.2 (the pin) reads ENV_MEM_FRACTION
# XLA's GPU kernels are deterministic only with this flag (scatter-add and reductions otherwise
# use atomics); XLA on the CPU is deterministic without it and accepts it.
DETERMINISM_FLAG = "--xla_gpu_deterministic_ops=true"
# JAX's persistent compilation cache, shared by every job of every workflow of the user: a job
# whose model and shapes were compiled before skips XLA's compile (whole steps, and the small
# eager ops of building a model; BENCHMARKS.md section 6). Compiled code, not results, is
# cached, so a run is the same with or without it.
ENV_CACHE_DIR = "JAX_COMPILATION_CACHE_DIR"
ENV_CACHE_MIN_SECONDS = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
# Bounded: JAX evicts the least recently used entries beyond this many bytes (jax/_src/
# lru_cache.py), which needs the filelock package (requirements-gpu-extras.txt, the offline
# kit); without it JAX refuses a bound, so the cache stays unbounded and the job says so.
ENV_CACHE_MAX_SIZE = "JAX_COMPILATION_CACHE_MAX_SIZE"
CACHE_MAX_BYTES = 4 * 2**30
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
    is alone on its GPU or the GPU's memory is unknown. A cap under `gpu.MIN_CAP_MB` raises
    GPUUnavailable, as on TensorFlow: a negative or tiny fraction would not train."""
    if share >= 1.0 or memory is None or not memory.total_mb:
        return None
    from cnnablate.training.gpu import MIN_CAP_MB, GPUUnavailable, memory_cap_mb

    cap = memory_cap_mb(memory, share)
    if cap < MIN_CAP_MB:
        raise GPUUnavailable(
            f"gpu: the GPU leaves this run {cap} MB ({memory.free_mb} of {memory.total_mb} MB "
            f"free, a share of {share:.3g}, {memory.source}): other processes hold its memory "
            "(nvidia-smi shows them): lower runs_per_gpu, or wait for the GPU to be free."
        )
    return round(cap / memory.total_mb, 3)


def fraction_variable(jaxlib_version: str | None) -> str:
    """The memory-fraction variable the installed jaxlib reads: ENV_MEM_FRACTION from jaxlib
    JAXLIB_READS_NEW_FRACTION on (and when the version is unknown), else the older name."""
    try:
        version = tuple(int(part) for part in (jaxlib_version or "").split(".")[:2])
    except ValueError:
        return ENV_MEM_FRACTION
    if len(version) == 2 and version < JAXLIB_READS_NEW_FRACTION:
        return ENV_MEM_FRACTION_OLD
    return ENV_MEM_FRACTION


def user_memory_fraction(environ: Mapping[str, str]) -> str | None:
    """The fraction the user set under either name (jaxlib treats an empty value as unset);
    both set is refused here in one line, where jaxlib would fail later with a traceback."""
    new, old = environ.get(ENV_MEM_FRACTION), environ.get(ENV_MEM_FRACTION_OLD)
    if new and old:
        raise BackendError(
            f"{ENV_MEM_FRACTION}={new!r} and {ENV_MEM_FRACTION_OLD}={old!r} are both set: jaxlib "
            f"refuses to start with both; unset {ENV_MEM_FRACTION_OLD} (the older name)"
        )
    return new or old or None


def _installed_jaxlib() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jaxlib")
    except PackageNotFoundError:
        return None


def _bound_cache(log: Callable[[str], None]) -> None:
    """ENV_CACHE_MAX_SIZE (CACHE_MAX_BYTES) unless the user set it; only where filelock is
    installed, which JAX's eviction needs (else JAX would fail to open the cache)."""
    import importlib.util

    if ENV_CACHE_MAX_SIZE in os.environ:
        return
    if importlib.util.find_spec("filelock") is None:
        log(f"jax: compilation cache unbounded ({os.environ[ENV_CACHE_DIR]}): JAX evicts old "
            "entries only with the filelock package (requirements-gpu-extras.txt)")
        return
    os.environ[ENV_CACHE_MAX_SIZE] = str(CACHE_MAX_BYTES)


def _cap_memory(log: Callable[[str], None]) -> None:
    """Packed runs: JAX's memory fraction at the run's share (`gpu.plan_memory`, the TensorFlow
    path's caps and its one-line GPUUnavailable when too little is free; the smallest over the
    visible GPUs: one fraction holds for all) and no preallocation. Every GPU visible
    (CUDA_VISIBLE_DEVICES unset: a SLURM site that does not confine jobs to their GPUs): no
    preallocation either, else JAX would take 75 % of every GPU of the node."""
    from cnnablate.training.gpu import (
        ENV_REQUEST,
        ENV_RUNS_PER_GPU,
        _split_ids,
        gpu_share,
        plan_memory,
    )

    mine = user_memory_fraction(os.environ)
    runs = max(1, int(os.environ.get(ENV_RUNS_PER_GPU) or 1))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids: list[str | None] = list(_split_ids(visible)) if visible is not None else [None]
    asked = int(os.environ.get(ENV_REQUEST) or 0) > 0
    if visible is None and asked and ENV_PREALLOCATE not in os.environ:
        os.environ[ENV_PREALLOCATE] = "false"
        log("gpu: CUDA_VISIBLE_DEVICES unset, every GPU of the machine visible to JAX: "
            f"{ENV_PREALLOCATE}=false, so it takes memory only where it computes")
    share, _ = gpu_share(runs)
    if share >= 1.0 or mine is not None or not ids:
        return
    plans = plan_memory(ids, runs)  # may raise GPUUnavailable (too little free)
    fractions = [round(cap / memory.total_mb, 3) for cap, memory, _ in plans
                 if cap is not None and memory is not None and memory.total_mb]
    os.environ.setdefault(ENV_PREALLOCATE, "false")
    if len(fractions) < len(plans):
        log("gpu: WARNING memory of the GPU unknown (no NVML or nvidia-smi; set "
            "CNNABLATE_GPU_MEMORY_MB): JAX not capped, it grows as needed")
        return
    name = fraction_variable(_installed_jaxlib())
    os.environ[name] = str(min(fractions))
    log(f"gpu: JAX capped at {min(fractions):.3f} of the GPU's memory ({name}; a share of "
        f"{share:.3g}: {plans[0][2]})")


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
    _bound_cache(log)
    _cap_memory(log)


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
    check_jax_kernels(jax, gpus, log)
    return gpus


def jax_kernel_failure_message(device: str, error: BaseException, versions: str,
                               driver: str) -> str:
    """One line: which device failed the probe, the driver, JAX's versions, and the fix."""
    from cnnablate.training.gpu import MIN_DRIVER_CUDA12

    first = (str(error).strip().splitlines() or [""])[0]
    return (f"gpu: a test conv and gather on {device} failed ({type(error).__name__}: {first}); "
            f"NVIDIA driver {driver}; {versions}. Fix: an NVIDIA driver >= {MIN_DRIVER_CUDA12} "
            "for jax's CUDA 12 wheels (jax-cuda12-plugin at jaxlib's version), or another node; "
            f"docs/cluster.md, \"Keras on JAX\". {JAX_FIX}")


def _jax_versions(jax) -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join([f"jax {jax.__version__}", *found])


def check_jax_kernels(jax, devices: list, log: Callable[[str], None] = print) -> None:
    """On each of `devices` (JAX devices), before any data: one small conv (at full float32
    precision: no TF32) and one int32 gather, read back and checked against NumPy
    (`gpu.check_probe`), as `gpu.check_kernels` does on TensorFlow. Listing devices succeeds
    where the driver cannot run the plugin's kernels; this fails then, in one line
    (GPUUnavailable, `jax_kernel_failure_message`)."""
    from cnnablate.training.gpu import GPUUnavailable, check_probe, driver_version, probe_inputs

    x, w, rows, indices = probe_inputs("int32")
    for device in devices:
        start = time.perf_counter()
        try:
            conv = jax.lax.conv_general_dilated(
                jax.device_put(x, device), jax.device_put(w, device), (1, 1), "VALID",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                precision=jax.lax.Precision.HIGHEST)
            picked = jax.numpy.take(jax.device_put(rows, device),
                                    jax.device_put(indices, device), axis=0)
            check_probe(x, w, rows, indices, jax.device_get(conv), jax.device_get(picked))
        except Exception as error:  # noqa: BLE001 - whatever the plugin raised, reported
            message = jax_kernel_failure_message(str(device), error, _jax_versions(jax),
                                                 driver_version())
            log(message)
            raise GPUUnavailable(message) from error
        log(f"gpu: {device} ran a test conv and gather ({time.perf_counter() - start:.1f} s)")


def device_names(backend: str, tf=None) -> list[str]:
    """The accelerators the run trained on, as the backend names them (empty: the CPU)."""
    if backend == "jax":
        import jax

        return [device.device_kind for device in jax_gpus(jax)[0]]
    return [
        tf.config.experimental.get_device_details(d).get("device_name", d.name)
        for d in tf.config.list_physical_devices("GPU")
    ]
