"""README's measured numbers cannot go stale (benchmarks/readme_numbers.py).

The README's numbers of the default and the tuned digits studies sit in generated blocks, from
the record benchmarks/readme_numbers.json of one measurement. These tests fail when the blocks
are not the record's text (edited by hand), when the code, configs or pinned packages that
compute the numbers changed since (today's numbers fingerprint is not the record's), and when
the record's commit does not hold the code it claims. Then: `python benchmarks/readme_numbers.py
--write` (README's "Quick start" says how long it takes). The script's reading and wording are
checked on the session's finished tiny workflow and on hand-made records.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmarks import readme_numbers as numbers
from tests.tiny import FINISHED, FINISHED_RUNS, FINISHED_SHARED
from tests.workflow import ROOT

RERUN = "rerun `python benchmarks/readme_numbers.py --write` (see its docstring) and commit"


def record() -> dict:
    if not numbers.RECORD.is_file():
        pytest.fail(f"{numbers.RECORD.relative_to(ROOT)} is missing: README's numbers were "
                    f"never measured: {RERUN}")
    return json.loads(numbers.RECORD.read_text())


def test_readme_blocks_are_the_records_text():
    shown = numbers.readme_blocks((ROOT / "README.md").read_text())
    assert set(shown) == set(numbers.BLOCKS), shown.keys()
    expected = numbers.render_blocks(record())
    for name in numbers.BLOCKS:
        assert shown[name] == expected[name], (
            f"README.md's readme_numbers:{name} block is not the record's text: {RERUN}")


def test_record_is_of_todays_code():
    measured = record()["fingerprint"]
    today = numbers.numbers_fingerprint()
    assert today == measured, (
        f"README's numbers were measured with other code, configs or packages (numbers "
        f"fingerprint {measured}, today {today}): {RERUN}")


def test_records_commit_holds_the_measured_code(tmp_path):
    """The commit the record names, checked out on its own, has the record's fingerprint
    (computed by that commit's own script)."""
    measured = record()
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    probe = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e",
                            f"{measured['commit']}^{{commit}}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"commit {measured['commit']} is not in this clone (shallow?)")
    archive = tmp_path / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), measured["commit"]],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "tree", filter="data")
    proc = subprocess.run([sys.executable, "benchmarks/readme_numbers.py", "--fingerprint"],
                          cwd=tmp_path / "tree", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == measured["fingerprint"], (
        f"commit {measured['commit']} has numbers fingerprint {proc.stdout.strip()}, the record "
        f"says {measured['fingerprint']}: {RERUN}")


def _tree(dest: Path) -> Path:
    """What the fingerprint reads, copied."""
    for name in ("cnnablate", "scripts", "schemas", "studies"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("config.yaml", "requirements.lock"):
        shutil.copy(ROOT / name, dest / name)
    return dest


def test_fingerprint_follows_training_code_configs_and_pins_only(tmp_path):
    tree = _tree(tmp_path / "t")
    before = numbers.numbers_fingerprint(tree)
    assert len(before) == 12 and before == numbers.numbers_fingerprint(ROOT)
    train = tree / "cnnablate" / "training" / "train.py"
    source = train.read_text()
    train.write_text(source + "\n# a comment changes no number\n")
    report = next((tree / "cnnablate" / "reporting").glob("report.py"))
    report.write_text(report.read_text() + "\nREPORT_ONLY = 1\n")  # the report computes none
    assert numbers.numbers_fingerprint(tree) == before
    train.write_text(source + "\nTRAINING_CHANGED = 1\n")
    assert numbers.numbers_fingerprint(tree) != before
    train.write_text(source)
    config = tree / "studies" / "tuned_digits.yaml"
    config.write_text(config.read_text().replace("epochs: 5", "epochs: 6", 1))
    assert numbers.numbers_fingerprint(tree) != before
    config.write_text((ROOT / "studies" / "tuned_digits.yaml").read_text())
    lock = tree / "requirements.lock"
    text = lock.read_text()
    assert "\nnumpy==" in text
    lock.write_text(text.replace("\nnumpy==", "\nnumpy==0.0.0+", 1))
    assert numbers.numbers_fingerprint(tree) != before


# --- what the script reads and writes ------------------------------------------------------------

def test_durations():
    assert [numbers.duration(s) for s in (42.4, 60, 207.5, 3600)] == [
        "42 s", "1 min 0 s", "3 min 28 s", "60 min 0 s"]


HAND = {
    "date": "2026-12-04", "commit": "0123456789ab", "dirty": False,
    "fingerprint": "feedbeef0042", "machine": "2 cores, load average 0.3 at the start",
    "cores": 4,
    "measurements": {
        "default": {
            "command": "snakemake --cores {cores} report/index.html",
            "seconds": 167.2, "run_folders": 24, "copied": 2, "trained": 22,
            "studies": {
                "bn_placement": {"baseline": "before", "metric": "best_val_accuracy",
                                 "adaptive": True, "rounds": 1, "learning_rate": 0.01,
                                 "comparisons": [
                                     {"variant": "after", "verdict": "worse", "diff": -0.3,
                                      "low": -0.4, "high": -0.2, "p_holm": 0.01, "pairs": 2},
                                     {"variant": "none", "verdict": "worse", "diff": -0.8,
                                      "low": -0.9, "high": -0.7, "p_holm": 0.001,
                                      "pairs": 2}]},
            },
        },
        "tuned_digits": {
            "command": "snakemake --cores {cores} --configfile studies/tuned_digits.yaml",
            "seconds": 145.0, "run_folders": 20, "copied": 0, "trained": 20,
            "studies": {
                "shared": {"baseline": "momentum", "metric": "test_accuracy", "adaptive": False,
                           "rounds": 0, "learning_rate": 0.1,
                           "comparisons": [{"variant": "plain", "verdict": "worse",
                                            "diff": -0.042, "low": -0.049, "high": -0.035,
                                            "p_holm": 0.0015, "pairs": 3}]},
                "tuned": {"baseline": "momentum", "metric": "test_accuracy", "adaptive": False,
                          "rounds": 0, "learning_rate": 0.1,
                          "comparisons": [{"variant": "plain", "verdict": "equivalent",
                                           "diff": 0.004, "low": -0.011, "high": 0.018,
                                           "p_holm": 0.61, "pairs": 3}],
                          "tuning": {"seeds": [1000],
                                     "candidates": {"train.learning_rate": [0.01, 0.1, 1.0]},
                                     "selected": {"momentum": {"train.learning_rate": 0.1},
                                                  "plain": {"train.learning_rate": 1.0}}}},
            },
        },
    },
}


def test_blocks_of_a_hand_made_record():
    blocks = {k: " ".join(v.split()) for k, v in numbers.render_blocks(HAND).items()}
    head = ("Measured by `python benchmarks/readme_numbers.py` on 2026-12-04 (commit "
            "`0123456789ab`, numbers fingerprint `feedbeef0042`; 2 cores, load average 0.3 at "
            "the start; ")
    assert blocks["default"] == (
        head + "`snakemake --cores 4 report/index.html` from nothing): "
        "**2 min 47 s** end to end, 22 runs trained (24 run folders, 2 of them copied from "
        "another study's identical run). Verdicts: `bn_placement` (against before, 1 round of "
        "adaptive seeds): after `worse`, none `worse`.")
    assert blocks["tuned_digits"] == (
        head + "`snakemake --cores 4 --configfile studies/tuned_digits.yaml` from nothing): "
        "**2 min 25 s** end to end, 20 runs trained. `shared` (every variant at "
        "learning rate 0.1), against `momentum`: `plain` is **`worse`**, −4.2 test-accuracy "
        "points (95% interval −4.9 to −3.5, Holm p 0.0015). `tuned` (tuned on seed 1000, "
        "train.learning_rate over 0.01, 0.1, 1.0: `momentum` selects 0.1, `plain` selects 1.0), "
        "against `momentum`: `plain` is **`equivalent`**, +0.4 test-accuracy points (95% "
        "interval −1.1 to +1.8, Holm p 0.61).")


def test_replacing_a_block_keeps_the_rest():
    readme = ("intro\n<!-- readme_numbers:default -->\nold\n<!-- /readme_numbers:default -->\n"
              "middle\n<!-- readme_numbers:tuned_digits -->\nold 2\n"
              "<!-- /readme_numbers:tuned_digits -->\nend\n")
    new = numbers.replace_blocks(readme, {"default": "new\ntext"})
    assert new == readme.replace("\nold\n", "\nnew\ntext\n")
    assert numbers.readme_blocks(new) == {"default": "new\ntext", "tuned_digits": "old 2"}
    with pytest.raises(SystemExit, match="no <!-- readme_numbers:NAME --> block for other"):
        numbers.replace_blocks(readme, {"other": "x"})


@pytest.mark.workflow
def test_reads_runs_and_verdicts_of_a_finished_workflow(finished):
    """On the tiny finished workflow (its config.yaml is FINISHED): every run folder, the copies
    among them, and each comparison as its paired.csv has it."""
    got = numbers.read_results("default", finished.work, 12.34)
    assert (got["run_folders"], got["copied"], got["trained"], got["seconds"]) == (
        len(FINISHED_RUNS), len(FINISHED_SHARED), len(FINISHED_RUNS) - len(FINISHED_SHARED),
        12.3)
    assert list(got["studies"]) == list(FINISHED["studies"])
    for study, entry in got["studies"].items():
        path = finished.work / "results" / "studies" / study / "paired.csv"
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [(c["variant"], c["verdict"], c["pairs"]) for c in entry["comparisons"]] == [
            (r["variant"], r["verdict"], int(r["n_pairs"])) for r in rows]
        assert entry["baseline"] == (FINISHED["studies"][study].get("baseline") if rows
                                     else None)
    text = " ".join(numbers.default_block({**HAND, "measurements": {"default": got}}).split())
    assert "**12 s** end to end, 5 runs trained (7 run folders, 2 of them copied" in text
    acts = got["studies"]["acts"]["comparisons"][0]
    assert f"`acts` (against relu): elu `{acts['verdict']}`" in text
