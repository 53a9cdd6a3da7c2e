"""The stages of a tuned study's tuning (issue #31): successive halving's rungs, the zoom stage
and the final selection, as the workflow's checkpoints run them (rules/tuning.smk).

- **Rungs** (`schedule: halving`): after rung r (every surviving candidate trained `rungs[r]`
  epochs on each tuning seed) the checkpoint `tuning_rung` writes
  `results/studies/{study}/tuning/rung{r}.json`: per variant the candidates that trained, their
  means, and the ones promoted (`cnnablate.decisions.halving.promote_seeds`, as many as
  `rung_plan` says). A promoted candidate continues its own run to the next rung.
- **Zoom** (`zoom: k`): after the last rung (the grid's whole budget), the checkpoint
  `tuning_zoom` picks each variant's best so far and writes `tuning/zoom.json`: the new
  candidates around it (`halving.zoom_grid`), trained the whole budget.
- **Final selection** (`select_tuning`, `write_stages_selection`): the best of every candidate
  that trained the whole budget (the last rung's and the zoom's), tuning.csv with one row per
  tuning run at the last epochs it trained (`epochs`) and its `stage` (grid or zoom).

Plain Python: the Snakefile, `status` and the checkpoint scripts import it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cnnablate.base.atomic import atomic_path, write_json_atomic
from cnnablate.base.lazy import lazy_module
from cnnablate.decisions import halving
from cnnablate.decisions.selection import (
    NoCandidateTrained,
    TuningFailed,
    higher_is_better,
    run_value,
    select_variant,
    tuning_table,
)

pd = lazy_module("pandas")  # imported when a table is read: base/lazy.py

RUNG_FILE = "tuning/rung{rung}.json"  # below the study's folder (Layout.study_file)
ZOOM_FILE = "tuning/zoom.json"
STAGE_COLUMNS = ("epochs", "stage")  # tuning.csv's extra columns under halving or zoom


def rung_dir(epochs: int) -> str:
    """A rung's snapshot folder inside a tuning run's folder: `rung-{epochs}`."""
    return f"rung-{int(epochs)}"


def staged(spec: Mapping) -> bool:
    """Whether a variant's tuning has stages beyond today's grid: halving rungs or a zoom."""
    return len(spec.get("rungs") or []) > 1 or bool(spec.get("zoom"))


def n_promoted(spec: Mapping, rung: int) -> int:
    """How many of a variant's candidates continue after rung `rung` (1-based)."""
    plan = halving.rung_plan(len(spec["candidates"]), spec["rungs"], spec["keep"])
    return plan[rung]


def _records(metrics_files: Iterable[str | Path],
             specs: Mapping[str, Mapping]) -> dict[tuple[str, str, int], dict]:
    """(variant, candidate, seed) -> {value, epochs, values} of each run at the furthest epoch
    among `metrics_files` (a rung's snapshot or the run's own metrics.json)."""
    out: dict[tuple[str, str, int], dict] = {}
    for path in metrics_files:
        metrics = json.loads(Path(path).read_text())
        run = metrics["run_config"]
        spec = specs[run["variant"]]
        epochs = int(metrics.get("rung_epochs") or run["train"]["epochs"])
        key = (run["variant"], run["tuning"]["candidate"], int(run["seed"]))
        if key in out and out[key]["epochs"] >= epochs:
            continue
        out[key] = {"value": run_value(metrics, spec["metric"]), "epochs": epochs,
                    "values": dict(run["tuning"]["values"])}
    return out


def _means(spec: Mapping, per_seed: Mapping[str, list]) -> dict[str, float | None]:
    return {name: (None if any(v is None for v in vals) else math.fsum(vals) / len(vals))
            for name, vals in per_seed.items()}


