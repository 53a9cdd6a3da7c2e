"""Only what changed reruns, by content: each job's code fingerprint
(cnnablate/workflow/fingerprint.py).

Each kind of edit is checked in process: the fingerprints of every job of the session's finished
workflow (tests/tiny.py: All-CNN-C and NIN runs) before and after the edit, in a copy of the
code. A few real `snakemake -n` runs on a copy of the finished workflow prove the wiring (the
`code` params of the rules, Snakemake's reasons). Expected job lists are written out by hand.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from cnnablate.base import catalog
from cnnablate.base.ids import run_id
from cnnablate.workflow import fingerprint
from cnnablate.workflow.config import resolve_runs
from tests.tiny import FINISHED
from tests.workflow import copy_workflow, jobs_in, planned_jobs, snakemake

RUNS = resolve_runs(FINISHED)
NIN_RUNS = {("train", "other", "prelu", "0")}
ALL_CNN_C_RUNS = {("train", *map(str, run_id(r))) for r in RUNS} - NIN_RUNS
ELU_RUNS = {("train", "acts", "elu", "0"), ("train", "acts", "elu", "1"),
            ("train", "tiny", "elu", "0")}


def job_fingerprints(root: Path) -> dict[tuple, str]:
    """Every job's code fingerprint of the workflow at `root`, as the rules ask for them."""
    code = fingerprint.Fingerprints(root)
    jobs = {("train", *map(str, run_id(run))): code.train(run) for run in RUNS}
    jobs.update({("prepare", "sklearn_digits"): code.prepare("sklearn_digits"),
                 ("share",): code.share(), ("aggregate",): code.aggregate(),
                 ("decide",): code.decide(), ("figures",): code.figures(),
                 ("report",): code.report(), ("paper_table",): code.paper_table(),
                 ("select_tuning",): code.select_tuning(),
                 ("tuning_figures",): code.tuning_figures()})
    return jobs


def changed(before: dict, after: dict) -> set[tuple]:
    return {job for job in before if before[job] != after[job]}


@pytest.fixture
def code(tmp_path) -> Path:
    """A copy of the workflow's code (no results) to edit."""
    return copy_workflow(tmp_path / "code")


def python_files(work: Path) -> list[Path]:
    return sorted([*(work / "cnnablate").rglob("*.py"), *(work / "scripts").glob("*.py")])


def later(path: Path) -> None:
    stamp = time.time() + 10
    os.utime(path, (stamp, stamp))


def add_code(path: Path) -> None:
    """A real change of the module's code (a new module-level statement)."""
    path.write_text(path.read_text() + "\nFINGERPRINT_TEST_CHANGE = 1\n")
    later(path)


def edit_docstrings_and_comments(work: Path) -> None:
    for path in python_files(work):
        text = path.read_text()
        assert text.startswith('"""'), path  # every module has a docstring to edit
        path.write_text('"""Edited docstring. ' + text[3:] + "\n# an added comment\n")
        later(path)


def after_edit(work: Path, edit) -> set[tuple]:
    before = job_fingerprints(work)
    edit(work)
    return changed(before, job_fingerprints(work))


# --- each kind of edit, in process --------------------------------------------------------------

def test_touching_every_module_changes_nothing(code):
    assert after_edit(code, lambda w: [later(p) for p in python_files(w)]) == set()


def test_comments_and_docstrings_change_nothing(code):
    assert after_edit(code, edit_docstrings_and_comments) == set()


def test_editing_nin_changes_only_nin_runs(code):
    assert after_edit(code, lambda w: add_code(w / "cnnablate/zoo/models/nin.py")) == NIN_RUNS


def test_editing_stats_changes_the_tables_decisions_figures_and_report(code):
    # stats is imported by the aggregate code, which the decisions, figures and report use
    # (and the paper tables through the sentences, the tuning figures through the figure data)
    assert after_edit(code, lambda w: add_code(w / "cnnablate/decisions/stats.py")) == {
        ("aggregate",), ("decide",), ("figures",), ("report",), ("paper_table",),
        ("tuning_figures",)}


