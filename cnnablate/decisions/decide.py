"""Decisions over seeds with a family-wise guarantee (pure Python + numpy/scipy; no pandas).

Input: per variant a mapping seed -> headline value (higher is better; None/nan for a run that
did not complete), the baseline's name and a `Design`. Output: one row per comparison
(variant vs reference) with the difference, its interval, raw and Holm p-values, effect size,
probability of improvement, verdict and seeds needed, plus which variants still need seeds.

The procedure (docs/statistics.md explains why):
- Each comparison is a paired t-test of the per-seed differences (variant - reference).
- Looks: a fixed design has one look at all seeds; an adaptive design (`initial`, `max`,
  `step`) looks after `initial`, `initial + step`, ... seeds, up to `max`.
- Alpha spending (Lan-DeMets, Pocock type): each comparison tested at an overall level `a`
  spends a*ln(1 + (e-1)t) by the fraction t = n_k / n_max of its seeds; the p-value level of
  look k is the exact group-sequential level for a paired t-test (`cnnablate.decisions.sequential`).
  Within a look, Holm's step-down: the r-th smallest p-value is tested at the look's level
  for a = alpha / (m - r), over every comparison not yet declared better/worse (one that
  stopped as `equivalent` still counts, with p = 1). Holm with group-sequential levels per
  hypothesis controls the family-wise error (Maurer & Bretz 2013).
- better/worse: Holm rejects at the look, sign of the mean difference.
- equivalent (only when `min_effect` is set): TOST at alpha/2 per comparison, spent over the
  looks the same way: the look's (1 - level at alpha) t interval lies inside
  (-min_effect, +min_effect).
- Comparisons that are decided stop; variants (and the reference) of open comparisons get the
  next `step` seeds.
- Fixed evaluation images (issue #30): where both arms of a comparison come with per-image
  correctness vectors (`correct`), the test counts the images as a sample as well as the seeds
  (`cnnablate.decisions.crossed`: seeds x images crossed, test `crossed_t`).
- `Design.test == "permutation"`: the exact paired sign-flip test (`sign_flip`) in place of the
  t-test, under the same Holm; across looks each look tests at its alpha-spending increment
  (valid for any p-value; the group-sequential levels are calibrated for the t-test).
- Each arm's values are on its own count grid, and a comparison's rounding floor comes from its
  two arms' steps (`grid.snap_arms`, `grid.pair_floor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from cnnablate.base import rounds
from cnnablate.base.lazy import lazy_module
from cnnablate.decisions import crossed as crossed_test
from cnnablate.decisions import permutation
from cnnablate.decisions.grid import pair_floors, snap_arms
from cnnablate.decisions.sequential import nominal_levels, spend
from cnnablate.decisions.stats import METRIC_BOUNDS

integrate = lazy_module("scipy.integrate")  # imported when a decision computes: base/lazy.py
special = lazy_module("scipy.special")
sps = lazy_module("scipy.stats")

VERDICTS = ("better", "worse", "equivalent", "undecided")
PAIRED_COLUMNS = (
    "variant", "baseline", "metric", "n_pairs", "diff_mean", "diff_ci_low", "diff_ci_high",
    "p_value", "p_holm", "effect_size", "prob_improvement", "prob_improvement_ci_low",
    "prob_improvement_ci_high", "verdict", "seeds_needed", "look", "test",
)
MAX_SEEDS_NEEDED = 1000  # per arm: past this, "more than 1000" is the useful answer
DECIMALS = 12  # as in cnnablate.decisions.stats: accuracies are multiples of 1/n_images
TESTS = ("t", "permutation")  # decisions.test: the paired t-test, or the sign-flip test


@dataclass(frozen=True)
class Design:
    """Decision settings of one study; `initial` None means the fixed design (one look)."""

    alpha: float = 0.05
    power: float = 0.8
    confidence: float = 0.95
    min_effect: float | None = None
    all_pairs: bool = False
    initial: int | None = None
    max: int | None = None
    step: int | None = None
    test: str = "t"  # TESTS: "permutation" is the exact paired sign-flip test

    @property
    def adaptive(self) -> bool:
        return self.initial is not None

    def look_sizes(self, n_fixed: int | None = None) -> list[int]:
        """Seeds per arm at each look."""
        if not self.adaptive:
            return [n_fixed or 0]
        # The rounds' own schedule: one source for the rounds and their looks.
        return rounds.look_sizes({"initial": self.initial, "max": self.max, "step": self.step})

    def nominal(self, level: float, look: int, n_fixed: int | None = None) -> float:
        """The p-value level at `look` (1-based) of a comparison tested at overall `level`."""
        if not self.adaptive:
            return level
        sizes = self.look_sizes(n_fixed)
        if self.test == "permutation":
            # The exact group-sequential levels are the t-test's; each look's increment of the
            # spending function is valid for any p-value (a Bonferroni bound across looks).
            return spend(level, [n / sizes[-1] for n in sizes])[look - 1]
        return nominal_levels(level, sizes)[look - 1]


def design_from_settings(settings: Mapping) -> Design:
    """A `Design` from `cnnablate.workflow.config.study_settings(...)['decisions']`."""
    seeds = settings.get("seeds")
    adaptive = isinstance(seeds, Mapping)
    return Design(
        alpha=float(settings.get("alpha", 0.05)),
        power=float(settings.get("power", 0.8)),
        confidence=float(settings.get("confidence", 0.95)),
        min_effect=settings.get("min_effect"),
        all_pairs=bool(settings.get("all_pairs", False)),
        initial=int(seeds["initial"]) if adaptive else None,
        max=int(seeds["max"]) if adaptive else None,
        step=int(seeds["step"]) if adaptive else None,
        test=str(settings.get("test") or "t"),
    )


def holm(pvalues: Sequence[float], multipliers: Sequence[float] | None = None) -> list[float]:
    """Holm (1979) step-down adjusted p-values; nan stays nan and counts as untestable.

    `multipliers[r]`: what the r-th smallest p-value is multiplied by (Holm: m - r). A
    group-sequential look passes alpha / (its nominal level at alpha / (m - r)), so that an
    adjusted value <= alpha is exactly a rejection at that look.
    """
    p = [math.nan if not _finite(v) else float(v) for v in pvalues]
    m = len(p)
    factors = list(multipliers) if multipliers is not None else [m - r for r in range(m)]
    order = sorted(range(m), key=lambda i: (math.isnan(p[i]), p[i] if not math.isnan(p[i]) else 0))
    adjusted = [math.nan] * m
    running = 0.0
    for rank, i in enumerate(order):
        if math.isnan(p[i]):
            continue
        running = max(running, min(1.0, factors[rank] * p[i]))
        adjusted[i] = running
    return adjusted


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _mean_sd(diff: Sequence[float], precision: float = 0.0) -> tuple[float, float]:
    """Mean and SD; either one at or below `precision` (the values' own, `grid.snap`) is
    representation noise and counts as 0."""
    # Plain Python: these samples have 2-12 values, where numpy's per-call overhead dominates
    # the simulations' run time.
    n = len(diff)
    if n > 1 and min(diff) == max(diff):
        # Exactly: fsum(3 * [x]) / 3 need not be x, and the residue gave an SD of 1e-19 (and
        # p 1e-32) to three equal differences, which must meet the rounding floor instead.
        return diff[0], 0.0
    mean = math.fsum(diff) / n
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in diff) / (n - 1)) if n > 1 else math.nan
    if precision > 0:
        mean = 0.0 if abs(mean) <= precision else mean
        sd = 0.0 if sd <= precision else sd
    return mean, sd


def paired_t(diff: Sequence[float], sd_floor: float | Callable[[], float] = 0.0,
             precision: float = 0.0) -> tuple[float, float]:
    """(two-sided p, standard deviation) of a paired t-test of `diff` against 0.

    `sd_floor`: the SD used when the differences have none (the values' rounding, see
    `resolution`): an accuracy is a count of images, so two arms can differ by exactly the
    same amount on every seed (a variant stuck at chance against a baseline that lands on the
    same count); the plain t is then undefined, while the rounding alone has this spread.
    A callable is called only then (finding the rounding step is the costly part).
    `precision`: a spread or mean at or below it is representation noise (`grid.snap`).
    """
    n = len(diff)
    if n < 2:
        return math.nan, math.nan
    mean, sd = _mean_sd(diff, precision)
    if mean == 0 and sd == 0:
        return 1.0, 0.0  # identical results on every seed: no evidence of a difference
    # Only where the spread is exactly zero: the gap-based step can be far coarser than the real
    # rounding (few values), and would then blunt ordinary tests.
    test_sd = sd if sd > 0 else _floor_value(sd_floor)
    if test_sd == 0:
        return math.nan, 0.0  # the same nonzero difference everywhere and no known rounding
    t = mean / (test_sd / math.sqrt(n))
    return float(2 * special.stdtr(n - 1, -abs(t))), sd


def _floor_value(sd_floor: float | Callable[[], float]) -> float:
    return sd_floor() if callable(sd_floor) else sd_floor


def t_interval_of(diff: Sequence[float], confidence: float,
                  sd_floor: float | Callable[[], float] = 0.0,
                  precision: float = 0.0) -> tuple[float, float]:
    """Student-t interval of the mean difference; with no spread at all, the rounding floor's
    (as `paired_t`): a zero-width interval would claim a precision the counts do not have."""
    n = len(diff)
    if n < 2:
        return math.nan, math.nan
    mean, sd = _mean_sd(diff, precision)
    if sd == 0:
        sd = _floor_value(sd_floor)
    # scipy.special.stdtrit is scipy.stats.t.ppf without the per-call overhead (simulations).
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * sd / math.sqrt(n)
    return mean - half, mean + half


def prob_improvement(diff: Sequence[float], confidence: float = 0.95,
                     precision: float = 0.0) -> tuple[float, float, float]:
    """Paired probability of improvement: the share of seeds where the variant beats the
    reference (ties count 1/2), with a conservative Clopper-Pearson interval.

    The estimand is P(D > 0) + P(D = 0)/2 for the per-seed difference D. The lower end is the
    exact lower bound for P(D > 0) from the strict wins, the upper end the exact upper bound
    for P(D >= 0) from wins plus ties: each one-sided at (1 - confidence)/2, so the coverage is
    at least `confidence` at every n (the percentile bootstrap falls far short at 2-5 seeds).
    A difference within `precision` of 0 is a tie.
    """
    n = len(diff)
    if n == 0:
        return math.nan, math.nan, math.nan
    wins = sum(1 for x in diff if x > precision)
    ties = sum(1 for x in diff if abs(x) <= precision)
    share = (wins + ties / 2) / n
    tail = (1 - confidence) / 2
    low = 0.0 if wins == 0 else float(sps.beta.ppf(tail, wins, n - wins + 1))
    up = wins + ties
    high = 1.0 if up == n else float(sps.beta.ppf(1 - tail, up + 1, n - up))
    return share, low, high


def seeds_needed(sd: float, effect: float, alpha: float, power: float) -> int | None:
    """Seeds per arm for a paired t-test at two-sided `alpha` to detect `effect` with `power`
    when the paired differences have SD `sd`: the normal approximation, refined with the
    non-central t. None when it cannot be computed (no spread, no effect); MAX_SEEDS_NEEDED + 1
    (`more_than_max`) when even MAX_SEEDS_NEEDED would not do: the search stops there, and a
    number above it would be a guess."""
    if not (_finite(sd) and _finite(effect)) or sd <= 0 or effect <= 0:
        return None
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    n = max(2, math.ceil((z * sd / effect) ** 2))
    while n <= MAX_SEEDS_NEEDED and _t_power(n, effect / sd, alpha) < power:
        n += 1 if n < 200 else max(1, n // 50)
    if n > MAX_SEEDS_NEEDED:
        return MAX_SEEDS_NEEDED + 1
    while n > 2 and _t_power(n - 1, effect / sd, alpha) >= power:
        n -= 1
    return n


def more_than_max(needed: float | None) -> bool:
    """True for `seeds_needed`'s answer 'more than MAX_SEEDS_NEEDED'."""
    return _finite(needed) and float(needed) > MAX_SEEDS_NEEDED


def _t_power(n: int, standardized: float, alpha: float) -> float:
    df = n - 1
    crit = sps.t.ppf(1 - alpha / 2, df)
    ncp = standardized * math.sqrt(n)
    power = float(sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp))
    # scipy's non-central t gives nan at 1-2 degrees of freedom with a large non-centrality
    # (e.g. df 1, ncp 10), and nan < power would end the search for seeds at once.
    return power if math.isfinite(power) else _t_power_integrated(df, crit, ncp)


