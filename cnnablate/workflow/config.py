"""Config validation and resolution: a user's config -> one fully resolved config per run.

Everything here is plain Python (no Keras), because the Snakefile calls it while planning.
Errors are `ConfigError`s whose message starts with the key path of the offending value, so a
user can find it in their YAML (`studies.acts.variants.selu.activation: unknown ...`).
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cnnablate.base import catalog, rounds
from cnnablate.base.backends import BackendError, resolve_backend
from cnnablate.base.layout import Layout
from cnnablate.data.partition import DEFAULT_MODE, run_partition

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
    """Every deciding (study, variant, seed) as a fully resolved run config, in a stable order.

    A tuned variant's deciding runs hold the study's settings here; they train at its selected
    candidate (`apply_selection`, once the study's tuning runs are selected)."""
    return _resolve(config).runs


def resolve_tuning(config: dict) -> Tuning:
    """Every tuning run (study, variant, candidate, tuning seed) and each tuned variant's
    tuning spec; empty for a config without `tune:`."""
    return _resolve(config).tuning


def resolve(config: dict) -> tuple[list[dict], Tuning]:
    """`resolve_runs` and `resolve_tuning` of `config`, resolved once (what planning needs)."""
    resolved = _resolve(config)
    return resolved.runs, resolved.tuning


def _resolve(config: dict) -> _Resolved:
    schema = load_schema()
    config = validate(copy.deepcopy(config), schema)
    train_schema = schema["definitions"]["train"]
    model_schema = schema["definitions"]["model"]
    datasets = config.get("datasets", {})
    for name, spec in datasets.items():
        _check_dataset(spec, f"datasets.{name}")
    smoke = config["smoke_settings"] if config.get("smoke") else None
    runs: list[dict] = []
    tuning = Tuning([], {})
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
        spec = rounds.smoke_seeds(study["seeds"], smoke["seeds"]) if smoke else study["seeds"]
        seeds = rounds.all_seeds(spec)  # adaptive: every seed up to max
        deciding_seeds = rounds.all_seeds(study["seeds"])  # every seed that may decide
        if smoke:
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
                # what decides the run's partition besides (dataset, seed) and the prepared
                # data: a change of the dataset's `split` reruns exactly its runs
                "partition": dataset_partition(datasets[study["dataset"]]),
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
            tune = _variant_tune(study, overrides, study_name, variant)
            if tune is not None:
                spec = _check_tune(tune, run, study, overrides, study_name, variant,
                                   deciding_seeds, smoke, schema)
                tuning.specs.setdefault(study_name, {})[variant] = spec
                tuning.runs.extend(_tuning_runs(run, spec, smoke))
            if smoke:
                _apply_smoke(run, smoke)
            for seed in seeds:
                runs.append({**copy.deepcopy(run), "seed": int(seed)})
        _study_default_rungs(study_name, study, tuning.specs.get(study_name, {}))
    return _Resolved(runs, tuning)


# --- Tuning (fair comparisons): each variant at its own best nuisance settings ---------------
# A study's `tune:` names nuisance settings (`train.KEY` / `model.KEY`) and their candidates;
# every (variant, candidate, tuning seed) is a tuning run, and the deciding runs then train at
# the variant's selected candidate (cnnablate.decisions.tuning.select). The tuning seeds never
# decide, so the decisions' guarantee holds for the selected configurations.

TUNE_RESERVED = ("seeds", "metric", "epochs", "schedule", "rungs", "keep", "zoom")
# How the candidates are trained (README, "Fair comparisons"): set on the study's `tune:` only,
# so every variant of a study is tuned the same way (equal effort).
SCHEDULE_KEYS = ("schedule", "rungs", "keep", "zoom")
DEFAULT_TUNE_METRIC = "best_val_accuracy"
DEFAULT_KEEP = 0.5
# Not nuisance settings: the network itself is what a study fixes.
UNTUNABLE = ("model.name",)


@dataclass
class Tuning:
    """Tuning runs (resolved like deciding runs, plus `run["tuning"]`) and, per study and
    variant, the spec they came from: {keys, seeds, metric, epochs, candidates}."""

    runs: list[dict]
    specs: dict[str, dict[str, dict]]


@dataclass
class _Resolved:
    runs: list[dict]
    tuning: Tuning


def tune_keys(tune: Mapping) -> dict[str, list]:
    """The tuned settings of a `tune:` mapping (every key but the reserved ones)."""
    return {k: list(v) for k, v in tune.items() if k not in TUNE_RESERVED}


def _variant_tune(study: Mapping, overrides: Mapping, study_name: str,
                  variant: str) -> dict | None:
    """A variant's `tune:` over the study's: its own candidate keys replace the study's,
    its seeds/metric/epochs default to the study's. None: the variant is not tuned."""
    study_tune, own = study.get("tune"), overrides.get("tune")
    if not study_tune and not own:
        return None
    if not study_tune:
        # one variant tuned and the others not would be unfair the other way round
        raise ConfigError(
            f"studies.{study_name}.variants.{variant}.tune: the study has no `tune:`; give the "
            "study one (every variant is then tuned; a variant's own `tune:` changes its grid)"
        )
    tune = dict(study_tune)
    if own:
        if tune_keys(own):
            tune = {k: v for k, v in tune.items() if k in TUNE_RESERVED}
        tune.update(own)
    return tune


def _tune_where(study_name: str, variant: str, overrides: Mapping, key: str | None) -> str:
    """The key path a tune setting came from: the variant's own `tune:` or the study's."""
    own = overrides.get("tune") or {}
    mine = key in own or (key is None and own)
    base = (f"studies.{study_name}.variants.{variant}.tune" if mine
            else f"studies.{study_name}.tune")
    return f"{base}.{key}" if key else base


def _tunable(section: str, run: Mapping, schema: dict) -> list[str]:
    """The keys of `train:` / `model:` a study may tune (as the schema and model know them)."""
    if section == "train":
        return sorted(schema["definitions"]["train"]["properties"])
    entry = catalog.MODELS[run["model"]["name"]]
    return [k for k in (*catalog.COMMON_MODEL_OPTIONS, *entry.options) if k != "name"]


def _check_tune(tune: Mapping, run: dict, study: Mapping, overrides: Mapping, study_name: str,
                variant: str, deciding_seeds: list[int], smoke: Mapping | None,
                schema: dict) -> dict:
    """A variant's tuning spec, or a ConfigError naming the key path and the value."""
    at = functools.partial(_tune_where, study_name, variant, overrides)
    keys = tune_keys(tune)
    if not keys:
        raise ConfigError(f"{at(None)}: nothing to tune; give a setting and its candidates, "
                          "e.g. train.learning_rate: [0.01, 0.03, 0.1]")
    if not tune.get("seeds"):
        raise ConfigError(f"{at('seeds')}: required (the tuning seeds, e.g. [1000]); they "
                          "must differ from the study's deciding seeds")
    for key, candidates in keys.items():
        _check_tune_key(key, candidates, run, study, overrides, schema, at(key), study_name,
                        variant)
    if tune.get("epochs") and "train.epochs" in keys:
        raise ConfigError(f"{at('epochs')}: {tune['epochs']} conflicts with tuning "
                          "train.epochs; give one of them")
    mine = [k for k in SCHEDULE_KEYS if k in (overrides.get("tune") or {})]
    if mine:
        raise ConfigError(
            f"studies.{study_name}.variants.{variant}.tune.{mine[0]}: set it on the study's "
            f"`tune:` (studies.{study_name}.tune.{mine[0]}): every variant is tuned the same way"
        )
    seeds = [int(s) for s in tune["seeds"]]
    both = sorted(set(seeds) & set(deciding_seeds))
    if both:
        raise ConfigError(
            f"{at('seeds')}: {both} also decide (studies.{study_name}.seeds: "
            f"{_seeds_text(study['seeds'])}); tuning seeds must never decide: choose seeds "
            f"outside them, e.g. [{max(deciding_seeds) + 1000}]"
        )
    if smoke:
        keys, seeds = _smoke_grid(keys, seeds)
    candidates = [dict(zip(keys, values)) for values in itertools.product(*keys.values())]
    names = [candidate_name(values) for values in candidates]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"{at(None)}: two candidates are both named {dup!r} (their values "
                          "print the same); list each value once")
    epochs = int(tune.get("epochs") or run["train"]["epochs"])
    return {
        "keys": keys, "seeds": seeds, "metric": tune.get("metric") or DEFAULT_TUNE_METRIC,
        "epochs": tune.get("epochs"),
        "candidates": [{"name": n, "values": v} for n, v in zip(names, candidates)],
        **_schedule(tune, keys, epochs, f"studies.{study_name}.tune",
                    int(smoke["epochs"]) if smoke else None),
    }