def test_editing_report_code_changes_only_the_report(code):
    assert after_edit(code, lambda w: add_code(w / "cnnablate/reporting/report.py")) == {
        ("report",)}


def test_editing_figure_code_changes_only_the_figures(code):
    # the tuning figure draws with the same helpers
    assert after_edit(code, lambda w: add_code(w / "cnnablate/reporting/figures.py")) == {
        ("figures",), ("tuning_figures",)}


@pytest.mark.parametrize(
    "module", ["training/train.py", "zoo/models/layers.py", "zoo/activations.py",
               "data/partition.py"]  # partition.py: which images each run sees
)
def test_editing_code_every_run_executes_changes_every_run(code, module):
    assert after_edit(code, lambda w: add_code(w / "cnnablate" / module)) == (
        ALL_CNN_C_RUNS | NIN_RUNS)


@pytest.mark.parametrize(
    "module",
    ["workflow/smk.py", "training/provenance.py", "training/gpu.py", "base/layout.py",
     "zoo/models/mobilenet_v2.py"],
)
def test_editing_code_no_job_executes_for_its_results_changes_nothing(code, module):
    # layout.py only names paths: a moved file is a missing output, which Snakemake sees itself
    assert after_edit(code, lambda w: add_code(w / "cnnablate" / module)) == set()


def test_resource_coefficients_change_nothing(code, monkeypatch):
    entry = catalog.MODELS["all_cnn_c"]
    faster = dataclasses.replace(entry, images_per_s={k: 2 * v for k, v in
                                                      entry.images_per_s.items()})
    before = job_fingerprints(code)
    monkeypatch.setitem(catalog.MODELS, "all_cnn_c", faster)
    assert changed(before, job_fingerprints(code)) == set()


def test_an_activation_default_changes_only_its_runs(code, monkeypatch):
    before = job_fingerprints(code)
    monkeypatch.setitem(catalog.ACTIVATIONS, "elu", {"alpha": 0.5})
    assert changed(before, job_fingerprints(code)) == ELU_RUNS


def test_a_figure_title_changes_the_report(code, monkeypatch):
    """The report prints each figure's title (catalog.FIGURES): editing one must rebuild it."""
    before = job_fingerprints(code)
    figure = catalog.FIGURES["final_metric"]
    monkeypatch.setitem(catalog.FIGURES, "final_metric",
                        dataclasses.replace(figure, title="A new title"))
    assert changed(before, job_fingerprints(code)) == {("report",)}


# --- relative imports are followed --------------------------------------------------------------

