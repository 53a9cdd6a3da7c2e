"""Tuning (`tune:`, issue #21) without training: the selection rule on hand-made values, the
config's refusals, the tuning runs' resolution, tuning.csv from hand-made metrics.json files,
the planning summary's cost and `status` with tuning runs."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cnnablate.decisions import selection as sel
from cnnablate.decisions.tuning import select
from cnnablate.workflow import config as cfg
from cnnablate.workflow import status

STUDY = {
    "dataset": "digits",
    "image_size": 12,
    "model": {"name": "all_cnn_c", "width": 0.25},
    "train": {"epochs": 4, "learning_rate": 0.05},
    "seeds": [0, 1],
    "baseline": "relu",
    "tune": {"train.learning_rate": [0.01, 0.03, 0.1], "seeds": [1000]},
    "variants": {"relu": {"activation": "relu"}, "selu": {"activation": "selu"}},
}


def _config(**study_changes) -> dict:
    study = copy.deepcopy(STUDY)
    for key, value in study_changes.items():
        if value is None:
            study.pop(key, None)
        else:
            study[key] = value
    return {"datasets": {"digits": {"source": "sklearn_digits"}}, "studies": {"s": study}}


# --- the selection rule -------------------------------------------------------------------


def test_select_takes_the_best_mean_over_seeds():
    # means 0.80, 0.85, 0.70: the second; the first seed alone would pick the first
    assert select([[0.9, 0.7], [0.8, 0.9], [0.7, 0.7]]) == 1


def test_select_tie_goes_to_the_candidate_listed_first():
    assert select([[0.5, 0.7], [0.7, 0.5], [0.6, 0.6]]) == 0
    assert select([[0.2], [0.9], [0.9]]) == 1


def test_select_a_diverged_candidate_never_wins():
    # the second has the best seed but diverged on the other (None or NaN)
    assert select([[0.6, 0.6], [0.99, None], [0.5, 0.5]]) == 0
    assert select([[0.6, 0.6], [0.99, math.nan], [0.5, 0.5]]) == 0


def test_select_all_diverged_is_none():
    assert select([[None], [math.nan]]) is None
    assert select([]) is None


def test_select_lower_is_better_for_losses():
    assert select([[0.3, 0.5], [0.2, 0.4], [0.9, 0.1]], higher_is_better=False) == 1
    assert not sel.higher_is_better("final_val_loss")
    assert sel.higher_is_better("best_val_accuracy")


# --- the config's refusals, each one line naming the key path and value -------------------


@pytest.mark.parametrize("tune, words", [
    ({"train.learning_rte": [0.1], "seeds": [9]},
     ["studies.s.tune.train.learning_rte", "unknown key", "train.learning_rate"]),
    ({"model.name": ["nin"], "seeds": [9]}, ["studies.s.tune.model.name", "fixed"]),
    ({"model.include_top": [True], "seeds": [9]},
     ["studies.s.tune.model.include_top", "unknown key"]),  # not an all_cnn_c option
    ({"optimizer.lr": [0.1], "seeds": [9]}, ["studies.s.tune", "optimizer.lr"]),
    ({"train.learning_rate": [], "seeds": [9]},
     ["studies.s.tune.train.learning_rate", "[]", "non-empty"]),
    ({"train.learning_rate": [0.1, -0.5], "seeds": [9]},
     ["studies.s.tune.train.learning_rate[1]", "-0.5"]),
    ({"train.optimizer": ["sgd", "adamax"], "seeds": [9]},
     ["studies.s.tune.train.optimizer[1]", "adamax"]),
    ({"train.learning_rate": [0.1]}, ["studies.s.tune.seeds", "required"]),
    ({"seeds": [9]}, ["studies.s.tune", "nothing to tune"]),
    ({"train.learning_rate": [0.1], "seeds": [9], "metric": "test_accuracy"},
     ["studies.s.tune.metric", "test_accuracy"]),
    ({"train.epochs": [2, 4], "seeds": [9], "epochs": 1}, ["studies.s.tune.epochs", "conflicts"]),
])
def test_bad_tune_is_refused_in_one_line_naming_key_and_value(tune, words):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.resolve_runs(_config(tune=tune))
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    # one line: the schema's errors come as "config is invalid:" and one indented line
    assert len([line for line in message.splitlines() if "studies.s" in line]) == 1


def test_tuning_seeds_that_also_decide_are_refused_naming_both():
    with pytest.raises(cfg.ConfigError) as info:
        cfg.resolve_runs(_config(tune={"train.learning_rate": [0.1], "seeds": [1, 1000]}))
    assert str(info.value).startswith("studies.s.tune.seeds: [1] also decide")
    assert "studies.s.seeds: [0, 1]" in str(info.value) and "\n" not in str(info.value)


def test_adaptive_deciding_seeds_are_every_seed_below_max():
    adaptive = {"initial": 2, "max": 6, "step": 2}
    with pytest.raises(cfg.ConfigError, match=r"\[5\] also decide .*seeds 0..5"):
        cfg.resolve_runs(_config(seeds=adaptive,
                                 tune={"train.learning_rate": [0.1], "seeds": [5]}))
    assert cfg.resolve_tuning(_config(seeds=adaptive, tune={"train.learning_rate": [0.1],
                                                            "seeds": [6]})).runs


def test_a_variants_own_tuning_seeds_are_checked_too():
    config = _config()
    config["studies"]["s"]["variants"]["selu"]["tune"] = {"seeds": [0]}
    with pytest.raises(cfg.ConfigError, match=r"^studies.s.variants.selu.tune.seeds: \[0\]"):
        cfg.resolve_runs(config)


def test_a_variant_cannot_be_tuned_alone():
    config = _config(tune=None)
    config["studies"]["s"]["variants"]["selu"]["tune"] = {"train.learning_rate": [0.01],
                                                          "seeds": [1000]}
    with pytest.raises(cfg.ConfigError,
                       match=r"^studies.s.variants.selu.tune: the study has no `tune:`"):
        cfg.resolve_runs(config)


def test_a_compared_setting_cannot_be_tuned():
    config = _config(variants=None, baseline=None, grid={"train.learning_rate": [0.01, 0.1]})
    with pytest.raises(cfg.ConfigError, match="studies.s.tune.train.learning_rate: .*compared"):
        cfg.resolve_runs(config)
    config = _config()
    config["studies"]["s"]["variants"]["selu"]["train"] = {"learning_rate": 0.01}
    with pytest.raises(cfg.ConfigError,
                       match="studies.s.variants.selu.train.learning_rate: 0.01 is set by"):
        cfg.resolve_runs(config)


# --- resolution ------------------------------------------------------------------------------


def test_untuned_study_has_no_tuning_and_unchanged_runs():
    config = _config(tune=None)
    assert cfg.resolve_tuning(config).runs == [] and cfg.resolve_tuning(config).specs == {}
    assert all("tuning" not in run and "tuned" not in run for run in cfg.resolve_runs(config))
    assert cfg.study_settings(cfg.validate(config), "s")["tune"] is None


def test_planning_resolves_the_deciding_and_tuning_runs_at_once():
    config = _config(tune={"train.learning_rate": [0.01, 0.1], "seeds": [1000]})
    runs, tuning = cfg.resolve(config)
    assert runs == cfg.resolve_runs(config) and tuning == cfg.resolve_tuning(config)
    assert len(tuning.runs) == 4


def test_tuning_runs_are_resolved_runs_with_the_candidate_applied():
    config = _config(tune={"train.learning_rate": [0.01, 0.1], "train.momentum": [0.0, 0.9],
                           "seeds": [1000, 1001], "epochs": 2})
    deciding = {(r["variant"], r["seed"]): r for r in cfg.resolve_runs(config)}
    tuning = cfg.resolve_tuning(config)
    runs = tuning.runs
    # 2 variants x (2 x 2 candidates, product in the order written) x 2 seeds
    assert len(runs) == 16
    order = [(r["variant"], r["tuning"]["candidate"], r["seed"]) for r in runs]
    assert order[:5] == [
        ("relu", "learning_rate-0.01_momentum-0.0", 1000),
        ("relu", "learning_rate-0.01_momentum-0.0", 1001),
        ("relu", "learning_rate-0.01_momentum-0.9", 1000),
        ("relu", "learning_rate-0.01_momentum-0.9", 1001),
        ("relu", "learning_rate-0.1_momentum-0.0", 1000),
    ]
    run = runs[5]
    assert run["tuning"] == {"candidate": "learning_rate-0.1_momentum-0.0",
                             "values": {"train.learning_rate": 0.1, "train.momentum": 0.0}}
    assert run["train"]["learning_rate"] == 0.1 and run["train"]["momentum"] == 0.0
    assert run["train"]["epochs"] == 2  # the tuning budget
    # otherwise the same dict as the deciding run: same keys and settings
    twin = deciding[("relu", 0)]
    assert set(run) - {"tuning"} == set(twin)
    for key in ("dataset", "image_size", "activation", "norm", "init", "model", "eval_split"):
        assert run[key] == twin[key]
    assert {k: v for k, v in run["train"].items() if k not in ("learning_rate", "momentum",
                                                                "epochs")} == \
        {k: v for k, v in twin["train"].items() if k not in ("learning_rate", "momentum",
                                                             "epochs")}
    assert cfg.run_folder(run) == "s/relu/tune-learning_rate-0.1_momentum-0.0/seed1001"
    assert cfg.run_folder(twin) == "s/relu/seed0"
    spec = tuning.specs["s"]["selu"]
    assert spec["metric"] == "best_val_accuracy" and spec["seeds"] == [1000, 1001]


def test_a_variants_own_tune_replaces_the_keys_and_inherits_the_seeds():
    config = _config()
    config["studies"]["s"]["variants"]["selu"]["tune"] = {"train.learning_rate": [0.001, 0.01]}
    specs = cfg.resolve_tuning(config).specs["s"]
    assert specs["relu"]["keys"] == {"train.learning_rate": [0.01, 0.03, 0.1]}
    assert specs["selu"]["keys"] == {"train.learning_rate": [0.001, 0.01]}
    assert specs["selu"]["seeds"] == [1000]


def test_smoke_mode_keeps_the_first_and_last_candidate_and_one_seed():
    config = _config(tune={"train.learning_rate": [0.01, 0.03, 0.1], "seeds": [1000, 1001]})
    config["smoke"] = True
    tuning = cfg.resolve_tuning(config)
    relu = [(r["train"]["learning_rate"], r["seed"]) for r in tuning.runs
            if r["variant"] == "relu"]
    assert relu == [(0.01, 1000), (0.1, 1000)]
    assert all(r["smoke"] and r["train"]["epochs"] == 1 for r in tuning.runs)
    settings = cfg.study_settings(cfg.validate(config), "s")["tune"]
    assert settings == {"keys": {"train.learning_rate": [0.01, 0.1]}, "seeds": [1000],
                        "metric": "best_val_accuracy", "epochs": None}


def test_study_settings_tune_follows_the_contract():
    config = cfg.validate(_config(tune={"train.learning_rate": [0.01, 0.1], "seeds": [7],
                                        "metric": "final_val_loss", "epochs": 3}))
    assert cfg.study_settings(config, "s")["tune"] == {
        "keys": {"train.learning_rate": [0.01, 0.1]}, "seeds": [7],
        "metric": "final_val_loss", "epochs": 3}


def test_apply_selection_sets_the_values_and_keeps_smoke_caps():
    run = cfg.resolve_runs(_config())[0]
    chosen = cfg.apply_selection(run, {"train.learning_rate": 0.03})
    assert chosen["train"]["learning_rate"] == 0.03 and run["train"]["learning_rate"] == 0.05
    assert chosen["tuned"] == {"train.learning_rate": 0.03}
    smoke_config = _config(tune={"train.epochs": [2, 9], "seeds": [1000]})
    smoke_config["smoke"] = True
    smoke_run = cfg.resolve_runs(smoke_config)[0]
    settings = cfg.validate(copy.deepcopy(smoke_config))["smoke_settings"]
    assert cfg.apply_selection(smoke_run, {"train.epochs": 9}, settings)["train"]["epochs"] == 1


def test_planning_summary_gives_tuning_runs_and_their_share_of_epochs():
    config = _config(tune={"train.learning_rate": [0.01, 0.1], "seeds": [1000], "epochs": 2})
    runs, tuning = cfg.resolve_runs(config), cfg.resolve_tuning(config)
    (line,) = cfg.planning_summary(runs, tuning)
    # tuning: 2 variants x 2 candidates x 1 seed x 2 epochs = 8; deciding 2 x 2 seeds x 4 = 16
    assert "s: 4 tuning runs for 2 variants, 8 of 24 training epochs (33%)" in line
    assert "follow the selection" in line
    assert cfg.planning_summary(runs, cfg.resolve_tuning(_config(tune=None))) == []


# --- the selection step: selection.json and tuning.csv from hand-made runs -----------------


def _metrics(path: Path, variant: str, candidate: str, seed: int, value: float | None,
             status_: str = "completed", metric: str = "best_val_accuracy") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run = {"study": "s", "variant": variant, "seed": seed,
           "tuning": {"candidate": candidate, "values": {}}}
    (path / "metrics.json").write_text(json.dumps(
        {"status": status_, metric: value, "run_config": run}))
    return path / "metrics.json"


def test_write_selection_table_and_edges(tmp_path):
    config = _config(tune={"train.learning_rate": [0.01, 0.03, 0.1], "seeds": [1000, 1001]})
    specs = cfg.resolve_tuning(config).specs["s"]
    values = {  # (variant, lr): per seed
        ("relu", 0.01): (0.50, 0.60), ("relu", 0.03): (0.80, 0.70), ("relu", 0.1): (0.90, 0.62),
        ("selu", 0.01): (0.40, 0.50), ("selu", 0.03): (0.45, 0.45), ("selu", 0.1): (0.99, None),
    }
    files = []
    for (variant, lr), per_seed in values.items():
        for seed, value in zip((1000, 1001), per_seed):
            name = f"learning_rate-{lr}"
            files.append(_metrics(tmp_path / variant / name / str(seed), variant, name, seed,
                                  value, "completed" if value is not None else "diverged"))
    state = sel.write_selection(files, "s", specs, tmp_path / "selection.json",
                                tmp_path / "tuning.csv", log=lambda _: None)
    # relu: means 0.55, 0.75, 0.76 -> 0.1 (the grid's largest: at the edge);
    # selu: 0.1 diverged on a seed, 0.01 and 0.03 tie at 0.45 -> 0.01, listed first (edge)
    assert state["variants"]["relu"]["values"] == {"train.learning_rate": 0.1}
    assert state["variants"]["selu"]["values"] == {"train.learning_rate": 0.01}
    assert json.loads((tmp_path / "selection.json").read_text()) == state
    with open(tmp_path / "tuning.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = list(rows[0])
    assert header == ["variant", "train.learning_rate", "seed", "metric", "value", "status",
                      "selected", "at_edge", "at_edge_reason"]
    assert [(r["variant"], float(r["train.learning_rate"]), int(r["seed"])) for r in rows] == [
        (v, lr, s) for (v, lr) in values for s in (1000, 1001)]
    diverged = [r for r in rows if r["status"] == "diverged"]
    assert [(r["variant"], r["seed"], r["value"]) for r in diverged] == [("selu", "1001", "")]
    assert {r["status"] for r in rows} == {"ok", "diverged"}
    selected = {(r["variant"], float(r["train.learning_rate"])) for r in rows
                if r["selected"] == "True"}
    assert selected == {("relu", 0.1), ("selu", 0.01)}
    assert {r["at_edge"] for r in rows} == {"True"}
    # both picks are an end of the grid while other candidates trained
    assert {r["at_edge_reason"] for r in rows} == {"edge"}
    assert {r["metric"] for r in rows} == {"best_val_accuracy"}


def test_a_selection_inside_the_grid_is_not_at_its_edge():
    keys = {"train.learning_rate": [0.01, 0.03, 0.1], "train.optimizer": ["sgd", "adam"]}
    assert not sel.at_edge(keys, {"train.learning_rate": 0.03, "train.optimizer": "adam"})
    assert sel.at_edge(keys, {"train.learning_rate": 0.01, "train.optimizer": "sgd"})
    assert not sel.at_edge({"train.nesterov": [False, True]}, {"train.nesterov": True})
    assert sel.at_edge({"train.learning_rate": [0.01]}, {"train.learning_rate": 0.01})


def test_lower_is_better_metric_selects_the_smallest_loss(tmp_path):
    config = _config(tune={"train.learning_rate": [0.01, 0.1], "seeds": [1000],
                           "metric": "final_val_loss"})
    specs = cfg.resolve_tuning(config).specs["s"]
    files = [_metrics(tmp_path / v / str(lr), v, f"learning_rate-{lr}", 1000, loss,
                      metric="final_val_loss")
             for v, lr, loss in [("relu", 0.01, 0.3), ("relu", 0.1, 0.9),
                                 ("selu", 0.01, 1.2), ("selu", 0.1, 0.4)]]
    state = sel.write_selection(files, "s", specs, tmp_path / "sel.json", tmp_path / "t.csv",
                                log=lambda _: None)
    assert state["variants"]["relu"]["candidate"] == "learning_rate-0.01"
    assert state["variants"]["selu"]["candidate"] == "learning_rate-0.1"


def test_every_candidate_diverged_stops_with_one_line_naming_the_variant(tmp_path):
    config = _config(tune={"train.learning_rate": [0.5, 1.0], "seeds": [1000]})
    specs = cfg.resolve_tuning(config).specs["s"]
    files = [_metrics(tmp_path / v / str(lr), v, f"learning_rate-{lr}", 1000,
                      0.9 if v == "relu" else None, "completed" if v == "relu" else "diverged")
             for v in ("relu", "selu") for lr in (0.5, 1.0)]
    with pytest.raises(sel.TuningFailed, match="study s: every tuning candidate of selu") as e:
        sel.write_selection(files, "s", specs, tmp_path / "sel.json", tmp_path / "t.csv",
                            log=lambda _: None)
    from cnnablate.base.errors import is_known

    assert is_known(e.value) and not (tmp_path / "sel.json").exists()


# --- status: tuning and deciding runs apart, one ETA over both ------------------------------


def test_status_shows_tuning_and_deciding_runs_apart(tmp_path):
    config = _config(tune={"train.learning_rate": [0.01, 0.1], "seeds": [1000], "epochs": 2})
    runs = status.with_tuning(cfg.resolve_runs(config), cfg.resolve_tuning(config).runs)
    done = tmp_path / "results/runs/s/relu/tune-learning_rate-0.01/seed1000"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({
        "status": "completed", "epochs_completed": 2, "best_val_accuracy": 0.8,
        "seconds_per_epoch": 10.0}))
    lines = status.format_status(status.collect(runs, tmp_path)).splitlines()
    # 4 tuning runs x 2 epochs + 4 deciding runs x 4 epochs = 24; 22 left at 10 s/epoch
    assert lines[0] == ("s [#-------------------]   8%  tuning 4 runs: 1 done, 3 waiting; "
                        "deciding 4 runs: 4 waiting; 22 epochs left, ETA 3m40s")
    assert lines[1] == " tuning runs (8 epochs):"
    assert lines[2].split() == ["relu/tune-learning_rate-0.01/seed1000", "done", "2", "epochs,",
                                "best", "val_accuracy", "0.8000,", "10.00", "s/epoch"]
    assert lines[6] == " deciding runs (at each variant's selected candidate):"
    assert [line.split()[0] for line in lines[7:11]] == [
        "relu/seed0", "relu/seed1", "selu/seed0", "selu/seed1"]
    assert lines[-1] == "total: 1 of 8 runs finished, 0 running; ETA 3m40s"


def test_the_selection_step_never_imports_tensorflow():
    import subprocess
    import sys

    code = ("import sys, cnnablate.decisions.selection, cnnablate.workflow.config;"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                   check=True, timeout=120)


def test_status_counts_a_selected_epochs_once_the_selection_is_written(tmp_path):
    config = _config(tune={"train.epochs": [2, 6], "seeds": [1000]})
    runs = cfg.resolve_runs(config)
    assert status.at_selection(runs, tmp_path) == runs  # no selection yet: as resolved
    folder = tmp_path / "results/studies/s/tuning"
    folder.mkdir(parents=True)
    (folder / "selection.json").write_text(json.dumps({"study": "s", "variants": {
        "selu": {"candidate": "epochs-6", "values": {"train.epochs": 6}}}}))
    epochs = {(r["variant"], r["seed"]): r["train"]["epochs"]
              for r in status.at_selection(runs, tmp_path)}
    assert epochs == {("relu", 0): 4, ("relu", 1): 4, ("selu", 0): 6, ("selu", 1): 6}


def test_equal_counts_tie_on_their_grid_and_the_first_listed_wins():
    # Two seeds, 270 images: 241 + 243 and 242 + 242 are the same total count, but as float32
    # means they differ in the 8th decimal (the second candidate's happens to be larger).
    f32 = lambda k: float(np.float32(k / 270))  # noqa: E731
    first, second = [f32(241), f32(243)], [f32(242), f32(242)]
    assert sum(second) > sum(first)  # the noise that used to decide
    assert select([first, second]) == 0
