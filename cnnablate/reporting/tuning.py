"""A tuned study in the report (no TensorFlow): tuning.csv read per variant, the tuning figure
(a PNG and the interactive chart's data), one sentence per variant and the cost of tuning.

tuning.csv (written by the workflow's selection step) has one row per tuning run: `variant`,
one column per tuned key (`train.learning_rate`, ...), `seed`, `metric`, `value` (empty when the
run diverged), `status` (`ok` / `diverged`), `selected`, `at_edge`. A variant that overrides the
study's `tune:` may tune other keys: its rows leave the other keys' columns empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cnnablate.decisions import sentences
from cnnablate.decisions.sentences import compact, key_label

RESERVED = ("variant", "seed", "metric", "value", "status", "selected", "at_edge",
            "at_edge_reason",
            # halving or a zoom (cnnablate.decisions.stages): the epochs a run trained, its stage
            "epochs", "stage")
LOG_SPAN = 10.0  # positive candidates spanning this factor or more get a log axis


@dataclass(frozen=True)
class VariantTuning:
    """One variant's tuning runs: candidates in listed order, each with its value per seed."""

    variant: str
    grid: dict[str, list]  # tuned key -> its candidates, as listed
    candidates: list[dict]  # key -> value, in tuning.csv's (listed) order
    values: list[dict[int, float | None]]  # per candidate: seed -> metric (None: diverged)
    selected: int | None  # index into `candidates`
    at_edge: bool
    # halving (tuning.csv's `epochs`): each tuning run's epochs, stopped candidates included;
    # None: every run trained the whole budget (the grid)
    epochs_spent: tuple[int, ...] | None = None

    def mean(self, i: int) -> float | None:
        done = [v for v in self.values[i].values() if v is not None]
        return sum(done) / len(done) if done else None

    def diverged(self) -> list[dict]:
        return [c for c, v in zip(self.candidates, self.values) if None in v.values()]

    def selected_values(self) -> dict | None:
        return None if self.selected is None else self.candidates[self.selected]


def _bool(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _setting(value):
    """A candidate as read from the CSV: a number stays a number, text stays text."""
    if hasattr(value, "item"):  # a numpy scalar: the Python number or bool it holds
        value = value.item()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def tuned_keys(table: pd.DataFrame) -> list[str]:
    """The tuned-key columns, in the table's order (every column the contract does not name)."""
    return [c for c in table.columns if c not in RESERVED]


def read_tuning(path: str | Path, order: Sequence[str] = ()) -> list[VariantTuning]:
    """tuning.csv per variant, in `order` (the study's), then any other variant it names."""
    table = pd.read_csv(path, dtype={"status": str})
    keys = tuned_keys(table)
    names = list(dict.fromkeys([v for v in order if v in set(table["variant"])]
                               + list(table["variant"])))
    out = []
    for name in names:
        rows = table[table["variant"] == name]
        spent = None
        if "epochs" in rows:
            # halving: a candidate stopped at a rung has a value at fewer epochs; the figure and
            # sentences compare the candidates that trained the whole budget, the cost counts all
            spent = tuple(int(e) for e in rows["epochs"])
            rows = rows[rows["epochs"] == rows["epochs"].max()]
        mine = [k for k in keys if rows[k].notna().any()]  # a variant's own `tune:` keys
        candidates: list[dict] = []
        values: list[dict[int, float | None]] = []
        selected = None
        for row in rows.to_dict("records"):  # dicts: the keys' column names hold dots
            cand = {k: _setting(row[k]) for k in mine}
            if cand not in candidates:
                candidates.append(cand)
                values.append({})
            i = candidates.index(cand)
            ok = str(row["status"]) == "ok" and not _missing(row["value"])
            values[i][int(row["seed"])] = float(row["value"]) if ok else None
            if _bool(row["selected"]):
                selected = i
        grid = {k: list(dict.fromkeys(c[k] for c in candidates)) for k in mine}
        out.append(VariantTuning(name, grid, candidates, values, selected,
                                 any(_bool(v) for v in rows["at_edge"]), spent))
    return out


def variant_sentences(tuning: Sequence[VariantTuning]) -> list[str]:
    return [sentences.tuning_sentence(t.variant, t.grid, t.selected_values(), t.at_edge,
                                      t.diverged()) for t in tuning]


# --- the axis of each tuned key ---------------------------------------------------------------

def _numbers(values: Sequence) -> list[float] | None:
    if all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
           for v in values):
        return [float(v) for v in values]
    return None


