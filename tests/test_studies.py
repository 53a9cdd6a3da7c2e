"""The seed studies as study files (`studies/*.yaml`).

- Each file is a valid config, faithful where the seeds are explicit, with its reference numbers.
- `snakemake -n --configfile studies/*.yaml` plans one train job per (study, variant, seed) of
  the files, without any of their data present.
- All study files together run end to end in smoke mode (`--config smoke=true`) through the
  real rules, in one Snakemake invocation, with none of their data present and offline: on the
  SYNTHETIC stand-ins smoke mode generates in each source's real format (CIFAR binary archives,
  tfds's mock of beans, an image folder for NDSB), labelled as such in logs, tables and report.
- With the data present (a user's archive), smoke mode prepares the real data instead.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
import yaml

from cnnablate.base.ids import run_id
from cnnablate.workflow import config as cfg
from tests.workflow import ROOT, copy_workflow, jobs_in, planned_jobs, snakemake, write_config

STUDY_DIR = ROOT / "studies"
# The seed studies only: studies/tuned_digits.yaml and tuned_bn_digits.yaml are this project's
# own demonstrations of tuning (issues #21, #31), with no seed to be faithful to; their
# measurements are benchmarks/tuned_digits.py and benchmarks/halving_digits.py.
NOT_SEED_STUDIES = {"tuned_digits", "tuned_bn_digits"}
STUDY_FILES = sorted(p for p in STUDY_DIR.glob("*.yaml") if p.stem not in NOT_SEED_STUDIES)
STEMS = [p.stem for p in STUDY_FILES]

# What each seed states explicitly (model, data, image size, epochs, optimizer, variants).
SEED_FACTS = {
    "relu_family_beans": {
        "model": "mobilenet_v2", "dataset": "beans", "image_size": 224, "epochs": 100,
        "momentum": 0.0, "variants": {"relu6", "leaky_relu", "prelu", "selu"},
    },
    "bn_order_beans": {
        "model": "mobilenet_v2", "dataset": "beans", "image_size": 224, "epochs": 100,
        "momentum": 0.0, "variants": {"before", "after"},
    },
    "init_cifar10": {
        "model": "mobilenet_v2", "dataset": "cifar10", "image_size": 224, "epochs": 5,
        "momentum": 0.0,
        "variants": {"random_normal", "glorot_normal", "he_normal", "selu_lecun_normal"},
    },
    "elu_bn_allcnn_cifar10": {
        "model": "all_cnn_c", "dataset": "cifar10", "image_size": 32,
        "variants": {"relu", "relu_bn", "elu", "elu_bn", "prelu", "lrelu"},
    },
    "elu_bn_allcnn_cifar100": {
        "model": "all_cnn_c", "dataset": "cifar100", "image_size": 32,
        "variants": {"relu", "relu_bn", "elu", "elu_bn", "prelu", "lrelu"},
    },
    **{
        f"xu2015_{data}": {
            "model": "nin", "dataset": data, "image_size": size,
            "variants": {"relu", "leaky_relu_a100", "leaky_relu_a5.5", "prelu", "rrelu"},
        }
        for data, size in (("cifar10", 32), ("cifar100", 32), ("ndsb", 64))
    },
}  # fmt: skip

# The numbers the seeds and the paper report (seeds/README.md; Xu et al. 2015's tables).
REPORTED = {
    "relu_family_beans": {"relu6": 0.8516, "leaky_relu": 0.7969, "prelu": 0.8125, "selu": 0.8672},
    "bn_order_beans": {"before": 0.8281, "after": 0.8203},
    "init_cifar10": {"random_normal": 0.7788, "glorot_normal": 0.8206, "he_normal": 0.7348,
                     "selu_lecun_normal": 0.6193},
    "elu_bn_allcnn_cifar10": {},  # a ranking without numbers: in the note
    "elu_bn_allcnn_cifar100": {"relu_bn": 0.36},
    "xu2015_cifar10": {"relu": 12.45, "leaky_relu_a100": 12.66, "leaky_relu_a5.5": 11.20,
                       "prelu": 11.79, "rrelu": 11.19},
    "xu2015_cifar100": {"relu": 42.90, "leaky_relu_a100": 42.05, "leaky_relu_a5.5": 40.42,
                        "prelu": 41.63, "rrelu": 40.25},
    "xu2015_ndsb": {},  # log-loss, which we do not measure: in the note
}  # fmt: skip


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _all_studies() -> dict[str, tuple[Path, dict]]:
    return {name: (p, s) for p in STUDY_FILES for name, s in _raw(p)["studies"].items()}


def _merge(*configs: dict) -> dict:
    """Several config files merged as `snakemake --configfile A B ...` merges them."""
    from snakemake.utils import update_config

    merged: dict = {}
    for config in configs:
        update_config(merged, config)
    return merged


def test_there_is_a_file_per_seed_study():
    assert set(STEMS) == {
        "relu_family_beans", "bn_order_beans", "init_cifar10", "elu_bn_allcnn_cifar",
        "xu2015_rectifiers", "xu2015_ndsb",
    }  # fmt: skip
    assert set(_all_studies()) == set(SEED_FACTS)


@pytest.mark.parametrize("path", STUDY_FILES, ids=STEMS)
def test_study_file_is_valid_and_says_what_it_chose(path):
    config = cfg.load(path)
    runs = cfg.resolve_runs(config)
    text = path.read_text()
    assert "Our choices" in text and "eval_split" in text and "docs/studies.md" in text
    assert f"snakemake --configfile studies/{path.name}" in text
    for name, study in _raw(path)["studies"].items():
        # Nothing the seeds leave open falls back to a silent default.
        assert {"eval_split", "baseline", "seeds", "image_size", "reference"} <= set(study)
        assert study["seeds"] == [0, 1, 2]
        assert {"epochs", "batch_size", "optimizer", "learning_rate", "momentum",
                "lr_schedule", "augment"} <= set(study["train"])  # fmt: skip
        n_variants = len(cfg.expand_variants(name, study))
        assert len([r for r in runs if r["study"] == name]) == 3 * n_variants


@pytest.mark.parametrize("study", sorted(SEED_FACTS))
def test_study_is_faithful_where_the_seed_is_explicit(study):
    path, raw = _all_studies()[study]
    facts = SEED_FACTS[study]
    config = cfg.load(path)
    runs = {r["variant"]: r for r in cfg.resolve_runs(config) if r["study"] == study}
    assert set(runs) == facts["variants"]
    for run in runs.values():
        assert run["model"]["name"] == facts["model"] and run["model"]["width"] == 1.0
        assert run["dataset"] == facts["dataset"] and run["image_size"] == facts["image_size"]
        assert run["train"]["optimizer"] == "sgd"
        if "epochs" in facts:
            assert run["train"]["epochs"] == facts["epochs"]
        if "momentum" in facts:  # the seeds' `SGD(LR)`: plain SGD, constant rate, no augmentation
            assert run["train"]["momentum"] == facts["momentum"]
            assert run["train"]["lr_schedule"] == "constant" and run["train"]["augment"] == "none"
        if facts["model"] == "nin":  # NIN as Xu et al. used it: no BatchNorm
            assert run["norm"] == "none"
    if facts["model"] == "mobilenet_v2":  # Keras's BatchNormalization() default, as the seeds
        assert raw["model"]["bn_momentum"] == 0.99


def test_activation_parameters_are_the_seeds_and_the_papers():
    runs = {(r["study"], r["variant"]): r
            for p in STUDY_FILES for r in cfg.resolve_runs(cfg.load(p))}  # fmt: skip

    def act(study, variant):
        return runs[(study, variant)]["activation"]

    assert act("relu_family_beans", "leaky_relu") == {"type": "leaky_relu", "negative_slope": 0.3}
    assert act("relu_family_beans", "prelu") == {"type": "prelu", "alpha_init": 0.25}
    assert runs[("relu_family_beans", "selu")]["init"] == "lecun_normal"
    assert runs[("relu_family_beans", "relu6")]["init"] == "glorot_uniform"  # Keras's default
    assert runs[("init_cifar10", "selu_lecun_normal")]["activation"] == "selu"
    for study in ("elu_bn_allcnn_cifar10", "elu_bn_allcnn_cifar100"):
        assert act(study, "lrelu") == {"type": "leaky_relu", "negative_slope": 0.2}
        assert [runs[(study, v)]["norm"] for v in ("relu", "relu_bn", "elu", "elu_bn")] == [
            "none", "before", "none", "before"]
    for study in ("xu2015_cifar10", "xu2015_cifar100", "xu2015_ndsb"):
        assert act(study, "leaky_relu_a100")["negative_slope"] == pytest.approx(1 / 100)
        assert act(study, "leaky_relu_a5.5")["negative_slope"] == pytest.approx(1 / 5.5)
        rrelu = act(study, "rrelu")
        assert rrelu["type"] == "rrelu" and rrelu["convention"] == "xu2015"
        assert (rrelu["a_lower"], rrelu["a_upper"]) == (3.0, 8.0)


def test_cifar100_is_the_binary_release_with_fine_labels():
    for path in STUDY_FILES:
        for name, spec in _raw(path).get("datasets", {}).items():
            if name == "cifar100":
                assert spec == {"source": "cifar100_binary", "label": "fine"}


def test_files_can_share_a_directory():
    """A dataset name means the same data in every file (else one file's run would re-prepare
    it and retrain the other's), and no study name is used twice (they would share results)."""
    specs: dict[str, dict] = {}
    for path in STUDY_FILES:
        for name, spec in _raw(path).get("datasets", {}).items():
            assert specs.setdefault(name, spec) == spec, (path.name, name)
    names = [name for path in STUDY_FILES for name in _raw(path)["studies"]]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("study", sorted(REPORTED))
def test_reference_is_labelled_and_keyed_by_our_variant_names(study):
    _, raw = _all_studies()[study]
    ref = raw["reference"]
    assert ref["source"] and ref["metric"]
    values = ref.get("values") or {}
    assert values == REPORTED[study]
    assert set(values) <= set(cfg.expand_variants(study, raw))
    if not values:
        assert ref["note"]  # the ranking, or why there are no numbers
    if "xu2015" in study and values:
        assert ref["metric"] == "test error (%)"
    assert raw["eval_split"] == ("val" if "beans" in study else "test")


def test_docs_cover_every_study_file():
    docs = (ROOT / "docs" / "studies.md").read_text()
    for stem in STEMS:
        assert f"studies/{stem}.yaml" in docs
    assert "--profile profiles/slurm" in docs and "smoke=true" in docs


def test_smoke_flag_may_be_the_text_snakemake_passes():
    """`--config smoke=true` gives the string "true" (Snakemake parses only True/False)."""
    config = cfg.load(STUDY_DIR / "bn_order_beans.yaml")
    assert len(cfg.resolve_runs({**config, "smoke": "true"})) == 2
    assert len(cfg.resolve_runs({**config, "smoke": "false"})) == 6
    with pytest.raises(cfg.ConfigError, match="smoke"):
        cfg.resolve_runs({**config, "smoke": "yes please"})


# ---- dry runs: no data needed ------------------------------------------------------------------


def test_one_dry_run_of_every_file_plans_one_train_job_per_variant_and_seed(tmp_path):
    """All files at once, as a user may run them (test_files_can_share_a_directory): one
    `snakemake -n` instead of one per file (each costs seconds of planning); that each file
    stands alone is test_study_file_is_valid_and_says_what_it_chose's `resolve_runs`."""
    work = copy_workflow(tmp_path / "wf")
    files = [f"studies/{p.name}" for p in STUDY_FILES]
    config = _merge(*(_raw(p) for p in STUDY_FILES))
    runs = cfg.resolve_runs(config)
    assert {r["study"] for r in runs} == set(SEED_FACTS)
    jobs = planned_jobs(work, "--configfile", *files)
    # a run the same as another study's is copied, not trained again (workflow/shared.py)
    trained = [j[1:] for j in jobs if j[0] == "train"]
    copied = [tuple(j[1].replace("/seed", "/").split("/")) for j in jobs if j[0] == "share_run"]
    assert sorted(trained + copied) == sorted(tuple(map(str, run_id(r))) for r in runs)
    assert not set(trained) & set(copied) and trained  # and not the default study's
    datasets = sorted({r["dataset"] for r in runs})
    assert sorted(j[1] for j in jobs if j[0] == "prepare_dataset") == datasets
    archives = {"cifar10": "cifar-10-binary.tar.gz", "cifar100": "cifar-100-binary.tar.gz"}
    assert sorted(j[1] for j in jobs if j[0] == "download_archive") == sorted(
        archives[d] for d in datasets if d in archives
    )


# ---- every study file end to end in smoke mode, one Snakemake run ------------------------------

SMOKE_SETTINGS = {
    "epochs": 1, "image_size": 32, "max_train_images": 64, "max_eval_images": 32, "seeds": 1,
    "max_variants": 1, "width": 0.25,
}  # fmt: skip
# Smoke mode with max_variants 1 runs each study's baseline. Where a variant exercises code no
# baseline does, the override file makes it the baseline: the paper-convention RReLU, BatchNorm
# after the activation, SELU with LeCun init.
SMOKE_BASELINES = {
    "xu2015_cifar100": "rrelu", "bn_order_beans": "after", "init_cifar10": "selu_lecun_normal",
}  # fmt: skip
# No study file uses adaptive seeds: the override gives one study some, so that the smoke check
# also runs a round and its decision (the round checkpoint), as smoke mode does for such studies.
SMOKE_ADAPTIVE = {"init_cifar10": {"initial": 3, "max": 6, "step": 3}}


def _run_dirs(work: Path) -> set[tuple[str, str, int]]:
    return {
        (m.parent.parent.parent.name, m.parent.parent.name, int(m.parent.name.removeprefix("seed")))
        for m in (work / "results/smoke/runs").glob("*/*/seed*/metrics.json")
    }


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Every study file in smoke mode with none of their data present: offline, on SYNTHETIC
    stand-ins in each source's real format (the CIFAR archives, an image folder, tfds's mock
    of beans), read by the real loaders through the real rules."""
    tmp = tmp_path_factory.mktemp("studies-smoke")
    work = copy_workflow(tmp / "wf")
    override = {
        "studies": {name: {"baseline": v, **({"seeds": SMOKE_ADAPTIVE[name]}
                                             if name in SMOKE_ADAPTIVE else {})}
                    for name, v in SMOKE_BASELINES.items()},
        "smoke_settings": SMOKE_SETTINGS,
        "report": {"title": "smoke run of every study file"},
    }
    write_config(work / "smoke-override.yaml", override)
    files = [f"studies/{p.name}" for p in STUDY_FILES] + ["smoke-override.yaml"]
    config = _merge(*(_raw(work / f) for f in files), {"smoke": "true"})
    # No tfds folder anywhere (the real beans would be found under ~/tensorflow_datasets).
    env = {"TFDS_DATA_DIR": str(tmp / "no-tfds-data")}
    # 4 jobs at a time, as the README runs a study: the suite's longest set-up (8 training jobs,
    # 4 data sets, 26 table, figure and report jobs) took 97-129 s at 2, over the 120 s a test
    # may take when the machine is slow; its CPU is the same either way
    proc = snakemake(work, "--configfile", *files, "--config", "smoke=true", "--cores", "4",
                     env=env)
    # the jobs it ran, as it listed them (a dry run first would cost a planning more)
    return {"work": work, "config": config, "proc": proc, "ran": jobs_in(proc.stdout + proc.stderr)}


@pytest.mark.workflow
def test_smoke_runs_the_expected_jobs_through_the_real_rules(smoke):
    work, config = smoke["work"], smoke["config"]
    runs = cfg.resolve_runs(config)
    assert _run_dirs(work) == {run_id(r) for r in runs}
    assert {r["study"] for r in runs} == set(SEED_FACTS)  # every study of every file
    assert {r["model"]["name"] for r in runs} == {"mobilenet_v2", "all_cnn_c", "nin"}
    for run in runs:
        m = json.loads((work / "results/smoke/runs" / run["study"] / run["variant"] / "seed0"
                        / "metrics.json").read_text())  # fmt: skip
        assert m["status"] == "completed" and m["epochs_completed"] == 1
        assert m["run_config"]["smoke"] is True and m["run_config"]["image_size"] == 32
        study_file_baseline = _all_studies()[run["study"]][1]["baseline"]
        assert run["variant"] == SMOKE_BASELINES.get(run["study"], study_file_baseline)
    # Adaptive seeds: smoke runs their first round and its decision (the round checkpoint)
    adaptive = [name for name, study in config["studies"].items()
                if isinstance(study.get("seeds"), dict)]
    assert adaptive == list(SMOKE_ADAPTIVE)
    for name in adaptive:
        rounds_dir = work / "results/smoke/studies" / name / "rounds"
        assert sorted(p.name for p in rounds_dir.iterdir()) == ["round1.json"], name
        assert json.loads((rounds_dir / "round1.json").read_text())["continuing"] == []
    rrelu_run = work / "results/smoke/runs/xu2015_cifar100/rrelu/seed0"
    rrelu = json.loads((rrelu_run / "metrics.json").read_text())
    assert rrelu["run_config"]["activation"]["convention"] == "xu2015"


@pytest.mark.workflow
def test_smoke_without_data_runs_offline_on_labelled_synthetic_stand_ins(smoke):
    work = smoke["work"]
    # Nothing is downloaded and nothing lands where real runs read prepared data.
    assert not any(j[0] in ("download_archive", "prepare_dataset") for j in smoke["ran"])
    assert sorted(j[1] for j in smoke["ran"] if j[0] == "prepare_synthetic") == [
        "beans", "cifar10", "cifar100", "ndsb"]
    assert not (work / "results/data").exists() and not (work / "results/downloads").exists()

    def meta(name):
        return json.loads((work / "results/smoke/synthetic-data" / name / "meta.json").read_text())

    # Each stand-in went through its real loader, in the real shapes.
    assert meta("cifar10")["source"] == "cifar10_binary" and meta("cifar10")["num_classes"] == 10
    c100 = meta("cifar100")
    assert c100["source"] == "cifar100_binary" and c100["num_classes"] == 100  # fine labels
    assert meta("cifar10")["image_shape"] == [32, 32, 3]
    assert meta("ndsb")["source"] == "image_folder" and meta("ndsb")["image_shape"] == [64, 64, 1]
    beans = meta("beans")
    assert beans["source"] == "tfds" and beans["num_classes"] == 3
    assert beans["image_shape"] == [500, 500, 3]
    assert all(meta(n)["synthetic"] is True for n in ("beans", "cifar10", "cifar100", "ndsb"))
    # Labelled SYNTHETIC: console, job logs, tables, report.
    assert "SYNTHETIC" in smoke["proc"].stderr
    for run in cfg.resolve_runs(smoke["config"]):
        log = work / "logs/smoke/train" / run["study"] / run["variant"] / "seed0.log"
        assert "SYNTHETIC" in log.read_text()
        table = (work / "results/smoke/studies" / run["study"] / "runs.csv").read_text()
        assert "data" in table.splitlines()[0].split(",") and ",SYNTHETIC" in table
    page = (work / "report/smoke/index.html").read_text()
    assert "SYNTHETIC data:" in page


def test_smoke_with_the_data_present_prepares_the_real_data(tmp_path):
    """Where the real files are there (here a user's archive), smoke mode reads them, into the
    real prepared folder, and nothing is synthetic."""
    from cnnablate.data.synthetic import make_cifar_archive

    work = copy_workflow(tmp_path / "wf")
    c10 = make_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", "cifar10", n_train=50)
    write_config(work / "mine.yaml", {"datasets": {"cifar10": {"archive": str(c10["path"])}}})
    proc = snakemake(work, "-n", "--configfile", "studies/init_cifar10.yaml", "mine.yaml",
                     "--config", "smoke=true")
    jobs = jobs_in(proc.stdout + proc.stderr)
    assert ("prepare_dataset", "cifar10") in jobs
    assert not any(j[0] == "prepare_synthetic" for j in jobs)
    assert "SYNTHETIC" not in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_smoke_report_shows_the_reported_numbers_labelled(smoke):
    # Smoke results have folders of their own: they never overwrite a real run's.
    assert not (smoke["work"] / "results/runs").exists()
    assert not (smoke["work"] / "report/index.html").exists()
    page = (smoke["work"] / "report/smoke/index.html").read_text()
    for study in SEED_FACTS:
        start = page.index(f'<section id="study-{study}"')
        section = page[start:page.index("</section>", start)]
        ref = _all_studies()[study][1]["reference"]
        if not ref.get("values"):
            continue
        assert f"Reported by {html.escape(ref['source'])}" in section
        assert html.escape(ref["metric"]) in section
        for variant, value in ref["values"].items():
            assert f"<td>{value}</td>" in section, (study, variant)
