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
    assert not (tmp_path / "locks").exists()  # nothing claimed


@pytest.mark.parametrize("given", ["1", None])
def test_a_slurm_job_without_gpus_sees_none(tmp_path, monkeypatch, given):
    """A site that does not confine jobs to their devices shows every GPU (or the one of an
    earlier step) to a `gpu: 0` job; its TensorFlow would take most of GPU 0's memory."""
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    if given is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", given)
    with claim_gpus(0, lock_dir=tmp_path / "locks") as ids:
        assert ids == [] and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == given
    assert not (tmp_path / "locks").exists()


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
    # one at a time, so that the order of the claims is known (the times they record need not
    # follow the order of the locks when the workers start together on a loaded machine)
    procs = []
    for i in range(4):
        procs.append(pool.start(f"p{i}", runs_per_gpu=2))
        claims = pool.wait_claims(i + 1)
        if i == 1:  # spread before doubling up: the first two claims took different GPUs
            assert {c["ids"][0] for c in claims} == {"0", "1"}
    assert sorted(c["ids"][0] for c in claims) == ["0", "0", "1", "1"]
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
        assert os.environ["CUDA_CACHE_MAXSIZE"] == str(4 * 2**30)  # PTX JIT cache: its maximum
    assert gpu.ENV_REQUEST not in os.environ
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("CUDA_CACHE_MAXSIZE", "123")
    with claim_gpus(1, runs_per_gpu=4, allow_cpu_fallback=True):
        assert os.environ[gpu.ENV_RUNS_PER_GPU] == "4" and os.environ[gpu.ENV_ALLOW_CPU] == "1"
        assert os.environ["CUDA_CACHE_MAXSIZE"] == "123"  # the user's setting stays


def test_no_gpus_on_the_machine_fails_at_once_without_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(GPUUnavailable, match="this machine has none.*allow_cpu_fallback"):
        with claim_gpus(1, available=[], lock_dir=tmp_path, allow_cpu_fallback=False):
            pass


# --- memory of packed runs, from fake nvidia-smi / scontrol answers (the environment) ---

def fake_tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    path.chmod(0o755)


def fake_nvidia_smi(bin_dir: Path, gpus: list[tuple[int, int, str]], migs: str = "",
                    driver: str = "535.104.05", compute_cap: bool = True) -> None:
    """A nvidia-smi answering -L, the memory queries (all GPUs, or -i INDEX) and the driver
    version like the real one; `gpus`: (total MB, free MB, compute capability) per GPU.
    Without `compute_cap` it refuses that field, as drivers before it did."""
    rows = "\n".join(f"{t}, {f}, {c}" for t, f, c in gpus)
    rows_no_cc = "\n".join(f"{t}, {f}" for t, f, _ in gpus)
    listing = "\n".join(f"GPU {i}: NVIDIA Test (UUID: GPU-{i})" for i in range(len(gpus)))
    refuse = "" if compute_cap else (
        '*compute_cap*) echo \'Field "compute_cap" is not a valid field to query.\'; exit 2 ;;')
    fake_tool(bin_dir, "nvidia-smi", f"""
        prev=""; for a in "$@"; do [ "$prev" = "-i" ] && idx=$a; prev=$a; done
        case "$*" in
          -L) printf '%s\\n' "{listing}"; printf "{migs}" ;;
          *driver_version*) echo {driver} ;;
          {refuse}
          *compute_cap*-i*) printf '%s\\n' "{rows}" | sed -n "$(( idx + 1 ))p" ;;
          *compute_cap*) printf '%s\\n' "{rows}" ;;
          *memory.free*-i*) printf '%s\\n' "{rows_no_cc}" | sed -n "$(( idx + 1 ))p" ;;
          *memory.free*) printf '%s\\n' "{rows_no_cc}" ;;
          *) exit 9 ;;
        esac
        """)


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """A directory of fake tools first on PATH, and no SLURM or memory override."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for var in ("SLURM_JOB_ID", "SLURM_SHARDS_ON_NODE", "SLURMD_NODENAME", gpu.ENV_MEMORY_MB):
        monkeypatch.delenv(var, raising=False)
    return bin_dir


def margin(total_mb: float, cc: int | None) -> int:
    """TensorFlow's MinSystemMemory (gpu_device.cc), written out again for the tests."""
    if total_mb < 2048:
        return 225
    return {6: 500, 7: 1050, 8: 1536, 9: 1800, None: 1800}[cc]


