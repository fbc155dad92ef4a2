"""Intervals of a mean: one helper for every study (bi_core.stats)."""

import math

import numpy as np
import pytest
from scipy import stats

from bi_core.stats import mean_ci, t_interval


def test_t_interval_is_students():
    x = np.random.default_rng(0).normal(1.0, 2.0, 12)
    m, lo, hi = t_interval(x, 0.9)
    ref = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert m == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(ref)
    assert all(math.isnan(v) for v in t_interval(np.array([]))) and math.isnan(t_interval(np.array([3.0]))[1])
    assert math.isnan(t_interval(np.array([1.0, np.nan, 2.0]))[1])      # kept: the caller decides


def test_mean_ci_drops_non_finite_and_bounds_correlations():
    assert mean_ci(np.array([1.0, np.nan, 2.0, np.inf])) == t_interval(np.array([1.0, 2.0]))
    m, lo, hi = mean_ci(np.array([0.2, 0.99, 0.95]), fisher=True)
    assert -1 < lo < m < hi < 1
    assert all(math.isnan(v) for v in mean_ci(np.array([np.nan]), fisher=True))


def test_intervals_are_clipped_to_the_range_of_the_values():
    """An AUC of 0.90 and 0.99 over two repeats: the raw t interval reaches past 1."""
    auc = np.array([0.90, 0.99])
    m, lo, hi = t_interval(auc)
    assert hi > 1.4                                          # what the book printed before
    mc, loc, hic = t_interval(auc, clip=(0.0, 1.0))
    assert (mc, loc, hic) == (m, max(lo, 0.0), 1.0)
    assert mean_ci(np.array([0.9, -0.95, np.nan]), clip=(-1.0, 1.0))[1:] == (-1.0, 1.0)
    inside = np.array([0.5, 0.6, 0.55, 0.52])
    assert t_interval(inside, clip=(0.0, 1.0)) == t_interval(inside)          # a bound inside the range is kept


def test_wald_interval_is_the_normal_quantile_times_the_se():
    from scipy import stats

    from bi_core.stats import wald_interval

    lo, hi = wald_interval(2.0, 0.5)
    assert math.isclose(hi - 2.0, 2.0 - lo) and math.isclose(hi - lo, 2 * stats.norm.ppf(0.975) * 0.5)
    assert wald_interval(2.0, 0.5, 0.9)[1] < hi                     # a lower level, a narrower interval
