"""The selection step of tuned studies (rules/tuning.smk, checkpoint select_tuning): each
variant's candidate by `cnnablate.decisions.tuning.select`, and the table tuning.csv.

Apart from tuning.py, which holds only the selection rule that other parts of the project share.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnablate.base.atomic import atomic_path, write_json_atomic
from cnnablate.base.errors import UserError
from cnnablate.base.lazy import lazy_module
from cnnablate.decisions.halving import ONLY_SURVIVOR, edge_reason
from cnnablate.decisions.tuning import select

pd = lazy_module("pandas")  # imported when a table is read: base/lazy.py

# `at_edge_reason` (issue #31): why the pick may not be the best, `edge` or `only_survivor`
# (cnnablate.decisions.halving.edge_reason); empty otherwise.
TABLE_TAIL = ("seed", "metric", "value", "status", "selected", "at_edge", "at_edge_reason")


class NoCandidateTrained(Exception):
    """Every candidate of a variant diverged (or failed) on some tuning seed."""


def higher_is_better(metric: str) -> bool:
    """Accuracies choose the largest mean, losses the smallest."""
    return "loss" not in metric


def run_value(metrics: Mapping, metric: str) -> float | None:
    """A tuning run's metric; None when the run diverged or the value is not finite."""
    if metrics.get("status") != "completed":
        return None
    value = metrics.get(metric)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def at_edge(keys: Mapping[str, Sequence], values: Mapping) -> bool:
    """Whether a selected value of a numeric key is its smallest or largest candidate: the best
    may lie outside the grid (widen it). A single candidate is both: nothing was searched."""
    return any(
        _numeric(candidates) and values[key] in (min(candidates), max(candidates))
        for key, candidates in keys.items()
    )


def select_variant(spec: Mapping, found: Mapping[tuple[str, int], float | None]) -> dict:
    """One variant's selection from its runs' values, `found[(candidate, seed)]` (a missing
    run counts as failed). Raises NoCandidateTrained when no candidate can be chosen."""
    names = [c["name"] for c in spec["candidates"]]
    table = [[found.get((name, int(seed))) for seed in spec["seeds"]] for name in names]
    best = select(table, higher_is_better(spec["metric"]))
    if best is None:
        raise NoCandidateTrained(", ".join(names))
    chosen = spec["candidates"][best]
    scores = {name: (None if any(v is None or math.isnan(v) for v in row)
                     else math.fsum(row) / len(row)) for name, row in zip(names, table)}
    return {
        "candidate": chosen["name"],
        "values": dict(chosen["values"]),
        "metric": spec["metric"],
        "mean": sum(table[best]) / len(table[best]),
        "at_edge": at_edge(spec["keys"], chosen["values"]),
        "at_edge_reason": edge_reason(
            spec["keys"], {c["name"]: c["values"] for c in spec["candidates"]},
            chosen["name"], scores),
    }


def tuning_table(specs: Mapping[str, Mapping], found: Mapping[tuple[str, str, int], Any],
                 selection: Mapping[str, Mapping | None]) -> pd.DataFrame:
    """tuning.csv: one row per tuning run (variant in `specs` order, candidate, seed)."""
    keys = list(dict.fromkeys(k for spec in specs.values() for k in spec["keys"]))
    rows = []
    for variant, spec in specs.items():
        chosen = selection.get(variant) or {}
        for candidate in spec["candidates"]:
            for seed in spec["seeds"]:
                value = found.get((variant, candidate["name"], int(seed)))
                rows.append({
                    "variant": variant,
                    **{k: candidate["values"].get(k) for k in keys},
                    "seed": int(seed),
                    "metric": spec["metric"],
                    "value": value,
                    "status": "ok" if value is not None else "diverged",
                    "selected": candidate["name"] == chosen.get("candidate"),
                    "at_edge": bool(chosen.get("at_edge", False)),
                    "at_edge_reason": chosen.get("at_edge_reason") or "",
                })
    columns = ["variant", *keys, *TABLE_TAIL]
    table = pd.DataFrame(rows, columns=columns)
    table["value"] = pd.to_numeric(table["value"]).astype(float)
    return table


def read_tuning_runs(metrics_files: Iterable[str | Path],
                     specs: Mapping[str, Mapping]) -> dict[tuple[str, str, int], float | None]:
    """(variant, candidate, seed) -> the variant's tuning metric, from each run's metrics.json
    (its `run_config.tuning` names the candidate it trained)."""
    found: dict[tuple[str, str, int], float | None] = {}
    for path in metrics_files:
        metrics = json.loads(Path(path).read_text())
        run = metrics["run_config"]
        spec = specs[run["variant"]]
        key = (run["variant"], run["tuning"]["candidate"], int(run["seed"]))
        found[key] = run_value(metrics, spec["metric"])
    return found


def write_selection(metrics_files: Iterable[str | Path], study: str,
                    specs: Mapping[str, Mapping], out_selection: str | Path,
                    out_table: str | Path, log: Callable[[str], None] = print) -> dict:
    """The selection step: each tuned variant's candidate (`select`) to `out_selection` (JSON)
    and tuning.csv to `out_table`. A variant whose every candidate diverged stops the study
    with one line naming it (its comparison at an untrained setting would mean nothing)."""
    found = read_tuning_runs(metrics_files, specs)
    selection: dict[str, dict | None] = {}
    failed = []
    for variant, spec in specs.items():
        per_variant = {(c, s): v for (var, c, s), v in found.items() if var == variant}
        try:
            selection[variant] = select_variant(spec, per_variant)
        except NoCandidateTrained:
            selection[variant], failed = None, [*failed, variant]
    table = tuning_table(specs, found, selection)
    log("tuning runs:\n" + table.to_string(index=False))
    if failed:
        raise TuningFailed(
            f"study {study}: every tuning candidate of {', '.join(failed)} diverged on some "
            "tuning seed (see tuning runs in the log); add smaller values (e.g. a smaller "
            "learning rate)"
        )
    for variant, chosen in selection.items():
        if chosen and chosen.get("at_edge_reason") == ONLY_SURVIVOR:
            log(f"{variant}: selected {chosen['candidate']} is the only candidate that did not "
                "diverge: add smaller values (e.g. a smaller learning rate)")
        elif chosen and chosen["at_edge"]:
            log(f"{variant}: selected {chosen['candidate']} is at the edge of the grid: "
                "widen it")
    with atomic_path(out_table) as tmp:
        table.to_csv(tmp, index=False)
    state = {"study": study, "variants": selection}
    write_json_atomic(out_selection, state)
    return state


class TuningFailed(UserError):
    """No candidate of some variant trained: the one-line console error (workflow.smk)."""
