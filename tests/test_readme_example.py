"""The README's study example, taken from README.md itself (so the two cannot drift apart), run
exactly as written through the workflow: it must learn, clearly above chance on digits.

No `--config` overrides: the example is small enough for CI as it stands
(6 runs x 5 epochs at 24x24).
"""

from __future__ import annotations

import csv
import re

import pytest
import yaml

from tests.workflow import ROOT, snakemake

CHANCE = 0.1  # ten digit classes


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Defining a study"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section should show one YAML example"
    return blocks[0]


def test_example_is_a_valid_study_of_its_own():
    from cnnablate.workflow import config as cfg

    example = yaml.safe_load(readme_example())
    default = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert not set(example["studies"]) & set(default["studies"])  # never overwrites those runs
    runs = cfg.resolve_runs(cfg.validate(example))
    assert {r["model"]["bn_momentum"] for r in runs} == {0.9}


@pytest.mark.workflow
def test_readme_example_learns(prepared_copy):
    work = prepared_copy  # the digits prepared by the session's finished workflow
    (work / "my_study.yaml").write_text(readme_example())
    snakemake(work, "--cores", "2", "--configfile", "my_study.yaml", timeout=1800)
    (study,) = yaml.safe_load(readme_example())["studies"]
    with open(work / f"results/studies/{study}/runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    for row in rows:
        assert row["status"] == "completed"
        assert float(row["best_val_accuracy"]) > 5 * CHANCE, row
    assert (work / "report/index.html").exists()
