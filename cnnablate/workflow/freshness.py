"""No stale results: find, while planning, the studies whose tables outlive one of their runs.

Snakemake rebuilds a missing file only when something downstream of it must run anyway, so a
run whose three files were deleted (or removed by an interrupted `--forcerun`/`--forceall`,
which deletes a job's outputs before it starts) leaves the study's tables, figures and the
report in place, and a plain rerun says "Nothing to be done" while the report shows the old
numbers. The Snakefile therefore checks each study while planning: where a product is missing
under one that exists, it names a new marker file (`results/studies/{study}/.rebuild-<digest>`)
as an input of the study's aggregate, figures and report jobs. Planning writes nothing (so
`snakemake -n` leaves the tree as it found it): a light job, `mark_stale`, makes the marker, and
the new input makes Snakemake rerun those jobs and, because they must run, rebuild the missing
files below them (training resumes from its epoch backup). Once rebuilt, nothing is missing, the
last marker stays their input unchanged, and a rerun does nothing.

Plain Python, no TensorFlow: the Snakefile imports this while planning.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cnnablate.base.layout import RUN_FILES

MARKER_PREFIX = ".rebuild-"  # then 12 hex digits


class StaleResultsError(RuntimeError):
    """A table names a run whose files are gone: rendering it would show numbers from nowhere."""


def missing(paths: Iterable[str | Path]) -> list[str]:
    return [str(p) for p in paths if not os.path.exists(p)]


def stale_reason(layers: Sequence[Sequence[str | Path]]) -> list[str]:
    """The missing files of a chain of products, bottom up (runs, tables, figures, report),
    that sit under a product which exists; empty if nothing built is out of date.

    A missing file with nothing built above it needs no help: Snakemake builds it anyway.
    """
    for i, layer in enumerate(layers[:-1]):
        gone = missing(layer)
        if gone and any(os.path.exists(p) for upper in layers[i + 1:] for p in upper):
            return gone + stale_reason(layers[i + 1:])
    return []


def stale_files(study_layers: Sequence[Sequence[str | Path]], report: str | Path) -> list[str]:
    """`stale_reason` of a study's runs, tables and figures with the report above them.

    A study with none of its own files built is new (the report may be another config's):
    Snakemake builds it all anyway, and calling it stale would only confuse.
    """
    if not any(os.path.exists(p) for layer in study_layers for p in layer):
        return []
    return stale_reason([*study_layers, [report]])


def current_marker(study_dir: str | Path) -> str | None:
    """The study's marker made last (mark_stale leaves one), or None."""
    found = sorted(Path(study_dir).glob(f"{MARKER_PREFIX}*"), key=os.path.getmtime)
    return str(found[-1]) if found else None


def next_marker(study_dir: str | Path, gone: Sequence[str], current: str | None) -> str:
    """A marker name new for this state (what is missing, after which marker), so the same
    files missing again later still give a new input; the same state names the same marker, so
    `snakemake -n` shows what the real run will do."""
    text = "\n".join([Path(current).name if current else "", *gone])
    return f"{Path(study_dir)}/{MARKER_PREFIX}{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def mark_stale(marker: str | Path, gone: Sequence[str]) -> None:
    """Write the marker (what was missing), and remove the study's older markers."""
    marker = Path(marker)
    marker.parent.mkdir(parents=True, exist_ok=True)
    for old in marker.parent.glob(f"{MARKER_PREFIX}*"):
        if old != marker:
            old.unlink(missing_ok=True)
    tmp = marker.with_name(f".{marker.name}.tmp{os.getpid()}")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    tmp.write_text(f"# {stamp}: missing while planning; rebuilt with everything above them\n"
                   + "".join(f"{path}\n" for path in gone))
    tmp.replace(marker)


def check_runs_exist(runs_csv: str | Path, run_dirs: Mapping[tuple[str, int], str]) -> None:
    """Refuse a table that names a run (variant, seed) whose files are gone, or one the study
    no longer has: the report would show its old numbers and link to nothing."""
    with open(runs_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    problems = []
    for row in rows:
        key = (row["variant"], int(row["seed"]))
        run_dir = run_dirs.get(key)
        if run_dir is None:
            problems.append(f"{key[0]} seed {key[1]} (not in the config)")
            continue
        gone = missing(Path(run_dir) / name for name in RUN_FILES)
        if gone:
            problems.append(", ".join(gone))
    if problems:
        raise StaleResultsError(
            f"{runs_csv} names runs whose files are gone: {'; '.join(problems)}. "
            "Rerun the same snakemake command: it retrains them and rebuilds the tables."
        )
