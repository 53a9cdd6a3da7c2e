"""The report's decisions in words (no pandas, no TensorFlow): one sentence per comparison,
the guarantee in one line, why each variant stopped, variants that did not learn, and a
cross-study table of verdicts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from cnnablate.decisions import permutation
from cnnablate.decisions.decide import MAX_SEEDS_NEEDED, Decisions, Design, more_than_max

LEARNED_MARGIN = 0.05  # within this of 1/classes (or below) counts as chance level


def _ok(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _scale(metric: str) -> tuple[float, str]:
    """Accuracies read as points (percentage points); other metrics as they are."""
    return (100.0, " points") if "accuracy" in metric else (1.0, "")


def _num(value: float, scale: float) -> str:
    return f"{value * scale:.1f}" if scale == 100.0 else f"{value:.3g}"


def _p(value) -> str:
    if not _ok(value):
        return "–"
    value = float(value)
    return "< 0.001" if value < 0.001 else f"= {value:.2g}" if value < 0.1 else f"= {value:.2f}"


def adjusted_p_label(adaptive: bool) -> str:
    """What paired.csv's `p_holm` is called where it is shown. In an adaptive design it is
    alpha / (the look's group-sequential level) x p: on alpha's scale (at most alpha exactly
    when the look decides), not a probability, so it is not called a p-value there."""
    return "sequential Holm score" if adaptive else "Holm p"


def seeds_text(needed) -> str:
    """`seeds_needed` in words: a count, or 'more than N' past the search's cap."""
    if more_than_max(needed):
        return f"more than {MAX_SEEDS_NEEDED}"
    return str(int(float(needed)))


def comparison_sentence(row: Mapping, metric: str, min_effect: float | None,
                        adaptive: bool = False) -> str:
    """One sentence for a paired.csv row."""
    scale, unit = _scale(metric)
    v, b, verdict = row["variant"], row["baseline"], row["verdict"]
    diff, lo, hi = row.get("diff_mean"), row.get("diff_ci_low"), row.get("diff_ci_high")
    n = int(row.get("n_pairs") or 0)
    interval = (f" [{_num(lo, scale)}, {_num(hi, scale)}]" if _ok(lo) and _ok(hi) else "")
    pi = (f", P(improvement) {float(row['prob_improvement']):.2f}"
          if _ok(row.get("prob_improvement")) else "")
    holm = f"{adjusted_p_label(adaptive)} {_p(row.get('p_holm'))}"
    if verdict in ("better", "worse") and _ok(diff):
        verb = "beats" if verdict == "better" else "trails"
        # A real difference whose whole interval lies inside +-min_effect: real, and smaller
        # than what the study said matters (issue #30).
        small = (f", by less than min_effect ({_num(min_effect, scale)}{unit})"
                 if min_effect and _ok(lo) and _ok(hi) and -min_effect < float(lo)
                 and float(hi) < min_effect else "")
        return (f"{v} {verb} {b} by {_num(abs(diff), scale)}{unit}{interval}{pi}, {holm}: "
                f"{verdict}{small}.")
    if verdict == "equivalent":
        return (f"{v} vs {b}: equivalent within ±{_num(min_effect, scale)}{unit} after {n} "
                f"seeds (difference {_num(diff, scale)}{interval}).")
    if n < 2 or not _ok(diff):
        return f"{v} vs {b}: undecided, {n} paired seed{'s' if n != 1 else ''}: too few to test."
    text = (f"{v} vs {b}: undecided after {n} seeds (difference {_num(diff, scale)}{unit}"
            f"{interval}, {holm})")
    needed = row.get("seeds_needed")
    if _ok(needed):
        effect = min_effect if min_effect else abs(float(diff))
        what = "" if min_effect else " (the observed size)"
        size = _num(effect, scale) + ("-point" if unit else "")
        about = "" if more_than_max(needed) else "about "
        text += (f"; {about}{seeds_text(needed)} seeds per arm would detect a {size} "
                 f"difference{what}")
    return text + "."


def guarantee(design: Design, n_comparisons: int, n_looks: int, tuned: bool = False,
              n_seeds: int | None = None) -> str:
    """The family-wise bound in one line (`tuned`: about the selected settings; `n_seeds`:
    the seeds of a fixed design, for the permutation test's reach)."""
    pct = f"{design.alpha * 100:g}%"
    permutation = design.test == "permutation"
    if design.adaptive:
        levels = ("alpha-spending increments for exact sign-flip tests" if permutation
                  else "group-sequential levels for paired t-tests")
        across = f"; adaptive seeds: Pocock-type alpha spending over {n_looks} looks, {levels}"
    else:
        across = "; exact paired sign-flip tests" if permutation else ""
    about = " about the selected settings" if tuned else ""
    text = (f"Guarantee: the chance that any of this study's better/worse verdicts is false"
            f"{about} is at most {pct} (Holm over its {n_comparisons} comparison"
            f"{'s' if n_comparisons != 1 else ''}{across}).")
    reach = permutation_reach(design, n_comparisons, n_seeds)
    return f"{text} {reach}" if reach else text


def configured_reach(settings: Mapping) -> str | None:
    """`permutation_reach` for a study as configured (`study_settings`): said when the runs
    are planned, before any seed is paid for."""
    from cnnablate.decisions.decide import comparisons, design_from_settings

    decisions = settings.get("decisions") or {}
    design = design_from_settings(decisions)
    if design.test != "permutation":
        return None
    variants = list(settings.get("variant_descriptions") or {})
    m = len(comparisons(variants, settings.get("baseline") or variants[0], design.all_pairs))
    seeds = decisions.get("seeds")
    n = None if design.adaptive else len(list(seeds or []))
    reach = permutation_reach(design, m, n)
    return f"study {settings.get('name')}: {reach}" if reach else None


def permutation_reach(design: Design, n_comparisons: int, n_seeds: int | None = None) -> str | None:
    """With the sign-flip test: a sentence when no comparison can ever be decided with the
    seeds configured (its smallest p-value with n seeds is 2/2^n, and Holm's first step needs
    alpha/m at the look's level); None otherwise or for the t-test."""
    if design.test != "permutation":
        return None
    sizes = design.look_sizes(n_seeds)
    if not sizes or not sizes[-1]:
        return None
    m = max(n_comparisons, 1)
    for k, n in enumerate(sizes, start=1):
        if permutation.smallest_p(n) <= design.nominal(design.alpha / m, k, n_seeds):
            return None
    n = sizes[-1]
    need = permutation.min_seeds(design.alpha / m)
    return (f"With the permutation test and {n} seed{'s' if n != 1 else ''} no comparison can "
            f"be decided at alpha {design.alpha:g}: its smallest two-sided p-value with {n} "
            f"seeds is 2/2^{n} = {permutation.smallest_p(n):.3g}, above the "
            f"{design.alpha / m:.3g} Holm's first step needs; it takes at least {need} seeds "
            "(more with adaptive looks).")


def seed_usage(decisions: Decisions, order: Sequence[str]) -> list[dict]:
    return [{"variant": v, "seeds": decisions.seeds_used.get(v, 0),
             "why": decisions.stop_reason.get(v, "")} for v in order]


def did_not_learn(summary_rows: Iterable[Mapping], metric: str, n_classes: int,
                  train_of: Mapping[str, Mapping]) -> list[dict]:
    """Variants whose mean headline accuracy stays at chance (about 1/classes)."""
    if not n_classes or "accuracy" not in metric:
        return []
    chance = 1.0 / n_classes
    out = []
    for row in summary_rows:
        mean = row.get(f"{metric}_mean")
        if _ok(mean) and row.get("n") and float(mean) <= chance + LEARNED_MARGIN:
            train = train_of.get(row["variant"], {})
            out.append({"variant": row["variant"], "mean": float(mean), "chance": chance,
                        "learning_rate": train.get("learning_rate"),
                        "epochs": train.get("epochs")})
    return out


def cross_study(sections: Sequence[Mapping]) -> dict:
    """Variant names shared by two or more studies -> study -> verdict against its baseline."""
    seen: dict[str, dict[str, str]] = {}
    for s in sections:
        for row in s["paired"]:
            if row["baseline"] == s["baseline"]:
                seen.setdefault(row["variant"], {})[s["name"]] = row["verdict"]
        seen.setdefault(s["baseline"], {})[s["name"]] = "baseline"
    shared = {v: by for v, by in seen.items() if len(by) >= 2}
    return {"studies": [s["name"] for s in sections], "rows": shared}


# --- tuned and untuned studies: what a comparison is at, what tuning chose, what it cost ------

def compact(value) -> str:
    """A setting as a person writes it: 0.1 (not 0.1000000001), 64 (not 64.0), 1e-5, adam."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        return str(number)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    text = f"{number:.6g}"  # six significant digits drop a CSV round trip's float noise
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if e else text


def key_label(key: str) -> str:
    """A tuned key as the sentences name it: `train.learning_rate` -> `learning_rate`."""
    return key.split(".", 1)[1] if key.startswith(("train.", "model.")) else key


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _candidate(values: Mapping[str, object], single: bool) -> str:
    if single:
        return compact(next(iter(values.values())))
    return ", ".join(f"{key_label(k)} {compact(v)}" for k, v in values.items())


def _numeric(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _edges(grid: Mapping[str, Sequence], selected: Mapping[str, object]) -> list[str]:
    """Which numeric keys sit at an end of their candidates (keys with one value never do)."""
    out = []
    for key, candidates in grid.items():
        numbers = {float(c) for c in candidates if _numeric(c)}
        value = selected.get(key)
        if len(numbers) < 2 or not _numeric(value):
            continue
        if float(value) == min(numbers):
            out.append(f"the smallest {key_label(key)}")
        elif float(value) == max(numbers):
            out.append(f"the largest {key_label(key)}")
    return out


def tuning_sentence(variant: str, grid: Mapping[str, Sequence], selected: Mapping | None,
                    at_edge: bool, diverged: Sequence[Mapping] = (),
                    reason: str | None = None) -> str:
    """What tuning chose for one variant. `grid`: each tuned key's candidates as listed;
    `selected`: key -> the chosen value (None: nothing could be chosen); `at_edge`: tuning.csv's
    flag; `diverged`: the candidates (key -> value) with a diverged tuning run; `reason`:
    tuning.csv's `at_edge_reason` (`edge`, `only_survivor`; cnnablate.decisions.halving)."""
    single = len(grid) == 1
    lost = (f" ({', '.join(_candidate(c, single) for c in diverged)} diverged)"
            if diverged and selected is not None else "")
    if selected is None:
        listed = "; ".join(f"{key_label(k)} {', '.join(compact(c) for c in v)}"
                           for k, v in grid.items())
        if diverged:
            return (f"{variant}: every candidate diverged ({listed}): no setting selected; "
                    "add smaller values (e.g. a smaller learning rate).")
        return f"{variant}: no tuning run finished ({listed}): no setting selected."
    best = _and([f"{key_label(k)} {compact(selected.get(k))} of "
                 f"{', '.join(compact(c) for c in v)}" for k, v in grid.items()])
    if reason == "only_survivor":
        return (f"{variant}: best at {best}{lost} — the only candidate that did not diverge, "
                "chosen by default, not against the others: add smaller values (e.g. a "
                "smaller learning rate) before reading its verdict.")
    if not at_edge:
        return f"{variant}: best at {best}{lost} — inside the grid."
    which = _edges(grid, selected)
    detail = f" ({', '.join(which)})" if which else ""
    return f"{variant}: best at {best}{lost} — at the edge of the grid{detail}: widen it."


def budget_rising(variant: str, n: int, gain: float, total: float, metric: str) -> str:
    """One variant's budget curve still rising at the candidates it was given: the last one
    added `gain` to the expected best `metric`, of `total` from one candidate to all."""
    return (f"{variant}'s budget curve is still rising at its {n} candidates: the last "
            f"candidate added {_gain(gain, metric)} to the expected best {metric} "
            f"({_share(gain, total)} of the curve's whole rise), so its best may lie beyond "
            "what was tried: a wider or finer grid could change its verdict.")


def _gain(value: float, metric: str) -> str:
    if "accuracy" in metric:
        return f"{100 * value:.2g} points"
    return f"{value:.2g}"


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "all"


def tuning_effort(effort: Sequence[Mapping]) -> str:
    """Each variant's tuning effort, and unequal effort flagged. `effort`: per variant (the
    study's order) {variant, candidates (its grid's size, zoom candidates apart), zoom,
    runs, epochs}."""
    if not effort:
        return ""
    parts = []
    for e in effort:
        zoom = f" + {e['zoom']} zoomed" if e.get("zoom") else ""
        parts.append(f"{e['variant']} {e['candidates']}{zoom} candidate"
                     f"{'s' if e['candidates'] + (e.get('zoom') or 0) != 1 else ''}, "
                     f"{e['runs']} run{'s' if e['runs'] != 1 else ''}, "
                     f"{e['epochs']} epoch{'s' if e['epochs'] != 1 else ''}")
    text = f"Tuning effort: {'; '.join(parts)}."
    sizes = {e["candidates"] for e in effort}
    if len(sizes) > 1:
        top = max(sizes)
        larger = [e["variant"] for e in effort if e["candidates"] == top]
        fewest = min(sizes)
        text += (f" Unequal effort: {_and(larger)} {'was' if len(larger) == 1 else 'were'} "
                 f"given a larger grid ({top} candidates against {fewest}), so "
                 f"{'its' if len(larger) == 1 else 'their'} best was sought harder than the "
                 "others': a verdict in its favour may be partly that effort.")
    return text


def seed_list(seeds: Iterable[int]) -> str:
    """Seeds in ranges: 0–3, 7, 1000."""
    ordered = sorted({int(s) for s in seeds})
    parts: list[str] = []
    start = prev = None
    for s in [*ordered, None]:
        if s is not None and prev is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            parts.append(str(start) if start == prev else
                         f"{start}, {prev}" if prev == start + 1 else f"{start}–{prev}")
        start = prev = s
    return ", ".join(parts)


def compared_at_best(keys: Sequence[str], tuning_seeds: Iterable[int], tuning_metric: str,
                     deciding_seeds: Iterable[int], metric: str, eval_split: str) -> str:
    """The header of a tuned study's decisions: what each comparison is between."""
    # one mention per seed: callers may pass a seed column with a row per run
    tuning = sorted({int(x) for x in tuning_seeds})
    deciding = sorted({int(x) for x in deciding_seeds})
    # "its own best setting" claimed more than is measured: the best of the listed candidates
    # on these few tuning seeds (issue #30).
    return (f"Each variant is compared at the best of its listed candidates for "
            f"{_and([key_label(k) for k in keys])} on {len(tuning)} tuning seed"
            f"{'s' if len(tuning) != 1 else ''}: chosen on tuning seed"
            f"{'s' if len(tuning) != 1 else ''} {seed_list(tuning)} by {tuning_metric} on the "
            f"validation split; decided on the deciding seed{'s' if len(deciding) != 1 else ''} "
            f"{seed_list(deciding)} by {metric} on the {eval_split} split.")


def tuned_guarantee(alpha: float) -> str:
    """What the family-wise bound covers in a tuned study, and what it does not."""
    return (f"In a tuned study the {alpha * 100:g}% bound holds for the comparison of the "
            "selected configurations (each variant at the setting tuning chose; fresh seeds "
            "decide), not for an activation, normalisation or initialiser at its best in "
            "general: which setting wins depends on tuning noise (docs/statistics.md, "
            "\"Tuned comparisons: what is guaranteed\").")


def _setting(train: Mapping) -> tuple:
    return (train.get("learning_rate"), train.get("optimizer"))


def shared_setting(train_of: Mapping[str, Mapping], order: Sequence[str]) -> str | None:
    """An untuned study's one sentence on the learning rate its variants share (from what the
    runs trained with); the variants that override it are named. None when no run says."""
    settings = {v: _setting(train_of[v]) for v in order
                if v in train_of and train_of[v].get("learning_rate") is not None}
    if not settings:
        return None
    # The most common (learning rate, optimizer); on a tie, that of the first variant.
    counts: dict[tuple, int] = {}
    for pair in settings.values():
        counts[pair] = counts.get(pair, 0) + 1
    lr, optimizer = max(counts, key=counts.get)
    others = []
    for variant, (v_lr, v_opt) in settings.items():
        diff = ([f"learning rate {compact(v_lr)}"] if v_lr != lr else []) + (
            [f"optimizer {v_opt}"] if v_opt != optimizer else [])
        if diff:
            others.append(f"{variant} ({', '.join(diff)})")
    who = f"All variants but {_and(others)}" if others else "All variants"
    opt = f" (optimizer {optimizer})" if optimizer else ""
    return (f"{who} share one learning rate, {compact(lr)}{opt}, so each verdict is partly a "
            "verdict on that setting; a study's tune: key compares each variant at the best of "
            "its listed learning rates instead.")


def _epochs(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def tuning_cost(tuning_epochs: Sequence[int], deciding_epochs: Sequence[int],
                budget: int | None) -> str:
    """Tuning's share of a study's training. `tuning_epochs`/`deciding_epochs`: the epoch
    budget of each tuning / deciding run; `budget`: `tune.epochs` (None: the runs' own)."""
    n, spent = len(tuning_epochs), sum(tuning_epochs)
    total = spent + sum(deciding_epochs)
    share = 100 * spent / total if total else 0.0
    pct = "<1" if 0 < share < 1 else f"{share:.0f}"
    if budget is not None and deciding_epochs and budget < max(deciding_epochs):
        how = f" (tune.epochs: shorter than the deciding runs' {_epochs(deciding_epochs)})"
    elif budget is not None:
        how = " (tune.epochs)"
    else:
        how = " (the deciding runs' budget)" if deciding_epochs else ""
    each = f"{_epochs(tuning_epochs)} epoch{'s' if max(tuning_epochs, default=0) != 1 else ''}"
    rest = (f"; {len(deciding_epochs)} deciding run{'s' if len(deciding_epochs) != 1 else ''} "
            f"train the other {total - spent}") if deciding_epochs else ""
    return (f"Tuning cost: {n} tuning run{'s' if n != 1 else ''} of {each} each{how}, "
            f"{spent} of the study's {total} training epochs ({pct}%{rest}).")
