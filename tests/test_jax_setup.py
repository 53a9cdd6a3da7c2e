"""The JAX backend's set-up is pinned like the rest: requirements-jax.txt and
requirements-jax-gpu.txt, envs/train-jax*.yaml at the locked versions, the Makefile's venv, and
the train rule's conda env per (backend, GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from cnnablate.workflow.resources import train_conda_env
from tests.test_gpu_setup import (
    REPO,
    conda_pip_pins,
    index_versions,
    lock,
    make_plan,
    pins,
    requirement_lines,
    run_of,
    venv_installs,
)
from tests.tiny import ACTS, config
from tests.workflow import write_config

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
        # the GPU env also has NVML's binding and filelock (JAX's bounded compilation cache)
        extras = pins(requirement_lines("requirements-gpu-extras.txt"))
        assert {n: env.pop(n) for n in extras} == extras
    assert not [n for n in env if n.startswith("tensorflow-") or n == "tensorflow"]
    for package, version in env.items():
        assert locked[package.replace("_", "-")] == version, package


def test_makefile_venv_installs_jax_but_the_gpu_venv_does_not():
    requirements, constraints = venv_installs(make_plan("test"))
    assert "requirements-jax.txt" in requirements and "requirements.lock" in constraints
    assert "requirements-jax" not in make_plan("report", "GPU=1")


@pytest.mark.parametrize(("backend", "gpu", "expected"), [
    ("tensorflow", 0, "train.yaml"), ("tensorflow", 1, "train-gpu.yaml"),
    ("jax", 0, "train-jax.yaml"), ("jax", 1, "train-jax-gpu.yaml"), (None, 1, "train-gpu.yaml"),
])
def test_training_conda_env_follows_the_runs_backend_and_gpu(backend, gpu, expected):
    run = run_of()
    if backend:
        run["train"]["backend"] = backend
    env = train_conda_env(lambda wc: run, {"gpu": gpu})
    assert env(SimpleNamespace(), SimpleNamespace()) == f"../envs/{expected}"
    assert (REPO / "envs" / expected).exists()


# What `--use-conda` would give each training job: the env of the rule itself (Snakemake's
# `Rule.expand_conda_env` on the job's wildcards), read from the planned workflow, not its text.
RULE_ENVS = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.iocontainers import Wildcards
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

snakefile, workdir, configfile = map(Path, sys.argv[1:4])
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(snakefile=snakefile, workdir=workdir,
                            config_settings=ConfigSettings(configfiles=[configfile]),
                            resource_settings=ResourceSettings(cores=1))._workflow
    plan, envs = workflow.globals, []
    for rule, runs in (("train", plan["RUNS"]), ("train_tuning", plan["TUNING"].runs)):
        for run in runs:
            wildcards = {"study": run["study"], "variant": run["variant"],
                         "seed": str(run["seed"])}
            if "tuning" in run:
                wildcards["candidate"] = run["tuning"]["candidate"]
            env = workflow.get_rule(rule).expand_conda_env(Wildcards(fromdict=wildcards))
            envs.append([rule, run["study"], Path(str(env.file)).name])
print(json.dumps(envs))
"""


def test_every_training_rule_gives_a_jax_run_the_jax_env(tmp_path):
    """A tuned study on JAX: its tuning runs (train_tuning) get the JAX env as its deciding
    runs (train) do; they used to get TensorFlow's (envs/train.yaml, no JAX)."""
    study = {**ACTS, "seeds": [0], "tune": {"train.learning_rate": [0.01, 0.1], "seeds": [9]}}
    jax = {**study, "train": {**study["train"], "backend": "jax"}}
    configfile = write_config(tmp_path / "config.yaml", config(on_jax=jax, on_tf=study))
    result = subprocess.run(
        [sys.executable, "-c", RULE_ENVS, str(REPO / "Snakefile"), str(tmp_path),
         str(configfile)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    envs = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {"on_jax": "train-jax.yaml", "on_tf": "train.yaml"}
    assert {rule for rule, _, _ in envs} == {"train", "train_tuning"}
    assert [(rule, s, env) for rule, s, env in envs if env != expected[s]] == []


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
