"""What a study's verdicts are about, said where they are read (issue #30 item 4), and the
runs in a failure mode that a mean over a few seeds hides.

A verdict such as "selu is worse than relu on digits" is read as a statement about the method
on that kind of data. What it estimates is narrower: the mean difference over seeds of the
headline metric, at the settings the study trained (for a tuned study: each variant at the
candidate tuning selected), over the sources of variation that differ between seeds, and
conditional on the runs that completed. `verdict_scope` says which those are for one study.

No test of a mean holds its level over every noise distribution at 2-5 seeds (Bahadur & Savage
1956): a variant that fails now and then (stays at chance, diverges) and is otherwise slightly
better has the same mean as the baseline and is still called better in most studies whose few
seeds missed a failure. `failure_modes` flags what the seeds do show.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

# Sources whose test split is an official, fixed set of images (the others, sklearn_digits and
# image_folder, carve theirs from the data, per seed unless the dataset says `split: fixed`).
OFFICIAL_TEST_SOURCES = frozenset({"cifar10_binary", "cifar100_binary", "tfds"})
LEARNED_MARGIN = 0.05  # as cnnablate.decisions.sentences: within this of 1/classes is chance
# A robust outlier: |x - median| > OUTLIER_Z * 1.4826 * MAD (a modified z-score, Iglewicz &
# Hoaglin 1993; 1.4826 * MAD estimates the SD of normal data), from 3 values on. The MAD of 3-5
# values is itself noisy, so the scale is the larger of the variant's own and the study's pooled
# one (every variant's deviations from its own median), floored at the values' rounding step
# (ties of counts would otherwise flag one image). Their 3.5 flagged 12-16 % of variants whose
# seeds were plain normal noise at 3-12 seeds; 5 with the pooled scale flags 3.5 % at 3 seeds,
# 1.8 % at 5 and 0.3 % at 12 (5 variants, BENCHMARKS.md section 11), and a run at chance lies
# tens of scales away.
OUTLIER_Z = 5.0
MAD_SCALE = 1.4826


def _ok(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def headline_fixed(settings: Mapping) -> bool:
    """Whether every seed is evaluated on the same headline images."""
    data = settings.get("data") or {}
    if data.get("split", "per_seed") == "fixed":
        return True
    return settings.get("eval_split") == "test" and data.get("source") in OFFICIAL_TEST_SOURCES


def varied(settings: Mapping) -> list[str]:
    """The sources of variation that differ between a study's seeds."""
    data = settings.get("data") or {}
    out = ["initialisation", "data order"]
    if any(a != "none" for a in data.get("augment") or []):
        out.append("augmentation")
    if data.get("split", "per_seed") != "fixed":
        official = data.get("source") in OFFICIAL_TEST_SOURCES
        out.append("train/validation partition" if official
                   else "train/validation/test partition")
    return out


def images_clause(settings: Mapping, tests: Iterable[str]) -> str:
    """The headline split's images: drawn per seed, or fixed and whether their sampling counts
    (`tests`: paired.csv's `test` column, crossed_t where the images were counted)."""
    split = "test set" if settings.get("eval_split") == "test" else "validation set"
    if not headline_fixed(settings):
        return f"{split}: drawn per seed with the partition"
    tests = list(tests)
    counted = sum(1 for t in tests if t == "crossed_t")
    if tests and counted == len(tests):
        return f"{split}: fixed, its sampling counted (seeds × images)"
    if counted:
        return (f"{split}: fixed, its sampling counted in {counted} of {len(tests)} "
                "comparisons (the others lack per-image predictions: about these images only)")
    why = (" (the sign-flip test counts seeds only)" if "sign_flip" in tests
           else " (no per-image predictions)")
    return f"{split}: fixed, its sampling not counted{why}: the verdicts are about these images"


def verdict_scope(settings: Mapping, metric: str, tests: Iterable[str] = ()) -> str:
    """One paragraph: what a study's verdicts estimate and over which sources of variation."""
    at = (", each variant at the selected settings (the best of its listed candidates on the "
          "tuning seeds)" if settings.get("tuned") else "")
    return (f"What the verdicts are about: the mean difference over seeds of "
            f"{metric.replace('_', ' ')}{at}; varied between seeds: {_and(varied(settings))}; "
            f"{images_clause(settings, tests)}. They are conditional on the runs that "
            "completed (a diverged run leaves its seed out of its comparisons).")


def pooled_scale(values_by_variant: Iterable[Mapping[int, float | None]]) -> float:
    """1.4826 x the median absolute deviation of every value from its own variant's median
    (variants with 3 values or more): the study's robust SD of a run about its variant."""
    deviations = []
    for values in values_by_variant:
        finite = [float(v) for v in values.values() if _ok(v)]
        if len(finite) >= 3:
            median = statistics.median(finite)
            deviations += [abs(v - median) for v in finite]
    return MAD_SCALE * statistics.median(deviations) if deviations else 0.0


def failure_modes(values: Mapping[int, float | None], statuses: Mapping[int, str] | None = None,
                  chance: float | None = None, step: float = 0.0,
                  scale: float = 0.0) -> list[str]:
    """One variant's runs in a failure mode, in words: diverged, at chance (within
    LEARNED_MARGIN of `chance`), or a robust outlier (more than OUTLIER_Z robust SDs from the
    variant's median; the SD the larger of its own 1.4826 x MAD, `scale` (`pooled_scale`) and
    `step`, the values' rounding step). `values`: seed -> headline value (None: no value)."""
    statuses = statuses or {}
    out = []
    for seed in sorted(values):
        if statuses.get(seed, "completed") not in ("completed",) or not _ok(values[seed]):
            out.append(f"seed {seed} diverged" if statuses.get(seed) == "diverged"
                       else f"seed {seed} has no value")
    finite = {s: float(v) for s, v in values.items() if _ok(v)}
    if chance is not None:
        out += [f"seed {s} at chance ({v:.3g})" for s, v in sorted(finite.items())
                if v <= chance + LEARNED_MARGIN]
    if len(finite) >= 3:
        median = statistics.median(finite.values())
        mad = statistics.median(abs(v - median) for v in finite.values())
        scale = max(MAD_SCALE * mad, scale, step)
        if scale > 0:
            out += [f"seed {s} a robust outlier ({v:.3g} against a median of {median:.3g})"
                    for s, v in sorted(finite.items())
                    if abs(v - median) / scale > OUTLIER_Z
                    and not (chance is not None and v <= chance + LEARNED_MARGIN)]
    return out


def flag_sentence(variant: str, modes: Sequence[str]) -> str:
    return (f"Flag: {variant} has runs in a failure mode ({'; '.join(modes)}): a mean over a "
            "few seeds mixes failed and working runs, so read its per-seed values before the "
            "verdict.")
