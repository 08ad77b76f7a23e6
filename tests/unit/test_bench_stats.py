"""The statistics the benchmark reports decide targets with (bench/common.py)."""

from __future__ import annotations

import random

import pytest

from bench.common import median_interval


@pytest.mark.parametrize(("n", "expected"), [(5, None), (6, (1, 6)), (11, (2, 10)), (20, (6, 15)), (30, (10, 21))])
def test_median_interval_is_the_textbook_order_statistics(n: int, expected: tuple[int, int] | None) -> None:
    """The 95% ranks from the binomial table (e.g. n = 20: the 6th and 15th values)."""
    values = list(range(1, n + 1))
    random.Random(n).shuffle(values)
    assert median_interval(values) == expected


def test_median_interval_covers_the_median_about_as_often_as_it_claims() -> None:
    rng = random.Random(7)
    trials, covered = 2000, 0
    for _ in range(trials):
        low, high = median_interval([rng.gauss(0.15, 0.05) for _ in range(11)])
        covered += low <= 0.15 <= high
    assert 0.97 <= covered / trials <= 1.0  # n = 11 at 95%: the (2, 10) pair covers 98.8%