def _study_default_rungs(name: str, study: Mapping, specs: Mapping[str, dict]) -> None:
    """Every variant is tuned on the same rungs: where they are the default and the variants'
    grids differ in size (each variant's default then differs), the study's default from all
    of them (`halving.budget_rungs`: the variants together at most half their grid's epochs)."""
    from cnnablate.decisions import halving

    tune = study.get("tune") or {}
    if (tune.get("schedule") != "halving" or tune.get("rungs") is not None
            or len({tuple(s["rungs"]) for s in specs.values()}) < 2):
        return
    budgets = {s["rungs"][-1] for s in specs.values()}
    if len(budgets) > 1:
        raise ConfigError(f"studies.{name}.tune.rungs: the variants' tuning "
                          f"budgets differ ({sorted(budgets)} epochs); give the rungs")
    rungs = halving.budget_rungs(budgets.pop(), [len(s["candidates"]) for s in specs.values()],
                                 next(iter(specs.values()))["keep"])
    for spec in specs.values():
        spec["rungs"] = list(rungs)


def _schedule(tune: Mapping, keys: Mapping[str, list], epochs: int, where: str,
              smoke_epochs: int | None = None) -> dict:
    """How a variant's candidates are trained: `schedule` (grid: every candidate the whole
    tuning budget; halving: successive halving over `rungs`, keeping the best `keep` fraction
    at each), `rungs` (epochs; the last is the tuning budget itself), `keep` and `zoom` (the
    refinement stages after it). A ConfigError names the key and the value."""
    from cnnablate.decisions import halving

    schedule = tune.get("schedule") or "grid"
    keep = tune.get("keep", DEFAULT_KEEP)
    if not isinstance(keep, (int, float)) or isinstance(keep, bool) or not 0 < keep < 1:
        raise ConfigError(f"{where}.keep: {keep!r} must lie strictly between 0 and 1 (the "
                          "fraction of candidates each rung keeps, e.g. 0.5)")
    zoom = tune.get("zoom", 0) or 0
    if zoom and not [k for k, v in keys.items() if _numeric_candidates(v)]:
        raise ConfigError(
            f"{where}.zoom: {zoom} refines a numeric key around its pick, and no tuned key is "
            f"numeric ({', '.join(f'{k}: {v}' for k, v in keys.items())}); remove zoom"
        )
    rungs = tune.get("rungs")
    budget = min(epochs, smoke_epochs) if smoke_epochs else epochs  # smoke mode's cap
    if schedule == "grid":
        if rungs is not None:
            raise ConfigError(f"{where}.rungs: {rungs} needs schedule: halving (a grid trains "
                              "every candidate the whole tuning budget)")
        return {"schedule": "grid", "rungs": [budget], "keep": float(keep), "zoom": int(zoom)}
    if "train.epochs" in keys:
        raise ConfigError(f"{where}.schedule: halving stops every candidate at the same "
                          "epochs, and train.epochs is tuned; tune it on a grid")
    if rungs is None:
        n = math.prod(len(v) for v in keys.values())
        rungs = halving.budget_rungs(epochs, [n], keep)
    rungs = [int(r) for r in rungs]
    if any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise ConfigError(f"{where}.rungs: {rungs} must increase (epochs at which each rung "
                          "decides, e.g. [1, 2, 5])")
    if rungs[-1] > epochs:
        raise ConfigError(
            f"{where}.rungs: {rungs} ends beyond the tuning runs' {epochs} epochs (tune.epochs, "
            "else train.epochs); the last rung is at most that budget"
        )
    rungs = [r for r in rungs if r < budget]  # smoke mode: only the rungs below its budget
    rungs.append(budget)  # the finalists always train the whole tuning budget
    return {"schedule": "halving", "rungs": rungs, "keep": float(keep), "zoom": int(zoom)}


