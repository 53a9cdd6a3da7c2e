"""A paired comparison on a fixed evaluation set whose images count as a sample too.

When every run is evaluated on the same fixed images (an official test split, or a dataset with
`split: fixed`), the per-seed differences all share those images' luck: a variant that happens
to suit these particular images wins on every seed, and a test over seeds alone reads that as
a real difference (issue #30: 0.115 of null studies at 5 seeds, 0.194 at 12, where 0.05 is
promised). Here the data are the per-(seed, image) differences of correctness,
d[s, i] = correct_variant[s, i] - correct_reference[s, i], and the estimand is their mean over
the population of seeds and of images. The two-way crossed random-effects model

    d[s, i] = mu + a_s + b_i + e_si,

(a_s: the seed's effect, b_i: the image's, e_si: the rest) gives, from the ANOVA mean squares
(Cornfield-Tukey expected mean squares: E MS_seed = s_e^2 + N s_a^2, E MS_image = s_e^2 +
S s_b^2, E MS_error = s_e^2),

    Var(mean d) = s_a^2 / S + s_b^2 / N + s_e^2 / (S N)
                = (E MS_seed + E MS_image - E MS_error) / (S N),

which is the two-way clustered variance (Cameron, Gelbach & Miller 2011; Miller 2024, "Adding
Error Bars to Evals", for evaluation items): seed-clustered plus image-clustered minus their
intersection. The image component is estimated as max(MS_image - MS_error, 0), so the variance is
never below the paired t-test's over seeds (MS_seed / (S N) is exactly its squared standard
error). The test rejects where |mean| > sqrt(t^2 V_seed + z^2 V_image): each part of the variance
with its own quantile, Student's t with S - 1 degrees of freedom for the seeds' part (estimated
from S seeds) and the normal for the images' (from N images), the Cochran-Cox weighting of a
Behrens-Fisher problem taken in squares (more conservative still). It is the paired t-test
over seeds when the images add nothing. Satterthwaite's degrees of freedom for the sum (3.1
for the seeds' 2, typically) were too light in the far tail that Holm tests at: a family-wise
0.119 over 5 comparisons at 3 seeds where 0.05 is promised; t with S - 1 df for the whole
variance held it but at 12 seeds kept half the power of per-seed partitions
(benchmarks/population_sim.py, BENCHMARKS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnablate.base.lazy import lazy_module

optimize = lazy_module("scipy.optimize")  # imported when a decision computes: base/lazy.py
special = lazy_module("scipy.special")
sps = lazy_module("scipy.stats")


@dataclass(frozen=True)
class Crossed:
    """Mean squares of one comparison's seeds x images differences."""

    mean: float
    n_seeds: int
    n_images: int
    ms_seed: float
    ms_image: float
    ms_error: float

    @property
    def image_component(self) -> float:
        """MS_image - MS_error, cut at 0: S x the images' variance component."""
        return max(self.ms_image - self.ms_error, 0.0)

    @property
    def variance(self) -> float:
        """Estimated variance of the mean difference."""
        return (self.ms_seed + self.image_component) / (self.n_seeds * self.n_images)

    @property
    def se(self) -> float:
        return math.sqrt(self.variance)

    @property
    def df(self) -> float:
        """The seed part's degrees of freedom, S - 1."""
        return float(self.n_seeds - 1)

    @property
    def seed_part(self) -> float:
        """MS_seed / (S N): the paired t-test's squared standard error over seeds."""
        return self.ms_seed / (self.n_seeds * self.n_images)

    @property
    def image_part(self) -> float:
        """The images' share of the variance of the mean, estimated with N - 1 df or more."""
        return self.image_component / (self.n_seeds * self.n_images)

    def critical(self, level: float) -> float:
        """The |mean difference| beyond which the test rejects at two-sided `level`: each part
        of the variance with its own quantile, t with S - 1 df for the seeds' (few df), the
        normal for the images' (Cochran & Cox's weighting of the two, in squares)."""
        t = float(special.stdtrit(self.df, 1 - level / 2))
        z = float(special.ndtri(1 - level / 2))
        return math.sqrt(t * t * self.seed_part + z * z * self.image_part)

    def pvalue(self) -> float:
        """Two-sided p-value of mean 0: the level at which `critical` is |mean|."""
        if self.mean == 0:
            return 1.0
        if self.variance <= 0:
            return 0.0  # the same nonzero difference on every image of every seed
        x = abs(self.mean)
        if self.image_part <= 0:
            return float(2 * special.stdtr(self.df, -x / math.sqrt(self.seed_part)))
        if self.seed_part <= 0:
            return float(2 * special.ndtr(-x / math.sqrt(self.image_part)))
        # critical() falls as the level grows: between the two parts' own p-values (each
        # part alone at the whole variance bounds it on either side)
        low = float(2 * special.ndtr(-x / math.sqrt(self.variance))) * 0.5
        high = 1.0
        if self.critical(low) < x:
            low = 1e-300
        if self.critical(low) < x:
            return 0.0
        return float(optimize.brentq(lambda a: self.critical(a) - x, low, high,
                                     xtol=1e-14, rtol=1e-10))

    def interval(self, confidence: float) -> tuple[float, float]:
        half = self.critical(1 - confidence)
        return self.mean - half, self.mean + half

    def image_shift(self, tail: float) -> float:
        """The (1 - tail) normal quantile of the images' common shift of every seed's difference
        (SD sqrt(s_b^2 / N) = sqrt(image_component / (S N)))."""
        return float(sps.norm.ppf(1 - tail)) * math.sqrt(
            self.image_component / (self.n_seeds * self.n_images))

    def power_at(self, n_seeds: int, effect: float, level: float) -> float:
        """Approximate power with `n_seeds` seeds on these images against a true difference
        `effect`: the mean normal with the predicted variance, the critical value at the
        predicted parts (the seeds' estimate's own noise ignored)."""
        n = self.n_images
        seed_part = (self.ms_error + max(self.ms_seed - self.ms_error, 0.0)) / (n_seeds * n)
        t = float(special.stdtrit(n_seeds - 1, 1 - level / 2))
        z = float(special.ndtri(1 - level / 2))
        crit = math.sqrt(t * t * seed_part + z * z * self.image_part)
        sd = math.sqrt(self.variance_at(n_seeds))
        if sd <= 0:
            return 1.0 if effect > crit else 0.0
        return float(special.ndtr((effect - crit) / sd) + special.ndtr((-effect - crit) / sd))

    def variance_at(self, n_seeds: int) -> float:
        """Predicted variance of the mean difference with `n_seeds` seeds on these images."""
        n = self.n_images
        seed_var = max(self.ms_seed - self.ms_error, 0.0) / n
        image_var = self.image_component / self.n_seeds
        return seed_var / n_seeds + image_var / n + self.ms_error / (n_seeds * n)


