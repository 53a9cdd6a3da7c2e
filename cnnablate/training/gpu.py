"""Give each training job its own GPU(s) on one multi-GPU machine.

Snakemake counts a `gpu` resource locally only with `--resources gpu=N`, and even then never
says *which* GPU a job may use: every TensorFlow process would start on GPU 0. So each job
claims free GPU ids itself, before TensorFlow is imported:

    with claim_gpus(snakemake.resources.get("gpu", 0)) as ids:
        ...  # CUDA_VISIBLE_DEVICES is set to ",".join(ids) here; import TensorFlow now

A claim is an exclusive `fcntl.flock` on one file per GPU id in a lock directory shared by all
jobs of all workflows on the machine. The kernel drops a flock when its process dies, so a
crashed or SIGKILLed job never leaves a GPU claimed. Lock files are opened close-on-exec; a
child created by a bare fork() (not fork+exec) would share the lock until it exits.

GPU memory, compute capability and the driver's version come from NVML (nvidia-ml-py, where
installed: requirements-gpu-extras.txt), else from nvidia-smi.

Which GPUs exist, first match wins: $CNNABLATE_GPUS ("0,1"; "" for none; used by the tests),
else a CUDA_VISIBLE_DEVICES the user set (only those are shared out), else `nvidia-smi -L`
(MIG instances by UUID when there are any, else GPU indices in PCI bus order).

Under SLURM ($SLURM_JOB_ID set) nothing is claimed or changed: SLURM already gave the job its
GPUs and set CUDA_VISIBLE_DEVICES. A job asking for 0 GPUs gets CUDA_VISIBLE_DEVICES="" (GPUs
hidden), under SLURM too (a site that does not confine jobs to their devices leaves every GPU
visible to a job that asked for none): `gpu: 0` means "train on the CPU", and a TensorFlow that
saw the GPUs anyway would take most of GPU 0's memory, which other jobs hold. `hide_gpus` does
the same for jobs that never need a GPU (data preparation).

Fail fast: a job that asks for GPUs and would get fewer stops before it loads any data, saying
why and how to fix it (`GPUUnavailable`): at once when the machine has no GPU, else as soon as
TensorFlow starts (`configure_tensorflow`: a CPU-only build, no device visible with the job's
CUDA_VISIBLE_DEVICES, or a driver library that does not load). `allow_cpu_fallback` turns this
into a warning and the job trains on the CPU. Listing devices succeeds even where the driver
cannot run the build's kernels, so `check_kernels` then runs one small conv and one gather on
each GPU and reads the results back; a failure stops the job with the driver's version, the
build's CUDA and cuDNN, and the fix (`kernel_failure_message`).

Several runs per GPU (`runs_per_gpu` k > 1): each GPU has k slots; a packed job holds a shared
flock on the GPU's lock file and an exclusive one on a free slot file, an exclusive job (k = 1)
an exclusive flock on the GPU's lock file, so the two kinds never mix on one GPU. Jobs spread
over the GPUs before doubling up. Each packed job caps TensorFlow's memory on its GPU at
`memory_cap_mb`: its share of the GPU (1/k; under SLURM, the shards it holds of the GPU's
shards, when fewer), never more than the memory free when it starts, less `context_margin_mb`
for its own CUDA context and libraries. So one run cannot starve the others, nor take what
another process already holds, also where CUDA_VISIBLE_DEVICES is unset or names a MIG
instance (`gpu_memory`). Jobs sharing a GPU should use the same k. The request (count, k,
fallback) travels to `configure_tensorflow` in the environment, also under SLURM.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV_GPUS = "CNNABLATE_GPUS"
ENV_LOCK_DIR = "CNNABLATE_GPU_LOCK_DIR"
ENV_WAIT_S = "CNNABLATE_GPU_WAIT_S"
# What claim_gpus tells configure_tensorflow (same process, or a child it starts).
ENV_REQUEST = "CNNABLATE_GPU_REQUEST"
ENV_RUNS_PER_GPU = "CNNABLATE_RUNS_PER_GPU"
ENV_ALLOW_CPU = "CNNABLATE_ALLOW_CPU_FALLBACK"
ENV_MEMORY_MB = "CNNABLATE_GPU_MEMORY_MB"  # memory per GPU, when nvidia-smi cannot say
# Device memory each process needs outside TensorFlow's allocator (its CUDA context, cuDNN and
# cuBLAS handles and workspaces, loaded kernels), kept free per packed run: what TensorFlow
# itself leaves for these when one process takes a whole GPU (MinSystemMemory in
# tensorflow/core/common_runtime/gpu/gpu_device.cc), by the GPU's compute capability major,
# 225 MiB where under 2 GiB is available; the largest where the capability is unknown.
SYSTEM_MEMORY_MB = {6: 500, 7: 1050, 8: 1536, 9: 1800}
SMALL_GPU_SYSTEM_MB = 225
MIN_CAP_MB = 256  # a packed run with less than this for TensorFlow would not train
# A MIG instance's memory from its profile name ("3g.20gb"): the names round up (a 1g.10gb
# instance has less than 10 GiB), so this fraction of the named size, a lower bound.
MIG_NAME_FRACTION = 0.95  # nvidia-smi's fallback only: NVML gives the instance's memory
# CUDA's JIT cache holds the kernels it compiles from PTX (every kernel of the build on a GPU
# newer than its prebuilt ones: Hopper with TensorFlow 2.21, built for sm_60-sm_89 plus
# compute_90 PTX). Its default (256 MiB or 1 GiB by CUDA version) is too small for them, so
# each run would compile them again (minutes); 4 GiB is the most it allows (CUDA C++
# Programming Guide, "CUDA Environment Variables"). Set for GPU jobs unless the user set it.
CUDA_CACHE_MAXSIZE = str(4 * 2**30)
POLL_S = (0.2, 2.0)  # first and longest pause between attempts while all GPUs are taken


class GPUClaimTimeout(TimeoutError):
    """No GPU became free in time."""


class GPUUnavailable(RuntimeError):
    """The job asked for GPUs and would train on fewer; the message says why and the fix."""


FIX = (
    "Fix: on a GPU host install requirements-gpu.txt (`make gpu-env`: tensorflow[and-cuda]) "
    "or run with --use-conda (envs/train-gpu.yaml); or set `resources: {gpu: 0}` to train on "
    "the CPU, or `resources: {allow_cpu_fallback: true}` to let GPU runs fall back to it."
)


def default_lock_dir() -> Path:
    """$CNNABLATE_GPU_LOCK_DIR, else one directory in the system temp dir for the machine:
    jobs of different workflows (and users) on one machine must see each other's claims."""
    env = os.environ.get(ENV_LOCK_DIR)
    return Path(env) if env else Path(tempfile.gettempdir()) / "cnnablate-gpu-locks"