def _t_power_integrated(df: int, crit: float, ncp: float) -> float:
    """P(|Z + ncp| > crit * sqrt(V / df)), V ~ chi-square(df): the same power, integrated."""
    def rejects(v: float) -> float:
        scale = crit * math.sqrt(v / df)
        return (sps.norm.sf(scale - ncp) + sps.norm.cdf(-scale - ncp)) * sps.chi2.pdf(v, df)

    return float(integrate.quad(rejects, 0, math.inf, limit=200)[0])


def comparisons(variants: Sequence[str], baseline: str, all_pairs: bool) -> list[tuple[str, str]]:
    """(variant, reference) pairs: every variant against the baseline, then (all_pairs) every
    other pair in the study's order."""
    others = [v for v in variants if v != baseline]
    pairs = [(v, baseline) for v in others]
    if all_pairs:
        pairs += [(b, a) for i, a in enumerate(others) for b in others[i + 1:]]
    return pairs


@dataclass
class Decisions:
    rows: list[dict]
    look: int  # looks done (1-based); 0 when the first look's seeds are not all there yet
    n_looks: int
    continuing: list[str]  # variants that get the next step of seeds (empty: finished)
    seeds_used: dict[str, int] = field(default_factory=dict)
    stop_reason: dict[str, str] = field(default_factory=dict)
    look_sizes: list[int] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.look > 0 and not self.continuing