def write_rung(metrics_files: Iterable[str | Path], study: str, specs: Mapping[str, Mapping],
               rung: int, out: str | Path, log: Callable[[str], None] = print) -> dict:
    """The checkpoint after rung `rung` (1-based): per variant the candidates that trained to
    it, their mean metric and those promoted to the next rung. A variant none of whose
    candidates trained stops the study, as the selection would."""
    records = _records(metrics_files, specs)
    state: dict[str, Any] = {"study": study, "rung": rung, "variants": {}}
    failed = []
    for variant, spec in specs.items():
        names = [c["name"] for c in spec["candidates"]
                 if any(k[:2] == (variant, c["name"]) for k in records)]
        per_seed = {name: [(records.get((variant, name, int(s))) or {}).get("value")
                           for s in spec["seeds"]] for name in names}
        keep = n_promoted(spec, rung)
        promoted = halving.promote_seeds(per_seed, keep, higher_is_better(spec["metric"]))
        if not promoted:
            failed.append(variant)
        state["variants"][variant] = {
            "epochs": int(spec["rungs"][rung - 1]), "trained": names,
            "means": _means(spec, per_seed), "promoted": promoted,
        }
        log(f"{variant}: rung {rung} ({spec['rungs'][rung - 1]} epochs): {len(promoted)} of "
            f"{len(names)} continue to {spec['rungs'][rung]} epochs: {', '.join(promoted)}")
    if failed:
        raise TuningFailed(
            f"study {study}: every tuning candidate of {', '.join(failed)} diverged on some "
            f"tuning seed by rung {rung}; widen the grid towards gentler values (e.g. a "
            "smaller learning rate)")
    write_json_atomic(out, state)
    return state


def _key_valid(key: str, schema: Mapping | None) -> Callable[[Any], bool] | None:
    """Whether a value fits the key's own schema (a zoom beyond the edge can leave it)."""
    if not schema:
        return None
    section, _, leaf = key.partition(".")
    prop = (schema.get("definitions", {}).get(section, {}).get("properties", {}).get(leaf))
    if not prop:
        return None
    import jsonschema

    validator = jsonschema.Draft202012Validator(prop)
    return lambda value: validator.is_valid(value)


def _finalists(spec: Mapping, records: Mapping, variant: str) -> dict:
    """The variant's candidates that trained the whole tuning budget on some seed, with their
    values: the last rung's and (after it) the zoom's."""
    budget = int(spec["rungs"][-1])
    out = {}
    for (v, name, _), rec in records.items():
        if v == variant and rec["epochs"] >= budget:
            out.setdefault(name, rec["values"])
    # the grid's candidates in the order listed (a tie goes to the first), then the zoom's
    order = [c["name"] for c in spec["candidates"]]
    return dict(sorted(out.items(), key=lambda kv: (kv[0] not in order,
                                                    order.index(kv[0]) if kv[0] in order else 0)))


def _spec_over(spec: Mapping, candidates: Mapping[str, Mapping]) -> dict:
    """`spec` whose candidates are `candidates` (name -> values) and whose keys list every value
    tried (the zoom's too: `at_edge` is then about the widened grid)."""
    keys = {key: list(values) for key, values in spec["keys"].items()}
    for values in candidates.values():
        for key, value in values.items():
            if value not in keys.setdefault(key, []):
                keys[key].append(value)
    keys = {k: sorted(v) if all(isinstance(x, (int, float)) for x in v) else v
            for k, v in keys.items()}
    return {**spec, "keys": keys,
            "candidates": [{"name": n, "values": dict(v)} for n, v in candidates.items()]}


def _found(records: Mapping, variant: str, budget: int | None = None) -> dict:
    return {(name, seed): rec["value"] for (v, name, seed), rec in records.items()
            if v == variant and (budget is None or rec["epochs"] >= budget)}


