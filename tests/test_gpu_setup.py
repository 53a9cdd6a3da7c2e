"""The GPU set-up is pinned like the CPU one: requirements-gpu.txt, envs/train-gpu.yaml, the
Makefile's GPU=1 switch, and the train rule's choice of conda env per run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from cnnablate.workflow.resources import conda_env_by_gpu

REPO = Path(__file__).resolve().parents[1]
TF_GPU = "tensorflow[and-cuda]"


def pins(lines: list[str]) -> dict[str, str]:
    """name -> version of every `name==version` line (comments and options skipped)."""
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


def lock() -> dict[str, str]:
    locked = pins((REPO / "requirements.lock").read_text().splitlines())
    return {name.replace("_", "-"): version for name, version in locked.items()}


def requirement_lines(name: str) -> list[str]:
    text = (REPO / name).read_text().splitlines()
    return [line for line in text if line.strip() and not line.startswith("#")]


def test_gpu_requirements_are_the_cpu_ones_with_tensorflow_and_cuda():
    cpu, gpu = requirement_lines("requirements.txt"), requirement_lines("requirements-gpu.txt")
    assert [line for line in cpu if not line.startswith("tensorflow-cpu==")] == [
        line for line in gpu if not line.startswith(TF_GPU + "==")
    ]
    tf_cpu = pins(cpu)["tensorflow-cpu"]
    assert pins(gpu)[TF_GPU] == tf_cpu == lock()["tensorflow-cpu"]
    assert "tensorflow-cpu" not in pins(gpu)  # both in one env would overwrite each other


def conda_pip_pins(name: str) -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / name).read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return pins(pip)


def gpu_extras() -> dict[str, str]:
    return pins(requirement_lines("requirements-gpu-extras.txt"))


def test_gpu_conda_env_is_the_cpu_one_with_tensorflow_and_cuda_at_the_locked_pins():
    cpu, gpu = conda_pip_pins("train.yaml"), conda_pip_pins("train-gpu.yaml")
    assert gpu.pop(TF_GPU) == cpu.pop("tensorflow-cpu")
    # NVML's binding and filelock, at requirements-gpu-extras.txt's pins (GPU hosts only)
    extras = gpu_extras()
    assert set(extras) == {"nvidia-ml-py", "filelock"}
    for name, version in extras.items():
        assert gpu.pop(name) == version, name
    assert gpu == cpu
    locked = lock()
    for name, version in {**gpu, "tensorflow-cpu": locked["tensorflow-cpu"]}.items():
        assert locked[name.replace("_", "-")] == version, name
    env = yaml.safe_load((REPO / "envs" / "train-gpu.yaml").read_text())
    assert "python=3.11" in env["dependencies"]


def make_plan(*args: str) -> str:
    """What `make -n -B ARGS` would run, continuation lines joined."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    plan = subprocess.run(["make", "-n", "-B", *args], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout
    return " ".join(plan.replace("\\\n", " ").split())


def venv_installs(plan: str) -> tuple[list[str], list[str]]:
    """(requirement files, constraint files) of the venv's one install of the pins."""
    (command,) = re.findall(r"\$install \$compile (-r .*?) &&", plan)
    return re.findall(r"-r (\S+)", command), re.findall(r"-c (\S+)", command)


def test_makefile_gpu_switch_uses_the_gpu_requirements_in_their_own_venv():
    plan = make_plan("report", "GPU=1")
    assert venv_installs(plan) == (
        ["requirements-gpu.txt", "requirements-gpu-extras.txt", "requirements-mlflow.txt"],
        ["requirements.lock", "requirements-mlflow.lock"])
    assert re.search(r"\.venv-gpu/bin/snakemake ", plan), plan
    cpu_plan = make_plan("report")
    assert venv_installs(cpu_plan)[0][0] == "requirements.txt"
    assert "requirements-gpu" not in cpu_plan


def test_makefile_installs_with_the_pinned_uv_else_pip():
    """uv (pinned in the Makefile) installs the pins, compiling their bytecode as pip does;
    where uv cannot be installed, pip runs the same install commands."""
    plan = make_plan("report")
    (uv,) = re.findall(r"-m pip install --quiet (uv==\S+) \|\| echo", plan)
    assert re.fullmatch(r"uv==\d+\.\d+\.\d+", uv)
    assert re.search(r'if \[ -x \S+/\.venv/bin/uv \]; then install="\S+/\.venv/bin/uv pip '
                     r'install --quiet --python \S+/\.venv/bin/python"; '
                     r'compile=--compile-bytecode; '
                     r'else install="\S+/\.venv/bin/python -m pip install --quiet"; compile=; fi',
                     plan), plan
    assert "$install $compile --upgrade pip && $install $compile -r requirements.txt" in plan
    assert "$install --no-deps -e . touch .venv/.installed" in plan


def run_of(model: str = "all_cnn_c", size: int = 32, epochs: int = 1) -> dict:
    return {
        "image_size": size,
        "model": {"name": model, "width": 1.0},
        "train": {"epochs": epochs, "batch_size": 64, "max_train_images": 50_000},
    }


@pytest.mark.parametrize(
    ("resources", "run", "expected"),
    [
        ({"gpu": 0}, run_of(), "cpu.yaml"),
        ({"gpu": 1}, run_of(), "gpu.yaml"),
        ({"gpu": 2, "train_threads": 4}, run_of(), "gpu.yaml"),
        ({"gpu": 1, "runs_per_gpu": 4}, run_of(), "gpu.yaml"),  # a slot of a shared GPU
        # gpu: null decides per run: 100 epochs of CIFAR-sized All-CNN-C gets a GPU ...
        ({"gpu": None}, run_of(epochs=100), "gpu.yaml"),
        # ... one epoch of 64 images does not
        ({"gpu": None}, {**run_of(), "train": {"epochs": 1, "batch_size": 64,
                                                "max_train_images": 64, "max_eval_images": 64}},
         "cpu.yaml"),
    ],
)
def test_train_rule_conda_env_follows_the_runs_gpu(resources, run, expected):
    env = conda_env_by_gpu(lambda wc: run, resources, "cpu.yaml", "gpu.yaml")
    assert env(SimpleNamespace(), SimpleNamespace()) == expected


def test_gpu_tensorflow_pin_resolves_on_the_package_index():
    """The pinned tensorflow (the and-cuda extra's package) exists on the index for this Python
    and platform. `pip index versions` reads only the index page, not the ~600 MB wheel;
    `make gpu-requirements-check` is the full (heavy) dry-run install."""
    version = pins(requirement_lines("requirements-gpu.txt"))[TF_GPU]
    assert version in index_versions("tensorflow")


def index_versions(package: str) -> list[str]:
    """The versions of `package` the package index lists (`pip index versions`: the index page
    only); skips the test where no index answers."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "index", "versions", package],
            capture_output=True, text=True, timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("package index did not answer within 120 s")
    if proc.returncode != 0:
        pytest.skip(f"no package index reachable: {proc.stderr.strip().splitlines()[-1:]}")
    # "pkg (latest)" first, then "Available versions: a, b, ..." (absent with a single one)
    latest = re.search(r"\((.*)\)", proc.stdout.splitlines()[0]) if proc.stdout else None
    listed = re.search(r"Available versions: (.*)", proc.stdout)
    versions = ([v.strip() for v in listed.group(1).split(",")] if listed
                else [latest.group(1)] if latest else [])
    assert versions, proc.stdout
    return versions
