"""Ridge regression as the related studies use it: out-of-fold predictions of the one standardized ridge.

Every ridge here is :func:`bi_core.stats.standardized_ridge`: scikit-learn's ``RidgeCV``
(efficient exact leave-one-out on the training rows only) over the one penalty grid
:data:`bi_core.stats.RIDGE_PENALTIES`.
"""

from __future__ import annotations


import numpy as np

from ..folds import Splits
from ..stats import RIDGE_PENALTIES, standardized_ridge


def ridge_predictions(X: np.ndarray, y: np.ndarray, folds: Splits,
                      alphas: tuple[float, ...] = RIDGE_PENALTIES) -> np.ndarray:
    """Out-of-fold predictions ``[n]`` of :func:`standardized_ridge` on features ``X`` ``[n, p]``.

    Each fold's model (scaling and penalty included) is fitted on its training rows only;
    rows in no test fold stay NaN.
    """
    out = np.full(len(y), np.nan)
    for tr, te in folds:
        m = standardized_ridge(alphas)
        m.fit(X[tr], y[tr])
        out[te] = m.predict(X[te])
    return out
