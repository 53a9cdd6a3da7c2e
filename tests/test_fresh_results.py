"""Never a stale result: after a run's files are deleted, or a `--forceall` is interrupted, a
plain rerun of the README command rebuilds exactly the missing runs, then the tables, figures
and report; and the report refuses a table naming a run whose files are gone.

On copies of the session's finished tiny workflow (tests/conftest.py, `finished_copy`)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnablate.workflow.freshness import RUN_FILES, StaleResultsError, check_runs_exist
from tests.tiny import finished
from tests.workflow import foreground, planned_jobs, snakemake, write_config

RUNS = [("relu", 0), ("relu", 1), ("elu", 0), ("elu", 1)]
# A study with a result missing under built ones gets a new marker first (mark_stale).
DOWNSTREAM = [("mark_stale", "acts"), ("aggregate", "acts"), ("paper_table", "acts"),
              ("figures", "acts"), ("report",)]
README_COMMAND = ("--cores", "2", "report/index.html")


def _run(work: Path, variant: str, seed: int) -> Path:
    return work / f"results/runs/acts/{variant}/seed{seed}"


def _mtimes(work: Path) -> dict[tuple[str, int], int]:
    return {r: (_run(work, *r) / "metrics.json").stat().st_mtime_ns for r in RUNS}


def _assert_fresh(work: Path) -> None:
    """Every run complete; tables and report newer than every run; the table is the runs'."""
    newest_run = max(
        (_run(work, *r) / name).stat().st_mtime_ns for r in RUNS for name in RUN_FILES
    )
    for product in ("results/studies/acts/runs.csv", "report/figures/acts/final_metric.png",
                    "report/index.html"):
        assert (work / product).stat().st_mtime_ns > newest_run, product
    with open(work / "results/studies/acts/runs.csv", newline="") as fh:
        rows = {(row["variant"], int(row["seed"])): row for row in csv.DictReader(fh)}
    assert set(rows) == set(RUNS)
    for run, row in rows.items():
        metrics = json.loads((_run(work, *run) / "metrics.json").read_text())
        assert float(row["best_val_accuracy"]) == pytest.approx(metrics["best_val_accuracy"])


@pytest.mark.workflow
def test_deleted_run_is_retrained_and_everything_above_it_rebuilt(finished_copy):
    work = finished_copy
    assert planned_jobs(work) == []
    before = _mtimes(work)
    for name in RUN_FILES:  # what an interrupted --forcerun leaves: the run's outputs gone
        (_run(work, "elu", 1) / name).unlink()

    # Today's Snakemake alone says "Nothing to be done" here (the tables are still present).
    assert planned_jobs(work) == sorted([("train", "acts", "elu", "1"), *DOWNSTREAM])
    proc = snakemake(work, *README_COMMAND)
    assert "Nothing to be done" not in proc.stdout + proc.stderr
    after = _mtimes(work)
    assert after[("elu", 1)] > before[("elu", 1)]
    assert {r: t for r, t in after.items() if r != ("elu", 1)} == {
        r: t for r, t in before.items() if r != ("elu", 1)}  # the others were not retrained
    _assert_fresh(work)
    assert planned_jobs(work) == []  # and a second run does nothing


@pytest.mark.workflow
def test_deleted_tables_are_rebuilt_under_an_existing_report(finished_copy):
    work = finished_copy
    shutil.rmtree(work / "results/studies/acts")
    shutil.rmtree(_run(work, "relu", 0))  # a whole run folder too
    # tiny's relu is a copy of it (tests/tiny.py): copied again, and tiny's tables follow
    assert planned_jobs(work) == sorted([
        ("train", "acts", "relu", "0"), *DOWNSTREAM, ("share_run", "tiny/relu/seed0"),
        ("aggregate", "tiny"), ("paper_table", "tiny"), ("figures", "tiny")])


def _training_started(work: Path, since: float) -> bool:
    # A run's epoch backup, written in this invocation: it has finished an epoch.
    return any(p.stat().st_mtime > since for p in
               work.glob("results/runs/acts/*/seed*/.resume/backup/training_metadata.json"))