def _split_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    # CUDA's own spelling of "no GPU"
    return [] if ids in (["-1"], ["none"], ["NoDevFiles"]) else ids


def _nvidia_smi_ids() -> list[str]:
    out = _run_nvidia_smi("-L") or ""
    migs = re.findall(r"^\s+MIG .*\(UUID: (MIG-[^)]+)\)", out, flags=re.M)
    return migs or re.findall(r"^GPU (\d+):", out, flags=re.M)


def available_gpus() -> list[str]:
    """The ids of the GPUs jobs on this machine share (see the module docstring)."""
    if ENV_GPUS in os.environ:
        return _split_ids(os.environ[ENV_GPUS])
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return _split_ids(os.environ["CUDA_VISIBLE_DEVICES"])
    return _nvidia_smi_ids()


def _lock_name(gpu_id: str) -> str:
    return "gpu-" + re.sub(r"[^A-Za-z0-9_.-]", "_", gpu_id) + ".lock"


def _slot_name(gpu_id: str, slot: int | str) -> str:
    return _lock_name(gpu_id).replace(".lock", f".slot{slot}.lock")


def _try_lock(path: Path, shared: bool = False) -> int | None:
    """An fd holding an exclusive (or shared) flock on `path`, or None when another process
    holds a conflicting one."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        return None  # another user's lock file we may not open: treat the GPU as taken
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if shared:
        return fd  # several holders: the slot files say who
    # Who holds it, for the person wondering why a job waits (the lock is the flock, not this).
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
    return fd


def _holders(lock_dir: Path, ids: Sequence[str]) -> str:
    parts = []
    for gpu_id in ids:
        files = [lock_dir / _lock_name(gpu_id), *sorted(lock_dir.glob(_slot_name(gpu_id, "*")))]
        pids = []
        for path in files:
            with contextlib.suppress(OSError):
                if text := path.read_text().strip():
                    pids.append(text)
        parts.append(f"{gpu_id}: pid {', '.join(pids) or '?'}")
    return "; ".join(parts)


def _open_lock_dir(lock_dir: Path) -> None:
    if not lock_dir.exists():
        lock_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # shared by all users, like /tmp itself
            lock_dir.chmod(0o1777)


@contextlib.contextmanager
def claim_gpus(
    count: int,
    available: Sequence[int | str] | None = None,
    lock_dir: str | Path | None = None,
    timeout: float | None = None,
    log: Callable[[str], None] | None = None,
    set_env: bool = True,
    runs_per_gpu: int = 1,
    allow_cpu_fallback: bool = True,
) -> Iterator[list[str]]:
    """Claim `count` free GPUs for the duration of the `with` block, yielding their ids.

    With `set_env`, CUDA_VISIBLE_DEVICES (and CUDA_DEVICE_ORDER=PCI_BUS_ID, so that ids mean
    what nvidia-smi shows) are set for the block and restored after it. Blocks while fewer
    than `count` GPUs are free, up to `timeout` seconds (None: $CNNABLATE_GPU_WAIT_S, else
    forever), then raises GPUClaimTimeout. All-or-nothing: a job never sits on some GPUs while
    waiting for more, so two 2-GPU jobs cannot deadlock each other.

    `runs_per_gpu` k > 1 claims one of k slots on each GPU instead of the whole GPU. Without
    `allow_cpu_fallback`, asking for GPUs on a machine with none raises GPUUnavailable. The
    request is left in the environment for `configure_tensorflow`.
    """
    say = log or (lambda message: None)
    count, runs_per_gpu = int(count), max(1, int(runs_per_gpu))
    request = {
        ENV_REQUEST: str(max(0, count)),
        ENV_RUNS_PER_GPU: str(runs_per_gpu),
        ENV_ALLOW_CPU: "1" if allow_cpu_fallback else "0",
    }
    if count <= 0:
        say("gpu: none requested, hiding GPUs (CUDA_VISIBLE_DEVICES='')")
        with _environment({"CUDA_VISIBLE_DEVICES": "", **request}, set_env):
            yield []
        return
    if "CUDA_CACHE_MAXSIZE" not in os.environ:
        request["CUDA_CACHE_MAXSIZE"] = CUDA_CACHE_MAXSIZE
    if os.environ.get("SLURM_JOB_ID"):
        given = os.environ.get("CUDA_VISIBLE_DEVICES")
        say(f"gpu: under SLURM, keeping CUDA_VISIBLE_DEVICES={given!r}")
        with _environment(request, set_env):
            yield _split_ids(given or "")
        return
    ids = [str(i) for i in (available_gpus() if available is None else available)]
    if not ids:
        if not allow_cpu_fallback:
            raise GPUUnavailable(
                f"gpu: {count} GPU(s) requested but this machine has none (nvidia-smi lists "
                f"none; {ENV_GPUS}={os.environ.get(ENV_GPUS)!r}, CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}). Run GPU studies on a GPU "
                f"machine. {FIX}"
            )
        say(f"gpu: {count} requested but this machine has none; training on the CPU "
            "(allow_cpu_fallback)")
        with _environment(request, set_env):
            yield []
        return
    if count > len(ids):
        raise ValueError(f"gpu: {count} GPUs requested, this machine has {len(ids)} ({ids})")

    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    _open_lock_dir(lock_dir)
    if timeout is None and os.environ.get(ENV_WAIT_S):
        timeout = float(os.environ[ENV_WAIT_S])
    deadline = None if timeout is None else time.monotonic() + timeout
    pause, waited = POLL_S[0], False
    while True:
        held = _try_claim(lock_dir, ids, count, runs_per_gpu)
        if len(held) == count:
            break
        for fds in held.values():  # all-or-nothing
            for fd in fds:
                os.close(fd)
        if deadline is not None and time.monotonic() >= deadline:
            raise GPUClaimTimeout(
                f"gpu: no {count} of GPUs {ids} free after {timeout:g} s "
                f"(locks in {lock_dir}: {_holders(lock_dir, ids)})"
            )
        if not waited:
            say(f"gpu: waiting for {count} free GPU(s) of {ids} ({_holders(lock_dir, ids)})")
            waited = True
        nap = pause if deadline is None else min(pause, max(0.0, deadline - time.monotonic()))
        time.sleep(nap)
        pause = min(pause * 2, POLL_S[1])

    claimed = list(held)
    try:
        shared = f", {runs_per_gpu} runs per GPU" if runs_per_gpu > 1 else ""
        say(f"gpu: claimed {claimed}{shared} (locks in {lock_dir})")
        env = {"CUDA_VISIBLE_DEVICES": ",".join(claimed), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        with _environment({**env, **request}, set_env):
            yield claimed
    finally:
        for fds in held.values():  # closing the fd drops the flock
            for fd in fds:
                os.close(fd)


def _try_claim(lock_dir: Path, ids: Sequence[str], count: int, runs_per_gpu: int
               ) -> dict[str, list[int]]:
    """One attempt: up to `count` GPUs, each with the fds of its flocks. Slot-major order, so
    packed jobs spread over the GPUs before they double up."""
    held: dict[str, list[int]] = {}
    if runs_per_gpu == 1:
        for gpu_id in ids:
            fd = _try_lock(lock_dir / _lock_name(gpu_id))
            if fd is not None:
                held[gpu_id] = [fd]
                if len(held) == count:
                    break
        return held
    for slot in range(runs_per_gpu):
        for gpu_id in ids:
            if gpu_id in held:
                continue
            gpu_fd = _try_lock(lock_dir / _lock_name(gpu_id), shared=True)
            if gpu_fd is None:
                continue  # an exclusive job holds this GPU
            slot_fd = _try_lock(lock_dir / _slot_name(gpu_id, slot))
            if slot_fd is None:
                os.close(gpu_fd)
                continue
            held[gpu_id] = [gpu_fd, slot_fd]
            if len(held) == count:
                return held
    return held


@contextlib.contextmanager
def _environment(values: dict[str, str], apply: bool) -> Iterator[None]:
    if not apply:
        yield
        return
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def missing_gpus_message(
    requested: int,
    seen: int,
    built_with_cuda: bool,
    cuda_visible_devices: str | None,
    driver_error: str | None = None,
    list_error: str | None = None,
) -> str:
    """Why TensorFlow sees `seen` of the `requested` GPUs, and the fix (pure: testable)."""
    head = f"gpu: {requested} GPU(s) requested, TensorFlow sees {seen}"
    if not built_with_cuda:
        return (f"{head}: this TensorFlow is a CPU-only build (tensorflow-cpu, from "
                f"requirements.txt / envs/train.yaml). {FIX}")
    if list_error:
        return f"{head}: TensorFlow reported: {list_error}. {FIX}"
    if driver_error:
        return (f"{head}: the NVIDIA driver library does not load ({driver_error}); is this a "
                f"GPU node with the driver installed (nvidia-smi)? {FIX}")
    shown = "unset" if cuda_visible_devices is None else repr(cuda_visible_devices)
    return (f"{head} with CUDA_VISIBLE_DEVICES={shown}: no usable device among those (wrong "
            "ids, or GPUs hidden by the scheduler); TensorFlow's own messages above in this "
            "log name any CUDA library it could not load (\"Cannot dlopen some GPU "
            f"libraries\"). {FIX}")


def _driver_error() -> str | None:
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError as error:
        return str(error)
    return None


@dataclass(frozen=True)
class GPUMemory:
    """One GPU's (or MIG instance's) memory in MB as the job starts, and where it came from."""

    total_mb: int
    free_mb: int
    cc_major: int | None  # compute capability major (TensorFlow's reserve depends on it)
    source: str


def context_margin_mb(available_mb: float, cc_major: int | None) -> int:
    """Memory a process needs on a GPU beside TensorFlow's allocator: TensorFlow's own reserve
    (SYSTEM_MEMORY_MB) for `available_mb` on a GPU of compute capability `cc_major`."""
    if available_mb < 2048:
        return SMALL_GPU_SYSTEM_MB
    if cc_major is None:
        return max(SYSTEM_MEMORY_MB.values())
    return SYSTEM_MEMORY_MB[min(max(cc_major, 6), 9)]


def memory_cap_mb(memory: GPUMemory, share: float) -> int:
    """TensorFlow's memory limit for a run that may use `share` of a GPU: that share of its
    memory, never more than is free as it starts (other processes hold the rest), less the
    run's own CUDA context and libraries (`context_margin_mb`)."""
    usable = min(share * memory.total_mb, memory.free_mb)
    return int(math.floor(usable - context_margin_mb(share * memory.total_mb, memory.cc_major)))


