"""The A/B statistics against values computed by hand (and textbook examples)."""

from __future__ import annotations

import math

import pytest

from leadflow.abtest.statistics import (
    EXACT_LIMIT,
    _prob_b_beats_a,
    probability_best,
    two_proportion_p_value,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_value():
    # 10 successes in 100 trials: 95% Wilson interval 0.0552 .. 0.1744.
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.05522914, abs=1e-6)
    assert high == pytest.approx(0.17436566, abs=1e-6)


def test_wilson_interval_by_hand_formula():
    k, n, z = 37, 250, 1.959963984540054
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson_interval(k, n) == pytest.approx((center - half, center + half))


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0 < high < 0.2
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and 0.8 < low < 1


def test_two_proportion_z_test():
    # 10/100 vs 20/100: pooled p = 0.15, z = 0.1 / sqrt(0.15 * 0.85 * 0.02) = 1.9803, p = 0.0477.
    assert two_proportion_p_value(10, 100, 20, 100) == pytest.approx(0.04766, abs=1e-4)
    # symmetric and identical proportions
    assert two_proportion_p_value(20, 100, 10, 100) == pytest.approx(0.04766, abs=1e-4)
    assert two_proportion_p_value(10, 100, 10, 100) == pytest.approx(1.0)
    assert two_proportion_p_value(0, 50, 0, 50) == 1.0
    assert two_proportion_p_value(1, 0, 1, 10) is None


def test_probability_best_two_variants_is_exact_and_consistent():
    a_best, b_best = probability_best([(10, 100), (20, 100)])
    assert a_best + b_best == pytest.approx(1.0)
    assert b_best == pytest.approx(0.9752, abs=1e-3)
    assert probability_best([(5, 50), (5, 50)]) == pytest.approx([0.5, 0.5])
    # more data, same rates: more certainty
    assert probability_best([(100, 1000), (200, 1000)])[1] > b_best


def test_probability_best_many_variants_is_reproducible():
    data = [(10, 100), (20, 100), (15, 100)]
    first = probability_best(data)
    assert first == probability_best(data)  # fixed seed
    assert sum(first) == pytest.approx(1.0)
    assert max(range(3), key=first.__getitem__) == 1
    # agrees with the exact two-variant answer when the third variant cannot win
    two = probability_best([(10, 100), (20, 100), (0, 1000)])
    assert two[1] == pytest.approx(0.9752, abs=0.01)


def test_probability_best_degenerate():
    assert probability_best([]) == []
    assert probability_best([(3, 10)]) == [1.0]


def test_probability_best_of_large_tests_stays_close_to_the_exact_sum():
    # Beyond EXACT_LIMIT conversions the normal approximation replaces the exact sum (one
    # term per conversion); it must agree with it.
    for k_a, k_b, n in ((2500, 2600, 50_000), (3000, 3000, 40_000), (2100, 2050, 2_400)):
        assert k_b > EXACT_LIMIT
        exact = _prob_b_beats_a((1 + k_a, 1 + n - k_a), (1 + k_b, 1 + n - k_b))
        a_best, b_best = probability_best([(k_a, n), (k_b, n)])
        assert b_best == pytest.approx(exact, abs=1e-3)
        assert a_best + b_best == pytest.approx(1.0)
    # A million conversions: no overflow, and the clearly better variant wins.
    assert probability_best([(1_000_000, 10**8), (1_050_000, 10**8)])[1] > 0.999
