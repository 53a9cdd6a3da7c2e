"""`--profile profiles/slurm` against a real SLURM: a one-node cluster with 2 fake GPUs (4 GPU
shards each), started by tests/slurm/cluster.sh (root + apt-get), runs a 3-run study whose runs
ask for 1 GPU each, then a 4-run study packed 4 to a GPU (`runs_per_gpu: 4`: gres/shard).

Checks: every training job went to sbatch with a GPU request and the per-run memory and time
estimates of cnnablate.workflow.resources (so the rule wires them, and the profile does not override
them); SLURM never ran more than two of them at once and gave concurrent ones different GPUs;
each training process saw SLURM's CUDA_VISIBLE_DEVICES; the report was built.
Training itself runs on the CPU (the GPUs are fake; `allow_cpu_fallback`, else the runs would
stop at once since TensorFlow sees no GPU). The digits come prepared from the session's finished
workflow. About 2 minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from cnnablate.base.ids import run_id
from cnnablate.workflow.config import resolve_runs
from cnnablate.workflow.resources import dataset_counts, train_resources
from tests import tiny
from tests.workflow import copy_prepared

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
WORKFLOW_LIMIT_S = 330  # `timeout -s INT` lets snakemake scancel its jobs before it stops
FAKE_GPUS = 2
SHARDS_PER_GPU = 4

STUDY = {
    **tiny.config(tiny=tiny.study(
        {"epochs": 1, "batch_size": 32, "max_train_images": 128, "max_eval_images": 64},
        baseline="relu",
        variants={"relu": {"activation": "relu"}, "elu": {"activation": "elu"},
                  "selu": {"activation": "selu", "init": "lecun_normal", "norm": "none"}},
    )),
    # three 1-GPU jobs on a 2-GPU node: the third must wait for a GPU
    "resources": {"gpu": 1, "train_threads": 1, "allow_cpu_fallback": True},
    "report": {"title": "cnnablate SLURM test"},
}


PLUGIN_DIR = REPO / ".slurm-plugins"
PLUGIN_PATH: list[str] = []  # where the plugin is, when not in the venv (only for this test)


def ensure_slurm_plugin() -> None:
    """The test set-up installs the executor plugin (requirements-slurm.txt) into a folder of
    its own rather than the project's venv: installed, the plugin calls `scontrol` at every
    Snakemake start, which costs seconds on a machine with SLURM's client but no cluster."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None:
        return
    if not (PLUGIN_DIR / "snakemake_executor_plugin_slurm").exists():
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(PLUGIN_DIR), "-r", str(REPO / "requirements-slurm.txt")],
            capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            shutil.rmtree(PLUGIN_DIR, ignore_errors=True)
            pytest.skip(f"could not install requirements-slurm.txt: {proc.stderr[-500:]}")
    PLUGIN_PATH.append(str(PLUGIN_DIR))


def cluster(command: str, base: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BASE": str(base), "GPUS": str(FAKE_GPUS), "SHARDS": str(SHARDS_PER_GPU)}
    return subprocess.run(
        ["bash", str(CLUSTER_SH), command], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running one-node SLURM; stopped by PID afterwards, whatever the test did."""
    if os.geteuid() != 0:
        pytest.skip("needs root to install and start slurmctld/slurmd/munged")
    ensure_slurm_plugin()
    if shutil.which("timeout") is None:
        pytest.skip("needs coreutils `timeout`")
    base = tmp_path_factory.mktemp("slurm")
    started = cluster("start", base)
    if started.returncode == 77:  # cluster.sh: this machine cannot host it (reason on stderr)
        cluster("stop", base)
        pytest.skip(started.stderr.strip().splitlines()[-1])
    try:
        if started.returncode != 0:
            pytest.fail(f"cluster.sh start failed:\n{started.stdout}\n{started.stderr}")
        yield base
    finally:
        stopped = cluster("stop", base)
        print(stopped.stderr, file=sys.stderr)


def write_profile(dest: Path) -> Path:
    """profiles/slurm adapted to the test cluster: only site settings change."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    # the repo profile must leave the train rule's estimates alone
    train_overrides = (profile.get("set-resources") or {}).get("train", {})
    assert not {"mem_mb", "runtime", "gpu"} & set(train_overrides), train_overrides
    profile.pop("set-resources", None)
    defaults = dict(profile.get("default-resources") or {})
    defaults.pop("slurm_account", None)  # no slurmdbd: an account could not be validated
    defaults["slurm_partition"] = "'debug'"
    profile["default-resources"] = defaults
    profile.update(
        {
            "jobs": 10,
            "retries": 0,
            "keep-going": False,
            # no slurmdbd: sacct fails (and the plugin then hangs on it)
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 2,
            "seconds-between-status-checks": 2,
            "slurm-keep-successful-logs": True,
            "latency-wait": 5,
        }
    )
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile))
    return dest


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    level = peak = 0
    for _, step in events:  # ends sort before starts at the same instant
        level += step
        peak = max(peak, level)
    return peak