def _run_nvidia_smi(*args: str) -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _mig_memory(uuid: str) -> GPUMemory | None:
    """A MIG instance's memory from its profile in `nvidia-smi -L` ("MIG 3g.20gb Device 0:
    (UUID: MIG-...)"): nvidia-smi's per-GPU queries report the whole GPU, not the instance."""
    listing = _run_nvidia_smi("-L") or ""
    for line in listing.splitlines():
        found = re.search(r"MIG\s+\S*?(\d+)gb\b.*\(UUID: (MIG-[^)]+)\)", line)
        if found and found.group(2) == uuid:
            mb = int(int(found.group(1)) * 1024 * MIG_NAME_FRACTION)
            return GPUMemory(mb, mb, None, f"MIG profile in nvidia-smi -L: {line.strip()}")
    return None


def _query_gpus(gpu_id: str | None = None) -> list[GPUMemory]:
    """nvidia-smi's total and free memory (and compute capability, where the driver knows the
    field) of one GPU (an index or GPU UUID), or of every GPU."""
    where = ["-i", gpu_id] if gpu_id is not None else []
    for fields in ("memory.total,memory.free,compute_cap", "memory.total,memory.free"):
        out = _run_nvidia_smi(f"--query-gpu={fields}", "--format=csv,noheader,nounits", *where)
        if out is None:
            continue
        rows = []
        try:
            for line in out.strip().splitlines():
                values = [v.strip() for v in line.split(",")]
                cc = int(float(values[2])) if len(values) > 2 else None
                rows.append(GPUMemory(int(float(values[0])), int(float(values[1])), cc,
                                      "nvidia-smi"))
        except (ValueError, IndexError):
            continue
        if rows:
            return rows
    return []


