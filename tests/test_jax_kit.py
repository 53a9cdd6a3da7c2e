"""The offline kit for GPU hosts with JAX preinstalled (requirements-jax-kit.txt, `make
jax-wheelhouse`): complete (keras's whole requirement tree beyond what JAX brings), at the
locked pins, with the GPU extras at their pins, and the Makefile target downloading exactly
it for the Python asked for. tests/test_gpu_check_jax.py runs the check from a kit built so."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_gpu_setup import REPO, lock, pins, requirement_lines

KIT = "requirements-jax-kit.txt"
EXTRAS = "requirements-gpu-extras.txt"
# What a JAX image brings (jax[cuda12]'s own requirement tree starts here).
PREINSTALLED = ("jax", "jaxlib", "numpy", "scipy", "ml-dtypes", "opt-einsum")


def requirement_tree(roots: tuple[str, ...]) -> set[str]:
    """Every distribution `roots` need, from the installed packages' metadata (Requires-Dist
    without extras, markers evaluated for this interpreter)."""
    seen: set[str] = set()
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def kit() -> dict[str, str]:
    return {canonicalize_name(k): v for k, v in pins(requirement_lines(KIT)).items()}


def test_the_kit_is_the_requirement_tree_beyond_jax_plus_the_gpu_extras():
    """keras, and jsonschema and pyyaml: the check's fit arm imports cnnablate.training.train,
    which imports the config module (as every training job does)."""
    needed = requirement_tree(("keras", "jsonschema", "pyyaml")) - requirement_tree(PREINSTALLED)
    extras = {canonicalize_name(k): v for k, v in pins(requirement_lines(EXTRAS)).items()}
    assert set(kit()) == needed | set(extras)
    assert {"keras", "namex", "optree", "nvidia-ml-py", "filelock"} <= set(kit())


def test_the_kit_is_at_the_locked_pins_and_the_extras_at_theirs():
    locked = {canonicalize_name(k): v for k, v in lock().items()}
    extras = {canonicalize_name(k): v for k, v in pins(requirement_lines(EXTRAS)).items()}
    for name, version in kit().items():
        assert version == (extras[name] if name in extras else locked[name]), name
    # every line an exact pin: `pip download --no-deps` resolves nothing
    for line in requirement_lines(KIT):
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", line), line


def test_make_jax_wheelhouse_downloads_the_kit_for_the_python_asked_for():
    if shutil.which("make") is None:
        pytest.skip("no make")
    plan = subprocess.run(["make", "-n", "jax-wheelhouse", "PY=3.12"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
    command = " ".join(plan.replace("\\\n", " ").split())
    for part in ("pip download", "--no-deps", "--only-binary=:all:", "--python-version 3.12",
                 "--platform manylinux2014_x86_64", "--dest wheelhouse-jax-py3.12-x86_64",
                 f"-r {KIT}"):
        assert part in command, part


def test_the_docs_show_the_kits_commands():
    install = ("pip install --no-index --no-deps --find-links wheelhouse-jax-py3.12-x86_64 "
               "--target")
    for doc in ("README.md", "docs/cluster.md"):
        text = " ".join((REPO / doc).read_text().split())
        assert "make jax-wheelhouse PY=3.12" in text, doc
        assert install in text, doc
        assert "benchmarks/gpu_check.py --backend jax" in text, doc