def _paired_seeds(results: Mapping[str, Mapping[int, float]], variant: str, ref: str,
                  seeds: Sequence[int]) -> list[int]:
    a, b = results.get(ref, {}), results.get(variant, {})
    return [s for s in seeds if _finite(a.get(s)) and _finite(b.get(s))]


def _diff(results: Mapping[str, Mapping[int, float]], variant: str, ref: str,
          seeds: Sequence[int]) -> list[float]:
    a, b = results.get(ref, {}), results.get(variant, {})
    return [round(float(b[s]) - float(a[s]), DECIMALS)
            for s in _paired_seeds(results, variant, ref, seeds)]


Correct = Mapping[str, Mapping[int, "np.ndarray"]]


class PairedT:
    """One comparison at one look: the paired t-test of the per-seed differences."""

    name = "paired_t"

    def __init__(self, diff: list[float], floor: Callable[[], float], precision: float):
        self.diff, self.floor, self.precision = diff, floor, precision
        self.mean = _mean_sd(diff, precision)[0] if diff else math.nan

    def test(self) -> tuple[float, float]:
        """(p-value, SD of the differences)."""
        return paired_t(self.diff, self.floor, self.precision)

    def interval(self, confidence: float) -> tuple[float, float]:
        return t_interval_of(self.diff, confidence, self.floor, self.precision)

    def prob_improvement(self, confidence: float) -> tuple[float, float, float]:
        return prob_improvement(self.diff, confidence, self.precision)

    def needed(self, sd: float, effect: float, level: float, power: float) -> int | None:
        return seeds_needed(sd, effect, level, power)


