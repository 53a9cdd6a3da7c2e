"""A tuned study in the report (no TensorFlow): tuning.csv read per variant, the tuning figure
(a PNG and the interactive chart's data), one sentence per variant and the cost of tuning.

tuning.csv (written by the workflow's selection step) has one row per tuning run: `variant`,
one column per tuned key (`train.learning_rate`, ...), `seed`, `metric`, `value` (empty when the
run diverged), `status` (`ok` / `diverged`), `selected`, `at_edge`, `at_edge_reason` (`edge`,
`only_survivor` or empty; issue #31); with halving or a zoom stage also `epochs` (the epochs the
run trained) and `stage` (`grid` / `zoom`). A variant that overrides the study's `tune:` may
tune other keys: its rows leave the other keys' columns empty. Older tables without the issue
#31 columns are read as well (the reason is then worked out from the values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cnnablate.decisions import halving, sentences
from cnnablate.decisions.selection import TABLE_TAIL
from cnnablate.decisions.sentences import compact, key_label
from cnnablate.decisions.stages import STAGE_COLUMNS

# the columns of tuning.csv besides the tuned keys (halving or a zoom add `epochs`, `stage`)
RESERVED = ("variant", *TABLE_TAIL, *STAGE_COLUMNS)
# A budget curve is "still rising" when its last candidate added at least this share of the
# whole rise from one candidate to all (with 3 candidates 0.5, 0.8, 0.9: 20 %).
RISING_SHARE = 0.1
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
    at_edge_reason: str | None = None  # `edge`, `only_survivor` (cnnablate.decisions.halving)
    epochs: list[dict[int, int]] = field(default_factory=list)  # per candidate: seed -> epochs
    stages: list[str] = field(default_factory=list)  # per candidate: `grid` or `zoom`

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
    table = pd.read_csv(path, dtype={"status": str, "at_edge_reason": str, "stage": str})
    keys = tuned_keys(table)
    names = list(dict.fromkeys([v for v in order if v in set(table["variant"])]
                               + list(table["variant"])))
    out = []
    for name in names:
        rows = table[table["variant"] == name]
        mine = [k for k in keys if rows[k].notna().any()]  # a variant's own `tune:` keys
        candidates: list[dict] = []
        values: list[dict[int, float | None]] = []
        epochs: list[dict[int, int]] = []
        stages: list[str] = []
        selected = None
        for row in rows.to_dict("records"):  # dicts: the keys' column names hold dots
            cand = {k: _setting(row[k]) for k in mine}
            if cand not in candidates:
                candidates.append(cand)
                values.append({})
                epochs.append({})
                stages.append(str(row.get("stage") or "grid") if not _missing(row.get("stage"))
                              else "grid")
            i = candidates.index(cand)
            ok = str(row["status"]) == "ok" and not _missing(row["value"])
            values[i][int(row["seed"])] = float(row["value"]) if ok else None
            if "epochs" in row and not _missing(row["epochs"]):
                epochs[i][int(row["seed"])] = int(row["epochs"])
            if _bool(row["selected"]):
                selected = i
        grid = {k: list(dict.fromkeys(c[k] for c in candidates)) for k in mine}
        edge = any(_bool(v) for v in rows["at_edge"])
        reason = _reason(rows, grid, candidates, values, selected)
        out.append(VariantTuning(name, grid, candidates, values, selected, edge, reason,
                                 epochs, stages))
    return out


def _reason(rows: pd.DataFrame, grid: Mapping[str, list], candidates: list[dict],
            values: list[dict[int, float | None]], selected: int | None) -> str | None:
    """tuning.csv's `at_edge_reason`; worked out from the values for an older table."""
    if "at_edge_reason" in rows.columns:
        given = [str(v) for v in rows["at_edge_reason"] if not _missing(v) and str(v)]
        return given[0] if given else None
    if selected is None:
        return None
    names = [str(i) for i in range(len(candidates))]
    scores = {n: (None if None in v.values() or not v else 0.0) for n, v in zip(names, values)}
    return halving.edge_reason(grid, dict(zip(names, candidates)), names[selected], scores)


def variant_sentences(tuning: Sequence[VariantTuning]) -> list[str]:
    return [sentences.tuning_sentence(t.variant, t.grid, t.selected_values(), t.at_edge,
                                      t.diverged(), t.at_edge_reason) for t in tuning]


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
        for i, (cand, values) in enumerate(zip(t.candidates, t.values)):
            if i < len(t.epochs) and t.epochs[i]:  # halving: what each run trained (`epochs`)
                out.extend(int(e) for e in t.epochs[i].values())
                continue
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


