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

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tiny import FINISHED
from tests.workflow import (
    SharedBuildError,
    build_once,
    copy_finished,
    copy_prepared,
    copy_workflow,
    snakemake,
    write_config,
)


@dataclass(frozen=True)
class Finished:
    work: Path  # the finished copy of the repo
    stdout: str  # of the snakemake run that made it
    stderr: str


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Finished:
    """FINISHED run to the report once per session, as `make report` runs it (4 jobs at a time
    on 2 cores: a job's start-up waits on imports more than on the CPU; BENCHMARKS.md).

    Under pytest-xdist (`make test` runs two workers) the workers share one: the first to need
    it builds it under a lock in their common temporary folder, the others wait and read it."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the workers' common base

    def build() -> dict:
        built = _build_finished(shared / "finished")
        return {"work": str(built.work), "stdout": built.stdout, "stderr": built.stderr}

    try:
        saved = build_once(shared, "finished", build)
    except SharedBuildError as error:
        pytest.fail(str(error))
    return Finished(Path(saved["work"]), saved["stdout"], saved["stderr"])


def _build_finished(where: Path) -> Finished:
    work = copy_workflow(where / "wf")
    write_config(work / "config.yaml", FINISHED)
    proc = snakemake(work, "--cores", "4", "report/index.html")
    return Finished(work, proc.stdout, proc.stderr)


@pytest.fixture
def finished_copy(finished, tmp_path) -> Path:
    return copy_finished(finished.work, tmp_path / "wf")


@pytest.fixture
def prepared_copy(finished, tmp_path) -> Path:
    return copy_prepared(finished.work, tmp_path / "wf")


def pytest_collection_modifyitems(config, items) -> None:
    """Files with end-to-end tests first, in their order; then the rest. Under pytest-xdist
    (`make test`: `--dist loadfile --no-loadscope-reorder`, a whole file to one worker) the long
    files start at once and the short unit files fill in at the end, instead of one worker
    finishing a long file alone (xdist's own reordering puts files with many tests first)."""
    end_to_end = {item.path for item in items if item.get_closest_marker("workflow")}
    items.sort(key=lambda item: (item.path not in end_to_end, _longest_first(item.path.name)))


# The longest files, longest first (a fresh clone's suite, BENCHMARKS.md §10): given out first,
# they do not end the run on one worker while the other has finished (longest processing time
# first); the others keep their order (the sort is stable, a file stays together).
LONGEST = ("test_studies.py", "test_halving_workflow.py", "test_fresh_results.py",
           "test_jax_backend.py", "test_reliability.py", "test_rounds.py",
           "test_tuning_workflow.py", "test_slurm.py")


def _longest_first(name: str) -> int:
    return LONGEST.index(name) if name in LONGEST else len(LONGEST)
