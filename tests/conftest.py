"""Shared fixtures of the end-to-end tests (tests/README.md says how to use them).

- `finished`: the tiny workflow of tests/tiny.py (FINISHED) run to its report once per test
  session, in a copy of the repo. Read it, dry-run on it; never edit it.
- `finished_copy`: a copy of it (code, results, Snakemake's records, file times kept) for a test
  that edits code or deletes results.
- `prepared_copy`: a copy with only the prepared digits (and their records): for a test that
  runs its own config without preparing the data again. A module-scoped fixture makes its own
  with `tests.workflow.copy_prepared(finished.work, dest)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tiny import FINISHED
from tests.workflow import copy_finished, copy_prepared, copy_workflow, snakemake, write_config


@dataclass(frozen=True)
class Finished:
    work: Path  # the finished copy of the repo
    stdout: str  # of the snakemake run that made it
    stderr: str


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Finished:
    """FINISHED run to the report once per session, as `make report` runs it (4 jobs at a time
    on 2 cores: a job's start-up waits on imports more than on the CPU; BENCHMARKS.md)."""
    work = copy_workflow(tmp_path_factory.mktemp("finished") / "wf")
    write_config(work / "config.yaml", FINISHED)
    proc = snakemake(work, "--cores", "4", "report/index.html")
    return Finished(work, proc.stdout, proc.stderr)


@pytest.fixture
def finished_copy(finished, tmp_path) -> Path:
    return copy_finished(finished.work, tmp_path / "wf")


@pytest.fixture
def prepared_copy(finished, tmp_path) -> Path:
    return copy_prepared(finished.work, tmp_path / "wf")