def crossed(diff: np.ndarray) -> Crossed:
    """The mean squares of `diff` (seeds x images; at least 2 x 2)."""
    d = np.asarray(diff, dtype=np.float64)
    s, n = d.shape
    grand = float(d.mean())
    rows = d.mean(axis=1)
    cols = d.mean(axis=0)
    ss_seed = n * float(((rows - grand) ** 2).sum())
    ss_image = s * float(((cols - grand) ** 2).sum())
    ss_total = float(((d - grand) ** 2).sum())
    ss_error = max(ss_total - ss_seed - ss_image, 0.0)
    return Crossed(mean=grand, n_seeds=s, n_images=n, ms_seed=ss_seed / (s - 1),
                   ms_image=ss_image / (n - 1), ms_error=ss_error / ((s - 1) * (n - 1)))


def difference_matrix(variant: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> np.ndarray:
    """seeds x images matrix of correctness differences (variant - reference), int8."""
    return (np.stack([np.asarray(v, dtype=np.int8) for v in variant])
            - np.stack([np.asarray(r, dtype=np.int8) for r in reference]))


def prob_improvement(stats: Crossed, seed_diffs: Sequence[float],
                     confidence: float = 0.95) -> tuple[float, float, float]:
    """The paired share of seeds where the variant wins (ties 1/2), with an interval that
    also counts the images: every seed's difference on these images is shifted by the images'
    common luck, so the lower end counts the wins by more than that shift's upper quantile and
    the upper end the seeds within it, each a Clopper-Pearson bound; the (1 - confidence) is
    split in half between the shift and the two bounds (Bonferroni), so the coverage stays at
    least `confidence`."""
    n = len(seed_diffs)
    if n == 0:
        return math.nan, math.nan, math.nan
    wins_now = sum(1 for x in seed_diffs if x > 0)
    ties_now = sum(1 for x in seed_diffs if x == 0)
    share = (wins_now + ties_now / 2) / n
    tail = (1 - confidence) / 4
    shift = stats.image_shift(tail)
    wins = sum(1 for x in seed_diffs if x > shift)
    up = sum(1 for x in seed_diffs if x >= -shift)
    low = 0.0 if wins == 0 else float(sps.beta.ppf(tail, wins, n - wins + 1))
    high = 1.0 if up == n else float(sps.beta.ppf(1 - tail, up + 1, n - up))
    return share, low, high