@contextlib.contextmanager
def _nvml() -> Iterator[object | None]:
    """NVML's Python binding (nvidia-ml-py, `import pynvml`), initialised for the block; None
    where it is not installed or the driver's libnvidia-ml does not load (then nvidia-smi)."""
    try:
        import pynvml
    except ImportError:
        yield None
        return
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        yield None
        return
    try:
        yield pynvml
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_mig_handle(nv, uuid: str):
    """A MIG instance's NVML handle by its UUID: directly where the driver takes MIG UUIDs,
    else by walking each GPU's MIG devices."""
    with contextlib.suppress(Exception):
        return nv.nvmlDeviceGetHandleByUUID(uuid)
    for index in range(nv.nvmlDeviceGetCount()):
        gpu_handle = nv.nvmlDeviceGetHandleByIndex(index)
        with contextlib.suppress(Exception):
            for slot in range(nv.nvmlDeviceGetMaxMigDeviceCount(gpu_handle)):
                with contextlib.suppress(Exception):
                    mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(gpu_handle, slot)
                    if _text(nv.nvmlDeviceGetUUID(mig)) == uuid:
                        return mig
    raise LookupError(f"no MIG instance {uuid}")


def _nvml_memory(gpu_id: str | None) -> list[GPUMemory] | None:
    """NVML's total and free memory and compute capability of one GPU (an index in PCI bus
    order, as claim_gpus sets CUDA_DEVICE_ORDER; a GPU UUID; a MIG instance's UUID: the
    instance's own memory) or of every GPU; None where NVML cannot say (nvidia-smi then)."""
    with _nvml() as nv:
        if nv is None:
            return None
        try:
            if gpu_id is None:
                handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
            elif gpu_id.startswith("MIG-"):
                handles = [_nvml_mig_handle(nv, gpu_id)]
            elif gpu_id.startswith("GPU-"):
                handles = [nv.nvmlDeviceGetHandleByUUID(gpu_id)]
            else:
                handles = [nv.nvmlDeviceGetHandleByIndex(int(gpu_id))]
            rows = []
            for handle in handles:
                info = nv.nvmlDeviceGetMemoryInfo(handle)
                parent = handle
                if gpu_id is not None and gpu_id.startswith("MIG-"):
                    parent = nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
                try:
                    major = int(nv.nvmlDeviceGetCudaComputeCapability(parent)[0])
                except Exception:  # noqa: BLE001 - NVMLError_NotSupported: margin for unknown
                    major = None
                rows.append(GPUMemory(int(info.total) // 2**20, int(info.free) // 2**20, major,
                                      f"NVML{' (MIG instance)' if parent is not handle else ''}"))
        except Exception:  # noqa: BLE001 - any NVML failure: nvidia-smi may still answer
            return None
        return rows or None