def axis(key: str, candidates: Sequence) -> dict:
    """How a key's x axis is drawn: `log` for learning rates and for positive candidates that
    span LOG_SPAN or more; `asinh` (log-like, with zero on it) when such a key also has 0 or
    negative candidates; `linear` otherwise; `category` for text (equally spaced, as listed)."""
    numbers = _numbers(candidates)
    if numbers is None:
        return {"scale": "category"}
    positive = [v for v in numbers if v > 0]
    wide = bool(positive) and (key_label(key).endswith("learning_rate")
                               or max(positive) / min(positive) >= LOG_SPAN)
    if not wide:
        return {"scale": "linear"}
    if len(positive) == len(numbers):
        return {"scale": "log"}
    # Linear within the smallest positive candidate of zero, logarithmic beyond it.
    return {"scale": "asinh", "linthresh": min(positive)}


def _union(tuning: Sequence[VariantTuning], key: str) -> list:
    return list(dict.fromkeys(c for t in tuning for c in t.grid.get(key, [])))


def all_keys(tuning: Sequence[VariantTuning]) -> list[str]:
    return list(dict.fromkeys(k for t in tuning for k in t.grid))


def slice_along(t: VariantTuning, key: str) -> list[int]:
    """The candidates that vary `key` with every other tuned key at the variant's selected
    value (the first candidate's where nothing was selected): the tuning figure's slice."""
    anchor = t.candidates[t.selected if t.selected is not None else 0]
    return [i for i, c in enumerate(t.candidates)
            if key in c and all(c[k] == anchor[k] for k in c if k != key)]


def key_panel(tuning: Sequence[VariantTuning], key: str, colours: Mapping[str, str]) -> dict:
    """One tuned key's chart: x = its candidates (numbers ascending, text as listed), and per
    variant the mean over the tuning seeds, each seed's value, the diverged runs and the
    selected candidate (an index into x), along the slice through the selected setting."""
    xs = _union(tuning, key)
    info = axis(key, xs)
    if info["scale"] != "category":
        xs = sorted(xs, key=float)
    position = {x: i for i, x in enumerate(xs)}
    variants = []
    for t in tuning:
        if key not in t.grid:
            continue
        mean: list[float | None] = [None] * len(xs)
        seeds: list[list[float]] = [[] for _ in xs]
        diverged = [0] * len(xs)
        selected = None
        for i in slice_along(t, key):
            j = position[t.candidates[i][key]]
            # As in the selection: a candidate with a diverged seed has no mean.
            mean[j] = None if None in t.values[i].values() else _round(t.mean(i))
            seeds[j] = [_round(v) for v in t.values[i].values() if v is not None]
            diverged[j] = sum(v is None for v in t.values[i].values())
            if i == t.selected:
                selected = j
        variants.append({"name": t.variant, "colour": colours.get(t.variant, "#333"),
                         "mean": mean, "seeds": seeds, "diverged": diverged,
                         "selected": selected})
    x_values = (list(range(len(xs))) if info["scale"] == "category"
                else [float(x) for x in xs])
    return {"key": key, "label": key_label(key), **info, "x": x_values,
            "ticks": [compact(x) for x in xs], "variants": variants}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def chart(tuning: Sequence[VariantTuning], metric: str, colours: Mapping[str, str]) -> dict:
    """The interactive tuning figure's data: one panel per tuned key."""
    return {"metric": metric,
            "panels": [key_panel(tuning, key, colours) for key in all_keys(tuning)]}


def metric_of(path: str | Path) -> str:
    values = pd.read_csv(path, usecols=["metric"])["metric"].dropna().unique()
    return str(values[0]) if len(values) else "metric"


# --- cost ----------------------------------------------------------------------------------------

def tuning_epochs(tuning: Sequence[VariantTuning], tune: Mapping,
                  epochs_of: Mapping[str, int]) -> list[int]:
    """Each tuning run's epoch budget: `tune.epochs`, else the candidate's own `train.epochs`
    when that is tuned, else its variant's deciding runs' epochs (`epochs_of`)."""
    out = []
    for t in tuning:
        if t.epochs_spent is not None:  # halving: what each run trained
            out.extend(t.epochs_spent)
            continue
        for cand, values in zip(t.candidates, t.values):
            each = tune.get("epochs") or cand.get("train.epochs") or epochs_of.get(t.variant)
            out.extend([int(each)] * len(values) if each else [])
    return out


def cost_sentence(tuning: Sequence[VariantTuning], tune: Mapping,
                  deciding_epochs: Mapping[str, list[int]]) -> str:
    """`deciding_epochs`: variant -> the epoch budget of each of its deciding runs."""
    epochs_of = {v: max(e) for v, e in deciding_epochs.items() if e}
    spent = tuning_epochs(tuning, tune, epochs_of)
    if not spent:
        return ""
    deciding = [e for each in deciding_epochs.values() for e in each]
    return sentences.tuning_cost(spent, deciding, tune.get("epochs"))


# --- the PNG (a registered figure: cnnablate.base.catalog.TUNING_FIGURES) --------------------
