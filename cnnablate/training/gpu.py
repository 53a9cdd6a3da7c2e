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

Which GPUs exist, first match wins: $CNNABLATE_GPUS ("0,1"; "" for none; used by the tests),
else a CUDA_VISIBLE_DEVICES the user set (only those are shared out), else `nvidia-smi -L`
(MIG instances by UUID when there are any, else GPU indices in PCI bus order).

Under SLURM ($SLURM_JOB_ID set) nothing is claimed or changed: SLURM already gave the job its
GPUs and set CUDA_VISIBLE_DEVICES. A job asking for 0 GPUs gets CUDA_VISIBLE_DEVICES="" (GPUs
hidden): `gpu: 0` means "train on the CPU", and a TensorFlow that saw the GPUs anyway would put
its work and memory on GPU 0, which another job may hold.

Fail fast: a job that asks for GPUs and would get fewer stops before it loads any data, saying
why and how to fix it (`GPUUnavailable`): at once when the machine has no GPU, else as soon as
TensorFlow starts (`configure_tensorflow`: a CPU-only build, no device visible with the job's
CUDA_VISIBLE_DEVICES, or a driver library that does not load). `allow_cpu_fallback` turns this
into a warning and the job trains on the CPU.

Several runs per GPU (`runs_per_gpu` k > 1): each GPU has k slots; a packed job holds a shared
flock on the GPU's lock file and an exclusive one on a free slot file, an exclusive job (k = 1)
an exclusive flock on the GPU's lock file, so the two kinds never mix on one GPU. Jobs spread
over the GPUs before doubling up. Each packed job caps TensorFlow's memory on its GPU at
`memory_cap_mb` (its share, less room for the CUDA contexts), so one run cannot starve the
others. Jobs sharing a GPU should use the same k. The request (count, k, fallback) travels to
`configure_tensorflow` in the environment, also under SLURM.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ENV_GPUS = "CNNABLATE_GPUS"
ENV_LOCK_DIR = "CNNABLATE_GPU_LOCK_DIR"
ENV_WAIT_S = "CNNABLATE_GPU_WAIT_S"
# What claim_gpus tells configure_tensorflow (same process, or a child it starts).
ENV_REQUEST = "CNNABLATE_GPU_REQUEST"
ENV_RUNS_PER_GPU = "CNNABLATE_RUNS_PER_GPU"
ENV_ALLOW_CPU = "CNNABLATE_ALLOW_CPU_FALLBACK"
ENV_MEMORY_MB = "CNNABLATE_GPU_MEMORY_MB"  # total memory per GPU, when nvidia-smi cannot say
# Device memory each process needs outside TensorFlow's allocator (CUDA context, cuDNN/cuBLAS
# handles and workspaces): kept free per packed run.
CONTEXT_MB = 512
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
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
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
    if os.environ.get("SLURM_JOB_ID"):
        given = os.environ.get("CUDA_VISIBLE_DEVICES")
        say(f"gpu: under SLURM, keeping CUDA_VISIBLE_DEVICES={given!r}")
        with _environment(request, set_env):
            yield _split_ids(given or "")
        return
    if count <= 0:
        say("gpu: none requested, hiding GPUs (CUDA_VISIBLE_DEVICES='')")
        with _environment({"CUDA_VISIBLE_DEVICES": "", **request}, set_env):
            yield []
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


def memory_cap_mb(total_mb: int, runs_per_gpu: int) -> int:
    """TensorFlow's memory limit for one of `runs_per_gpu` runs sharing a GPU of `total_mb`:
    an equal share of what the runs' CUDA contexts leave."""
    return max(256, (int(total_mb) - runs_per_gpu * CONTEXT_MB) // runs_per_gpu)


def gpu_total_mb(gpu_id: str) -> int | None:
    """Memory of one GPU (an id as in CUDA_VISIBLE_DEVICES): $CNNABLATE_GPU_MEMORY_MB, else
    nvidia-smi, else None."""
    if os.environ.get(ENV_MEMORY_MB):
        return int(os.environ[ENV_MEMORY_MB])
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", gpu_id],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        return int(float(out.split()[0]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def configure_tensorflow(tf, log: Callable[[str], None] = print) -> list:
    """Right after TensorFlow is imported, before any data: check it sees the GPUs the job
    asked for (claim_gpus left the request in the environment; none: no check), raising
    GPUUnavailable, or warning with allow_cpu_fallback; then cap each GPU's memory at the
    run's share when runs share GPUs, else let it grow. Returns the visible GPUs."""
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
    ids = _split_ids(os.environ.get("CUDA_VISIBLE_DEVICES") or "")
    for index, device in enumerate(gpus):
        total = gpu_total_mb(ids[index]) if index < len(ids) else None
        if runs_per_gpu > 1 and total:
            cap = memory_cap_mb(total, runs_per_gpu)
            tf.config.set_logical_device_configuration(
                device, [tf.config.LogicalDeviceConfiguration(memory_limit=cap)]
            )
            log(f"gpu: {device.name} capped at {cap} MB ({runs_per_gpu} runs share {total} MB)")
        else:
            if runs_per_gpu > 1:
                log(f"gpu: WARNING memory of {device.name} unknown (no nvidia-smi; set "
                    f"{ENV_MEMORY_MB}): not capped, it grows as needed")
            tf.config.experimental.set_memory_growth(device, True)
    return gpus