def _package(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_closure_follows_relative_imports(tmp_path):
    _package(tmp_path, {
        "cnnablate/__init__.py": "",
        "cnnablate/zoo/__init__.py": "",
        "cnnablate/zoo/a.py": "from . import b\nfrom .c import f\nfrom .. import top\n"
                              "from ..data.d import g\n",
        "cnnablate/zoo/b.py": "B = 1\n",
        "cnnablate/zoo/c.py": "def f():\n    return 1\n",
        "cnnablate/top.py": "T = 1\n",
        "cnnablate/data/__init__.py": "",
        "cnnablate/data/d.py": "def g():\n    return 2\n",
    })
    files = {p.relative_to(tmp_path).as_posix()
             for p in fingerprint.closure([tmp_path / "cnnablate/zoo/a.py"], tmp_path)}
    assert files == {"cnnablate/zoo/a.py", "cnnablate/zoo/b.py", "cnnablate/zoo/c.py",
                     "cnnablate/top.py", "cnnablate/data/d.py", "cnnablate/__init__.py",
                     "cnnablate/zoo/__init__.py", "cnnablate/data/__init__.py"}


def test_a_module_imported_relatively_is_in_its_runs_fingerprint(code):
    """`from .nin_parts import SCALE` in models/nin.py: editing nin_parts reruns NIN runs."""
    nin = code / "cnnablate/zoo/models/nin.py"
    (code / "cnnablate/zoo/models/nin_parts.py").write_text('"""Parts."""\nSCALE = 1\n')
    text = nin.read_text()
    docstring_end = text.index('"""', 3) + 3
    nin.write_text(text[:docstring_end] + "\nfrom .nin_parts import SCALE  # noqa: F401\n"
                   + text[docstring_end:])
    later(nin)
    assert after_edit(code, lambda w: add_code(w / "cnnablate/zoo/models/nin_parts.py")) == (
        NIN_RUNS)


# --- the wiring: real dry runs on a copy of the finished workflow ---------------------------

TABLES = [("aggregate", s) for s in ("acts", "other", "tiny")]
FIGURES = [("figures", s) for s in ("acts", "other", "tiny")]
PAPER = [("paper_table", s) for s in ("acts", "other", "tiny")]  # made from the tables


@pytest.mark.workflow
def test_touch_comments_and_docstrings_plan_nothing(finished_copy):
    edit_docstrings_and_comments(finished_copy)
    assert planned_jobs(finished_copy) == []


@pytest.mark.workflow
def test_dry_run_reruns_and_names_the_changed_module(finished_copy):
    add_code(finished_copy / "cnnablate/zoo/models/nin.py")
    proc = snakemake(finished_copy, "-n")
    text = proc.stdout + proc.stderr
    assert "Params have changed since last execution" in text
    assert "cnnablate/zoo/models/nin.py:" in text
    assert jobs_in(text) == sorted(
        [("train", "other", "prelu", "0"), ("aggregate", "other"), ("paper_table", "other"),
         ("figures", "other"), ("report",)])
    changes = snakemake(finished_copy, "--list-changes", "params").stdout.split()
    assert sorted(p for p in changes if p.endswith("metrics.json")) == [
        "results/runs/other/prelu/seed0/metrics.json"]


@pytest.mark.workflow
def test_editing_an_activation_default_in_the_catalog_reruns_its_runs(finished_copy):
    path = finished_copy / "cnnablate/base/catalog.py"
    text = path.read_text()
    assert '"elu": {"alpha": 1.0},' in text
    path.write_text(text.replace('"elu": {"alpha": 1.0},', '"elu": {"alpha": 0.5},'))
    later(path)
    # tiny's elu is a copy of acts's elu seed 0 (tests/tiny.py): copied again, not trained
    assert planned_jobs(finished_copy) == sorted(
        [("train", "acts", "elu", "0"), ("train", "acts", "elu", "1"),
         ("share_run", "tiny/elu/seed0"), *TABLES[:1], *TABLES[2:], *PAPER[:1], *PAPER[2:],
         *FIGURES[:1], *FIGURES[2:], ("report",)])


@pytest.mark.workflow
def test_editing_a_figure_title_in_the_catalog_rebuilds_the_report(finished_copy):
    path = finished_copy / "cnnablate/base/catalog.py"
    text = path.read_text()
    old = '"Headline metric per variant: mean and confidence interval over seeds; the dashed line "'
    assert old in text
    path.write_text(text.replace(old, '"Headline metric per variant (edited title); the line "'))
    later(path)
    assert planned_jobs(finished_copy) == [("report",)]


# Unit level: the closure is derived from imports, the digest ignores docstrings and comments.

def test_closure_of_a_nin_run_covers_nin_and_shared_layers_only():
    files = {p.relative_to(fingerprint.ROOT).as_posix()
             for p in fingerprint.closure([fingerprint.ROOT / "scripts/train.py",
                                           fingerprint.module_file("cnnablate.zoo.models.nin")])}
    assert {"cnnablate/zoo/models/nin.py", "cnnablate/zoo/models/layers.py",
            "cnnablate/training/train.py", "cnnablate/zoo/activations.py",
            "cnnablate/zoo/initializers.py"} <= files
    assert not {"cnnablate/zoo/models/mobilenet_v2.py", "cnnablate/zoo/models/all_cnn.py",
                "cnnablate/workflow/smk.py", "cnnablate/training/provenance.py",
                "cnnablate/workflow/config.py",
                "cnnablate/training/gpu.py", "cnnablate/decisions/stats.py"} & files


def test_digest_ignores_docstrings_comments_and_layout(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1\n')
    b.write_text('"""Other."""\n# comment\ndef f(x):\n\n    return (x +\n            1)  # why\n')
    c.write_text("def f(x):\n    return x + 2\n")
    assert fingerprint.source_digest(a) == fingerprint.source_digest(b)
    assert fingerprint.source_digest(a) != fingerprint.source_digest(c)


# --- the analysis cache: a command parses only what changed since any earlier one ---------------

@pytest.fixture
def cold_cache(tmp_path, monkeypatch) -> Path:
    """An empty analysis cache of this test's own, and no analysis kept in this process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fingerprint._analysed.cache_clear()
    yield tmp_path / "xdg" / "cnnablate" / "fingerprints"
    fingerprint._analysed.cache_clear()


def parsed_files(monkeypatch) -> list[str]:
    """The files `ast.parse` is asked to parse from now on (it still parses them)."""
    seen: list[str] = []
    real = fingerprint.ast.parse

    def parse(source, filename="<unknown>", *args, **kwargs):
        seen.append(Path(filename).name)
        return real(source, filename, *args, **kwargs)

    monkeypatch.setattr(fingerprint.ast, "parse", parse)
    return seen


def test_a_warm_cache_gives_the_same_fingerprints_without_parsing(code, cold_cache, monkeypatch):
    cold = job_fingerprints(code)  # parses every file and keeps each analysis
    assert len(list(cold_cache.rglob("*.json"))) >= 30
    fingerprint._analysed.cache_clear()  # a new command: only the cache on disk is left
    parsed = parsed_files(monkeypatch)
    assert job_fingerprints(code) == cold and parsed == []
    # another checkout of the same code (the tests' copies, a second clone) hits it too
    fingerprint._analysed.cache_clear()
    assert job_fingerprints(copy_workflow(code.parent / "again")) == cold and parsed == []


def test_an_edited_file_alone_is_parsed_again(code, cold_cache, monkeypatch):
    before = job_fingerprints(code)
    add_code(code / "cnnablate/zoo/models/nin.py")
    fingerprint._analysed.cache_clear()
    parsed = parsed_files(monkeypatch)
    assert changed(before, job_fingerprints(code)) == NIN_RUNS
    assert parsed == ["nin.py"]


def test_the_same_text_elsewhere_in_the_package_is_analysed_there(code, cold_cache):
    """A relative import names a module by where the file is: one text, two places, two
    entries. Which names are modules is looked up each time (a module added later counts)."""
    text = '"""Same text."""\nfrom . import helper  # noqa: F401\nfrom cnnablate.zoo import later\n'
    zoo, data = code / "cnnablate/zoo/extra.py", code / "cnnablate/data/extra.py"
    zoo.write_text(text)
    data.write_text(text)
    (code / "cnnablate/zoo/helper.py").write_text('"""Only in zoo."""\n')
    assert "cnnablate.zoo.helper" in fingerprint.imported_modules(zoo, code)
    assert "cnnablate.zoo.helper" not in fingerprint.imported_modules(data, code)
    assert "cnnablate.zoo.later" not in fingerprint.imported_modules(data, code)
    (code / "cnnablate/zoo/later.py").write_text('"""Added after."""\n')
    fingerprint._analysed.cache_clear()
    assert "cnnablate.zoo.later" in fingerprint.imported_modules(data, code)


def test_a_broken_or_unwritable_cache_only_costs_the_parse(code, cold_cache, monkeypatch):
    expected = job_fingerprints(code)
    for entry in cold_cache.rglob("*.json"):
        entry.write_text("{not json")  # e.g. a disk that filled up under another writer
    fingerprint._analysed.cache_clear()
    assert job_fingerprints(code) == expected
    blocked = code.parent / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # nothing can be written under it
    fingerprint._analysed.cache_clear()
    assert job_fingerprints(code) == expected
