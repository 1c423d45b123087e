"""The statistics behind A/B results: Wilson intervals, two-proportion z-tests and the
Bayesian probability of being best. Pure functions, reproducible (fixed seed)."""

from __future__ import annotations

import math
import random

Z_95 = 1.959963984540054
DRAWS = 10_000
SEED = 20_260_101
# Up to this many conversions the exact two-variant sum costs a few milliseconds.
EXACT_LIMIT = 2_000


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion; None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def two_proportion_p_value(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None if a side has no trials."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k2 / n2 - k1 / n1) / se
    return math.erfc(abs(z) / math.sqrt(2))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _prob_b_beats_a(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Exact P(p_B > p_A) for Beta posteriors (Evan Miller's closed form)."""
    alpha_a, beta_a = a
    alpha_b, beta_b = b
    total = 0.0
    for i in range(alpha_b):
        total += math.exp(
            _log_beta(alpha_a + i, beta_a + beta_b)
            - math.log(beta_b + i)
            - _log_beta(1 + i, beta_b)
            - _log_beta(alpha_a, beta_a)
        )
    return min(1.0, max(0.0, total))


def _prob_b_beats_a_normal(a: tuple[int, int], b: tuple[int, int]) -> float:
    """P(p_B > p_A) with each Beta posterior replaced by the normal of its mean and variance:
    for thousands of conversions a side the two agree to about 1e-3, in constant time."""

    def moments(alpha: int, beta: int) -> tuple[float, float]:
        total = alpha + beta
        return alpha / total, alpha * beta / (total * total * (total + 1))

    mean_a, var_a = moments(*a)
    mean_b, var_b = moments(*b)
    return 0.5 * math.erfc(-(mean_b - mean_a) / math.sqrt(2 * (var_a + var_b)))


def probability_best(
    results: list[tuple[int, int]], draws: int = DRAWS, seed: int = SEED
) -> list[float]:
    """P(each variant has the highest conversion rate) under independent Beta(1+k, 1+n-k)
    posteriors: for two variants exact (the closed form sums one term per conversion, so
    beyond ``EXACT_LIMIT`` conversions of the second variant its normal approximation is
    used instead), otherwise Monte Carlo with a fixed seed (the same data always gives the
    same answer)."""
    if not results:
        return []
    if len(results) == 1:
        return [1.0]
    params = [(1 + k, 1 + max(n - k, 0)) for k, n in results]
    if len(params) == 2:
        if params[1][0] <= EXACT_LIMIT:
            b_wins = _prob_b_beats_a(params[0], params[1])
        else:
            b_wins = _prob_b_beats_a_normal(params[0], params[1])
        return [1.0 - b_wins, b_wins]
    rng = random.Random(seed)  # reproducible simulation, not security
    wins = [0] * len(results)
    for _ in range(draws):
        samples = [rng.betavariate(a, b) for a, b in params]
        wins[samples.index(max(samples))] += 1
    return [w / draws for w in wins]
