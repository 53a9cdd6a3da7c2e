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

REPORT_BUNDLE = "results"  # the report folder's copies: report/results/studies/..., runs/...
RUN_FILES = ("history.csv", "metrics.json", "model.keras")  # a finished run's files
TABLES = ("runs", "summary", "paired")  # a study's tables, results/studies/{study}/{name}.csv


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
            return f"{self.results}/synthetic-data/{dataset}"
        return f"results/data/{dataset}"

    def run_key(self, study: str, variant: str, seed: int | str,
                candidate: str | None = None) -> str:
        """`study/variant/seed{seed}`: a run's folder below results/runs and logs/train; a
        tuning run's (a `tune:` candidate, cnnablate.workflow.config) `study/variant/
        tune-{candidate}/seed{seed}`, a level deeper so the two can never collide."""
        tuning = f"tune-{candidate}/" if candidate else ""
        return f"{study}/{variant}/{tuning}seed{seed}"

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
        """Any other file of a study's: `table.tex`, `tuning.csv`, `tuning/selection.json`."""
        return f"{self.study_dir(study)}/{name}"

    def round_state(self, study: str, k: int | str) -> str:
        """The decision after round k of a study's adaptive seeds."""
        return f"{self.study_dir(study)}/rounds/round{k}.json"

    def figure(self, study: str, name: str) -> str:
        return f"{self.report_dir}/figures/{study}/{name}.png"