class SignFlip(PairedT):
    """The exact paired sign-flip test (`decisions: {test: permutation}`); the interval and
    P(improvement) are the t-test's."""

    name = "sign_flip"

    def test(self) -> tuple[float, float]:
        _, sd = paired_t(self.diff, self.floor, self.precision)
        return permutation.sign_flip_p(self.diff, self.precision), sd

    def needed(self, sd: float, effect: float, level: float, power: float) -> int | None:
        # The t-test's count (what the mean difference and spread call for), and never fewer
        # than the sign-flip test can decide with at all at this level (2 / 2**n <= level).
        base = seeds_needed(sd, effect, level, power)
        if base is None:
            return None
        return max(base, permutation.min_seeds(level))


class CrossedT(PairedT):
    """Fixed evaluation images counted as a sample: `cnnablate.decisions.crossed`."""

    name = "crossed_t"

    def __init__(self, matrix: np.ndarray):
        self.stats = crossed_test.crossed(matrix)
        super().__init__([round(float(x), DECIMALS) for x in matrix.mean(axis=1)],
                         lambda: 0.0, 0.0)
        self.mean = self.stats.mean

    def test(self) -> tuple[float, float]:
        sd = _mean_sd(self.diff)[1]
        return self.stats.pvalue(), sd

    def interval(self, confidence: float) -> tuple[float, float]:
        return self.stats.interval(confidence)

    def prob_improvement(self, confidence: float) -> tuple[float, float, float]:
        return crossed_test.prob_improvement(self.stats, self.diff, confidence)

    def needed(self, sd: float, effect: float, level: float, power: float) -> int | None:
        return crossed_seeds_needed(self.stats, effect, level, power)


