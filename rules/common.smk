# Plans the runs from the config; plain Python only (no TensorFlow while planning).
import os
import re
import sys
import time

sys.path.insert(0, workflow.basedir)

from cnnablate.workflow import config as cnnablate_config  # noqa: E402
from cnnablate.base.ids import config_hash, run_id  # noqa: E402
from cnnablate.data.archive import ARCHIVES  # noqa: E402
from cnnablate.base.catalog import FIGURES as FIGURE_REGISTRY  # noqa: E402
from cnnablate.base.catalog import TUNING_FIGURES as TUNING_FIGURE_REGISTRY  # noqa: E402
from cnnablate.workflow.fingerprint import Fingerprints  # noqa: E402
from cnnablate.base.layout import (  # noqa: E402
    HISTORY, META, METRICS, RUN_FILES, RUN_OUTPUTS, SPLIT_FILES, TABLES, Layout,
)
from cnnablate.workflow import plan  # noqa: E402
from cnnablate.workflow.shared import shared_runs  # noqa: E402

try:
    # the deciding runs, and the tuning runs of studies with `tune:` (rules/tuning.smk)
    RUNS, TUNING = cnnablate_config.resolve(config)
except cnnablate_config.ConfigError as error:
    raise WorkflowError(f"config error: {error}") from None

# Smoke runs (`--config smoke=true`) get their own result, log and report folders, so a smoke
# check never overwrites a finished study's results. Prepared data is shared: it is the same.
# Every path comes from cnnablate/base/layout.py (also what `status` and the report read).
SMOKE = any(run.get("smoke") for run in RUNS)
LAYOUT = Layout(smoke=SMOKE)

# A user's archive path that does not exist is a config mistake: say so before any job.
_missing = plan.missing_archive(config["datasets"], plan.datasets_of(RUNS))
if _missing:
    raise WorkflowError(f"config error: {_missing}")

# A study whose permutation test cannot decide with the seeds configured: said before any run.
from cnnablate.decisions.sentences import configured_reach  # noqa: E402

for _study in dict.fromkeys(run["study"] for run in RUNS):
    _reach = configured_reach(cnnablate_config.study_settings(config, _study))
    if _reach:
        print(f"cnnablate: {_reach}", file=sys.stderr)

# Smoke mode where a dataset's real files are absent: a SYNTHETIC stand-in in the real format
# (cnnablate/data/synthetic.py), prepared apart from real data so a real run never reads it,
# and flagged in every run config (deciding and tuning), hence in the logs, tables and report.
SYNTHETIC = plan.synthetic_datasets(config["datasets"], plan.datasets_of(RUNS), SMOKE)
plan.mark_synthetic([*RUNS, *TUNING.runs], SYNTHETIC)
if SYNTHETIC:
    print(f"cnnablate: smoke run on SYNTHETIC stand-ins for {', '.join(sorted(SYNTHETIC))} "
          "(their real files are absent): a check of the pipeline, not of the data",
          file=sys.stderr)


def data_dir(dataset):
    """Where a dataset's prepared arrays are: the real ones, or smoke mode's stand-in."""
    return LAYOUT.data_dir(dataset, synthetic=dataset in SYNTHETIC)


def data_file(dataset, name):
    """A prepared dataset's file (META, SPLIT_FILES): the real one, or smoke mode's stand-in."""
    return LAYOUT.data_file(dataset, name, synthetic=dataset in SYNTHETIC)


RUN_BY_ID = {run_id(run): run for run in RUNS}


def job_run(wildcards):
    """The resolved run a train job's wildcards (study, variant, seed) name."""
    return RUN_BY_ID[(wildcards.study, wildcards.variant, int(wildcards.seed))]


STUDIES = list(dict.fromkeys(run["study"] for run in RUNS))
DATASETS = plan.datasets_of(RUNS)


def tuned(study):
    """A study with `tune:` (its variants' own `tune:` need the study's): it has tuning runs,
    a selection, a tuning.csv and its own figures (rules/tuning.smk, rules/report.smk)."""
    return study in TUNING.specs