def test_the_fake_nvidia_smi_answers_like_the_real_one(tools):
    fake_nvidia_smi(tools, [(16384, 16000, "7.5"), (81920, 80000, "9.0")])
    query = ["nvidia-smi", "--query-gpu=memory.total,memory.free,compute_cap",
             "--format=csv,noheader,nounits"]
    assert subprocess.run([*query, "-i", "1"], capture_output=True, text=True,
                          check=True).stdout.strip() == "81920, 80000, 9.0"
    assert len(subprocess.run(query, capture_output=True, text=True,
                              check=True).stdout.split("\n")) == 3


def test_packed_runs_are_capped_from_free_memory_less_a_context_margin(tools):
    # GPU 1: 16 GB, of which another process holds 12 GB
    fake_nvidia_smi(tools, [(81920, 81000, "8.0"), (16384, 4096, "7.5")])
    ((cap0, _, said0),) = gpu.plan_memory(["0"], runs_per_gpu=4)
    assert cap0 == 81920 // 4 - margin(81920 / 4, 8)  # its share: far less than free
    assert "1/4 (runs_per_gpu)" in said0 and "81000 MB free" in said0
    ((cap1, _, _),) = gpu.plan_memory(["1"], runs_per_gpu=2)
    assert cap1 == 4096 - margin(16384 / 2, 7)  # half of 16 GB is not free: what is
    # 1 GB free: less than the context margin leaves
    fake_nvidia_smi(tools, [(16384, 1024, "7.5")])
    with pytest.raises(GPUUnavailable, match="leaves this run -26 MB.*lower runs_per_gpu"):
        gpu.plan_memory(["0"], runs_per_gpu=2)


def test_a_run_alone_on_its_gpu_is_not_capped(tools):
    fake_nvidia_smi(tools, [(16384, 16000, "7.5")])
    assert gpu.plan_memory(["0"], runs_per_gpu=1)[0][0] is None


def test_old_drivers_without_compute_cap_get_the_largest_margin(tools):
    fake_nvidia_smi(tools, [(16384, 16000, "7.5")], compute_cap=False)
    ((cap, memory, _),) = gpu.plan_memory(["0"], runs_per_gpu=4)
    assert memory.cc_major is None and cap == 4096 - margin(4096, None)