def crossed_seeds_needed(stats: crossed_test.Crossed, effect: float, level: float,
                         power: float) -> int | None:
    """Seeds per arm on the same fixed images for the crossed test at two-sided `level` to
    detect `effect` with `power`, from the observed variance components (`Crossed.power_at`);
    MAX_SEEDS_NEEDED + 1 when no number of seeds would do (the images' own share of the
    variance stays whatever the seeds)."""
    if not _finite(effect) or effect <= 0 or stats.variance_at(2) <= 0:
        return None

    def enough(n: int) -> bool:
        return stats.power_at(n, effect, level) >= power

    if not enough(MAX_SEEDS_NEEDED):
        return MAX_SEEDS_NEEDED + 1
    low, high = 1, MAX_SEEDS_NEEDED  # power grows with the seeds: enough(high), not enough(low)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return max(2, high)


def _correct_for(correct: Correct | None, arm: str, seeds: Sequence[int]) -> list | None:
    if not correct or arm not in correct:
        return None
    vectors = [correct[arm].get(s) for s in seeds]
    return None if any(v is None for v in vectors) else vectors


def pair_test(results: Mapping[str, Mapping[int, float]], pair: tuple[str, str],
              seeds: Sequence[int], design: Design, floor: Callable[[], float],
              precision: float, correct: Correct | None = None) -> PairedT:
    """The test of one comparison at one look: crossed where both arms have per-image
    correctness on the same images at every paired seed (and the t-test is configured),
    else the paired t-test or the sign-flip test over seeds."""
    variant, ref = pair
    paired = _paired_seeds(results, variant, ref, seeds)
    if design.test == "t" and len(paired) >= 2:
        a, b = _correct_for(correct, variant, paired), _correct_for(correct, ref, paired)
        if a is not None and b is not None and len({len(x) for x in (*a, *b)}) == 1 \
                and len(a[0]) >= 2:
            return CrossedT(crossed_test.difference_matrix(a, b))
    diff = _diff(results, variant, ref, seeds)
    return (SignFlip if design.test == "permutation" else PairedT)(diff, floor, precision)