@pytest.mark.workflow
def test_interrupted_forceall_then_plain_rerun_leaves_no_stale_result(finished_copy):
    """On the finished workflow cut to its study `acts` (its four trained runs: the other
    studies' runs and tables would only lengthen the rerun)."""
    work = finished_copy
    config = finished()
    config["studies"] = {"acts": config["studies"]["acts"]}
    write_config(work / "config.yaml", config)
    exe = Path(sys.executable).with_name("snakemake")
    started = time.time()
    # As the user's foreground command: SIGINT handled even where the suite runs in a
    # background shell or under nohup (tests/workflow.py, foreground)
    proc = foreground(
        [str(exe), "--directory", str(work), "-s", str(work / "Snakefile"), "--forceall",
         *README_COMMAND],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=work,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if _training_started(work, started):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the forced run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    trained = [("acts", *r) for r in RUNS]
    interrupted = [r for r in trained
                   if not (work / "results/runs/{}/{}/seed{}/metrics.json".format(*r)).exists()]
    assert interrupted, "Ctrl-C left every run complete: nothing was interrupted"
    assert (work / "report/index.html").exists()  # the old report: stale until rebuilt

    # A run that was training at the Ctrl-C but wrote its files before it stopped is
    # incomplete to Snakemake: retrained too (never trusted), as is every run whose files are gone.
    started_now = {r for r in trained
                   if (work / "logs/train/{}/{}/seed{}.log".format(*r)).stat().st_mtime > started}
    planned = {(j[1], j[2], int(j[3])) for j in planned_jobs(work) if j[0] == "train"}
    assert set(interrupted) <= planned <= set(interrupted) | started_now
    snakemake(work, *README_COMMAND)
    logs = [(work / "logs/train/{}/{}/seed{}.log".format(*r)).read_text() for r in interrupted]
    assert any("resuming after epoch" in log for log in logs)  # from the epoch backup
    _assert_fresh(work)
    assert planned_jobs(work) == []


def test_report_refuses_a_table_naming_a_run_whose_files_are_gone(tmp_path):
    table = tmp_path / "runs.csv"
    table.write_text("study,variant,seed,best_val_accuracy\nacts,relu,0,0.5\nacts,elu,0,0.6\n")
    dirs = {}
    for variant in ("relu", "elu"):
        run = tmp_path / variant / "seed0"
        run.mkdir(parents=True)
        for name in RUN_FILES:
            (run / name).write_text("x")
        dirs[(variant, 0)] = str(run)
    check_runs_exist(table, dirs)  # all present: fine
    (tmp_path / "elu/seed0/metrics.json").unlink()
    with pytest.raises(StaleResultsError, match=r"elu/seed0/metrics\.json.*Rerun"):
        check_runs_exist(table, dirs)
    with pytest.raises(StaleResultsError, match="not in the config"):
        check_runs_exist(table, {("relu", 0): dirs[("relu", 0)]})


def test_only_a_study_with_something_built_is_stale(tmp_path):
    from cnnablate.workflow.freshness import stale_files

    def f(name: str, exists: bool) -> str:
        path = tmp_path / name
        if exists:
            path.write_text("x")
        return str(path)

    report = f("index.html", True)  # e.g. another config's report
    new_study = [[f("r1", False), f("r2", False)], [f("t", False)], [f("fig", False)]]
    assert stale_files(new_study, report) == []
    run_gone = [[f("r3", True), f("r4", False)], [f("t2", True)], [f("fig2", True)]]
    assert stale_files(run_gone, report) == [str(tmp_path / "r4")]
    tables_gone = [[f("r5", True)], [f("t3", False)], [f("fig3", True)]]
    assert stale_files(tables_gone, report) == [str(tmp_path / "t3")]
    all_built = [[f("r6", True)], [f("t4", True)], [f("fig4", True)]]
    assert stale_files(all_built, report) == []
