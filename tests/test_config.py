"""Config validation and resolution: run expansion, grids, and errors that name key and value."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cnnablate.base.ids import config_hash, run_id
from cnnablate.base.rounds import all_seeds
from cnnablate.workflow import config as cfg

ROOT = Path(__file__).resolve().parent.parent


def base_config() -> dict:
    return {
        "datasets": {"digits": {"source": "sklearn_digits"}},
        "studies": {
            "acts": {
                "dataset": "digits",
                "model": {"name": "all_cnn_c", "width": 0.25},
                "train": {"epochs": 2},
                "seeds": [0, 1],
                "baseline": "relu",
                "variants": {
                    "relu": {"activation": "relu"},
                    "selu": {"activation": "selu", "init": "lecun_normal"},
                },
            }
        },
    }


def test_default_config_is_valid_and_has_a_job_per_variant_and_seed():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    runs = cfg.resolve_runs(config)
    expected = 0
    for name, study in config["studies"].items():
        variants = cfg.expand_variants(name, cfg.validate(copy.deepcopy(config))["studies"][name])
        expected += len(variants) * len(all_seeds(study["seeds"]))  # adaptive: up to max
    assert len(runs) == expected
    assert len({run_id(r) for r in runs}) == len(runs)


def test_runs_are_fully_resolved_with_defaults_and_overrides():
    runs = cfg.resolve_runs(base_config())
    assert [run_id(r) for r in runs] == [
        ("acts", "relu", 0), ("acts", "relu", 1), ("acts", "selu", 0), ("acts", "selu", 1)
    ]
    selu = runs[2]
    assert selu["activation"] == "selu" and selu["init"] == "lecun_normal"
    assert selu["norm"] == "before"  # schema default
    assert selu["train"]["epochs"] == 2 and selu["train"]["batch_size"] == 64
    assert selu["model"] == {"name": "all_cnn_c", "width": 0.25}


def test_variant_overrides_merge_into_train_and_model():
    config = base_config()
    config["studies"]["acts"]["variants"]["selu"]["train"] = {"learning_rate": 0.01}
    config["studies"]["acts"]["variants"]["selu"]["model"] = {"width": 0.5}
    runs = {run_id(r): r for r in cfg.resolve_runs(config)}
    assert runs[("acts", "selu", 0)]["train"]["learning_rate"] == 0.01
    assert runs[("acts", "selu", 0)]["train"]["epochs"] == 2
    assert runs[("acts", "selu", 0)]["model"]["width"] == 0.5
    assert runs[("acts", "relu", 0)]["train"]["learning_rate"] == 0.05


def test_grid_expands_to_readable_names():
    config = base_config()
    study = config["studies"]["acts"]
    study.pop("variants")
    study["baseline"] = None
    study["grid"] = {"activation": ["relu", "leaky_relu"], "norm": ["before", "none"],
                     "train.learning_rate": [0.1]}
    names = list(dict.fromkeys(r["variant"] for r in cfg.resolve_runs(config)))
    assert names == [
        "relu-before-learning_rate0.1", "relu-none-learning_rate0.1",
        "leaky_relu-before-learning_rate0.1", "leaky_relu-none-learning_rate0.1",
    ]
    run = cfg.resolve_runs(config)[0]
    assert run["train"]["learning_rate"] == 0.1 and run["baseline"] == names[0]


def test_smoke_mode_shrinks_runs_but_keeps_the_baseline():
    config = base_config()
    config["smoke"] = True
    config["smoke_settings"] = {"max_variants": 1, "seeds": 1}
    config["studies"]["acts"]["image_size"] = 224
    runs = cfg.resolve_runs(config)
    assert [run_id(r) for r in runs] == [("acts", "relu", 0)]
    assert runs[0]["image_size"] == 32 and runs[0]["train"]["epochs"] == 1
    assert runs[0]["train"]["max_train_images"] == 256 and runs[0]["smoke"] is True


def _mutate(path: str, value):
    config = base_config()
    keys = path.split(".")
    target = config
    for key in keys[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return config


_DELETE = object()

# (what is wrong, mutation path, value, words the message must contain)
BAD_CONFIGS = [
    ("unknown activation", "studies.acts.variants.relu.activation", "sleu",
     ["studies.acts.variants.relu.activation", "'sleu'", "valid:"]),
    ("unknown activation parameter", "studies.acts.variants.relu.activation",
     {"type": "leaky_relu", "slope": 0.1}, ["studies.acts.variants.relu.activation", "slope"]),
    ("unknown model", "studies.acts.model.name", "resnet",
     ["model.name", "'resnet'", "mobilenet_v2"]),
    ("undefined dataset", "studies.acts.dataset", "cifar",
     ["studies.acts.dataset", "'cifar'", "not defined"]),
    ("unknown initializer", "studies.acts.variants.relu.init", "kaiming",
     ["studies.acts.variants.relu.init", "'kaiming'"]),
    ("unknown norm", "studies.acts.variants.relu.norm", "middle",
     ["studies.acts.variants.relu.norm", "'middle'", "before"]),
    ("misspelled key", "studies.acts.train.epoch", 3, ["studies.acts.train", "'epoch'"]),
    ("misspelled top-level key", "studys", {}, ["'studys'"]),
    ("wrong type", "studies.acts.train.batch_size", "64",
     ["studies.acts.train.batch_size", "'64'", "integer"]),
    ("empty study", "studies.acts.variants", {}, ["studies.acts", "no variants"]),
    ("seed not an integer", "studies.acts.seeds", [0, 1.5],
     ["studies.acts.seeds.1", "1.5", "integer"]),
    ("image too small", "studies.acts.image_size", 8,
     ["studies.acts.image_size", "8", "all_cnn_c"]),
    ("bad study name", "studies.a/b", {"dataset": "digits", "model": {"name": "nin"}},
     ["'a/b'", "does not match"]),
    ("bad variant name", "studies.acts.variants.re lu", {"activation": "relu"},
     ["'re lu'"]),
    ("baseline not a variant", "studies.acts.baseline", "gelu",
     ["studies.acts.baseline", "'gelu'"]),
    ("no studies", "studies", {}, ["studies"]),
    ("misspelled model option", "studies.acts.model.bn_momentm", 0.9,
     ["studies.acts.model.bn_momentm", "'all_cnn_c'", "dropout, bn_momentum"]),
    ("option of another model", "studies.acts.variants.relu.model", {"include_top": False},
     ["studies.acts.variants.relu.model.include_top", "'all_cnn_c'", "bn_momentum"]),
    ("unknown dataset source", "datasets.digits.source", "mnist",
     ["datasets.digits.source", "'mnist'", "sklearn_digits"]),
    ("option of another source", "datasets.digits.path", "/data",
     ["datasets.digits.path", "'sklearn_digits'", "test_fraction"]),
    ("negative learning rate in a variant", "studies.acts.variants.relu.train",
     {"learning_rate": -1}, ["studies.acts.variants.relu.train.learning_rate", "-1"]),
    ("unknown train key in a variant", "studies.acts.variants.relu.train", {"lr": 0.1},
     ["studies.acts.variants.relu.train", "'lr'"]),
]


@pytest.mark.parametrize("what,path,value,words", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_is_refused_naming_key_and_value(what, path, value, words):
    config = _mutate(path, value)
    with pytest.raises(cfg.ConfigError) as info:
        cfg.resolve_runs(config)
    message = str(info.value)
    for word in words:
        assert word in message, f"{what}: {word!r} not in {message!r}"


def test_grid_with_duplicate_names_is_refused():
    config = base_config()
    config["studies"]["acts"]["grid"] = {"activation": ["relu"]}  # 'relu' is also explicit
    with pytest.raises(cfg.ConfigError, match=r"studies\.acts\.grid.*'relu' twice"):
        cfg.resolve_runs(config)


def test_grid_values_that_collapse_to_the_same_name_are_refused():
    config = base_config()
    config["studies"]["acts"]["grid"] = {"activation": ["elu", "e/lu"]}
    with pytest.raises(cfg.ConfigError, match="twice"):
        cfg.resolve_runs(config)


def test_invalid_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("studies: [unclosed\n")
    with pytest.raises(cfg.ConfigError, match="bad.yaml"):
        cfg.load(path)


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_every_schema_key_has_a_description():
    schema = cfg.load_schema()
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                    missing.append(f"{where}.{key}")
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "schema")
    assert missing == []


def test_schema_lists_every_model_and_its_options():
    """The schema's text (what users read) names each registered model and option."""
    from cnnablate.base import catalog

    model = cfg.load_schema()["definitions"]["model"]
    for name, entry in catalog.MODELS.items():
        assert f"{name}: {', '.join(entry.options)}" in " ".join(model["description"].split())
        for option in entry.options:
            assert option in model["properties"], option


def test_every_registered_source_option_is_a_schema_key():
    from cnnablate.base import catalog

    keys = set(cfg.load_schema()["definitions"]["dataset"]["properties"])
    for name, entry in catalog.DATASET_SOURCES.items():
        assert set(entry.options) | set(catalog.COMMON_DATASET_OPTIONS) <= keys, name