def _numeric_candidates(values: Iterable) -> bool:
    values = list(values)
    return bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _check_tune_key(key: str, candidates: list, run: dict, study: Mapping, overrides: Mapping,
                    schema: dict, where: str, study_name: str, variant: str) -> None:
    """A tuned key the schema knows, not the study's scientific setting nor set by the variant,
    and each candidate valid where it goes (put into a copy of the run and validated)."""
    section, _, leaf = key.partition(".")
    valid = _tunable(section, run, schema)
    if leaf not in valid or key in UNTUNABLE:
        why = " (the network is the study's fixed setting)" if key in UNTUNABLE else ""
        raise ConfigError(
            f"{where}: unknown key {key!r}{why}; valid: {', '.join(TUNE_RESERVED)}, "
            f"{', '.join(f'{section}.{k}' for k in valid)}"
        )
    if key in (study.get("grid") or {}):
        raise ConfigError(
            f"{where}: {key} is the study's compared setting (studies.{study_name}.grid.{key}); "
            "a setting cannot be both compared and tuned"
        )
    if leaf in (overrides.get(section) or {}):
        raise ConfigError(
            f"studies.{study_name}.variants.{variant}.{key}: "
            f"{overrides[section][leaf]!r} is set by the variant, and {where} tunes it; "
            "remove one"
        )
    if not candidates:
        raise ConfigError(f"{where}: [] has no candidates; list at least one value")
    section_schema = schema["definitions"][section]
    for i, value in enumerate(candidates):
        trial = copy.deepcopy(run[section])
        trial[leaf] = value
        validator = _default_filling_validator()(section_schema)
        errors = list(validator.iter_errors(trial))
        if errors:
            raise ConfigError(f"{where}[{i}]: {errors[0].message}")


