"""cnnablate.training.gpu: local GPU pinning with per-GPU flocks, exercised by real processes on
fake
GPU ids (no GPU needed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cnnablate.training import gpu
from cnnablate.training.gpu import GPUClaimTimeout, GPUUnavailable, available_gpus, claim_gpus

REPO = Path(__file__).resolve().parents[1]

# One training job, minus the training: claim, report what it got, hold until told to stop.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from cnnablate.training.gpu import claim_gpus
    count, out, release, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    timeout = None if timeout == "none" else float(timeout)
    runs_per_gpu = int(sys.argv[5])
    def note(**kw):
        with open(out, "a") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "t": time.time(), **kw}) + "\\n")
    try:
        with claim_gpus(count, timeout=timeout, runs_per_gpu=runs_per_gpu) as ids:
            note(event="claimed", ids=ids, cvd=os.environ["CUDA_VISIBLE_DEVICES"])
            while not os.path.exists(release):
                time.sleep(0.05)
            note(event="released", ids=ids)
    except TimeoutError as error:
        note(event="timeout", message=str(error))
        sys.exit(3)
    """
)


class Workers:
    """Worker processes sharing one lock dir and one fake pool of GPU ids."""

    def __init__(self, tmp_path: Path, gpus: str):
        self.dir = tmp_path
        self.out = tmp_path / "events.jsonl"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            gpu.ENV_GPUS: gpus,
            gpu.ENV_LOCK_DIR: str(tmp_path / "locks"),
        }
        self.env.pop("SLURM_JOB_ID", None)
        self.procs: list[subprocess.Popen] = []

    def start(
        self, name: str, count: int = 1, timeout: float | None = None, runs_per_gpu: int = 1
    ) -> subprocess.Popen:
        release = self.dir / f"release-{name}"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(count),
                str(self.out),
                str(release),
                "none" if timeout is None else str(timeout),
                str(runs_per_gpu),
            ],
            env=self.env,
        )
        proc.release_file = release  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def release(self, proc: subprocess.Popen) -> None:
        proc.release_file.touch()  # type: ignore[attr-defined]
        assert proc.wait(timeout=30) == 0

    def events(self, kind: str | None = None) -> list[dict]:
        if not self.out.exists():
            return []
        rows = [json.loads(line) for line in self.out.read_text().splitlines()]
        return [r for r in rows if kind is None or r["event"] == kind]

    def claimed_by(self, proc: subprocess.Popen) -> list[str] | None:
        rows = [r for r in self.events("claimed") if r["pid"] == proc.pid]
        return rows[0]["ids"] if rows else None

    def wait_claims(self, n: int, timeout: float = 30.0) -> list[dict]:
        end = time.monotonic() + timeout
        while len(self.events("claimed")) < n:
            assert time.monotonic() < end, f"only {self.events()} after {timeout} s"
            time.sleep(0.05)
        return self.events("claimed")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(tmp_path):
    pools: list[Workers] = []

    def make(gpus: str = "0,1") -> Workers:
        pools.append(Workers(tmp_path, gpus))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def test_n_jobs_get_n_distinct_gpus(workers):
    pool = workers("0,1,2")
    procs = [pool.start(f"j{i}") for i in range(3)]
    claims = pool.wait_claims(3)
    ids = sorted(c["ids"][0] for c in claims)
    assert ids == ["0", "1", "2"]
    assert all(c["cvd"] == c["ids"][0] for c in claims)
    for proc in procs:
        pool.release(proc)


def test_extra_job_waits_until_a_gpu_is_released(workers):
    pool = workers("0,1")
    first, second = pool.start("a"), pool.start("b")
    pool.wait_claims(2)
    third = pool.start("c")
    time.sleep(1.5)
    assert pool.claimed_by(third) is None and third.poll() is None  # still waiting
    freed = pool.claimed_by(first)
    pool.release(first)
    pool.wait_claims(3)
    assert pool.claimed_by(third) == freed
    released_at = next(r["t"] for r in pool.events("released") if r["pid"] == first.pid)
    claimed_at = next(r["t"] for r in pool.events("claimed") if r["pid"] == third.pid)
    assert claimed_at >= released_at
    pool.release(second)
    pool.release(third)


def test_extra_job_times_out_clearly(workers):
    pool = workers("0,1")
    holders = [pool.start("a"), pool.start("b")]
    pool.wait_claims(2)
    late = pool.start("late", timeout=0.5)
    assert late.wait(timeout=30) == 3
    (timeout,) = pool.events("timeout")
    assert "no 1 of GPUs ['0', '1'] free after 0.5 s" in timeout["message"]
    assert str(holders[0].pid) in timeout["message"]  # says who holds them
    for proc in holders:
        pool.release(proc)


