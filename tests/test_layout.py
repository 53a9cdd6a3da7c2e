"""One source for where files live (cnnablate/base/layout.py) and for runs shared between
studies (cnnablate/workflow/shared.py)."""

from __future__ import annotations

import copy
import io
import json
import re
import tokenize
from pathlib import Path

import yaml

from cnnablate.base.layout import Layout
from cnnablate.workflow.config import resolve_runs
from cnnablate.workflow.shared import copy_shared_run, shared_runs
from tests import tiny
from tests.workflow import ROOT


def test_paths_are_the_documented_ones():
    real, smoke = Layout(), Layout(smoke=True)
    assert real.run_dir("acts", "relu", 3) == "results/runs/acts/relu/seed3"
    assert real.run_log("acts", "relu", 3) == "logs/train/acts/relu/seed3.log"
    assert real.run_benchmark("acts", "relu", 3) == "results/benchmarks/train/acts/relu/seed3.tsv"
    assert real.table("acts", "paired") == "results/studies/acts/paired.csv"
    assert real.round_state("acts", 2) == "results/studies/acts/rounds/round2.json"
    assert real.figure("acts", "final_metric") == "report/figures/acts/final_metric.png"
    assert real.report == "report/index.html"
    assert real.data_dir("digits") == "results/data/digits"
    assert smoke.run_dir("acts", "relu", 0) == "results/smoke/runs/acts/relu/seed0"
    assert smoke.run_log("acts", "relu", 0) == "logs/smoke/train/acts/relu/seed0.log"
    assert smoke.report == "report/smoke/index.html"
    assert smoke.data_dir("digits") == "results/data/digits"  # real data is shared
    assert smoke.data_dir("c10", synthetic=True) == "results/smoke/synthetic-data/c10"
    key = real.run_key("acts", "relu", 3)
    assert real.parse_run_key(key) == ("acts", "relu", 3)
    # as a rule's output pattern
    pattern = real.run_dir("{study}", "{variant}", "{seed}")
    assert pattern == "results/runs/{study}/{variant}/seed{seed}"


def test_no_other_place_spells_out_a_run_folder():
    """The rules, the report step and `status` take run paths from the layout, so none of them
    writes `seed` + a number into a path, or parses one back out of a path."""
    sources = [*ROOT.glob("rules/*.smk"), *ROOT.glob("scripts/*.py"),
               ROOT / "cnnablate/workflow/status.py", ROOT / "cnnablate/reporting/report.py"]
    for path in sources:
        text = path.read_text()
        assert not re.search(r"seed\{\{|seed\{run\[|seed\{wildcards|removeprefix\(\"seed\"\)",
                             text), path


def test_default_study_trains_he_normal_once():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    # he_normal (ReLU, BatchNorm before) is activations' relu: init auto is He normal for ReLU
    assert shared_runs(resolve_runs(config)) == {
        ("initializers", "he_normal", s): ("activations", "relu", s) for s in (0, 1)}


def test_only_identical_runs_of_another_study_are_shared():
    acts = copy.deepcopy(tiny.ACTS)
    same_study_twice = {**acts, "variants": {**acts["variants"], "relu2": {"activation": "relu"}}}
    other_lr = {**acts, "train": {**acts["train"], "learning_rate": 0.01}}
    other_seeds = {**acts, "seeds": [1, 2]}
    config = tiny.config(a=same_study_twice, b=other_lr, c=other_seeds)
    assert shared_runs(resolve_runs(config)) == {
        ("c", v, 1): ("a", v, 1) for v in ("relu", "elu")}  # relu2 is a's own A/A check


