# Plans the runs from the config; plain Python only (no TensorFlow while planning).
import os
import re
import sys

sys.path.insert(0, workflow.basedir)

from cnnablate import config as cnnablate_config  # noqa: E402
from cnnablate.data.archive import ARCHIVES  # noqa: E402

try:
    RUNS = cnnablate_config.resolve_runs(config)
except cnnablate_config.ConfigError as error:
    raise WorkflowError(f"config error: {error}") from None

# Smoke runs (`--config smoke=true`) get their own result, log and report folders, so a smoke
# check never overwrites a finished study's results. Prepared data is shared: it is the same.
SMOKE = any(run.get("smoke") for run in RUNS)
RESULTS = "results/smoke" if SMOKE else "results"
LOGS = "logs/smoke" if SMOKE else "logs"
REPORT = "report/smoke" if SMOKE else "report"

RUN_BY_ID = {cnnablate_config.run_id(run): run for run in RUNS}
STUDIES = list(dict.fromkeys(run["study"] for run in RUNS))
DATASETS = list(dict.fromkeys(run["dataset"] for run in RUNS))


def library(*modules):
    """Inputs naming the cnnablate source files a step runs, because Snakemake tracks only the
    script file's own code: without these a library change would silently rerun nothing.

    Paths are relative to the working directory, so moving the checkout reruns nothing.
    Not `workflow.source_path`: for a local workflow it returns a copy in a per-invocation
    temporary source cache, whose path and mtime change on every run and so rerun every job.
    """
    return [source_file(f"cnnablate/{module}") for module in modules]


def source_file(relative):
    return os.path.relpath(os.path.join(workflow.basedir, relative))


# What each stage imports from cnnablate (tests/test_workflow_code_inputs.py checks these).
PREPARE_CODE = library(
    "__init__.py", "smk.py", "data/__init__.py", "data/prepare.py", "data/splits.py",
    "data/store.py",
    "data/digits.py", "data/sources.py", "data/cifar_binary.py", "data/archive.py",
    "data/tfds_source.py", "data/image_folder.py",
)
TRAIN_CODE = library(
    "__init__.py", "smk.py", "catalog.py", "config.py", "rounds.py", "train.py", "gpu.py",
    "provenance.py",
    "activations.py", "initializers.py", "actstats.py", "data/__init__.py",
    "data/store.py", "data/splits.py", "data/pipeline.py", "models/__init__.py",
    "models/layers.py", "models/mobilenet_v2.py", "models/all_cnn.py", "models/nin.py",
)
AGGREGATE_CODE = library("__init__.py", "smk.py", "aggregate.py", "stats.py", "decide.py")
REPORT_CODE = library(
    "__init__.py", "smk.py", "aggregate.py", "figures.py", "report.py", "stats.py", "decide.py",
    "sentences.py",
)


def runs_of(study):
    return [run for run in RUNS if run["study"] == study]


def run_dir(run):
    return f"{RESULTS}/runs/{run['study']}/{run['variant']}/seed{run['seed']}"


def study_settings(study):
    return cnnablate_config.study_settings(config, study)


ARCHIVE_BY_FILENAME = {entry["filename"]: entry for entry in ARCHIVES.values()}


def archive_of(wildcards):
    """The verified source archive a dataset needs: the user's copy or the download's."""
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] not in ARCHIVES:
        return []
    return spec.get("archive") or f"results/downloads/{ARCHIVES[spec['source']]['filename']}"