def gpu_memory(gpu_id: str | None) -> GPUMemory | None:
    """Memory of the GPU `gpu_id` (as in CUDA_VISIBLE_DEVICES: an index, a GPU UUID or a MIG
    instance's UUID; None: CUDA_VISIBLE_DEVICES unset, every GPU visible, so the smallest of
    them): $CNNABLATE_GPU_MEMORY_MB (taken as free too), else NVML (exact, also per MIG
    instance), else nvidia-smi (a MIG instance from its profile name), else None."""
    if os.environ.get(ENV_MEMORY_MB):
        mb = int(os.environ[ENV_MEMORY_MB])
        return GPUMemory(mb, mb, None, ENV_MEMORY_MB)
    rows = _nvml_memory(gpu_id)
    if rows:
        return min(rows, key=lambda m: (m.free_mb, m.total_mb))
    if gpu_id is not None and gpu_id.startswith("MIG-"):
        return _mig_memory(gpu_id)
    rows = _query_gpus(gpu_id)
    if not rows:
        return None
    return min(rows, key=lambda m: (m.free_mb, m.total_mb))


def _slurm_shards_per_gpu() -> int | None:
    """Shards per GPU on this SLURM node (`scontrol show node`: Gres=gpu:4,shard:32 is 8)."""
    exe, node = shutil.which("scontrol"), os.environ.get("SLURMD_NODENAME")
    if exe is None or not node:
        return None
    try:
        out = subprocess.run([exe, "show", "node", node, "-o"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gres = re.search(r"\bGres=(\S+)", out)
    if not gres:
        return None
    counts: dict[str, int] = {}
    for item in gres.group(1).split(","):
        found = re.match(r"(gpu|shard)(?::[^:(]+)?:(\d+)", item)
        if found:
            counts[found.group(1)] = counts.get(found.group(1), 0) + int(found.group(2))
    if counts.get("gpu") and counts.get("shard"):
        return counts["shard"] // counts["gpu"]
    return None


def gpu_share(runs_per_gpu: int) -> tuple[float, str]:
    """The fraction of its GPU a run may use, and why: 1/runs_per_gpu, or under SLURM the
    shards it holds ($SLURM_SHARDS_ON_NODE) of the GPU's shards when that is less (a site with
    more shards per GPU than runs_per_gpu fits more runs on a GPU than the config says)."""
    share, why = 1.0 / runs_per_gpu, f"1/{runs_per_gpu} (runs_per_gpu)"
    held = os.environ.get("SLURM_SHARDS_ON_NODE")
    if os.environ.get("SLURM_JOB_ID") and held and held.isdigit():
        per_gpu = _slurm_shards_per_gpu()
        if per_gpu and int(held) / per_gpu < share:
            share = int(held) / per_gpu
            why = (f"{held}/{per_gpu} (SLURM shards held of the GPU's; runs_per_gpu says "
                   f"1/{runs_per_gpu}: set slurm_gpu_shards: {per_gpu})")
    return share, why


def plan_memory(ids: Sequence[str | None], runs_per_gpu: int
                ) -> list[tuple[int | None, GPUMemory | None, str]]:
    """Per visible GPU: (TensorFlow's memory cap in MB, or None for memory growth; its memory;
    what the log says). Packed runs (runs_per_gpu > 1, or SLURM shards) are capped, raising
    GPUUnavailable where too little memory is free; a run alone on its GPUs is not."""
    share, why = gpu_share(runs_per_gpu)
    plans = []
    for gpu_id in ids:
        memory = gpu_memory(gpu_id)
        if share >= 1.0:
            plans.append((None, memory, "not capped (alone on its GPU): grows as needed"))
        elif memory is None:
            plans.append((None, None, f"WARNING memory unknown (no nvidia-smi; set "
                                      f"{ENV_MEMORY_MB}): not capped, it grows as needed"))
        else:
            cap = memory_cap_mb(memory, share)
            margin = context_margin_mb(share * memory.total_mb, memory.cc_major)
            said = (f"share {why} of {memory.total_mb} MB, {memory.free_mb} MB free, less "
                    f"{margin} MB for the CUDA context ({memory.source})")
            if cap < MIN_CAP_MB:
                raise GPUUnavailable(
                    f"gpu: GPU {gpu_id or '(all visible)'} leaves this run {cap} MB: {said}. "
                    "Other processes hold its memory (nvidia-smi shows them): lower "
                    "runs_per_gpu, or wait for the GPU to be free."
                )
            plans.append((cap, memory, f"capped at {cap} MB: {said}"))
    return plans


def hide_gpus(log: Callable[[str], None] | None = None) -> None:
    """For jobs that need no GPU (data preparation): CUDA_VISIBLE_DEVICES="" before anything
    imports TensorFlow, which would otherwise take most of GPU 0's memory."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if log is not None:
        log("gpu: none needed, GPUs hidden (CUDA_VISIBLE_DEVICES='')")


def driver_version() -> str:
    """The NVIDIA driver's version as NVML, else nvidia-smi, reports it, or why it cannot."""
    with _nvml() as nv:
        if nv is not None:
            with contextlib.suppress(Exception):
                return f"{_text(nv.nvmlSystemGetDriverVersion())} (NVML)"
    if shutil.which("nvidia-smi") is None:
        return "unknown (no nvidia-smi on PATH)"
    out = _run_nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    lines = (out or "").strip().splitlines()
    return f"{lines[0].strip()} (nvidia-smi)" if lines else "unknown (nvidia-smi failed)"


# Minimum Linux driver for a CUDA 12 build: 525.60.13 (CUDA minor version compatibility;
# NVIDIA, "CUDA Compatibility"), for GPUs the build has kernels for. A GPU that runs the
# build's PTX (newer than its newest sm_XY: Hopper and later with TensorFlow 2.21) needs a
# driver whose JIT compiler knows that PTX, i.e. the driver of the build's CUDA release (CUDA
# Toolkit release notes, table "CUDA Toolkit and Corresponding Driver Versions").
MIN_DRIVER_CUDA12 = "525.60.13"
DRIVER_OF_CUDA = {"12.5.1": "555.42.06", "12.5.0": "555.42.02"}


def build_info(tf) -> dict:
    """tf.sysconfig.get_build_info() (CUDA and cuDNN versions, compute capabilities) and the
    TensorFlow version."""
    try:
        info = dict(tf.sysconfig.get_build_info())
    except Exception:  # noqa: BLE001 - an odd build says nothing; the message says "unknown"
        info = {}
    return {**info, "tensorflow": getattr(tf, "__version__", "unknown")}


def kernel_failure_message(device: str, error: BaseException, info: dict, driver: str) -> str:
    """One line: which check failed where, the driver, the build's CUDA/cuDNN, and the fix."""
    first = (str(error).strip().splitlines() or [""])[0]
    head = (f"gpu: a test conv and gather on {device} failed ({type(error).__name__}: {first}); "
            f"NVIDIA driver {driver}")
    if not info.get("is_cuda_build"):
        return (f"{head}; TensorFlow {info.get('tensorflow')} is not a CUDA build "
                f"(tensorflow-cpu). {FIX}")
    cuda = info.get("cuda_version", "unknown")
    caps = ", ".join(info.get("cuda_compute_capabilities") or []) or "unknown"
    ptx_driver = DRIVER_OF_CUDA.get(str(cuda), f"the driver of CUDA {cuda}")
    return (
        f"{head}; TensorFlow {info.get('tensorflow')} built for CUDA {cuda}, cuDNN "
        f"{info.get('cudnn_version', 'unknown')}, kernels for {caps}. Fix: an NVIDIA driver "
        f">= {MIN_DRIVER_CUDA12}, and >= {ptx_driver} on GPUs newer than those kernels (they "
        "run its PTX: compute capability 9.0 and up), or another node; docs/cluster.md, "
        "\"First run on a GPU\"."
    )


def probe_inputs(index_dtype: str = "int64"):
    """The probe's NHWC images, HWIO kernel, rows to gather and their indices, in NumPy."""
    import numpy as np

    x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3) / 64.0
    w = np.linspace(-1.0, 1.0, 3 * 3 * 3 * 4, dtype=np.float32).reshape(3, 3, 3, 4)
    rows = np.arange(4 * 3, dtype=index_dtype).reshape(4, 3)
    return x, w, rows, np.array([3, 1], dtype=index_dtype)


def check_probe(x, w, rows, indices, conv, picked) -> None:
    """The device's VALID stride-1 conv of `x` by `w` and gather of `rows` at `indices`, read
    back, against NumPy's: ArithmeticError when either is wrong."""
    import numpy as np

    want = np.einsum("nhwc,hwck->nk", np.lib.stride_tricks.sliding_window_view(
        x, (3, 3), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3).reshape(-1, 3, 3, 3), w)
    if not np.allclose(np.asarray(conv).reshape(-1, 4), want, rtol=1e-3, atol=1e-3):
        raise ArithmeticError("the conv's result is wrong")
    if not np.array_equal(np.asarray(picked), rows[indices]):
        raise ArithmeticError("the gather's result is wrong")


def _probe(tf, device: str) -> None:
    """One small conv and one int64 gather (the device input path's) on `device`, read back
    and checked against NumPy: kernels that load but compute garbage fail too."""
    x, w, rows, indices = probe_inputs()
    with tf.device(device):
        conv = tf.nn.conv2d(tf.constant(x), tf.constant(w), 1, "VALID").numpy()
        picked = tf.gather(tf.constant(rows), tf.constant(indices)).numpy()
    check_probe(x, w, rows, indices, conv, picked)


def check_kernels(tf, devices: Sequence[str], log: Callable[[str], None] = print) -> None:
    """Run `_probe` on each of `devices` with soft placement off (else TensorFlow would run it
    on the CPU, silently); raise GPUUnavailable with `kernel_failure_message` on a failure.
    Logs how long each took: minutes on a GPU that compiles the build's PTX the first time."""
    soft = tf.config.get_soft_device_placement()
    tf.config.set_soft_device_placement(False)
    try:
        for device in devices:
            start = time.perf_counter()
            try:
                _probe(tf, device)
            except Exception as error:  # noqa: BLE001 - whatever CUDA raised, reported
                message = kernel_failure_message(device, error, build_info(tf), driver_version())
                log(message)
                raise GPUUnavailable(message) from error
            log(f"gpu: {device} ran a test conv and gather ({time.perf_counter() - start:.1f} s)")
    finally:
        tf.config.set_soft_device_placement(soft)


def runs_ptx(compute_capability: tuple[int, int], build_caps: Sequence[str]) -> bool:
    """Whether a GPU of `compute_capability` has no prebuilt kernels among the build's
    (`sm_XY` entries; a cubin runs on GPUs of its major version and a minor as high or
    higher), so CUDA compiles the build's PTX for it."""
    major, minor = compute_capability
    cubins = [c[3:] for c in build_caps if c.startswith("sm_")]
    return bool(cubins) and not any(
        int(c[:-1]) == major and int(c[-1]) <= minor for c in cubins if c.isdigit())


def _ptx_note(tf, device, info: dict) -> str | None:
    """Says so when `device` has no prebuilt kernels in this build and runs its PTX."""
    try:
        cc = tuple(tf.config.experimental.get_device_details(device)["compute_capability"])
    except (KeyError, TypeError, ValueError):
        return None
    caps = info.get("cuda_compute_capabilities") or []
    if not runs_ptx(cc, caps):
        return None
    return (f"gpu: {device.name} (compute capability {cc[0]}.{cc[1]}) has no prebuilt kernels in "
            f"this TensorFlow ({', '.join(caps)}): CUDA compiles them from PTX on first use, "
            f"cached in CUDA_CACHE_PATH (CUDA_CACHE_MAXSIZE="
            f"{os.environ.get('CUDA_CACHE_MAXSIZE', 'default')}); docs/cluster.md")


def configure_tensorflow(tf, log: Callable[[str], None] = print) -> list:
    """Right after TensorFlow is imported, before any data: check it sees the GPUs the job
    asked for (claim_gpus left the request in the environment; none: no check), raising
    GPUUnavailable, or warning with allow_cpu_fallback; cap each GPU's memory at the run's
    share when runs share GPUs (`plan_memory`), else let it grow; then run a conv and a gather
    on each (`check_kernels`). Returns the visible GPUs."""
    requested = int(os.environ.get(ENV_REQUEST) or 0)
    runs_per_gpu = max(1, int(os.environ.get(ENV_RUNS_PER_GPU) or 1))
    list_error = None
    try:
        gpus = tf.config.list_physical_devices("GPU")
    except Exception as error:  # noqa: BLE001 - whatever the CUDA runtime raised, reported
        gpus, list_error = [], f"{type(error).__name__}: {error}"
    if len(gpus) < requested:
        built = bool(tf.test.is_built_with_cuda())
        message = missing_gpus_message(
            requested, len(gpus), built, os.environ.get("CUDA_VISIBLE_DEVICES"),
            _driver_error() if built else None, list_error,
        )
        if os.environ.get(ENV_ALLOW_CPU) != "1":
            log(message)
            raise GPUUnavailable(message)
        log(f"WARNING {message} -- allow_cpu_fallback: training on the CPU")
    _MEMORY_MB.clear()
    if not gpus:
        return gpus
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = _split_ids(visible) if visible is not None else [None] * len(gpus)
    plans = plan_memory([ids[i] if i < len(ids) else None for i in range(len(gpus))],
                        runs_per_gpu)
    for device, (cap, memory, said) in zip(gpus, plans, strict=True):
        if cap is None:
            tf.config.experimental.set_memory_growth(device, True)
        else:
            tf.config.set_logical_device_configuration(
                device, [tf.config.LogicalDeviceConfiguration(memory_limit=cap)]
            )
        _MEMORY_MB.append(cap if cap is not None else memory and memory.free_mb)
        log(f"gpu: {device.name} {said}")
    check_kernels(tf, [f"/GPU:{i}" for i in range(len(gpus))], log)
    info = build_info(tf)
    for device in gpus:
        if note := _ptx_note(tf, device, info):
            log(note)
    return gpus


# What `configure_tensorflow` gave TensorFlow on each visible GPU (MB; None: unknown), for the
# device input path's budget (cnnablate.training.device.device_budget_bytes).
_MEMORY_MB: list[int | None] = []


def tensorflow_memory_mb(index: int = 0) -> int | None:
    """MB TensorFlow may use on visible GPU `index`: its cap, or the memory free as the job
    started where it is not capped; None before `configure_tensorflow` or when unknown."""
    return _MEMORY_MB[index] if index < len(_MEMORY_MB) else None
