"""What a user sees in the terminal: known user errors in one line with their fix (the
traceback only in the job's log), a bad path before any job, and a quiet Ctrl-C that says what
finished and how to resume (also where the suite itself ignores SIGINT). Each job in a line or
two: tests/test_workflow.py, on the session's finished workflow."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnablate.base import errors
from cnnablate.data.archive import ChecksumError, DownloadError
from cnnablate.data.tfds_source import DatasetNotPreparedError
from tests import tiny
from tests.workflow import copy_workflow, foreground, snakemake, write_config

ACTS = {**tiny.ACTS, "seeds": [0], "train": {**tiny.ACTS["train"], "epochs": 1}}


@pytest.mark.workflow
def test_missing_data_is_one_line_with_the_fix_and_no_traceback(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    config = {
        "datasets": {"beans": {"source": "tfds", "name": "beans"}},
        "studies": {"b": {**ACTS, "dataset": "beans"}},
    }
    write_config(work / "config.yaml", config)
    proc = snakemake(work, "--cores", "1", "report/index.html", check=False,
                     env={"TFDS_DATA_DIR": str(tmp_path / "no-tfds-data")})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    lines = [line for line in out.splitlines() if line.startswith("cnnablate error:")]
    assert len(lines) == 1, out[-3000:]
    assert "'beans' is not prepared" in lines[0] and "tfds.load" in lines[0]  # the fix
    assert "logs/data/beans.log" in lines[0]
    assert "Traceback" not in out
    assert "Traceback" in (work / "logs/data/beans.log").read_text()  # details stay there
    assert "Rerun to resume" not in out and "Fix what it says" in out
    assert not (work / "results/runs").exists()


def test_bad_archive_path_is_refused_before_any_job(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    config = {
        "datasets": {"cifar10": {"source": "cifar10_binary", "archive": "nowhere/c10.tar.gz"}},
        "studies": {"c": {**ACTS, "dataset": "cifar10"}},
    }
    write_config(work / "config.yaml", config)
    proc = snakemake(work, "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "datasets.cifar10.archive: 'nowhere/c10.tar.gz' is not a file" in out
    assert "Traceback" not in out
    assert not (work / "logs").exists()


def test_known_errors_are_recognised_and_bugs_are_not():
    for exc in (DatasetNotPreparedError("x"), DownloadError("x"), ChecksumError("x"),
                FileNotFoundError("x"), errors.UserError("x")):
        assert errors.is_known(exc), exc
    for exc in (ValueError("x"), KeyError("x"), ZeroDivisionError()):
        assert not errors.is_known(exc), exc
    line = errors.one_line(DownloadError("cannot download\n  it: offline"), "logs/a.log")
    assert line == "cnnablate error: cannot download it: offline (details: logs/a.log)"


def _training(work: Path, since: float) -> bool:
    return any(p.stat().st_mtime > since for p in
               work.glob("results/runs/acts/*/seed*/.resume/backup/training_metadata.json"))


@contextlib.contextmanager
def sigint_ignored():
    """SIGINT ignored in this process, as in a suite started from a background shell (`make
    test &`, `nohup make test &` in a script): what children inherit there."""
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


def test_a_foreground_child_handles_sigint_even_where_the_suite_ignores_it():
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    with sigint_ignored():
        proc = foreground([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True)
        out, _ = proc.communicate(timeout=60)
    assert out.strip() == "True"


@pytest.mark.workflow
def test_ctrl_c_ends_quietly_with_what_finished_and_how_to_resume(prepared_copy):
    """A user's Ctrl-C, to `nohup snakemake ...` run in the foreground, from a suite whose own
    SIGINT is ignored (started in the background): still the documented quiet stop."""
    work = prepared_copy  # the digits are prepared: straight to training
    # Epochs here take a fraction of a second: with 20, a run could finish between the first
    # epoch's backup and the Ctrl-C on a busy machine (seen once under two test workers). It
    # is interrupted after its first epoch, so a long run costs nothing.
    config = tiny.config(acts={**ACTS, "seeds": [0, 1], "train": {**ACTS["train"],
                                                                   "epochs": 1000}})
    write_config(work / "config.yaml", config)
    exe = Path(sys.executable).with_name("snakemake")
    started = time.time()
    with sigint_ignored():
        proc = foreground(
            ["nohup", str(exe), "--directory", str(work), "-s", str(work / "Snakefile"),
             "--cores", "2", "report/index.html"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work,
        )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not _training(work, started):
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert "cnnablate: interrupted; 0 of 4 runs are complete. Rerun the same command" in out, out
    # After Snakemake's own "Terminating ..." only its short error block per interrupted job
    # (two were running) and our line remain: no tracebacks from the jobs.
    tail = out[out.index("Terminating processes on user request"):]
    assert len(tail.splitlines()) < 40, tail
