"""The JAX backend's set-up is pinned like the rest: requirements-jax.txt and
requirements-jax-gpu.txt, envs/train-jax*.yaml at the locked versions, the Makefile's venv, and
the train rule's conda env per (backend, GPU)."""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import pytest

from cnnablate.workflow.resources import conda_env_by_backend, conda_env_by_gpu
from tests.test_gpu_setup import (
    REPO,
    conda_pip_pins,
    index_versions,
    lock,
    pins,
    requirement_lines,
    run_of,
)

JAX_GPU = "jax[cuda12]"


def test_jax_requirements_are_locked():
    locked = lock()
    jax = pins(requirement_lines("requirements-jax.txt"))
    assert set(jax) == {"jax", "jaxlib"}
    for name, version in jax.items():
        assert locked[name] == version, name


def test_jax_gpu_requirements_are_the_cpu_ones_without_tensorflow():
    cpu = pins(requirement_lines("requirements.txt"))
    gpu = pins(requirement_lines("requirements-jax-gpu.txt"))
    assert gpu.pop(JAX_GPU) == lock()["jax"]
    assert not [name for name in gpu if name.startswith("tensorflow")]
    for name, version in gpu.items():  # everything else at requirements.txt's pins
        assert cpu[name] == version, name


@pytest.mark.parametrize("name", ["train-jax.yaml", "train-jax-gpu.yaml"])
def test_jax_conda_envs_are_at_the_locked_pins_without_tensorflow(name):
    env = conda_pip_pins(name)
    locked = lock()
    if JAX_GPU in env:
        assert env.pop(JAX_GPU) == locked["jax"]
    assert not [n for n in env if n.startswith("tensorflow-") or n == "tensorflow"]
    for package, version in env.items():
        assert locked[package.replace("_", "-")] == version, package


def test_makefile_venv_installs_jax_but_the_gpu_venv_does_not():
    if shutil.which("make") is None:
        pytest.skip("no make")
    plan = subprocess.run(["make", "-n", "-B", "test"], cwd=REPO, capture_output=True,
                          text=True).stdout
    assert "-r requirements-jax.txt -c requirements.lock" in plan, plan
    gpu_plan = subprocess.run(["make", "-n", "-B", "report", "GPU=1"], cwd=REPO,
                              capture_output=True, text=True).stdout
    assert "requirements-jax" not in gpu_plan, gpu_plan


ENVS = {"tensorflow": ("tf.yaml", "tf-gpu.yaml"), "jax": ("jax.yaml", "jax-gpu.yaml")}


@pytest.mark.parametrize(("backend", "gpu", "expected"), [
    ("tensorflow", 0, "tf.yaml"), ("tensorflow", 1, "tf-gpu.yaml"),
    ("jax", 0, "jax.yaml"), ("jax", 1, "jax-gpu.yaml"), (None, 1, "tf-gpu.yaml"),
])
def test_train_rule_conda_env_follows_the_runs_backend_and_gpu(backend, gpu, expected):
    run = run_of()
    if backend:
        run["train"]["backend"] = backend
    by_gpu = {name: conda_env_by_gpu(lambda wc: run, {"gpu": gpu}, *pair)
              for name, pair in ENVS.items()}
    env = conda_env_by_backend(lambda wc: run, by_gpu)
    assert env(SimpleNamespace(), SimpleNamespace()) == expected


def test_train_rule_picks_the_env_files_per_backend():
    text = (REPO / "rules" / "train.smk").read_text()
    conda = text.split("conda:")[1].split("script:")[0]
    assert "conda_env_by_backend" in conda and "conda_env_by_gpu" in conda
    assert '"jax": conda_env_by_gpu(' in conda
    assert '"../envs/train-jax.yaml", "../envs/train-jax-gpu.yaml"' in conda
    for name in ("train", "train-gpu", "train-jax", "train-jax-gpu"):
        assert (REPO / "envs" / f"{name}.yaml").exists(), name


def test_jax_cuda_plugin_pin_resolves_on_the_package_index():
    """jax[cuda12] at the pinned version pulls jax-cuda12-plugin of that version: it exists on
    the index (the index page only; the wheels are hundreds of MB)."""
    assert lock()["jax"] in index_versions("jax-cuda12-plugin")


def test_training_fingerprint_covers_the_jax_path_but_not_resource_estimates():
    """Editing the JAX set-up or its feed reruns training; the conda/resource helpers the
    train rule also uses do not join the fingerprint through backend.py."""
    from cnnablate.workflow import fingerprint

    files = {p.relative_to(fingerprint.ROOT).as_posix()
             for p in fingerprint.closure([fingerprint.ROOT / "scripts/train.py"])}
    assert {"cnnablate/training/backend.py", "cnnablate/training/numpy_feed.py",
            "cnnablate/data/splits.py"} <= files
    assert "cnnablate/workflow/resources.py" not in files
