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
its work and memory on GPU 0, which another job may hold. If a job asks for GPUs on a machine
that has none, it warns and trains on the CPU.
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
POLL_S = (0.2, 2.0)  # first and longest pause between attempts while all GPUs are taken


class GPUClaimTimeout(TimeoutError):
    """No GPU became free in time."""


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


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None when another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        return None  # another user's lock file we may not open: treat the GPU as taken
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    # Who holds it, for the person wondering why a job waits (the lock is the flock, not this).
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
    return fd


def _holders(lock_dir: Path, ids: Sequence[str]) -> str:
    parts = []
    for gpu_id in ids:
        try:
            parts.append(f"{gpu_id}: pid {(lock_dir / _lock_name(gpu_id)).read_text().strip()}")
        except OSError:
            parts.append(f"{gpu_id}: ?")
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
) -> Iterator[list[str]]:
    """Claim `count` free GPUs for the duration of the `with` block, yielding their ids.

    With `set_env`, CUDA_VISIBLE_DEVICES (and CUDA_DEVICE_ORDER=PCI_BUS_ID, so that ids mean
    what nvidia-smi shows) are set for the block and restored after it. Blocks while fewer
    than `count` GPUs are free, up to `timeout` seconds (None: $CNNABLATE_GPU_WAIT_S, else
    forever), then raises GPUClaimTimeout. All-or-nothing: a job never sits on some GPUs while
    waiting for more, so two 2-GPU jobs cannot deadlock each other.
    """
    say = log or (lambda message: None)
    count = int(count)
    if os.environ.get("SLURM_JOB_ID"):
        given = os.environ.get("CUDA_VISIBLE_DEVICES")
        say(f"gpu: under SLURM, keeping CUDA_VISIBLE_DEVICES={given!r}")
        yield _split_ids(given or "")
        return
    if count <= 0:
        say("gpu: none requested, hiding GPUs (CUDA_VISIBLE_DEVICES='')")
        with _environment({"CUDA_VISIBLE_DEVICES": ""}, set_env):
            yield []
        return
    ids = [str(i) for i in (available_gpus() if available is None else available)]
    if not ids:
        say(f"gpu: {count} requested but this machine has none; training on the CPU")
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
        held: dict[str, int] = {}
        for gpu_id in ids:
            fd = _try_lock(lock_dir / _lock_name(gpu_id))
            if fd is not None:
                held[gpu_id] = fd
                if len(held) == count:
                    break
        if len(held) == count:
            break
        for fd in held.values():  # all-or-nothing
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
        say(f"gpu: claimed {claimed} (locks in {lock_dir})")
        env = {"CUDA_VISIBLE_DEVICES": ",".join(claimed), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        with _environment(env, set_env):
            yield claimed
    finally:
        for fd in held.values():  # closing the fd drops the flock
            os.close(fd)


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
