# The two commands of the README: `make report` and `make test`. Each makes the virtual
# environment first if it is missing or older than the pins.
# GPU=1 (e.g. `make report GPU=1`, or `make gpu-env`): requirements-gpu.txt (tensorflow[and-cuda])
# and requirements-gpu-extras.txt (NVML's binding, filelock) in a venv of its own, .venv-gpu
# (tensorflow and tensorflow-cpu cannot share one).
# The default venv also has requirements-jax.txt (jax on the CPU), so that `make test` runs a
# study on Keras's JAX backend too. `make jax-gpu-env`: .venv-jax-gpu, a JAX-only GPU venv.
PYTHON ?= python3
UV := uv==0.13.10
REQUIREMENTS := $(if $(GPU),requirements-gpu.txt,requirements.txt)
EXTRA_REQUIREMENTS := $(if $(GPU),requirements-gpu-extras.txt,requirements-jax.txt)
VENV ?= $(if $(GPU),.venv-gpu,.venv)
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# 4 on 2 cores is deliberate (BENCHMARKS.md, figure 1).
CORES ?= 4
# pytest-xdist workers: a whole test file to one worker, end-to-end files first
# (tests/conftest.py); `make test TEST_WORKERS=0` runs the suite in one process.
TEST_WORKERS ?= 2
PYTEST_WORKERS := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)
export PATH := $(BIN):$(PATH)

.PHONY: report test lint lock clean gpu-env gpu-requirements-check jax-gpu-env jax-wheelhouse

# Also MLflow (optional for users, requirements-mlflow.txt: `cnnablate export mlflow`, MLflow's
# UI and `mlflow server`, which tests/test_mlflow_export.py starts), JAX (EXTRA_REQUIREMENTS: Keras's JAX backend on the CPU, for its tests) and the project
# itself, editable, for the `cnnablate` command.
# The installer is uv (pinned: UV above), which fetches and unpacks in parallel: a fresh venv in
# about 40 s instead of pip's 85 s, the same pins installed (BENCHMARKS.md §10). Where uv itself
# cannot be installed, pip does the same installs.
$(STAMP): $(REQUIREMENTS) $(EXTRA_REQUIREMENTS) requirements.lock requirements-mlflow.txt requirements-mlflow.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(UV) || echo "make: $(UV) not installable here; pip installs instead"
	if [ -x $(BIN)/uv ]; then install="$(BIN)/uv pip install --quiet --python $(BIN)/python"; \
		compile=--compile-bytecode; \
	else install="$(BIN)/python -m pip install --quiet"; compile=; fi; \
	$$install $$compile --upgrade pip && \
	$$install $$compile -r $(REQUIREMENTS) $(if $(EXTRA_REQUIREMENTS),-r $(EXTRA_REQUIREMENTS)) \
		-r requirements-mlflow.txt -c requirements.lock -c requirements-mlflow.lock && \
	$$install --no-deps -e .
	touch $(STAMP)

# Keras's JAX backend on a GPU host, no TensorFlow (requirements-jax-gpu.txt: jax[cuda12]).
jax-gpu-env:
	$(PYTHON) -m venv .venv-jax-gpu
	.venv-jax-gpu/bin/python -m pip install --quiet --upgrade pip
	.venv-jax-gpu/bin/python -m pip install --quiet -r requirements-jax-gpu.txt -c requirements.lock
	.venv-jax-gpu/bin/python -m pip install --quiet -r requirements-gpu-extras.txt
	touch .venv-jax-gpu/.installed

# The offline kit for a GPU host with JAX preinstalled and no internet: the wheels of
# requirements-jax-kit.txt (keras and its requirements, NVML's binding) for that host's Python
# (PY) and CPU (ARCH: x86_64, or aarch64 for Grace Hopper), in one folder. On the host:
#   pip install --no-index --no-deps --find-links $(WHEELHOUSE) --target DIR -r requirements-jax-kit.txt
#   PYTHONPATH=DIR python benchmarks/gpu_check.py --backend jax
# (docs/cluster.md, "Keras on JAX"). Wheels only; the list is complete, so no resolving.
PY ?= 3.12
ARCH ?= x86_64
WHEELHOUSE ?= wheelhouse-jax-py$(PY)-$(ARCH)
jax-wheelhouse:
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --implementation cp \
		--python-version $(PY) --platform manylinux_2_28_$(ARCH) \
		--platform manylinux_2_17_$(ARCH) --platform manylinux2014_$(ARCH) \
		--dest $(WHEELHOUSE) -r requirements-jax-kit.txt
	@echo "$(WHEELHOUSE): $$(ls $(WHEELHOUSE) | wc -l) wheels for Python $(PY) on $(ARCH)"

# The GPU environment only; then e.g. `make report GPU=1` or `.venv-gpu/bin/snakemake ...`.
gpu-env:
	$(MAKE) GPU=1 .venv-gpu/.installed

# Do the GPU pins resolve on this index? Installs nothing, but pip fetches every wheel to read
# its metadata (tensorflow alone is ~600 MB); tests/test_gpu_setup.py does a lighter check.
gpu-requirements-check:
	$(PYTHON) -m pip install --dry-run --ignore-installed --no-deps -r requirements-gpu.txt -c requirements.lock

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) report/index.html

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint
	$(BIN)/snakemake -n --quiet
	$(BIN)/python -m pytest $(PYTEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

# Re-pin: a fresh venv from requirements.txt and requirements-jax.txt, frozen.
lock:
	rm -rf /tmp/cnnablate-lock && $(PYTHON) -m venv /tmp/cnnablate-lock
	/tmp/cnnablate-lock/bin/pip install --quiet -r requirements.txt -r requirements-jax.txt
	(echo "# pip freeze of a venv made from requirements.txt and requirements-jax.txt on Python 3.11 (make lock to refresh)."; \
	 /tmp/cnnablate-lock/bin/pip freeze) > requirements.lock
	/tmp/cnnablate-lock/bin/pip install --quiet -r requirements-mlflow.txt -c requirements.lock
	/tmp/cnnablate-lock/bin/pip freeze > /tmp/cnnablate-lock/all.txt
	(echo "# What requirements-mlflow.txt adds to a venv made from requirements.lock (make lock)."; \
	 grep -v -x -F -f requirements.lock /tmp/cnnablate-lock/all.txt) > requirements-mlflow.lock

clean:
	rm -rf results logs report/index.html report/figures report/results .snakemake
