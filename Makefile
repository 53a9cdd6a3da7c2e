# The two commands of the README: `make report` and `make test`. Each makes the virtual
# environment first if it is missing or older than the pins.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# 4 on 2 cores is deliberate (BENCHMARKS.md, figure 1).
CORES ?= 4
export PATH := $(BIN):$(PATH)

.PHONY: report test lint lock clean

$(STAMP): requirements.txt requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c requirements.lock
	touch $(STAMP)

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) report/index.html

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint
	$(BIN)/snakemake -n --quiet
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

# Re-pin: a fresh venv from requirements.txt, frozen.
lock:
	rm -rf /tmp/cnnablate-lock && $(PYTHON) -m venv /tmp/cnnablate-lock
	/tmp/cnnablate-lock/bin/pip install --quiet -r requirements.txt
	(echo "# pip freeze of a venv made from requirements.txt on Python 3.11 (make lock to refresh)."; \
	 /tmp/cnnablate-lock/bin/pip freeze) > requirements.lock

clean:
	rm -rf results logs report/index.html report/figures .snakemake