def test_killed_job_releases_its_gpu(workers):
    pool = workers("0")
    victim = pool.start("victim")
    pool.wait_claims(1)
    waiting = pool.start("next")
    time.sleep(0.5)
    assert pool.claimed_by(waiting) is None
    victim.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel cleans up
    victim.wait()
    pool.wait_claims(2)
    assert pool.claimed_by(waiting) == ["0"]
    pool.release(waiting)


def test_multi_gpu_claims_are_all_or_nothing(workers):
    pool = workers("0,1,2")
    two = pool.start("two", count=2)
    pool.wait_claims(1)
    # one GPU is free: a 2-GPU job waits without sitting on it, so a 1-GPU job still gets it
    waiting = pool.start("waiting", count=2, timeout=3)
    time.sleep(0.5)
    one = pool.start("one", count=1)
    pool.wait_claims(2)
    assert sorted(pool.claimed_by(two) + pool.claimed_by(one)) == ["0", "1", "2"]
    assert waiting.wait(timeout=30) == 3
    pool.release(one)
    pool.release(two)


def test_in_process_claim_sets_and_restores_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7,8")
    messages: list[str] = []
    with claim_gpus(1, lock_dir=tmp_path, log=messages.append) as ids:
        assert ids == ["7"]  # the user's CUDA_VISIBLE_DEVICES is the pool
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        with claim_gpus(1, lock_dir=tmp_path, available=["7", "8"]) as other:
            assert other == ["8"]  # flock is per open file: a second claim in-process works
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "7,8"
    assert any("claimed ['7']" in m for m in messages)