def _seeds_text(spec: Any) -> str:
    if rounds.is_adaptive(spec):
        return f"adaptive, seeds 0..{int(spec['max']) - 1}"
    return str([int(s) for s in spec])


def candidate_name(values: Mapping[str, Any]) -> str:
    """A readable, file-system-safe name of a candidate: `learning_rate-0.03`, keys joined
    by `_` (`learning_rate-0.03_weight_decay-0.0001`); the folder is `tune-{name}`."""
    parts = [f"{key.partition('.')[2]}-{value}" for key, value in values.items()]
    return re.sub(r"[^A-Za-z0-9_.-]", "", "_".join(parts))


def _with_values(run: dict, values: Mapping[str, Any]) -> dict:
    out = copy.deepcopy(run)
    for key, value in values.items():
        _set_dotted(out, key, copy.deepcopy(value))
    return out


def _tuning_runs(run: dict, spec: Mapping, smoke: Mapping | None) -> list[dict]:
    """A variant's tuning runs (candidate, then seed), from its resolved run before smoke."""
    out = []
    for candidate in spec["candidates"]:
        tuned = _with_values(run, candidate["values"])
        if spec["epochs"]:
            tuned["train"]["epochs"] = int(spec["epochs"])
        if smoke:
            _apply_smoke(tuned, smoke)
        tuned["tuning"] = {"candidate": candidate["name"],
                           "values": copy.deepcopy(candidate["values"])}
        out.extend({**copy.deepcopy(tuned), "seed": seed} for seed in spec["seeds"])
    return out


def tuning_run_at(template: dict, values: Mapping[str, Any],
                  smoke: Mapping | None = None) -> dict:
    """A tuning run of a candidate not in the grid (the zoom stage's, issue #31): a tuning run
    of the same variant (`template`) at `values`, smoke mode's caps applied again."""
    out = _with_values(template, values)
    if smoke and template.get("smoke"):
        _apply_smoke(out, smoke)
    out["tuning"] = {"candidate": candidate_name(values), "values": copy.deepcopy(dict(values))}
    return out