# --- budget curves and tuning effort (issue #31) -----------------------------------------------

def full_budget(t: VariantTuning) -> list[int]:
    """The candidates that trained the variant's whole tuning budget (with halving, the ones
    promoted to the last rung and any zoom candidates; without an `epochs` column, all)."""
    if not any(t.epochs):
        return list(range(len(t.candidates)))
    top = max(e for per_seed in t.epochs for e in per_seed.values())
    return [i for i, per_seed in enumerate(t.epochs)
            if per_seed and max(per_seed.values()) == top]


def candidate_score(t: VariantTuning, i: int) -> float | None:
    """A candidate's mean over the tuning seeds; None when a seed diverged (as `select`)."""
    return None if None in t.values[i].values() or not t.values[i] else t.mean(i)


def budget_curve(t: VariantTuning, higher_is_better: bool) -> list[float | None]:
    """Expected best tuning metric of n of the variant's candidates, n = 1..N (Dodge et al.
    2019, Tang et al. 2020: `halving.expected_max_curve`), over the candidates that trained
    its whole tuning budget (a diverged candidate never wins)."""
    return halving.expected_max_curve([candidate_score(t, i) for i in full_budget(t)],
                                      higher_is_better)


def still_rising(curve: Sequence[float | None]) -> tuple[float, float] | None:
    """(last gain, whole rise) when the curve's last candidate added at least RISING_SHARE of
    the rise from its first defined point to the end (its best may lie beyond what was
    tried); None otherwise, or when fewer than two points are defined."""
    defined = [v for v in curve if v is not None]
    if len(defined) < 2:
        return None
    gain, rise = abs(defined[-1] - defined[-2]), abs(defined[-1] - defined[0])
    return (gain, rise) if rise > 0 and gain >= RISING_SHARE * rise else None


def budget_chart(tuning: Sequence[VariantTuning], metric: str,
                 colours: Mapping[str, str]) -> dict:
    """The budget figure's data: per variant its curve (index n-1: n candidates), the number
    of candidates N, and the equal-budget point: the fewest candidates any variant had, where
    every variant's curve can be read at the same budget."""
    higher = "loss" not in metric
    variants = []
    for t in tuning:
        curve = budget_curve(t, higher)
        if not curve:
            continue
        variants.append({"name": t.variant, "colour": colours.get(t.variant, "#333"),
                         "n": len(curve), "curve": [_round(v) for v in curve],
                         "rising": still_rising(curve) is not None,
                         "trained": len(t.candidates)})
    equal = min((v["n"] for v in variants), default=0)
    return {"metric": metric, "higher_is_better": higher, "equal_budget": equal,
            "variants": variants}


def budget_sentences(tuning: Sequence[VariantTuning], metric: str) -> list[str]:
    """One sentence per variant whose budget curve is still rising at the budget it had."""
    out = []
    for t in tuning:
        curve = budget_curve(t, "loss" not in metric)
        rising = still_rising(curve)
        if rising:
            out.append(sentences.budget_rising(t.variant, len(curve), *rising, metric))
    return out


def effort(tuning: Sequence[VariantTuning], tune: Mapping,
           epochs_of: Mapping[str, int]) -> list[dict]:
    """Each variant's tuning effort: its grid's candidates (zoom candidates apart), its tuning
    runs and the epochs they trained (tuning.csv's `epochs` where it has them, else each run's
    budget as `tuning_epochs` has it)."""
    out = []
    for t in tuning:
        zoom = sum(1 for s in t.stages if s == "zoom")
        if any(t.epochs):
            spent = sum(e for per_seed in t.epochs for e in per_seed.values())
        else:
            spent = sum(tuning_epochs([t], tune, epochs_of))
        out.append({"variant": t.variant, "candidates": len(t.candidates) - zoom, "zoom": zoom,
                    "runs": sum(len(v) for v in t.values), "epochs": spent})
    return out


def effort_sentence(tuning: Sequence[VariantTuning], tune: Mapping,
                    deciding_epochs: Mapping[str, list[int]]) -> str:
    """`deciding_epochs`: variant -> the epoch budget of each of its deciding runs."""
    epochs_of = {v: max(e) for v, e in deciding_epochs.items() if e}
    return sentences.tuning_effort(effort(tuning, tune, epochs_of))