def decide(
    results: Mapping[str, Mapping[int, float]],
    baseline: str,
    design: Design,
    variants: Sequence[str] | None = None,
    metric: str = "",
    extras: bool = True,
    correct: Correct | None = None,
) -> Decisions:
    """Replay the design's looks over the per-seed `results` and decide every comparison.

    `results[variant][seed]`: a value, or None/nan for a run that ended without one (it still
    counts as run). Fixed design: the seeds are each pair's common seeds. Adaptive design:
    seeds are taken in ascending order; look k uses each arm's first n_k seeds and is done only
    when every arm of an open comparison has them (otherwise the result says which look is due).
    `extras=False` skips what no verdict depends on (probability of improvement, seeds
    needed): the simulations' fast path.
    `correct[variant][seed]`: optional per-image correctness (booleans, the same images in the
    same order for every run) on a fixed evaluation set: a comparison whose two arms have it
    at every paired seed is tested with the images counted as a sample (`crossed`).
    """
    variants = list(variants or results)
    # On each arm's own grid before any statistic: float32 accuracies are counts with noise in
    # the 8th decimal, which a test would read as a real spread (grid.snap); a grid found by
    # mixing arms with different denominators would be finer than either arm's (issue #30).
    results, precision_of = snap_arms(results)
    pairs = comparisons(variants, baseline, design.all_pairs)
    m = len(pairs)
    all_seeds = sorted({s for v in variants for s in results.get(v, {})})
    n_fixed = len(all_seeds)
    sizes = design.look_sizes(n_fixed)
    state: dict[tuple[str, str], dict] = {p: {"verdict": "undecided"} for p in pairs}
    open_pairs = list(pairs)
    looks_done = 0
    used: dict[str, int] = {}
    for k, n_k in enumerate(sizes, start=1):
        if design.adaptive:
            seeds_k = all_seeds[:n_k]
            arms = {x for p in open_pairs for x in p}
            if len(seeds_k) < n_k or any(
                    any(s not in results.get(v, {}) for s in seeds_k) for v in arms):
                break  # this look's runs are not all there yet
        else:
            seeds_k = all_seeds
        looks_done = k
        # From this look's values only: a replay after more rounds decides each look as it was.
        floors = cache(lambda seeds=tuple(seeds_k): pair_floors(results, seeds))
        for v in {x for p in open_pairs for x in p}:
            used[v] = len(seeds_k)
        rejected = [p for p in pairs if state[p]["verdict"] in ("better", "worse")]
        family = [p for p in pairs if p not in rejected]
        pvals = []
        for p in family:
            if p in open_pairs:
                floor = cache(lambda a=p[0], b=p[1], fl=floors: fl()(a, b))
                precision = max(precision_of.get(p[0], 0.0), precision_of.get(p[1], 0.0))
                test = pair_test(results, p, seeds_k, design, floor, precision, correct)
                pval, sd = test.test()
                state[p].update(_describe(test, design, pval, sd, k, extras, metric))
                pvals.append(pval)
            else:
                pvals.append(1.0)  # stopped as equivalent: counted, never rejected later
        # Holm's r-th step tests at alpha / (m - r); a look tests that level at its nominal
        # group-sequential level. Reported on alpha's scale: p_holm <= alpha exactly when the
        # look rejects.
        mf = len(family)
        adjusted = holm(pvals, [design.alpha / design.nominal(design.alpha / (mf - r), k, n_fixed)
                                for r in range(mf)])
        for p, p_adj in zip(family, adjusted):
            if p not in open_pairs:
                continue
            s = state[p]
            s["p_holm"] = p_adj
            if _finite(p_adj) and p_adj <= design.alpha and s["diff_mean"] != 0:
                s["verdict"] = "better" if s["diff_mean"] > 0 else "worse"
            elif design.min_effect is not None and s["n_pairs"] >= 2:
                # TOST at alpha/2 per comparison, spent over the looks like the tests: its
                # (1 - 2 * alpha/2) interval at the look's nominal level. Half of alpha, because
                # a truly better variant stopped early as `equivalent` is power lost for good
                # (BENCHMARKS 7: at alpha it cost 2 points of power).
                lo, hi = s["_test"].interval(1 - design.nominal(design.alpha, k, n_fixed))
                if -design.min_effect < lo and hi < design.min_effect:
                    s["verdict"] = "equivalent"
        open_pairs = [p for p in open_pairs if state[p]["verdict"] == "undecided"]
        if not open_pairs:
            break
    last = looks_done == len(sizes)
    continuing: list[str] = []
    if design.adaptive and looks_done and not last and open_pairs:
        arms = {x for p in open_pairs for x in p}
        continuing = [v for v in variants if v in arms]
    elif design.adaptive and looks_done == 0:
        continuing = list(variants)
    final = last or not design.adaptive
    rows = [_row(p, state[p], design, m, metric, looks_done, final and extras) for p in pairs]
    seeds_used = {v: used.get(v, 0) for v in variants}
    reason = _stop_reasons(variants, state, pairs, continuing, looks_done, len(sizes), design)
    return Decisions(rows=rows, look=looks_done, n_looks=len(sizes), continuing=continuing,
                     seeds_used=seeds_used, stop_reason=reason,
                     look_sizes=sizes)


