"""The report's decisions in words (no pandas, no TensorFlow): one sentence per comparison,
the guarantee in one line, why each variant stopped, variants that did not learn, and a
cross-study table of verdicts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

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
        return (f"{v} {verb} {b} by {_num(abs(diff), scale)}{unit}{interval}{pi}, {holm}: "
                f"{verdict}.")
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


def guarantee(design: Design, n_comparisons: int, n_looks: int) -> str:
    pct = f"{design.alpha * 100:g}%"
    across = (f"; adaptive seeds: Pocock-type alpha spending over {n_looks} looks, "
              "group-sequential levels for paired t-tests" if design.adaptive else "")
    return (f"Guarantee: the chance that any of this study's better/worse verdicts is false is "
            f"at most {pct} (Holm over its {n_comparisons} comparison"
            f"{'s' if n_comparisons != 1 else ''}{across}).")


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