def test_zero_gpus_hides_them(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with claim_gpus(0, available=["0", "1"], lock_dir=tmp_path) as ids:
        assert ids == [] and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_slurm_assignment_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with claim_gpus(1, available=["0", "1"], lock_dir=tmp_path / "locks") as ids:
        assert ids == ["1"] and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    with claim_gpus(0, lock_dir=tmp_path / "locks"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"  # not hidden either
    assert not (tmp_path / "locks").exists()  # nothing claimed


def test_no_gpus_on_the_machine_trains_on_cpu(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    messages: list[str] = []
    with claim_gpus(1, available=[], lock_dir=tmp_path, log=messages.append) as ids:
        assert ids == []
    assert "has none" in messages[0]


def test_more_gpus_than_the_machine_has_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(ValueError, match="3 GPUs requested, this machine has 2"):
        with claim_gpus(3, available=[0, 1], lock_dir=tmp_path):
            pass


def test_available_gpus_sources(monkeypatch, tmp_path):
    monkeypatch.setenv(gpu.ENV_GPUS, "0, 1,3")
    assert available_gpus() == ["0", "1", "3"]
    monkeypatch.setenv(gpu.ENV_GPUS, "")
    assert available_gpus() == []
    monkeypatch.delenv(gpu.ENV_GPUS)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert available_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA A100 (UUID: GPU-aaa)'\n"
        "echo 'GPU 1: NVIDIA A100 (UUID: GPU-bbb)'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert available_gpus() == ["0", "1"]
    fake.write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA A100 (UUID: GPU-aaa)'\n"
        "echo '  MIG 3g.20gb     Device  0: (UUID: MIG-1111)'\n"
        "echo '  MIG 3g.20gb     Device  1: (UUID: MIG-2222)'\n"
    )
    assert available_gpus() == ["MIG-1111", "MIG-2222"]


def test_timeout_from_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv(gpu.ENV_WAIT_S, "0.3")
    with claim_gpus(1, available=["0"], lock_dir=tmp_path):
        # another open file description on the same lock file: a second job's view
        start = time.monotonic()
        with pytest.raises(GPUClaimTimeout):
            with claim_gpus(1, available=["0"], lock_dir=tmp_path):
                pass
        assert 0.25 < time.monotonic() - start < 5


def test_runs_per_gpu_packs_k_jobs_on_each_gpu_then_waits(workers):
    pool = workers("0,1")
    procs = [pool.start(f"p{i}", runs_per_gpu=2) for i in range(4)]
    claims = pool.wait_claims(4)
    assert sorted(c["ids"][0] for c in claims) == ["0", "0", "1", "1"]
    # spread before doubling up: the first two claims took different GPUs
    first_two = sorted(claims, key=lambda c: c["t"])[:2]
    assert {c["ids"][0] for c in first_two} == {"0", "1"}
    fifth = pool.start("p4", timeout=1.0, runs_per_gpu=2)
    assert fifth.wait(timeout=30) == 3  # both slots of both GPUs taken
    pool.release(procs[1])
    freed = pool.claimed_by(procs[1])
    sixth = pool.start("p5", runs_per_gpu=2)
    pool.wait_claims(5)
    assert pool.claimed_by(sixth) == freed
    for proc in [procs[0], *procs[2:], sixth]:
        pool.release(proc)


def test_packed_and_exclusive_jobs_never_share_a_gpu(workers):
    pool = workers("0")
    packed = pool.start("packed", runs_per_gpu=4)
    pool.wait_claims(1)
    exclusive = pool.start("exclusive", timeout=1.0)
    assert exclusive.wait(timeout=30) == 3
    pool.release(packed)
    alone = pool.start("alone")
    pool.wait_claims(2)
    late_packed = pool.start("late", timeout=1.0, runs_per_gpu=4)
    assert late_packed.wait(timeout=30) == 3
    pool.release(alone)


def test_request_travels_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with claim_gpus(1, available=["0"], lock_dir=tmp_path, runs_per_gpu=3,
                    allow_cpu_fallback=False):
        assert os.environ[gpu.ENV_REQUEST] == "1"
        assert os.environ[gpu.ENV_RUNS_PER_GPU] == "3"
        assert os.environ[gpu.ENV_ALLOW_CPU] == "0"
    assert gpu.ENV_REQUEST not in os.environ
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with claim_gpus(1, runs_per_gpu=4, allow_cpu_fallback=True):
        assert os.environ[gpu.ENV_RUNS_PER_GPU] == "4" and os.environ[gpu.ENV_ALLOW_CPU] == "1"


def test_no_gpus_on_the_machine_fails_at_once_without_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(GPUUnavailable, match="this machine has none.*allow_cpu_fallback"):
        with claim_gpus(1, available=[], lock_dir=tmp_path, allow_cpu_fallback=False):
            pass


def test_memory_cap_is_an_equal_share_of_what_the_contexts_leave():
    assert gpu.memory_cap_mb(16384, 4) == 3584  # (16384 - 4 * 512) / 4
    assert gpu.memory_cap_mb(81920, 2) == 40448  # (81920 - 1024) / 2
    assert gpu.memory_cap_mb(1024, 8) == 256  # never below 256 MB


@pytest.mark.parametrize(
    ("kwargs", "cause"),
    [
        ({"built_with_cuda": False}, "CPU-only build"),
        ({"built_with_cuda": True, "list_error": "RuntimeError: CUDA_ERROR_NO_DEVICE"},
         "TensorFlow reported: RuntimeError: CUDA_ERROR_NO_DEVICE"),
        ({"built_with_cuda": True, "driver_error": "libcuda.so.1: cannot open shared object"},
         "NVIDIA driver library does not load (libcuda.so.1: cannot open shared object)"),
        ({"built_with_cuda": True, "cuda_visible_devices": "3"},
         "with CUDA_VISIBLE_DEVICES='3': no usable device"),
        ({"built_with_cuda": True, "cuda_visible_devices": None},
         "with CUDA_VISIBLE_DEVICES=unset"),
    ],
)
def test_missing_gpus_message_names_the_cause_and_the_fix(kwargs, cause):
    kwargs = {"cuda_visible_devices": "0", **kwargs}
    message = gpu.missing_gpus_message(2, 0, **kwargs)
    assert message.startswith("gpu: 2 GPU(s) requested, TensorFlow sees 0")
    assert cause in message
    assert "requirements-gpu.txt" in message and "allow_cpu_fallback: true" in message


def test_configure_tensorflow_on_this_cpu_only_tensorflow(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this TensorFlow sees a GPU")
    messages: list[str] = []
    monkeypatch.setenv(gpu.ENV_REQUEST, "1")
    monkeypatch.setenv(gpu.ENV_ALLOW_CPU, "0")
    with pytest.raises(GPUUnavailable, match="sees 0"):
        gpu.configure_tensorflow(tf, messages.append)
    assert ("CPU-only build" in messages[-1]) == (not tf.test.is_built_with_cuda())
    monkeypatch.setenv(gpu.ENV_ALLOW_CPU, "1")
    assert gpu.configure_tensorflow(tf, messages.append) == []
    assert messages[-1].startswith("WARNING gpu: 1 GPU(s) requested")
    monkeypatch.setenv(gpu.ENV_REQUEST, "0")
    messages.clear()
    assert gpu.configure_tensorflow(tf, messages.append) == [] and messages == []