def test_caps_also_without_cuda_visible_devices(tools):
    """Unset: every GPU is visible and which is which is not known before TensorFlow starts,
    so each is capped by the smallest and fullest of them."""
    fake_nvidia_smi(tools, [(81920, 81000, "8.0"), (40960, 30000, "8.0")])
    plans = gpu.plan_memory([None, None], runs_per_gpu=4)
    assert [cap for cap, _, _ in plans] == [40960 // 4 - margin(10240, 8)] * 2


def test_caps_on_a_mig_instance_from_its_profile(tools):
    """nvidia-smi's per-GPU queries report the whole GPU, not a MIG instance: the instance's
    memory comes from its profile name, and the cap is a share of that."""
    fake_nvidia_smi(tools, [(81920, 81000, "8.0")], migs=(
        "  MIG 3g.40gb     Device  0: (UUID: MIG-aaaa-1111)\\n"
        "  MIG 1g.10gb     Device  1: (UUID: MIG-bbbb-2222)\\n"))
    ((cap, memory, said),) = gpu.plan_memory(["MIG-bbbb-2222"], runs_per_gpu=2)
    assert memory.total_mb == int(10 * 1024 * 0.95) and "1g.10gb" in said
    assert cap == int(10 * 1024 * 0.95) // 2 - margin(10 * 1024 * 0.95 / 2, None)
    assert gpu.gpu_memory("MIG-cccc-3333") is None  # not listed: unknown, never guessed


@pytest.mark.parametrize(("held", "per_gpu", "share"), [(1, 8, 1 / 8), (2, 8, 1 / 4),
                                                        (1, 4, 1 / 4)])
def test_slurm_shards_bound_the_share(tools, monkeypatch, held, per_gpu, share):
    """A site with 8 shards per GPU and a config left at runs_per_gpu 4 (slurm_gpu_shards
    unset: each job asks for 1 shard) fits 8 runs on a GPU: each must take 1/8, not 1/4."""
    fake_nvidia_smi(tools, [(81920, 81000, "9.0")])
    fake_tool(tools, "scontrol", f"""
        [ "$1 $2 $3" = "show node gpu-07" ] || exit 3
        echo "NodeName=gpu-07 Arch=x86_64 Gres=gpu:h100:2(S:0-1),shard:{2 * per_gpu}(S:0-1)"
        """)
    monkeypatch.setenv("SLURM_JOB_ID", "5")
    monkeypatch.setenv("SLURMD_NODENAME", "gpu-07")
    monkeypatch.setenv("SLURM_SHARDS_ON_NODE", str(held))
    ((cap, _, said),) = gpu.plan_memory(["0"], runs_per_gpu=4)
    assert cap == int(81920 * share - margin(81920 * share, 9))
    assert ("slurm_gpu_shards: 8" in said) is (share < 1 / 4)


def test_unknown_memory_is_not_capped_but_said(tools, monkeypatch):
    ((cap, memory, said),) = gpu.plan_memory(["0"], runs_per_gpu=4)  # no nvidia-smi at all
    assert cap is None and memory is None and gpu.ENV_MEMORY_MB in said
    monkeypatch.setenv(gpu.ENV_MEMORY_MB, "16384")
    assert gpu.plan_memory(["0"], runs_per_gpu=4)[0][0] == 4096 - margin(4096, None)


def test_hide_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    messages: list[str] = []
    gpu.hide_gpus(messages.append)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "" and "hidden" in messages[0]


# --- fail fast on kernels that do not run (the probe) ---

def test_the_probe_passes_where_its_device_runs_it():
    tf = pytest.importorskip("tensorflow")
    messages: list[str] = []
    gpu.check_kernels(tf, ["/CPU:0"], messages.append)
    assert "/CPU:0 ran a test conv and gather" in messages[0]
    assert tf.config.get_soft_device_placement()  # restored


def test_a_failing_probe_stops_the_job_with_one_line_naming_driver_build_and_fix(tmp_path):
    """The seam: the probe runs on a device this machine lacks, with soft placement off, so
    it fails as a driver that cannot run the kernels would. A job's console gets one line."""
    tf = pytest.importorskip("tensorflow")
    bin_dir = tmp_path / "bin"
    fake_nvidia_smi(bin_dir, [(16384, 16000, "9.0")], driver="470.57.02")
    script = textwrap.dedent(f"""
        from cnnablate.workflow.smk import log_to
        with log_to({str(tmp_path / "job.log")!r}) as log:  # as scripts/train.py
            import tensorflow as tf
            from cnnablate.training.gpu import check_kernels
            check_kernels(tf, ["/GPU:0"], log)
        """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("cnnablate error: gpu: a test conv"), lines
    line = lines[0]
    assert "/GPU:0" in line and "NVIDIA driver 470.57.02 (nvidia-smi)" in line
    info = tf.sysconfig.get_build_info()
    if info.get("is_cuda_build"):
        assert f"CUDA {info['cuda_version']}, cuDNN {info['cudnn_version']}" in line
        assert "525.60.13" in line  # the fix: the minimum driver
    else:
        assert f"TensorFlow {tf.__version__} is not a CUDA build" in line
        assert "requirements-gpu.txt" in line  # the fix: a GPU build
    assert "Traceback" in (tmp_path / "job.log").read_text()  # details in the log only


@pytest.mark.parametrize(("cc", "ptx"), [((9, 0), True), ((10, 0), True), ((8, 6), False),
                                         ((7, 5), False), ((8, 9), False), ((6, 1), False)])
def test_which_gpus_run_the_builds_ptx(cc, ptx):
    """TensorFlow 2.21's build (tf.sysconfig.get_build_info of the tensorflow wheel): a cubin
    runs on its major version with an equal or higher minor; Hopper and later run PTX."""
    caps = ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]
    assert gpu.runs_ptx(cc, caps) is ptx


def test_kernel_failure_message_of_a_cuda_build():
    info = {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9",
            "cuda_compute_capabilities": ["sm_80", "compute_90"], "tensorflow": "2.21.0"}
    error = RuntimeError("CUDA_ERROR_UNSUPPORTED_PTX_VERSION: the provided PTX was compiled"
                         " with an unsupported toolchain.\nsecond line")
    line = gpu.kernel_failure_message("/GPU:1", error, info, "535.104.05 (nvidia-smi)")
    assert "\n" not in line and "second line" not in line
    assert "CUDA_ERROR_UNSUPPORTED_PTX_VERSION" in line and "driver 535.104.05" in line
    assert "CUDA 12.5.1, cuDNN 9, kernels for sm_80, compute_90" in line
    assert ">= 525.60.13" in line and ">= 555.42.06" in line


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


# --- NVML (nvidia-ml-py's `pynvml`), from a fake binding on sys.path ---

FAKE_PYNVML = '''
"""A stand-in for nvidia-ml-py's pynvml: the calls cnnablate makes, with the real signatures
(memory in bytes, UUIDs as str, compute capability as (major, minor)), answering from
GPUS/MIGS, which the test writes below."""
import json, os

GPUS = json.loads(os.environ.get("FAKE_NVML_GPUS", "[]"))  # [uuid, total MB, free MB, cc]
MIGS = json.loads(os.environ.get("FAKE_NVML_MIGS", "[]"))  # [uuid, parent index, total, free]
DRIVER = os.environ.get("FAKE_NVML_DRIVER", "550.54.15")
LOADED = os.environ.get("FAKE_NVML_LOADS", "1") == "1"
MIG_BY_UUID = os.environ.get("FAKE_NVML_MIG_BY_UUID", "1") == "1"

class NVMLError(Exception):
    pass

class _Memory:
    def __init__(self, total_mb, free_mb):
        self.total, self.free = total_mb * 2**20, free_mb * 2**20
        self.used = self.total - self.free

def nvmlInit():
    if not LOADED:
        raise NVMLError("NVML Shared Library Not Found")

def nvmlShutdown():
    pass

def nvmlSystemGetDriverVersion():
    return DRIVER

def nvmlDeviceGetCount():
    return len(GPUS)

def nvmlDeviceGetHandleByIndex(index):
    if not 0 <= index < len(GPUS):
        raise NVMLError("Invalid Argument")
    return ("gpu", index)

def nvmlDeviceGetHandleByUUID(uuid):
    for i, gpu in enumerate(GPUS):
        if gpu[0] == uuid:
            return ("gpu", i)
    for i, mig in enumerate(MIGS):
        if mig[0] == uuid and MIG_BY_UUID:
            return ("mig", i)
    raise NVMLError("Not Found")

def nvmlDeviceGetMaxMigDeviceCount(handle):
    return 7

def nvmlDeviceGetMigDeviceHandleByIndex(handle, slot):
    mine = [i for i, mig in enumerate(MIGS) if mig[1] == handle[1]]
    if slot >= len(mine):
        raise NVMLError("Not Found")
    return ("mig", mine[slot])

def nvmlDeviceGetUUID(handle):
    return (GPUS if handle[0] == "gpu" else MIGS)[handle[1]][0]

def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle):
    return ("gpu", MIGS[handle[1]][1])

def nvmlDeviceGetMemoryInfo(handle):
    row = (GPUS if handle[0] == "gpu" else MIGS)[handle[1]]
    return _Memory(row[-2], row[-1]) if handle[0] == "mig" else _Memory(row[1], row[2])

def nvmlDeviceGetCudaComputeCapability(handle):
    if handle[0] != "gpu":
        raise NVMLError("Not Supported")  # asked of the parent GPU
    major, minor = GPUS[handle[1]][3].split(".")
    return int(major), int(minor)
'''


@pytest.fixture
def nvml(tmp_path, monkeypatch, tools):
    """The fake binding importable as `pynvml`; `nvml(gpus, migs, **env)` sets what it says."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "pynvml.py").write_text(FAKE_PYNVML)
    monkeypatch.syspath_prepend(str(site))

    def configure(gpus, migs=(), **env):
        monkeypatch.setenv("FAKE_NVML_GPUS", json.dumps(gpus))
        monkeypatch.setenv("FAKE_NVML_MIGS", json.dumps(list(migs)))
        for key, value in env.items():
            monkeypatch.setenv(f"FAKE_NVML_{key.upper()}", value)
        sys.modules.pop("pynvml", None)  # read again with these answers

    yield configure
    sys.modules.pop("pynvml", None)


def test_gpu_memory_comes_from_nvml_where_it_is_installed(nvml, tools):
    """NVML first; nvidia-smi, which says otherwise here, only without it."""
    nvml([["GPU-aaaa", 81559, 80100, "9.0"], ["GPU-bbbb", 16384, 3000, "7.5"]])
    fake_nvidia_smi(tools, [(1, 1, "6.0"), (1, 1, "6.0")])
    assert gpu.gpu_memory("1") == gpu.GPUMemory(16384, 3000, 7, "NVML")
    assert gpu.gpu_memory("GPU-aaaa") == gpu.GPUMemory(81559, 80100, 9, "NVML")
    assert gpu.gpu_memory(None) == gpu.GPUMemory(16384, 3000, 7, "NVML")  # the fullest
    assert gpu.driver_version() == "550.54.15 (NVML)"
    ((cap, _, said),) = gpu.plan_memory(["0"], runs_per_gpu=4)
    assert cap == int(81559 / 4 - margin(81559 / 4, 9)) and "(NVML)" in said


@pytest.mark.parametrize("by_uuid", ["1", "0"])
def test_a_mig_instance_has_its_exact_memory_from_nvml(nvml, tools, by_uuid):
    """The instance's own memory (not 95 % of its profile's name) and its GPU's compute
    capability, whether the driver takes MIG UUIDs directly or only through its GPU."""
    nvml([["GPU-aaaa", 81559, 70000, "9.0"]],
         [["MIG-1111", 0, 40192, 40000], ["MIG-2222", 0, 9856, 9000]], mig_by_uuid=by_uuid)
    memory = gpu.gpu_memory("MIG-2222")
    assert memory == gpu.GPUMemory(9856, 9000, 9, "NVML (MIG instance)")
    ((cap, _, _),) = gpu.plan_memory(["MIG-2222"], runs_per_gpu=2)
    assert cap == int(min(9856 / 2, 9000) - margin(9856 / 2, 9))


def test_without_a_loadable_nvml_nvidia_smi_answers(nvml, tools):
    nvml([["GPU-aaaa", 81559, 80100, "9.0"]], loads="0")
    fake_nvidia_smi(tools, [(16384, 16000, "7.5")], driver="535.104.05")
    assert gpu.gpu_memory("0") == gpu.GPUMemory(16384, 16000, 7, "nvidia-smi")
    assert gpu.driver_version() == "535.104.05 (nvidia-smi)"