# A run identical to an earlier study's (all but its names) is trained once and copied
# (cnnablate/workflow/shared.py; the share_run job): {run id: the id of the run it copies}.
# A tuned study's runs are never shared: their settings follow its selection (rules/tuning.smk).
SHARED = shared_runs(RUNS, tuned_studies=[s for s in STUDIES if tuned(s)])


def source_file(relative):
    """A workflow file relative to the working directory, so moving the checkout reruns nothing.

    Not `workflow.source_path`: for a local workflow it returns a copy in a per-invocation
    temporary source cache, whose path and mtime change on every run and so rerun every job.
    """
    return os.path.relpath(os.path.join(workflow.basedir, relative))


# What code each job executes that can change its results, by content (a `code` param of every
# rule; cnnablate/workflow/fingerprint.py): editing one model's module reruns only that model's runs,
# comments, docstrings and `touch` rerun nothing.
CODE = Fingerprints(workflow.basedir)


def runs_of(study):
    return [run for run in RUNS if run["study"] == study]


def run_dir(run):
    return LAYOUT.run_dir(run["study"], run["variant"], run["seed"])


def study_settings(study):
    return cnnablate_config.study_settings(config, study)


ARCHIVE_BY_FILENAME = {entry["filename"]: entry for entry in ARCHIVES.values()}


def archive_of(wildcards):
    """The verified source archive a dataset needs: the user's copy or the download's."""
    return plan.archive_of(config["datasets"][wildcards.dataset], ARCHIVES, LAYOUT)


# No stale results (cnnablate/workflow/freshness.py): a study whose tables, figures or report
# outlive a missing run gets a new marker file as an input of its aggregate, figures and report
# jobs, so that a plain rerun rebuilds the missing files and everything above them. Planning
# only names the marker; a mark_stale job writes it, so `snakemake -n` shows the plan and
# writes nothing. Checked once per study while Snakemake builds the jobs.
from functools import cache  # noqa: E402

from cnnablate.workflow import freshness  # noqa: E402


@cache
def stale_marker(study):
    """[the study's marker]: a new one (made by mark_stale) while results are missing under
    built ones, else the last one made, if any (an unchanged input: nothing reruns)."""
    layers = [
        [f"{run_dir(run)}/{name}" for run in study_runs(study) for name in RUN_FILES],
        [LAYOUT.table(study, name) for name in TABLES],
        [LAYOUT.figure(study, name) for name in FIGURES],
    ]
    gone = freshness.stale_files(layers, LAYOUT.report)
    current = freshness.current_marker(LAYOUT.study_dir(study))
    if not gone:
        return [current] if current else []
    STALE[study] = gone
    print(f"cnnablate: {study}: {len(gone)} result files are missing under built ones "
          f"(first: {gone[0]}); rebuilding them, then the study's tables, figures and "
          "report", file=sys.stderr)
    return [freshness.next_marker(LAYOUT.study_dir(study), gone, current)]


STALE = {}  # study -> its missing files, for the mark_stale job (rules/aggregate.smk)


def shared_source(wildcards):
    """The run a share_run job (rules/train.smk) copies: the identical one another study trains."""
    return RUN_BY_ID[SHARED[LAYOUT.parse_run_key(wildcards.run)]]


def failure_advice(snakemake_log):
    """The Snakefile's onerror line (cnnablate.workflow.plan.failure_advice): a job of this
    invocation that ended on Ctrl-C means interrupted, else failed."""
    return plan.failure_advice(plan.runs_done(run_dir(run) for run in RUNS), len(RUNS),
                               plan.interrupted(LAYOUT.logs, _PLANNED_AT))


_PLANNED_AT = time.time()


def study_figure_paths(study):
    """Figure name -> PNG of every figure a study has: a tuned study's own ones too."""
    names = FIGURES + (TUNING_FIGURES if tuned(study) else ())
    return {name: FIGURE_PATH.format(study=study, name=name) for name in names}


def study_figure_pdfs(study):
    """Figure name -> the vector PDF beside each of `study_figure_paths`."""
    return {name: FIGURE_PDF_PATH.format(study=study, name=name)
            for name in study_figure_paths(study)}