def write_zoom(metrics_files: Iterable[str | Path], study: str, specs: Mapping[str, Mapping],
               out: str | Path, name_of: Callable[[Mapping], str],
               schema: Mapping | None = None, log: Callable[[str], None] = print) -> dict:
    """The zoom checkpoint: each variant's pick among the candidates that trained the whole
    budget, and its new candidates around it (`halving.zoom_grid`; a value its key's schema
    refuses is dropped). `name_of`: a candidate's name from its values."""
    records = _records(metrics_files, specs)
    state: dict[str, Any] = {"study": study, "variants": {}}
    failed = []
    for variant, spec in specs.items():
        pool = _spec_over(spec, _finalists(spec, records, variant))
        try:
            chosen = select_variant(pool, _found(records, variant))
        except NoCandidateTrained:
            failed.append(variant)
            continue
        valid = {key: check for key in spec["keys"] if (check := _key_valid(key, schema))}
        new = halving.zoom_grid(spec["keys"], chosen["values"], int(spec["zoom"]), valid)
        tried = {json.dumps(c["values"], sort_keys=True) for c in pool["candidates"]}
        new = [v for v in new if json.dumps(v, sort_keys=True) not in tried]
        state["variants"][variant] = {
            "picked": chosen["candidate"], "values": chosen["values"],
            "candidates": [{"name": name_of(v), "values": v} for v in new],
        }
        log(f"{variant}: zoom around {chosen['candidate']}: "
            f"{', '.join(name_of(v) for v in new) or 'no new candidates'}")
    if failed:
        raise TuningFailed(
            f"study {study}: every tuning candidate of {', '.join(failed)} diverged on some "
            "tuning seed; widen the grid towards gentler values (e.g. a smaller learning rate)")
    write_json_atomic(out, state)
    return state


def write_stages_selection(metrics_files: Iterable[str | Path], study: str,
                           specs: Mapping[str, Mapping], out_selection: str | Path,
                           out_table: str | Path, log: Callable[[str], None] = print) -> dict:
    """The final selection of a study tuned by halving or with a zoom: each variant's best of
    the candidates that trained the whole budget (`select_variant`), selection.json (with each
    variant's effort: tuning runs and epochs) and tuning.csv (one row per tuning run at its
    furthest epochs, with `epochs` and `stage`)."""
    records = _records(metrics_files, specs)
    selection: dict[str, dict | None] = {}
    tables, failed = [], []
    effort = {}
    for variant, spec in specs.items():
        grid = {c["name"] for c in spec["candidates"]}
        tried = {name: rec["values"] for (v, name, _), rec in records.items() if v == variant}
        # the grid's candidates in their order, then the zoom's
        tried = {**{c["name"]: c["values"] for c in spec["candidates"] if c["name"] in tried},
                 **tried}
        pool = _spec_over(spec, _finalists(spec, records, variant))
        try:
            chosen = select_variant(pool, _found(records, variant))
            chosen["epochs"] = int(spec["rungs"][-1])
        except NoCandidateTrained:
            chosen, failed = None, [*failed, variant]
        selection[variant] = chosen
        everything = _spec_over(spec, tried)
        table = tuning_table({variant: everything}, {
            (variant, name, seed): rec["value"]
            for (v, name, seed), rec in records.items() if v == variant}, selection)
        rows = [(c["name"], int(s)) for c in everything["candidates"] for s in spec["seeds"]]
        table["epochs"] = [(records.get((variant, name, seed)) or {}).get("epochs", 0)
                           for name, seed in rows]
        table["stage"] = ["grid" if name in grid else "zoom" for name, _ in rows]
        tables.append(table)
        runs = [rec for (v, _, _), rec in records.items() if v == variant]
        effort[variant] = {"runs": len(runs), "epochs": sum(r["epochs"] for r in runs)}
    table = pd.concat(tables, ignore_index=True)
    keys = list(dict.fromkeys(k for spec in specs.values() for k in spec["keys"]))
    tail = [c for c in table.columns if c not in ("variant", *keys)]
    table = table[["variant", *keys, *tail]]
    log("tuning runs:\n" + table.to_string(index=False))
    if failed:
        raise TuningFailed(
            f"study {study}: every tuning candidate of {', '.join(failed)} diverged on some "
            "tuning seed (see tuning runs in the log); widen the grid towards gentler values "
            "(e.g. a smaller learning rate)")
    for variant, chosen in selection.items():
        if chosen and chosen.get("at_edge"):
            log(f"{variant}: selected {chosen['candidate']} is at the edge of the candidates "
                f"tried ({chosen.get('at_edge_reason') or 'edge'})")
    with atomic_path(out_table) as tmp:
        table.to_csv(tmp, index=False)
    state = {"study": study, "variants": selection, "effort": effort}
    write_json_atomic(out_selection, state)
    return state

