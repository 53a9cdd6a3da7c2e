"""Config validation and resolution: a user's config -> one fully resolved config per run.

Everything here is plain Python (no Keras), because the Snakefile calls it while planning.
Errors are `ConfigError`s whose message starts with the key path of the offending value, so a
user can find it in their YAML (`studies.acts.variants.selu.activation: unknown ...`).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cnnablate.decisions import rounds
from cnnablate.training.backend import BackendError, resolve_backend
from cnnablate.workflow import catalog

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
RUN_KEYS = ("activation", "norm", "init")


class ConfigError(ValueError):
    """A config value that cannot work; the message names its key path and value."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


@functools.cache
def _default_filling_validator() -> type:
    # The same extension Snakemake's `validate(..., set_default=True)` uses: fill a property's
    # default before validating it, so nested defaults are filled too.
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<config>"


def validate(config: dict, schema: dict | None = None, source: str = "config") -> dict:
    """Validate `config` against the schema in place, filling defaults; returns it.

    The Snakefile validates with Snakemake's `validate` (the same schema and default filling);
    this one serves `load()` (notebooks) and `resolve_runs`, and also checks the variants'
    `train`/`model` overrides with their defaults, which a plain schema validation cannot."""
    schema = schema or load_schema()
    validator = _default_filling_validator()(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            if err.validator == "oneOf" and err.context:
                # e.g. seeds (a list or {initial, max, step}): name the key inside that failed
                # (the deepest error is the branch the value was meant for)
                err = max(err.context, key=lambda e: len(e.absolute_path))
            where = _path(err.absolute_path)
            # jsonschema's message for a typo'd key lists it; keep it short and exact.
            lines.append(f"{where}: {err.message}")
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ConfigError(f"{source} is invalid:\n  " + "\n  ".join(lines) + more)
    # `--config smoke=true` arrives as the text "true" (Snakemake parses only True/False).
    if isinstance(config.get("smoke"), str):
        config["smoke"] = config["smoke"] == "true"
    return config


def load(path: str | Path) -> dict:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate(config, source=str(path))


def _check_activation(spec: Any, where: str) -> None:
    kind = catalog.activation_type(spec)
    if kind not in catalog.ACTIVATIONS:
        raise ConfigError(
            f"{where}: unknown activation {kind!r}; valid: {', '.join(sorted(catalog.ACTIVATIONS))}"
        )
    if isinstance(spec, dict):
        unknown = set(spec) - {"type"} - set(catalog.ACTIVATIONS[kind])
        if unknown:
            raise ConfigError(
                f"{where}: activation {kind!r} has no parameter(s) {sorted(unknown)}; "
                f"valid: {sorted(catalog.ACTIVATIONS[kind]) or 'none'}"
            )


def _check_init(spec: Any, where: str) -> None:
    kind = spec if isinstance(spec, str) else spec.get("type")
    if kind not in catalog.INITIALIZERS:
        raise ConfigError(
            f"{where}: unknown initializer {kind!r}; valid: {', '.join(catalog.INITIALIZERS)}"
        )


def _check_norm(value: Any, where: str) -> None:
    if value not in catalog.NORMS:
        raise ConfigError(f"{where}: unknown norm {value!r}; valid: {', '.join(catalog.NORMS)}")


def _set_dotted(target: dict, dotted: str, value: Any) -> None:
    head, _, rest = dotted.partition(".")
    if rest:
        target.setdefault(head, {})
        _set_dotted(target[head], rest, value)
    else:
        target[head] = value


def _token(key: str, value: Any) -> str:
    if isinstance(value, dict):
        params = "_".join(f"{k}{v}" for k, v in value.items() if k not in ("type", "params"))
        value = f"{value.get('type')}{'_' + params if params else ''}"
    leaf = key.rsplit(".", 1)[-1]
    return str(value) if key in RUN_KEYS or leaf == "name" else f"{leaf}{value}"


def expand_variants(study_name: str, study: Mapping) -> dict[str, dict]:
    """Explicit variants plus the grid's cartesian product, name -> overrides."""
    variants: dict[str, dict] = {k: copy.deepcopy(v) for k, v in study.get("variants", {}).items()}
    grid = study.get("grid") or {}
    if grid:
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            name = "-".join(_token(k, v) for k, v in zip(keys, values))
            name = re.sub(r"[^A-Za-z0-9_.-]", "", name)
            if name in variants:
                raise ConfigError(
                    f"studies.{study_name}.grid: expands to variant {name!r} twice "
                    "(it is also an explicit variant or another grid point); rename one"
                )
            overrides: dict = {}
            for key, value in zip(keys, values):
                _set_dotted(overrides, key, value)
            variants[name] = overrides
    if not variants:
        raise ConfigError(
            f"studies.{study_name}: the study has no variants; give `variants:` or `grid:`"
        )
    for name in variants:
        if not NAME_RE.match(name):
            raise ConfigError(
                f"studies.{study_name}.variants: variant name {name!r} may only contain "
                "letters, digits, '_', '.' and '-' (it becomes a path)"
            )
    return variants


def _merge(base: dict, overrides: Mapping | None) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        merged[key] = copy.deepcopy(value)
    return merged


def _apply_smoke(run: dict, smoke: Mapping) -> dict:
    """Shrink a run for smoke mode: the same code paths, a fraction of the compute."""
    entry = catalog.MODELS.get(run["model"]["name"])
    min_size = entry.min_image_size if entry else 8
    run["image_size"] = max(min(run["image_size"], smoke["image_size"]), min_size)
    if smoke.get("width") is not None:
        run["model"]["width"] = min(run["model"].get("width", 1.0), smoke["width"])
    train = run["train"]
    train["epochs"] = min(train["epochs"], smoke["epochs"])
    for key in ("max_train_images", "max_eval_images"):
        limit = smoke[key]
        train[key] = limit if train.get(key) is None else min(train[key], limit)
    run["smoke"] = True
    return run


def resolve_runs(config: dict) -> list[dict]:
    """Every (study, variant, seed) as a fully resolved run config, in a stable order."""
    schema = load_schema()
    config = validate(copy.deepcopy(config), schema)
    train_schema = schema["definitions"]["train"]
    model_schema = schema["definitions"]["model"]
    datasets = config.get("datasets", {})
    for name, spec in datasets.items():
        _check_dataset(spec, f"datasets.{name}")
    smoke = config["smoke_settings"] if config.get("smoke") else None
    runs: list[dict] = []
    for study_name, study in config["studies"].items():
        where = f"studies.{study_name}"
        if study["dataset"] not in datasets:
            raise ConfigError(
                f"{where}.dataset: dataset {study['dataset']!r} is not defined under `datasets:` "
                f"(defined: {', '.join(sorted(datasets)) or 'none'})"
            )
        variants = expand_variants(study_name, study)
        baseline = study.get("baseline") or next(iter(variants))
        if baseline not in variants:
            raise ConfigError(
                f"{where}.baseline: {baseline!r} is not one of the study's variants "
                f"({', '.join(variants)})"
            )
        names = list(variants)
        problem = rounds.check_seeds(study["seeds"], where)
        if problem:
            raise ConfigError(problem)
        seeds = rounds.all_seeds(study["seeds"])  # adaptive: every seed up to max
        if smoke:
            seeds = seeds[: smoke["seeds"]]
            if smoke["max_variants"]:
                others = [n for n in names if n != baseline]
                names = [baseline] + others[: smoke["max_variants"] - 1]
        for variant in names:
            overrides = variants[variant]
            vwhere = f"{where}.variants.{variant}"
            run = {
                "study": study_name,
                "variant": variant,
                "dataset": study["dataset"],
                "image_size": study["image_size"],
                "eval_split": study["eval_split"],
                "baseline": baseline,
                "activation": overrides.get("activation", study["activation"]),
                "norm": overrides.get("norm", study["norm"]),
                "init": overrides.get("init", study["init"]),
                "model": _merge(study["model"], overrides.get("model")),
                "train": _merge(study["train"], overrides.get("train")),
            }
            _check_activation(run["activation"], f"{vwhere}.activation")
            _check_norm(run["norm"], f"{vwhere}.norm")
            _check_init(run["init"], f"{vwhere}.init")
            _check_section(run["train"], train_schema, f"{vwhere}.train")
            _resolve_backend(run["train"], f"{vwhere}.train")
            _check_section(run["model"], model_schema, f"{vwhere}.model")
            model_name = run["model"]["name"]
            if model_name not in catalog.MODELS:
                raise ConfigError(
                    f"{vwhere}.model.name: unknown model {model_name!r}; "
                    f"valid: {', '.join(sorted(catalog.MODELS))}"
                )
            _check_model_options(run["model"], overrides.get("model") or {}, where, vwhere)
            min_size = catalog.MODELS[model_name].min_image_size
            if run["image_size"] < min_size:
                raise ConfigError(
                    f"{where}.image_size: {run['image_size']} is too small for {model_name} "
                    f"(at least {min_size})"
                )
            if smoke:
                _apply_smoke(run, smoke)
            for seed in seeds:
                runs.append({**copy.deepcopy(run), "seed": int(seed)})
    return runs


def _resolve_backend(train: dict, where: str) -> None:
    """Fill `train.backend` (unset: the planning environment's KERAS_BACKEND, else
    tensorflow), so that the run config names the backend that trains it."""
    try:
        train["backend"] = resolve_backend(train.get("backend"))
    except BackendError as error:
        raise ConfigError(f"{where}.backend: {error}") from None
    if train["backend"] == "jax" and train.get("data_on_device") is True:
        raise ConfigError(
            f"{where}.data_on_device: true places the splits with TensorFlow; the jax backend "
            "feeds numpy batches from the host (leave it auto or false)"
        )


def _check_model_options(model: dict, overridden: Mapping, where: str, vwhere: str) -> None:
    """Every `model:` key is an option of that model (catalog.MODELS[name].options)."""
    entry = catalog.MODELS[model["name"]]
    valid = (*catalog.COMMON_MODEL_OPTIONS, *entry.options)
    for key in model:
        if key not in valid:
            at = vwhere if key in overridden else where
            raise ConfigError(
                f"{at}.model.{key}: model {model['name']!r} has no option {key!r}; "
                f"valid: {', '.join(valid)}"
            )


def _check_dataset(spec: dict, where: str) -> None:
    """A known source, and only the keys that source reads (catalog.DATASET_SOURCES)."""
    source = spec["source"]
    if source not in catalog.DATASET_SOURCES:
        raise ConfigError(
            f"{where}.source: unknown source {source!r}; "
            f"valid: {', '.join(catalog.DATASET_SOURCES)}"
        )
    valid = (*catalog.COMMON_DATASET_OPTIONS, *catalog.DATASET_SOURCES[source].options)
    for key in spec:
        if key not in valid:
            raise ConfigError(
                f"{where}.{key}: source {source!r} has no option {key!r}; "
                f"valid: {', '.join(valid)}"
            )


def _check_section(section: dict, schema: dict, where: str) -> None:
    validator = _default_filling_validator()(schema)
    errors = list(validator.iter_errors(section))
    if errors:
        err = errors[0]
        raise ConfigError(f"{where}.{_path(err.absolute_path)}: {err.message}".replace("..", "."))


def run_id(run: Mapping) -> tuple[str, str, int]:
    return run["study"], run["variant"], int(run["seed"])


def config_hash(payload: Any) -> str:
    """A short stable hash of a JSON-able value (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def study_settings(config: dict, study_name: str) -> dict:
    """What the aggregate and report steps need of a study (not the runs), from a validated
    config (defaults filled: the Snakefile's `validate`, `load` or `validate` here)."""
    study = config["studies"][study_name]
    variants = expand_variants(study_name, study)
    return copy.deepcopy({
        "name": study_name,
        "description": study.get("description", ""),
        "dataset": study["dataset"],
        "eval_split": study["eval_split"],
        "baseline": study.get("baseline") or next(iter(variants)),
        "model": study["model"],
        "reference": study.get("reference", {}),
        "variant_descriptions": {k: v.get("description", "") for k, v in variants.items()},
        # What cnnablate.decisions.decide needs; smoke mode runs a fixed prefix of the seeds.
        "decisions": {
            **{k: config["report"][k] for k in ("alpha", "power", "all_pairs", "confidence")},
            "min_effect": study.get("min_effect"),
            "seeds": (rounds.all_seeds(study["seeds"])[: config["smoke_settings"]["seeds"]]
                      if config.get("smoke") else study["seeds"]),
        },
    })
