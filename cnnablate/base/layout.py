"""Where the workflow's files live: the one description of the results, logs and report folders.

The rules (rules/*.smk), `python -m cnnablate status` and the report step all take their paths
from here, so a run folder is written, found and named the same way everywhere. Smoke mode
(`--config smoke=true`) keeps its results, logs and report apart, under `smoke/`; prepared real
data is shared (it is the same data).

Every method returns a path relative to the directory Snakemake runs in; pass Snakemake
wildcards (`"{study}"`) as the values to get a rule's output pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# A run's folder: a finished run's files (the train rule's outputs, by these names).
# predictions.npy: the predicted class (int16) of every image of the prepared test split, in
# its order, -1 where the run evaluated a subset; for runs whose headline is on a fixed test set
# (cnnablate.data.partition.saves_predictions), else empty.
HISTORY, METRICS, MODEL = "history.csv", "metrics.json", "model.keras"
PREDICTIONS = "predictions.npy"
RUN_OUTPUTS = {"history": HISTORY, "metrics": METRICS, "model": MODEL,
               "predictions": PREDICTIONS}
RUN_FILES = tuple(RUN_OUTPUTS.values())
# the state an interrupted run resumes from (Snakemake deletes a failed job's outputs, not
# this), holding the job's heartbeat while it runs, and its TensorBoard event files.
RESUME_DIR = ".resume"
HEARTBEAT = "heartbeat.json"
TENSORBOARD_DIR = "tensorboard"

REPORT_BUNDLE = "results"  # the report folder's copies: report/results/studies/..., runs/...
TABLES = ("runs", "summary", "paired")  # a study's tables, results/studies/{study}/{name}.csv
PAPER_TABLES = {"tex": "table.tex", "md": "table.md"}  # a study's paper tables, by format
TUNING_SELECTION = "tuning/selection.json"  # a tuned study's selection, in its study folder
TUNING_TABLE = "tuning.csv"  # and its tuning runs' table

# Shared by real and smoke runs (the same files): prepared datasets, downloaded archives and
# the logs and benchmarks of their jobs.
PREPARED = "results/data"
SYNTHETIC_DATA = "synthetic-data"  # smoke mode's stand-ins, in its results (and logs) folder
DOWNLOADS = "results/downloads"
META = "meta.json"  # a prepared dataset's description, written last
SPLITS = ("train", "val", "test")
SPLIT_FILES = {f"{split}_{kind}": f"{split}_{kind}.npy"
               for split in SPLITS for kind in ("images", "labels")}
DATA_LOGS = "logs"
DATA_BENCHMARKS = "results/benchmarks"
MLFLOW_DB = "mlflow.db"  # `cnnablate export`'s default MLflow store, in the results folder


def resume_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / RESUME_DIR


def heartbeat_file(run_dir: str | Path) -> Path:
    return resume_dir(run_dir) / HEARTBEAT


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TENSORBOARD_DIR


def prepared_files(data_dir: str | Path) -> dict[str, Path]:
    """Every file of a prepared dataset, keyed `{split}_images` / `{split}_labels` / `meta`."""
    return {**{k: Path(data_dir) / name for k, name in SPLIT_FILES.items()},
            "meta": Path(data_dir) / META}


@dataclass(frozen=True)
class Layout:
    """The folders of one invocation: real runs, or smoke mode's."""

    smoke: bool = False

    @property
    def results(self) -> str:
        return "results/smoke" if self.smoke else "results"

    @property
    def logs(self) -> str:
        return "logs/smoke" if self.smoke else "logs"

    @property
    def report_dir(self) -> str:
        return "report/smoke" if self.smoke else "report"

    @property
    def report(self) -> str:
        return f"{self.report_dir}/index.html"

    @property
    def report_bundle(self) -> str:
        """Copies of the files the report links from elsewhere (tables, paper tables, run
        histories), so that the report's folder works on its own (zipped, moved, shared)."""
        return f"{self.report_dir}/{REPORT_BUNDLE}"

    def data_dir(self, dataset: str, synthetic: bool = False) -> str:
        """A dataset's prepared arrays: the real ones, or smoke mode's SYNTHETIC stand-in."""
        if synthetic:
            return f"{self.results}/{SYNTHETIC_DATA}/{dataset}"
        return f"{PREPARED}/{dataset}"

    def data_file(self, dataset: str, name: str, synthetic: bool = False) -> str:
        """A prepared dataset's file: META or one of SPLIT_FILES."""
        return f"{self.data_dir(dataset, synthetic)}/{name}"

    def download(self, filename: str) -> str:
        """A source archive as downloaded (cnnablate.data.archive)."""
        return f"{DOWNLOADS}/{filename}"

    def data_log(self, kind: str, name: str) -> str:
        """The log of a download (`download`) or a preparation (`data`) job: shared, as the
        data is; smoke mode's SYNTHETIC stand-ins log with the smoke run (`synthetic_log`)."""
        return f"{DATA_LOGS}/{kind}/{name}.log"

    def synthetic_log(self, dataset: str) -> str:
        return self.log(SYNTHETIC_DATA, dataset)

    def data_benchmark(self, dataset: str) -> str:
        return f"{DATA_BENCHMARKS}/data/{dataset}.tsv"

    def log(self, stage: str, name: str) -> str:
        """The log of a job of `stage` (aggregate, figures, tuning, ...) named `name`."""
        return f"{self.logs}/{stage}/{name}.log"

    @property
    def report_log(self) -> str:
        return f"{self.logs}/report.log"

    @property
    def export_log(self) -> str:
        """What made `cnnablate export mlflow` fail, traceback and all."""
        return f"{self.logs}/export_mlflow.log"

    def run_key(self, study: str, variant: str, seed: int | str,
                candidate: str | None = None) -> str:
        """`study/variant/seed{seed}`: a run's folder below results/runs and logs/train; a
        tuning run's (a `tune:` candidate, cnnablate.workflow.config) `study/variant/
        tune-{candidate}/seed{seed}`, a level deeper so the two can never collide."""
        return f"{study}/{self.run_name(variant, seed, candidate)}"

    def run_name(self, variant: str, seed: int | str, candidate: str | None = None) -> str:
        """A run within its study (`run_key` less the study): how `status` names it."""
        tuning = f"tune-{candidate}/" if candidate else ""
        return f"{variant}/{tuning}seed{seed}"

    def parse_run_key(self, key: str) -> tuple[str, str, int]:
        """(study, variant, seed) of a deciding run's `run_key` (a rule's wildcard naming a
        whole run)."""
        study, variant, seed = key.split("/")
        return study, variant, int(seed.removeprefix("seed"))

    @property
    def runs(self) -> str:
        """The run folders' root: a run's folder is `{runs}/{run_key}`."""
        return f"{self.results}/runs"

    def run_dir(self, study: str, variant: str, seed: int | str,
                candidate: str | None = None) -> str:
        return f"{self.runs}/{self.run_key(study, variant, seed, candidate)}"

    def run_file(self, study: str, variant: str, seed: int | str, name: str,
                 candidate: str | None = None) -> str:
        return f"{self.run_dir(study, variant, seed, candidate)}/{name}"

    def run_log(self, study: str, variant: str, seed: int | str,
                candidate: str | None = None) -> str:
        return f"{self.logs}/train/{self.run_key(study, variant, seed, candidate)}.log"

    def run_benchmark(self, study: str, variant: str, seed: int | str,
                      candidate: str | None = None) -> str:
        key = self.run_key(study, variant, seed, candidate)
        return f"{self.results}/benchmarks/train/{key}.tsv"

    def of(self, run: dict) -> tuple[str, str, int | str, str | None]:
        """A resolved run's (study, variant, seed, candidate): the arguments of the methods
        above, for a deciding or a tuning run alike."""
        return (run["study"], run["variant"], run["seed"],
                (run.get("tuning") or {}).get("candidate"))

    def study_dir(self, study: str) -> str:
        """A study's tables, round decisions and stale markers (cnnablate.workflow.freshness)."""
        return f"{self.results}/studies/{study}"

    def table(self, study: str, name: str) -> str:
        return f"{self.study_dir(study)}/{name}.csv"

    def study_file(self, study: str, name: str) -> str:
        """Any other file of a study's: PAPER_TABLES, TUNING_TABLE, TUNING_SELECTION."""
        return f"{self.study_dir(study)}/{name}"

    def tuning_selection(self, study: str) -> str:
        return self.study_file(study, TUNING_SELECTION)

    def tuning_table(self, study: str) -> str:
        return self.study_file(study, TUNING_TABLE)

    def paper_table(self, study: str, kind: str) -> str:
        """A study's paper table, `kind` one of PAPER_TABLES (tex, md)."""
        return self.study_file(study, PAPER_TABLES[kind])

    def round_state(self, study: str, k: int | str) -> str:
        """The decision after round k of a study's adaptive seeds."""
        return f"{self.study_dir(study)}/rounds/round{k}.json"

    def figure(self, study: str, name: str) -> str:
        return f"{self.report_dir}/figures/{study}/{name}.png"

