"""Several jobs at once never corrupt shared files; an interrupted preparation never looks done."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest

from cnnablate.data.prepare import prepare_dataset
from cnnablate.data.store import load_prepared, output_files, sha256_file
from tests.workflow import copy_workflow, planned_jobs, write_config


def _prepare(out: str) -> str:
    prepare_dataset("digits", {"source": "sklearn_digits"}, out)
    return out


def test_concurrent_preparations_of_one_dataset_leave_consistent_files(tmp_path):
    out = tmp_path / "digits"
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_prepare, [str(out)] * 4))
    meta = json.loads((out / "meta.json").read_text())
    for name, checksum in meta["checksums"].items():
        assert sha256_file(out / name) == checksum
    images, labels = load_prepared(out, "train")
    assert len(images) == len(labels) == meta["counts"]["train"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left"


def _render(args: tuple[str, int]) -> None:
    from cnnablate.reporting.report import render_report

    path, i = args
    render_report([], path, title=f"report {i}", config_hash="x", confidence=0.95)


def test_concurrent_report_renders_never_interleave(tmp_path):
    path = tmp_path / "index.html"
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_render, [(str(path), i) for i in range(16)]))
    html = path.read_text()
    assert html.count("<html") == 1 and html.rstrip().endswith("</html>")
    assert not list(tmp_path.glob(".index.html.tmp*"))


@pytest.mark.workflow
def test_killed_preparation_is_redone_not_trusted(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    write_config(work / "config.yaml", {
        "datasets": {"digits": {"source": "sklearn_digits"}},
        "studies": {"s": {"dataset": "digits", "model": {"name": "nin"}, "seeds": [0],
                          "variants": {"relu": {"activation": "relu"}}}},
    })
    exe = Path(sys.executable).with_name("snakemake")
    target = "results/data/digits/meta.json"
    proc = subprocess.Popen(
        [str(exe), "--cores", "1", "-s", str(work / "Snakefile"), "--directory", str(work),
         target], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = work / "logs/data/digits.log"
    deadline = time.time() + 120
    while time.time() < deadline and not log.exists() and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "preparation finished before it could be killed"
    # Kill Snakemake and its job together, as a node failure or `kill -9` would.
    for child in psutil.Process(proc.pid).children(recursive=True):
        child.send_signal(signal.SIGKILL)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    files = output_files(work / "results/data/digits")
    assert not files["meta"].exists() or ("prepare_dataset", "digits") in planned_jobs(work)
    assert ("prepare_dataset", "digits") in planned_jobs(work, target)
    # A hard-killed Snakemake leaves its lock: unlock, as the README says, and rerun.
    from tests.workflow import snakemake

    snakemake(work, "--unlock")
    snakemake(work, "--cores", "1", target)
    meta = json.loads(files["meta"].read_text())
    assert np.load(files["train_labels"]).shape == (meta["counts"]["train"],)