def apply_selection(run: dict, values: Mapping[str, Any] | None,
                    smoke: Mapping | None = None) -> dict:
    """A tuned variant's deciding run at its selected candidate's `values` (smoke mode's caps
    applied again, so a tuned width or epochs never escapes them); `run["tuned"]` records
    them. `values` None: the run as resolved."""
    if values is None:
        return run
    out = _with_values(run, values)
    if smoke and run.get("smoke"):
        _apply_smoke(out, smoke)
    out["tuned"] = copy.deepcopy(dict(values))
    return out


def run_folder(run: Mapping) -> str:
    """A run's folder under results/runs/ (and its log's under logs/train/): deciding runs
    `{study}/{variant}/seed{seed}`, tuning runs `{study}/{variant}/tune-{candidate}/seed{seed}`
    (cnnablate.base.layout)."""
    layout = Layout()
    return layout.run_key(*layout.of(dict(run)))


def planning_summary(runs: list[dict], tuning: Tuning, layout: Layout | None = None) -> list[str]:
    """What a tuned study will cost before it runs: per tuned study, its tuning runs and their
    share of the study's training epochs (deciding epochs at the study's settings; adaptive
    seeds counted up to `max`). Empty for a config without tuning."""
    layout = layout or Layout()
    lines = []
    for study, specs in tuning.specs.items():
        tune_runs = [r for r in tuning.runs if r["study"] == study]
        grid_epochs = sum(int(r["train"]["epochs"]) for r in tune_runs)
        tune_epochs = sum(_tuning_epochs(spec) for spec in specs.values())
        decide_epochs = sum(int(r["train"]["epochs"]) for r in runs if r["study"] == study)
        share = tune_epochs / max(1, tune_epochs + decide_epochs)
        lines.append(
            f"cnnablate: {study}: {len(tune_runs)} tuning runs for {len(specs)} variants, "
            f"{tune_epochs} of {tune_epochs + decide_epochs} training epochs ({share:.0%}); "
            "its tuned variants' deciding runs follow the selection "
            f"({layout.tuning_selection(study)}), known once the tuning runs end"
        )
        lines.extend(f"cnnablate: {study}: {line}" for line in _stage_lines(specs, grid_epochs))
    return lines


def _tuning_epochs(spec: Mapping) -> int:
    """A variant's planned tuning epochs: the grid's, or halving's (a promoted candidate
    continues its run: each rung adds only its new epochs), on every tuning seed."""
    from cnnablate.decisions import halving

    n, rungs = len(spec["candidates"]), spec["rungs"]
    if len(rungs) == 1:
        return n * rungs[0] * len(spec["seeds"])
    return halving.halving_epochs(n, rungs, spec["keep"]) * len(spec["seeds"])


def _stage_lines(specs: Mapping[str, Mapping], grid_epochs: int) -> list[str]:
    """The rung plan per variant, halving's cost against the grid's, and the zoom stage."""
    from cnnablate.decisions import halving

    lines = []
    first = next(iter(specs.values()))
    if len(first["rungs"]) > 1:
        rungs = first["rungs"]
        plans = {v: halving.rung_plan(len(s["candidates"]), rungs, s["keep"])
                 for v, s in specs.items()}
        shown = "; ".join(f"{v} {' -> '.join(map(str, p))}" for v, p in plans.items())
        spent = sum(_tuning_epochs(s) for s in specs.values())
        lines.append(
            f"successive halving, rungs at {', '.join(map(str, rungs))} epochs, keep "
            f"{first['keep']:g}: candidates per rung {shown}; {spent} tuning epochs instead of "
            f"the grid's {grid_epochs} ({spent / max(1, grid_epochs):.0%}); each rung is a "
            "checkpoint (tuning_rung), and a promoted candidate continues its own run")
    if first.get("zoom"):
        lines.append(
            f"zoom {first['zoom']}: after the {'last rung' if len(first['rungs']) > 1 else 'grid'}"
            ", new candidates around each variant's pick (tuning_zoom), each trained "
            f"{first['rungs'][-1]} epochs per tuning seed; not counted above (known after it)")
    return lines


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