def run_workflow(tmp_path: Path, study: dict, prepared: Path, *targets: str
                 ) -> tuple[Path, str]:
    """The study through the adapted profile (to `targets`, else to the report), in a folder
    that has the digits `prepared` (the session's finished workflow: its data and Snakemake's
    record of them, tests/README.md); its work dir and Snakemake's output."""
    work = copy_prepared(prepared, tmp_path / "work")
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(study))
    profile = write_profile(tmp_path / "profile")
    output = tmp_path / "snakemake.out"
    cmd = [
        "timeout", "-s", "INT", "-k", "60", str(WORKFLOW_LIMIT_S),
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
        "--directory", str(work), "--configfile", str(config_file), "--profile", str(profile),
        "--verbose",  # the plugin logs its sbatch calls at debug level
        *targets,
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*PLUGIN_PATH, env.get("PYTHONPATH")]))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    with open(output, "w") as fh:
        proc = subprocess.run(cmd, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT)
    text = output.read_text()
    slurm_logs = sorted((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    if proc.returncode != 0:
        tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in slurm_logs[-4:])
        pytest.fail(
            f"snakemake exited {proc.returncode} (124: over {WORKFLOW_LIMIT_S} s)\n"
            f"{text[-6000:]}\n{tails}"
        )
    if not targets:
        assert (work / "report" / "index.html").stat().st_size > 0
    return work, text


def test_study_on_slurm_with_fake_gpus(slurm_cluster, finished, tmp_path):
    work, text = run_workflow(tmp_path, STUDY, finished.work)

    runs = {run_id(run): run for run in resolve_runs(STUDY)}
    assert len(runs) == 3
    counts = dataset_counts(work / "results" / "data" / "digits" / "meta.json")
    expected = {key: train_resources(run, STUDY["resources"], counts) for key, run in runs.items()}
    assert all(e["gpu"] == 1 for e in expected.values())

    # 1. sbatch calls: every training job asks for a GPU and for its own estimates.
    calls = [c.split(" --wrap")[0] for c in re.findall(r"sbatch call: (sbatch .*)", text)]
    train_calls = [c for c in calls if "--comment rule_train_" in c]
    print("sbatch calls of training jobs:", *train_calls, sep="\n")
    assert len(train_calls) == 3, calls
    for call in train_calls:
        variant = re.search(r"--comment rule_train_wildcards_tiny_([a-z]+)_0 ", call).group(1)
        want = expected[("tiny", variant, 0)]
        assert "--gpus=1" in call, (
            "no GPU request: rules/train.smk must take its resources from "
            f"cnnablate.workflow.resources.rule_resources (docs/cluster.md)\n{call}"
        )
        assert f"--cpus-per-gpu={want['cpus_per_gpu']}" in call, call
        assert re.search(rf"--mem {want['mem_mb']}\b", call), (want, call)
        assert re.search(rf"-t {want['runtime']}\b", call), (want, call)
        assert "-p debug" in call, call
    for call in calls:
        if "--comment rule_train_" not in call:
            assert "--gpus" not in call, f"a job that is not training asks for a GPU: {call}"

    # 2. SLURM's view: each training job held one GPU; never more than two at once.
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", text)
    train_ids = [job for job, log in submitted if "/rule_train/" in log]
    assert len(train_ids) == 3, submitted
    intervals = []
    for job in train_ids:
        info = scontrol_job(job)  # finished jobs stay visible for MinJobAge=600 s
        assert info["JobState"] == "COMPLETED", info
        # the GPU request as SLURM recorded it ("gres:gpu:1"; "gres/gpu:1" in newer Slurm)
        assert re.fullmatch(r"gres[:/]gpu(:\w+)?:1", info.get("TresPerJob", "")), info
        start, end = (datetime.fromisoformat(info[k]).timestamp() for k in ("StartTime", "EndTime"))
        intervals.append((start, end))
    print("SLURM train jobs (start, end):", intervals)
    assert max_overlap(intervals) <= FAKE_GPUS, intervals
    for job, log in submitted:
        assert Path(log).exists(), f"no SLURM log for job {job}: {log}"

    # 3. The training processes: each saw the GPU SLURM gave it; concurrent ones differ.
    seen = []
    for study, variant, seed in runs:
        run_dir = work / "results" / "runs" / study / variant / f"seed{seed}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        missing = {"cuda_visible_devices", "started_at", "finished_at"} - set(metrics)
        assert not missing, (
            f"cnnablate/training/train.py does not record {sorted(missing)} in metrics.json"
        )
        assert metrics["cuda_visible_devices"] in {str(i) for i in range(FAKE_GPUS)}, metrics
        seen.append(
            (metrics["started_at"], metrics["finished_at"], metrics["cuda_visible_devices"])
        )
        train_log = (work / "logs" / "train" / study / variant / f"seed{seed}.log").read_text()
        assert "gpu: under SLURM, keeping CUDA_VISIBLE_DEVICES" in train_log, train_log[-2000:]
    print("train processes (started_at, finished_at, CUDA_VISIBLE_DEVICES):", seen)
    assert max_overlap([(s, e) for s, e, _ in seen]) <= FAKE_GPUS, seen
    for i, (s1, e1, gpu1) in enumerate(seen):
        for s2, e2, gpu2 in seen[i + 1 :]:
            if s1 < e2 and s2 < e1:
                assert gpu1 != gpu2, f"concurrent runs shared GPU {gpu1}: {seen}"


PACKED = {
    **STUDY,
    "studies": {
        "tiny": {
            **STUDY["studies"]["tiny"],
            "seeds": [0, 1],
            "variants": {"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
        }
    },
    "resources": {**STUDY["resources"], "runs_per_gpu": SHARDS_PER_GPU},
}


def test_runs_per_gpu_packs_four_runs_on_one_gpu(slurm_cluster, finished, tmp_path):
    """4 runs, runs_per_gpu 4: each asks SLURM for one of a GPU's 4 shards (not a whole GPU),
    SLURM runs all four at once although the node has only 2 GPUs, each with its own outputs
    and log, and the runs that shared a GPU were told so (CUDA_VISIBLE_DEVICES, 4 per GPU).
    Only the runs: the tables and report on SLURM are the first test's."""
    runs = {run_id(run): run for run in resolve_runs(PACKED)}
    work, text = run_workflow(tmp_path, PACKED, finished.work, *(
        f"results/runs/{study}/{variant}/seed{seed}/metrics.json" for study, variant, seed in runs))
    assert len(runs) == 4
    counts = dataset_counts(work / "results" / "data" / "digits" / "meta.json")
    expected = {key: train_resources(run, PACKED["resources"], counts) for key, run in runs.items()}

    calls = [c.split(" --wrap")[0] for c in re.findall(r"sbatch call: (sbatch .*)", text)]
    train_calls = [c for c in calls if "--comment rule_train_" in c]
    print("sbatch calls of training jobs:", *train_calls, sep="\n")
    assert len(train_calls) == 4, calls
    for call in train_calls:
        match = re.search(r"--comment rule_train_wildcards_tiny_([a-z]+)_(\d) ", call)
        variant, seed = match.groups()
        want = expected[("tiny", variant, int(seed))]
        assert "--gres=shard:1" in call and "--gpus" not in call, call
        assert re.search(rf"--mem {want['mem_mb']}\b", call), (want, call)
        assert re.search(rf"-t {want['runtime']}\b", call), (want, call)

    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", text)
    train_ids = [job for job, log in submitted if "/rule_train/" in log]
    assert len(train_ids) == 4, submitted
    intervals = []
    for job in train_ids:
        info = scontrol_job(job)
        assert info["JobState"] == "COMPLETED", info
        # --gres is per node: "gres:shard:1" ("gres/shard:1" in newer Slurm)
        tres = info.get("TresPerNode") or info.get("TresPerJob", "")
        assert re.fullmatch(r"gres[:/]shard(:\w+)?:1", tres), info
        intervals.append(
            tuple(datetime.fromisoformat(info[k]).timestamp() for k in ("StartTime", "EndTime"))
        )
    print("SLURM packed train jobs (start, end):", intervals)
    # SLURM ran more training jobs at once than the node has GPUs: they shared GPUs
    assert max_overlap(intervals) > FAKE_GPUS, intervals

    seen = []
    for study, variant, seed in runs:
        run_dir = work / "results" / "runs" / study / variant / f"seed{seed}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert (run_dir / "model.keras").exists() and (run_dir / "history.csv").exists()
        log = (work / "logs" / "train" / study / variant / f"seed{seed}.log").read_text()
        assert "gpu: under SLURM, keeping CUDA_VISIBLE_DEVICES" in log, log[-2000:]
        assert f"done: status={metrics['status']}" in log
        seen.append(
            (metrics["started_at"], metrics["finished_at"], metrics["cuda_visible_devices"])
        )
    print("packed train processes (started_at, finished_at, CUDA_VISIBLE_DEVICES):", seen)
    per_gpu: dict[str, int] = {}
    for _, _, cvd in seen:
        assert cvd in {str(i) for i in range(FAKE_GPUS)}, seen
        per_gpu[cvd] = per_gpu.get(cvd, 0) + 1
    assert max(per_gpu.values()) <= SHARDS_PER_GPU, seen
