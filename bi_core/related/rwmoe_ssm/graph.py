"""The ROI graph of RWMOE: group FC, k nearest neighbours, random-walk transitions and profiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import ConfigError, InputError

def group_fc_graph(series: Sequence[np.ndarray], k_neighbors: int = 8) -> np.ndarray:
    """Group functional-connectivity graph over ROIs.

    Parameters
    ----------
    series
        Recordings ``[n_frames, n_rois]`` each (same ROIs).
    k_neighbors
        Edges kept per ROI: its ``k`` most positively correlated ROIs (symmetrized by
        keeping an edge chosen by either end).

    Returns
    -------
    ndarray ``[n_rois, n_rois]``
        Non-negative symmetric weights (mean Pearson correlation), zero diagonal.

    Raises
    ------
    InputError
        On no recordings, different ROI counts or non-finite values.
    """
    if len(series) == 0:
        raise InputError("group_fc_graph needs at least one recording.")
    R = np.asarray(series[0]).shape[1] if np.ndim(series[0]) == 2 else -1
    acc = None
    for i, x in enumerate(series):
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != R or x.shape[0] < 3:
            raise InputError(f"recording {i} has shape {x.shape}; expected [n_frames >= 3, {R}] like the first.")
        if not np.isfinite(x).all():
            raise InputError(f"recording {i} has non-finite values; clean or drop it before building the graph.")
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.nan_to_num(np.corrcoef(x.T))  # constant ROIs have no correlation
        acc = c if acc is None else acc + c
    C = acc / len(series)
    np.fill_diagonal(C, 0.0)
    C = np.clip(C, 0.0, None)
    k = int(min(max(1, k_neighbors), R - 1))
    keep = np.zeros_like(C, dtype=bool)
    idx = np.argsort(-C, axis=1, kind="stable")[:, :k]
    keep[np.arange(R)[:, None], idx] = True
    keep |= keep.T
    A = np.where(keep, C, 0.0)
    np.fill_diagonal(A, 0.0)
    return A


def transition_matrix(A: np.ndarray) -> np.ndarray:
    """Random-walk transition matrix ``P = D⁻¹ A`` (rows sum to one; isolated ROIs stay put).

    Raises
    ------
    InputError
        On a non-square matrix or negative weights.
    """
    A = np.asarray(A, np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"adjacency must be square [n_rois, n_rois], got shape {A.shape}.")
    if (A < 0).any():
        raise InputError("adjacency weights must be non-negative (random-walk probabilities).")
    deg = A.sum(1)
    P = np.divide(A, deg[:, None], out=np.zeros_like(A), where=deg[:, None] > 0)
    iso = np.flatnonzero(deg == 0)
    P[iso, iso] = 1.0
    return P


#: Router logit of a ROI's own random-walk cluster at initialization (softmax weight ≈ 0.87 with 4 experts).
PRIOR_LOGIT = 3.0


def rw_clusters(features: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means labels ``[R]`` of the ROIs' random-walk profiles (deterministic for a seed)."""
    from sklearn.cluster import KMeans

    f = np.asarray(features, np.float64)
    k = int(min(n_clusters, len(np.unique(f.round(12), axis=0))))
    if k < 1:
        raise InputError("no ROI features to cluster.")
    return KMeans(n_clusters=k, n_init=4, random_state=int(seed)).fit_predict(f)


def random_walk_features(P: np.ndarray, steps: int = 3) -> np.ndarray:
    """k-step random-walk profile of each ROI: rows of ``P, P², …, P^steps`` side by side, ``[R, steps·R]``."""
    if steps < 1:
        raise ConfigError(f"rw_steps={steps} must be at least 1.")
    P = np.asarray(P, np.float64)
    out, Pk = [], np.eye(P.shape[0])
    for _ in range(int(steps)):
        Pk = Pk @ P
        out.append(Pk)
    return np.concatenate(out, axis=1)