def dataset_partition(spec: Mapping) -> dict:
    """A dataset's `split` as runs hold it: {mode, redrawn} (cnnablate.data.partition)."""
    return run_partition(spec.get("split", DEFAULT_MODE), spec["source"])


def prepared_spec(spec: Mapping) -> dict:
    """What preparing a dataset reads of its entry: all but `split`, which only decides how
    runs partition the prepared data (changing it must not prepare the data again)."""
    return {k: copy.deepcopy(v) for k, v in spec.items() if k != "split"}


def _check_section(section: dict, schema: dict, where: str) -> None:
    validator = _default_filling_validator()(schema)
    errors = list(validator.iter_errors(section))
    if errors:
        err = errors[0]
        raise ConfigError(f"{where}.{_path(err.absolute_path)}: {err.message}".replace("..", "."))


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
        # {mode, redrawn}: which splits the seeds draw (the sources of variation a verdict
        # covers); runs with `partition.saves_predictions` have per-image predictions
        "partition": dataset_partition(config["datasets"][study["dataset"]]),
        "baseline": study.get("baseline") or next(iter(variants)),
        "model": study["model"],
        "reference": study.get("reference", {}),
        "variant_descriptions": {k: v.get("description", "") for k, v in variants.items()},
        # What cnnablate.decisions.decide needs; smoke mode runs a prefix of the seeds (of
        # adaptive seeds: one round and its decision).
        "decisions": {
            **{k: config["report"][k] for k in ("alpha", "power", "all_pairs", "confidence")},
            "min_effect": study.get("min_effect"),
            "seeds": (rounds.smoke_seeds(study["seeds"], config["smoke_settings"]["seeds"])
                      if config.get("smoke") else study["seeds"]),
            "test": (study.get("decisions") or {}).get("test", "t"),
        },
        # What the verdicts are about (cnnablate.decisions.scope): the dataset's source and
        # partitioning, and the augmentations the variants train with.
        "data": _data_scope(config, study, variants),
        # a study-level `tune:` or a variant's own: its verdicts are at the selected settings
        "tuned": bool(study.get("tune")) or any(
            isinstance(v, Mapping) and v.get("tune")
            for v in (study.get("variants") or {}).values()),
        "tune": _study_tune(study, bool(config.get("smoke"))),
    })


def _data_scope(config: Mapping, study: Mapping, variants: Mapping[str, Mapping]) -> dict:
    spec = (config.get("datasets") or {}).get(study["dataset"]) or {}
    augments = {str((study.get("train") or {}).get("augment") or "none")}
    augments |= {str(v["train"]["augment"]) for v in variants.values()
                 if isinstance(v.get("train"), Mapping) and v["train"].get("augment")}
    return {"source": spec.get("source"), "split": spec.get("split", "per_seed"),
            "augment": sorted(augments)}


def _smoke_grid(keys: Mapping[str, list], seeds: list[int]) -> tuple[dict[str, list], list[int]]:
    """Smoke mode's tuning: the first and last candidate of each key, one tuning seed."""
    return {k: list(dict.fromkeys([v[0], v[-1]])) for k, v in keys.items() if v}, seeds[:1]


def _study_tune(study: Mapping, smoke: bool) -> dict | None:
    """The study-level `tune:` as the reporting steps read it (variants' own tunes: tuning.csv);
    in smoke mode the grid and seeds smoke mode runs."""
    tune = study.get("tune")
    if not tune:
        return None
    keys, seeds = tune_keys(tune), [int(s) for s in tune.get("seeds") or []]
    if smoke:
        keys, seeds = _smoke_grid(keys, seeds)
    return {"keys": keys, "seeds": seeds, "metric": tune.get("metric") or DEFAULT_TUNE_METRIC,
            "epochs": tune.get("epochs")}
