"""Confidence intervals of a mean: one helper for every study.

- :func:`t_interval` — mean ± ``t · SD / √n`` of the values as given (the interval over
  seeds, folds or CV repeats), optionally clipped to the values' range (an AUC interval
  never reaches past 1, a share past [0, 1]).
- :func:`mean_ci` — the same over the finite values only, optionally for correlations
  (averaged and bounded in Fisher-z space).
"""

from __future__ import annotations

import math

import numpy as np


def t_interval(x: np.ndarray, level: float = 0.95,
               clip: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of the mean of ``x`` ``[n]``.

    Parameters
    ----------
    clip
        ``(low, high)``: the range the values can take (``(0, 1)`` for an AUC or a share,
        ``(-1, 1)`` for a correlation); the bounds are clipped to it.

    Returns
    -------
    (mean, low, high)
        NaN bounds when ``n < 2`` (NaN mean too when ``n == 0``). Non-finite values are
        kept (a NaN makes the interval NaN); :func:`mean_ci` drops them.
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    lo, hi = m - h, m + h
    if clip is not None:
        lo, hi = float(np.clip(lo, *clip)), float(np.clip(hi, *clip))
    return m, lo, hi


def mean_ci(x: np.ndarray, level: float = 0.95, fisher: bool = False,
            clip: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and t-based confidence interval of the finite values of ``x`` (NaNs when < 2).

    ``fisher``: ``x`` are correlations, averaged and bounded in Fisher-z space
    (``tanh(mean(arctanh x) ± t·SE)``), so the interval stays inside (-1, 1).
    ``clip``: the values' range, as in :func:`t_interval`.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if fisher and len(x):
        m, lo, hi = t_interval(np.arctanh(np.clip(x, -0.999999, 0.999999)), level)
        return float(np.tanh(m)), float(np.tanh(lo)), float(np.tanh(hi))
    return t_interval(x, level, clip)
