# Plans the runs from the config; plain Python only (no TensorFlow while planning).
import os
import re
import sys

sys.path.insert(0, workflow.basedir)

from cnnablate import config as cnnablate_config  # noqa: E402
from cnnablate.data.archive import ARCHIVES  # noqa: E402
from cnnablate.catalog import FIGURES as FIGURE_REGISTRY  # noqa: E402
from cnnablate.fingerprint import Fingerprints  # noqa: E402

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


def source_file(relative):
    """A workflow file relative to the working directory, so moving the checkout reruns nothing.

    Not `workflow.source_path`: for a local workflow it returns a copy in a per-invocation
    temporary source cache, whose path and mtime change on every run and so rerun every job.
    """
    return os.path.relpath(os.path.join(workflow.basedir, relative))


# What code each job executes that can change its results, by content (a `code` param of every
# rule; cnnablate/fingerprint.py): editing one model's module reruns only that model's runs,
# comments, docstrings and `touch` rerun nothing.
CODE = Fingerprints(workflow.basedir)


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
