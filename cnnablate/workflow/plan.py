"""What the Snakefile decides while planning besides the runs (cnnablate.workflow.config): user
archives that are missing, smoke mode's SYNTHETIC stand-ins, a dataset's archive, and the advice
printed when a workflow stops. Plain Python: rules/common.smk calls these.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from cnnablate.base.layout import PREPARED, RUN_FILES, Layout

INTERRUPTED = b"interrupted (Ctrl-C)"  # cnnablate.workflow.smk.log_to's last line on Ctrl-C
LOG_TAIL = 400  # bytes of a log's end that hold its last line


def datasets_of(runs: Iterable[Mapping]) -> list[str]:
    """The datasets the runs use, each once, in their order."""
    return list(dict.fromkeys(run["dataset"] for run in runs))


def missing_archive(datasets: Mapping[str, Mapping], names: Iterable[str]) -> str | None:
    """The config error of the first dataset in `names` whose `archive:` is not a file (a
    user's path that does not exist is a config mistake: said before any job), else None."""
    for name in names:
        archive = datasets[name].get("archive")
        if archive and not os.path.isfile(archive):
            return (f"datasets.{name}.archive: {archive!r} is not a file (paths are relative to "
                    "the directory snakemake runs in); fix the path, or remove `archive:` to "
                    "download the official archive")
    return None


def synthetic_datasets(datasets: Mapping[str, Mapping], names: Iterable[str], smoke: bool,
                       prepared_root: str | Path = PREPARED) -> set[str]:
    """Smoke mode's datasets whose real files are absent: each gets a SYNTHETIC stand-in in the
    real format (cnnablate.data.synthetic), prepared apart from real data. None outside smoke
    mode."""
    if not smoke:
        return set()
    from cnnablate.data.synthetic import real_data_present

    return {name for name in names
            if not real_data_present(name, datasets[name], prepared_root)}


def mark_synthetic(runs: Iterable[dict], synthetic: set[str]) -> None:
    """Flag every run on a SYNTHETIC stand-in in its config (so in its logs, tables, report)."""
    for run in runs:
        if run["dataset"] in synthetic:
            run["synthetic"] = True


def archive_of(spec: Mapping, archives: Mapping[str, Mapping], layout: Layout) -> str | list:
    """The verified source archive a dataset needs: the user's copy or the download's; [] (no
    input) for a source without an archive."""
    if spec["source"] not in archives:
        return []
    return spec.get("archive") or layout.download(archives[spec["source"]]["filename"])


def runs_done(run_dirs: Iterable[str | Path]) -> int:
    """How many of the run folders hold every file of a finished run."""
    return sum(all(os.path.exists(Path(d) / name) for name in RUN_FILES) for d in run_dirs)


def ended_interrupted(log_path: str | Path, since: float) -> bool:
    """Whether the job whose log this is ended on Ctrl-C after `since` (a time.time())."""
    try:
        if os.path.getmtime(log_path) < since:
            return False
        with open(log_path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(log_path) - LOG_TAIL))
            return INTERRUPTED in fh.read()
    except OSError:
        return False


def interrupted(logs_dir: str | Path, since: float) -> bool:
    """Whether any job logged under `logs_dir` ended on Ctrl-C after `since`."""
    paths = glob.glob(f"{glob.escape(str(logs_dir))}/**/*.log", recursive=True)
    return any(ended_interrupted(path, since) for path in paths)


def failure_advice(done: int, total: int, was_interrupted: bool) -> str:
    """The Snakefile's onerror line: after Ctrl-C, what finished and how to resume; after a
    failed job, where to look and that a rerun keeps what finished."""
    if was_interrupted:
        return (f"cnnablate: interrupted; {done} of {total} runs are complete. Rerun the "
                "same command to resume: finished runs are kept, interrupted training resumes "
                "at its last finished epoch, and the tables and report are rebuilt.")
    return (f"cnnablate: a job failed ({done} of {total} runs are complete); its message "
            "and log are named above. Fix what it says, then rerun the same command: finished "
            "jobs are kept.")