def diff_bounds(metric: str) -> tuple[float, float]:
    """The range a difference of two values of `metric` can take: (low - high, high - low)
    for a bounded metric (an accuracy difference lies in [-1, 1]), unbounded otherwise."""
    low, high = METRIC_BOUNDS.get(metric, (None, None))
    if low is None or high is None:
        return -math.inf, math.inf
    return low - high, high - low


def _within(lo: float, hi: float, bounds: tuple[float, float]) -> tuple[float, float]:
    # A t interval of 2-3 differences can be wider than the range itself (-103 points for an
    # accuracy): the true difference cannot be outside it, so the interval is cut there.
    if not (_finite(lo) and _finite(hi)):
        return lo, hi
    return max(lo, bounds[0]), min(hi, bounds[1])


def _describe(test: PairedT, design: Design, pval: float, sd: float, look: int,
              extras: bool, metric: str) -> dict:
    n = len(test.diff)
    mean = test.mean if n else math.nan
    lo, hi = test.interval(design.confidence) if extras else (math.nan, math.nan)
    lo, hi = _within(lo, hi, diff_bounds(metric))
    share, pi_lo, pi_hi = (test.prob_improvement(design.confidence) if extras
                           else (math.nan, math.nan, math.nan))
    return {
        "_test": test, "_diff": test.diff, "_sd": sd, "n_pairs": n, "diff_mean": mean,
        "diff_ci_low": lo, "diff_ci_high": hi, "p_value": pval,
        "effect_size": mean / sd if _finite(sd) and sd > 0 else math.nan,
        "prob_improvement": share, "prob_improvement_ci_low": pi_lo,
        "prob_improvement_ci_high": pi_hi, "look": look, "test": test.name,
    }


def _row(pair: tuple[str, str], s: dict, design: Design, m: int, metric: str, looks: int,
         plan: bool) -> dict:
    needed = None
    if s["verdict"] == "undecided" and plan and s.get("n_pairs", 0) >= 2:
        effect = design.min_effect if design.min_effect else abs(s["diff_mean"])
        # Holm's first step tests at alpha/m: the level a comparison must pass in the worst case.
        needed = s["_test"].needed(s["_sd"], effect, design.alpha / max(m, 1), design.power)
    row = {"variant": pair[0], "baseline": pair[1], "metric": metric}
    for col in PAIRED_COLUMNS[3:]:
        row[col] = s.get(col, math.nan)
    default_test = "sign_flip" if design.test == "permutation" else "paired_t"
    row.update(verdict=s["verdict"], seeds_needed=needed, test=s.get("test", default_test),
               n_pairs=s.get("n_pairs", 0), p_holm=s.get("p_holm", math.nan),
               look=s.get("look", looks))
    return row


def _stop_reasons(variants, state, pairs, continuing, looks_done, n_looks, design):
    reason = {}
    for v in variants:
        mine = [p for p in pairs if v in p]
        if v in continuing:
            reason[v] = "continues: a comparison is still undecided"
        elif not mine:
            reason[v] = "no comparison"
        elif all(state[p]["verdict"] != "undecided" for p in mine):
            reason[v] = "stopped: all its comparisons decided"
        elif design.adaptive and looks_done >= n_looks:
            reason[v] = f"stopped: reached max ({design.max} seeds), still undecided"
        elif design.adaptive:
            reason[v] = "waiting for this round's runs"
        else:
            reason[v] = "fixed design: all configured seeds"
    return reason