def test_a_shared_run_is_copied_and_relabelled(tmp_path):
    source, dest = tmp_path / "a/relu/seed0", tmp_path / "b/base/seed0"
    source.mkdir(parents=True)
    (source / "history.csv").write_text("epoch,val_accuracy\n1,0.5\n")
    (source / "model.keras").write_bytes(b"\x00weights")
    (source / "predictions.npy").write_bytes(b"\x93NUMPY predictions")
    run_config = {"study": "a", "variant": "relu", "baseline": "relu", "seed": 0, "lr": 0.1}
    (source / "metrics.json").write_text(json.dumps(
        {"study": "a", "variant": "relu", "seed": 0, "best_val_accuracy": 0.5,
         "run_config": run_config}))
    run = {**run_config, "study": "b", "variant": "base", "baseline": "other"}
    copy_shared_run(source, dest, run, "results/runs/a/relu/seed0")
    for name in ("history.csv", "model.keras", "predictions.npy"):
        assert (dest / name).read_bytes() == (source / name).read_bytes()
    metrics = json.loads((dest / "metrics.json").read_text())
    assert metrics == {"study": "b", "variant": "base", "seed": 0, "best_val_accuracy": 0.5,
                       "trained_as": "results/runs/a/relu/seed0",
                       "run_config": {**run_config, "study": "b", "variant": "base",
                                      "baseline": "other"}}
    assert sorted(p.name for p in Path(dest).iterdir()) == [
        "history.csv", "metrics.json", "model.keras", "predictions.npy"]  # no temporary left


# Path pieces the layout defines (cnnablate/base/layout.py), as the pattern that finds them in
# a string of code: a bare folder name only as a path segment (`tensorboard` is a config key too).
LAYOUT_LITERALS = {
    "history.csv": None, "metrics.json": None, "model.keras": None, ".resume": None,
    "heartbeat.json": None, "tensorboard": r"/tensorboard\b|\btensorboard/",
    "meta.json": None, ".npy": None, "results/": None, "logs/": None, "downloads": None,
    "synthetic-data": None, "benchmarks/": None, "/studies/": None, "rounds/round": None,
    "tuning.csv": None, "selection.json": None, "table.tex": None, "table.md": None,
    "mlflow.db": None, "index.html": r"index\.html(?!\.j2)",
}
BARE_NAMES = {"tensorboard", ".resume", "downloads"}  # folder names joined with `/ "name"`


def code_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal of a Python or Snakemake file that is code, not a
    docstring (a string alone on its logical line), with a bare folder name joined by `/`
    marked by a leading "/" (`x / "tensorboard"` -> "/tensorboard")."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL)]
    found = []
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.STRING:
            continue
        before, after = tokens[i - 1] if i else None, tokens[i + 1]
        starts_line = before is None or before.type in (tokenize.NEWLINE, tokenize.INDENT,
                                                         tokenize.DEDENT)
        if starts_line and after.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            continue  # a docstring
        text = tok.string
        if before is not None and before.string == "/" and text.strip("\"'") in BARE_NAMES:
            text = "/" + text.strip("\"'")
        found.append((tok.start[0], text))
    return found


def test_no_layout_path_is_spelled_out_outside_the_layout():
    """Run files, resume state, heartbeat, TensorBoard folder, prepared data, downloads, tuning
    selection and table, paper tables, logs and benchmarks: only layout.py names them; the
    package, the rules and the scripts take them from there."""
    layout = (ROOT / "cnnablate/base/layout.py").read_text()
    assert [name for name in LAYOUT_LITERALS if name not in layout] == []
    sources = [p for p in sorted(ROOT.glob("cnnablate/**/*.py"))
               if p.name != "layout.py" or p.parent.name != "base"]
    sources += [*sorted(ROOT.glob("rules/*.smk")), *sorted(ROOT.glob("scripts/*.py")),
                ROOT / "Snakefile"]
    spelled = [f"{path.relative_to(ROOT)}:{line}: {text}"
               for path in sources for line, text in code_strings(path)
               for name, pattern in LAYOUT_LITERALS.items()
               if re.search(pattern or re.escape(name), text)]
    assert spelled == []


def test_the_check_finds_a_path_in_code_but_not_in_a_docstring(tmp_path):
    source = tmp_path / "x.py"
    source.write_text('"""Writes metrics.json."""\n\ndef f(d):\n    """A .resume doc."""\n'
                      '    return d / "tensorboard", f"{d}/history.csv", "tensorboard"\n')
    assert [text for _, text in code_strings(source)] == [
        "/tensorboard", 'f"{d}/history.csv"', '"tensorboard"']
