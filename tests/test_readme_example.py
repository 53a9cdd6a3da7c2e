"""The README's study example, taken from README.md itself (so the two cannot drift apart), run
exactly as written through the workflow: it must learn, clearly above chance on digits.

No `--config` overrides: the example runs as written (5 epochs at 24x24). The test asks for
each variant's seed-0 run only (three of its six runs: the other seed adds time, not
coverage); the tables and report of a whole study are checked on the session's finished
workflow (tests/conftest.py).
"""

from __future__ import annotations

import json
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
    example = yaml.safe_load(readme_example())
    ((study, spec),) = example["studies"].items()
    assert len(spec["variants"]) * len(spec["seeds"]) == 6  # what the README says it trains
    runs = [f"results/runs/{study}/{variant}/seed{spec['seeds'][0]}" for variant in
            spec["variants"]]
    # the targets before --configfile, which takes every word after it
    snakemake(work, *(f"{run}/metrics.json" for run in runs), "--cores", "2",
              "--configfile", "my_study.yaml", timeout=1800)
    for run in runs:
        metrics = json.loads((work / run / "metrics.json").read_text())
        assert metrics["status"] == "completed", run
        assert metrics["best_val_accuracy"] > 5 * CHANCE, (run, metrics["best_val_accuracy"])
