"""Ridge regression as the related studies use it: the penalty grids and one standardized ridge.

Every ridge here picks its penalty with scikit-learn's ``RidgeCV`` (efficient exact
leave-one-out on the training rows only), from one of two named grids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..folds import Splits

#: Ridge penalties 10⁻² … 10⁶ in half-decades (17): the ridge baselines of lmae-age, the RWMOE + SSM
#: read-out, and CM-JIVNet's edge-to-edge ridge baseline.
RIDGE_ALPHAS: tuple[float, ...] = tuple(np.logspace(-2, 6, 17).tolist())
#: Ridge penalties 10⁻³ … 10⁵ in half-decades (17): CM-JIVNet's behaviour prediction from latents and connectomes.
BEHAVIOUR_ALPHAS: tuple[float, ...] = tuple(np.logspace(-3, 5, 17).tolist())


def standardized_ridge(alphas: tuple[float, ...] = RIDGE_ALPHAS) -> Any:
    """An unfitted ``StandardScaler → RidgeCV(alphas)`` pipeline (features on any scale)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))


def ridge_predictions(X: np.ndarray, y: np.ndarray, folds: Splits,
                      alphas: tuple[float, ...] = RIDGE_ALPHAS) -> np.ndarray:
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
