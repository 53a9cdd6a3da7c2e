"""What a user sees in the terminal: each job in a line or two, known user errors in one line
with their fix (the traceback only in the job's log), a bad path before any job, and a quiet
Ctrl-C that says what finished and how to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnablate.data.archive import ChecksumError, DownloadError
from cnnablate.data.tfds_source import DatasetNotPreparedError
from cnnablate.workflow import errors
from tests.workflow import copy_workflow, snakemake, write_config

TINY = {
    "datasets": {"digits": {"source": "sklearn_digits"}},
    "studies": {
        "acts": {
            "dataset": "digits",
            "image_size": 16,
            "model": {"name": "all_cnn_c", "width": 0.125, "bn_momentum": 0.9},
            "train": {"epochs": 1, "batch_size": 32, "max_train_images": 128,
                      "max_eval_images": 64},
            "seeds": [0],
            "baseline": "relu",
            "variants": {"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
        },
    },
}


@pytest.mark.workflow
def test_each_job_is_a_line_or_two_without_its_code_inputs(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    write_config(work / "config.yaml", TINY)
    proc = snakemake(work, "--cores", "2", "report/index.html")
    out = (proc.stdout + proc.stderr).splitlines()
    for variant in ("relu", "elu"):
        described = [line for line in out if f"variant={variant} seed=0" in line]
        assert len(described) == 1, described
        assert f"logs/train/acts/{variant}/seed0.log" in described[0]
    assert not any("cnnablate/training/train.py" in line for line in out)  # no code inputs listed
    assert not any(line.strip().startswith(("input:", "output:")) for line in out)
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_missing_data_is_one_line_with_the_fix_and_no_traceback(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    config = {
        "datasets": {"beans": {"source": "tfds", "name": "beans"}},
        "studies": {"b": {**TINY["studies"]["acts"], "dataset": "beans"}},
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
        "studies": {"c": {**TINY["studies"]["acts"], "dataset": "cifar10"}},
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


@pytest.mark.workflow
def test_ctrl_c_ends_quietly_with_what_finished_and_how_to_resume(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    config = {"datasets": TINY["datasets"], "studies": {"acts": {
        **TINY["studies"]["acts"], "seeds": [0, 1],
        "train": {**TINY["studies"]["acts"]["train"], "epochs": 20}}}}
    write_config(work / "config.yaml", config)
    exe = Path(sys.executable).with_name("snakemake")
    started = time.time()
    proc = subprocess.Popen(
        [str(exe), "--directory", str(work), "-s", str(work / "Snakefile"), "--cores", "2",
         "report/index.html"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work,
        start_new_session=True,
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
