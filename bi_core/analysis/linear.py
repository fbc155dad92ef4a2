"""Linear references for network predictability: ridge regression on exactly the model's windows.

The model's predictability (:func:`~bi_core.analysis.predictability.predictability`) masks a
network and reconstructs it from the rest of the brain. How good is that? These references
answer with a model-free predictor scored on the same recordings, preprocessing, TR
resampling, windows, frames and R² definition:

- the cohort is TR-harmonized to the checkpoint's ``target_tr`` (and re-z-scored,
  :meth:`bi_core.cohort.Cohort.harmonized`) and cut into the windows of ``info.window``
  frames that tile every recording (:class:`bi_core.windows.TiledWindows`, the last one
  aligned to the recording's end) — the very windows the model's table scores;
- every frame of every window is predicted and scored with the same running sums and table
  code (:class:`~bi_core.analysis.predictability._Sums`,
  ``_predictability_table``): ``r2`` = 1 − SSE/SST pooled over the network's ROIs and all
  frames of all windows of a recording (SST about each ROI's mean over those windows),
  ``pearson_r`` the mean over the network's ROIs.

Methods (:data:`METHODS`)
-------------------------
``ridge``
    Each ROI of the masked network from every ROI outside it at the same frame
    (scikit-learn's :class:`~sklearn.linear_model.Ridge` fit, one multi-output fit per network: :class:`RidgeFit`).
``lagged-ridge``
    The same inputs plus their copies at :data:`LAGS` frames (−2, −1, +1, +2 frames: 3 s
    and 1.5 s at the default TR of 1.5 s), taken *within the window* — the information
    the model's window holds. Rule at the window's edges: a lagged copy that would fall
    outside the window repeats the window's edge frame (edge padding) when scoring, so
    every frame of every window is scored; fitting uses only frames whose lagged copies
    all lie inside the window (``T − 4`` frames per window), so the coefficients are not
    fitted to padded values.

Fitting
-------
- **Penalty**: one per fit and target network, from the log-spaced grid :data:`PENALTIES`
  (scikit-learn's ``alpha``; the series are z-scored, so it is in units of frames), chosen
  by :data:`INNER_FOLDS`-fold subject-grouped inner cross-validation
  (:class:`~sklearn.model_selection.GroupKFold`) on the fitting subjects only, minimizing
  the SSE pooled over the network's ROIs; then refitted on all fitting frames. (Two inner
  folds are the cheapest; three gave the same R² on the default cohort.)
- **Frames**: a fit uses at most :data:`MAX_FIT_FRAMES` (15,000) frames, drawn at random (``seed``)
  from the fitting windows' frames; every fold's fits (all target networks, occlusion
  included) use the same draw. Scoring always uses every frame.
- **No leak**: the scored subject is never in a fit (nor in the penalty's inner CV).

Three ways to choose the fitting data
-------------------------------------
(a) *cross-fitted* (default): the scored recordings are split into ``folds``
    subject-grouped folds (``GroupKFold`` by subject; leave-one-subject-out when there are
    fewer subjects, at least 3); each fold is scored by a fit on the other folds' subjects.
(b) *another cohort* (``fit_cohort``): fit on every recording of one or several cohorts
    on the same atlas (e.g. the run's pretraining cohort — how the model was trained) and
    score ``cohort``. A subject label present among the scored recordings is left out of
    the fit.
(c) *training subjects* (``train_subjects``, e.g. the run's training split from its
    ``summary.json``): fit on those subjects (of ``fit_cohort``, default ``cohort``) and
    score the recordings of the other subjects of ``cohort``.

Linear occlusion
----------------
``linear_occlusion_delta_r2`` (per recording × target × source): the ridge's R² of the
target with all inputs minus its R² with the source network's ROIs (every lag of them)
also left out of the inputs, refitted on the same frames with the same penalty (chosen
once for the full inputs, so the difference reflects the inputs, not the penalty) — the
model-free reference for the model's ``occlusion_delta_r2``
(:mod:`bi_core.analysis.interactions`).

Cost (measured on the default synthetic cohort, 54 ROIs, one BLAS thread, a busy 2-core
CPU): cross-fitted on the 150 baseline recordings (5 folds), ridge with its occlusion takes
5–10 s and lagged ridge 12–18 s; fitted on the pretraining cohort and scoring all 467
evaluation recordings, 2 s and 5 s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..errors import ConfigError, InputError
from ..folds import balanced_subject_folds, plan_folds
from ..stats import RIDGE_PENALTIES
from ..windows import TiledWindows, windows_of
from .predictability import _predictability_table, _Sums, recording_meta

#: The linear reference methods (the model's own table is method ``model``).
METHODS: tuple[str, ...] = ("ridge", "lagged-ridge")
#: Frame lags of the inputs per method (0 = the same frame); lags stay within the window.
LAGS: dict[str, tuple[int, ...]] = {"ridge": (0,), "lagged-ridge": (-2, -1, 0, 1, 2)}
#: The ridge penalty grid (scikit-learn ``alpha``, z-scored series), searched by inner CV: the package's one grid.
PENALTIES: np.ndarray = np.asarray(RIDGE_PENALTIES)
#: Subject-grouped folds of the inner CV that picks the penalty.
INNER_FOLDS = 2
#: Most frames one fit uses (a seeded random draw of the fitting windows' frames).
MAX_FIT_FRAMES = 15_000
#: Subject-grouped folds of cross-fitting (mode (a)).
DEFAULT_FOLDS = 5
_CHUNK = 256  # windows per prediction chunk (bounds the memory of the scoring design matrix)


@dataclass
class _Windows:
    """The tiled windows of a set of recordings, in memory.

    ``x`` float32 ``[N, n_rois, T]`` (ROI-major, as the model gets them); ``rec`` ``[N]``
    position of each window's recording in ``tiles.recordings_set``; ``subject`` ``[N]``.
    """

    x: np.ndarray
    rec: np.ndarray
    subject: np.ndarray

    @classmethod
    def read(cls, tiles: TiledWindows) -> _Windows:
        rec = tiles.index["recording"].to_numpy(np.int64)
        x = tiles.recordings_set.read(rec, tiles.index["start"].to_numpy(np.int64), tiles.window)
        return cls(x, rec, tiles.recordings_set.table["subject"].astype(str).to_numpy()[rec])

    def features(self, w: np.ndarray, t: np.ndarray, sources: np.ndarray, lags: Sequence[int]) -> np.ndarray:
        """Inputs of frames ``(w[i], t[i])``: ``sources`` at frame ``t + lag`` of the same window.

        Returns float64 ``[n, len(lags) * len(sources)]`` (lag-major columns); a lag outside
        the window repeats the window's edge frame.
        """
        tt = np.clip(t[:, None] + np.asarray(lags)[None, :], 0, self.x.shape[2] - 1)     # [n, L]
        return self.x[w[:, None, None], sources[None, None, :], tt[:, :, None]].reshape(len(w), -1).astype(np.float64)

    def targets(self, w: np.ndarray, t: np.ndarray, rois: np.ndarray) -> np.ndarray:
        """True values of ``rois`` at frames ``(w[i], t[i])``, float64 ``[n, len(rois)]``."""
        return self.x[w[:, None], rois[None, :], t[:, None]].astype(np.float64)


def _check_method(method: str) -> tuple[int, ...]:
    if method not in METHODS:
        raise ConfigError(f"unknown linear reference method {method!r}; choose one of {list(METHODS)}.")
    return LAGS[method]


@dataclass(frozen=True)
class RidgeFit:
    """A fitted multi-output ridge with intercept: ``predict(X) = X @ coef.T + intercept``.

    ``coef`` ``[n_targets, n_features]``, ``intercept`` ``[n_targets]``: scikit-learn's
    ``Ridge(alpha, solver="cholesky")`` fit, computed as scikit-learn computes it (centre,
    ``(XᵀX + αI) w = XᵀY`` by a positive-definite solve) without its per-call input checks,
    which took longer than the solve on these small problems (thousands per table). Equal to
    scikit-learn's fit (tests/test_linear.py).
    """

    coef: np.ndarray
    intercept: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, alpha: float) -> RidgeFit:
        """Fit on float rows ``X`` ``[n, p]`` and targets ``Y`` ``[n, k]`` with penalty ``alpha`` > 0."""
        from scipy import linalg

        x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
        Xc = X - x_mean
        A = Xc.T @ Xc
        A.flat[:: A.shape[0] + 1] += alpha
        coef = linalg.solve(A, Xc.T @ (Y - y_mean), assume_a="pos", overwrite_a=True).T
        return cls(coef, y_mean - x_mean @ coef.T)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions ``[m, n_targets]`` for rows ``X`` ``[m, n_features]``."""
        return X @ self.coef.T + self.intercept


def _fit_ridge(X: np.ndarray, Y: np.ndarray, subjects: np.ndarray,
               alpha: float | None = None) -> tuple[RidgeFit, float]:
    """Multi-output ridge of ``Y`` ``[n, n_targets]`` on ``X`` ``[n, n_features]``.

    With ``alpha=None`` the penalty is chosen from :data:`PENALTIES` by
    :data:`INNER_FOLDS`-fold ``GroupKFold`` over ``subjects`` ``[n]`` (pooled SSE,
    :func:`penalty_sse`).

    Returns
    -------
    (RidgeFit, alpha)
        The ridge refitted on all rows, and its penalty.
    """
    if alpha is None:
        sse = np.zeros(len(PENALTIES))
        for tr, va in balanced_subject_folds(subjects, min(INNER_FOLDS, len(np.unique(subjects)))):
            sse += penalty_sse(X[tr], Y[tr], X[va], Y[va], PENALTIES)
        alpha = float(PENALTIES[int(np.argmin(sse))])
    return RidgeFit.fit(X, Y, alpha), float(alpha)


def penalty_sse(X: np.ndarray, Y: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray,
                penalties: Sequence[float]) -> np.ndarray:
    """Validation SSE of ridge (with intercept) fitted on ``(X, Y)`` at each of ``penalties``.

    The ridge of scikit-learn's ``Ridge(alpha, fit_intercept=True)``, solved for every penalty
    from one eigendecomposition of the centred ``XᵀX`` (``w(α) = V (S + α)⁻¹ Vᵀ XᵀY``):
    one ``p × p`` factorization per fit instead of one per penalty and target, which is what
    scikit-learn's Cholesky solver does when penalties differ between targets. Equal to
    scikit-learn's to rounding (tests/test_linear.py).

    Parameters
    ----------
    X, Y : ndarray
        Fitting rows ``[n, p]`` and targets ``[n, k]``.
    X_val, Y_val : ndarray
        Validation rows ``[m, p]`` and targets ``[m, k]``.
    penalties : sequence of float
        Positive penalties ``α``.

    Returns
    -------
    ndarray
        ``[len(penalties)]``: the sum over rows and targets of the squared validation error.
    """
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    Xc = X - x_mean
    s, V = np.linalg.eigh(Xc.T @ Xc)
    B = V.T @ (Xc.T @ (Y - y_mean))                    # [p, k]: the data term in the eigenbasis
    P = (X_val - x_mean) @ V                           # [m, p]
    Yv = Y_val - y_mean
    return np.array([float(((P @ (B / (s + a)[:, None]) - Yv) ** 2).sum()) for a in penalties])


def _fit_frames(windows: np.ndarray, T: int, lags: Sequence[int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fitting frames ``(window, frame)`` of ``windows``: those whose lagged copies all lie in
    the window, at most :data:`MAX_FIT_FRAMES` of them (a random draw, in storage order)."""
    t = np.arange(max(0, -min(lags)), T - max(0, max(lags)))
    w, tt = np.repeat(windows, len(t)), np.tile(t, len(windows))
    if len(w) > MAX_FIT_FRAMES:
        keep = np.sort(rng.choice(len(w), MAX_FIT_FRAMES, replace=False))
        w, tt = w[keep], tt[keep]
    return w, tt


def _score_frames(windows: np.ndarray, T: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Chunks of scored windows and all their frames: ``(chunk, w, t)`` with ``w, t`` ``[len(chunk) * T]``."""
    for a in range(0, len(windows), _CHUNK):
        chunk = windows[a: a + _CHUNK]
        yield chunk, np.repeat(chunk, T), np.tile(np.arange(T), len(chunk))


def _as_windows(pred: np.ndarray, T: int) -> np.ndarray:
    """Frame-major predictions ``[B * T, n]`` (from :func:`_score_frames`) → ``[B, n, T]``."""
    return pred.reshape(-1, T, pred.shape[1]).transpose(0, 2, 1)


def _plan(score: _Windows, fit: _Windows | None, folds: int,
          where: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """``(fitting window positions, scored window positions)`` per fit; the fitting ones index
    ``fit`` (or ``score`` when cross-fitting, ``fit=None``). Also returns how the folds differ
    from ``folds`` (leave-one-subject-out with fewer subjects; empty when they do not)."""
    note = ""
    if fit is not None:
        plans = [(np.arange(len(fit.x)), np.arange(len(score.x)))]
        fit_subjects = [fit.subject]
    else:
        n_sub = len(np.unique(score.subject))
        if n_sub < INNER_FOLDS + 1:
            raise InputError(f"cross-fitting {where} needs at least {INNER_FOLDS + 1} subjects (each fit chooses "
                             f"its penalty by CV over {INNER_FOLDS} or more other subjects), it has {n_sub}; fit "
                             "on another cohort (--fit-cohort).")
        plan = plan_folds(folds, score.subject, what=f"cross-fitting {where}")
        note = plan.describe("folds", repeated=False) if plan.adapted else ""
        plans = balanced_subject_folds(score.subject, plan.n_splits)
        fit_subjects = [score.subject[f] for f, _ in plans]
    for s in fit_subjects:
        if len(np.unique(s)) < 2:
            raise InputError(f"{where}: a linear reference is fitted on at least 2 subjects (the penalty is chosen "
                             f"by subject-grouped CV), found {len(np.unique(s))}; add subjects or use more folds.")
    return plans, note


def _data(info: Any, cohort: Cohort, fit_cohort: Cohort | Sequence[Cohort] | None,
          train_subjects: Sequence[str] | None, recordings: Sequence[str] | None,
          cache_dir: str | Path | None, shared: TiledWindows | None = None
          ) -> tuple[TiledWindows, _Windows, _Windows | None, dict[str, Any]]:
    """The scored windows and, unless cross-fitting, the fitting windows (modes (b), (c)).

    Returns ``(tiles, score, fit, description)``; ``fit`` is ``None`` when cross-fitting.
    """
    T = int(info.window)
    fits = [] if fit_cohort is None else [fit_cohort] if isinstance(fit_cohort, Cohort) else list(fit_cohort)
    for c in [cohort, *fits]:
        info.atlas.check_same(c.atlas, what=f"checkpoint {info.path} and cohort {c.path}")
    tiles = windows_of(info, cohort, recordings, shared, cache_dir)
    score = _Windows.read(tiles)
    if train_subjects is None and not fits:
        return tiles, score, None, {"mode": "cross-fit", "fit_cohorts": [str(cohort.path)]}
    fit_cohorts = fits or [cohort]
    fit_where = ", ".join(str(c.path) for c in fit_cohorts)
    fit = _Windows.read(TiledWindows(fit_cohorts, T, target_tr=info.target_tr, cache_dir=cache_dir))
    if train_subjects is None:
        keep = ~np.isin(fit.subject, score.subject)           # never fit on a scored subject
        left_out = sorted(set(fit.subject[~keep]))
    else:
        wanted = np.unique(np.asarray(list(train_subjects), dtype=str))
        missing = wanted[~np.isin(wanted, fit.subject)]
        if len(missing):
            raise InputError(f"{len(missing)} training subject(s) have no window in {fit_where} "
                             f"(e.g. {list(missing[:3])}); pass the cohort(s) the subjects come from.")
        keep = np.isin(fit.subject, wanted)
        scored = ~np.isin(score.subject, wanted)               # score the other subjects only
        if not scored.any():
            raise InputError(f"every subject of cohort {cohort.path} is a training subject; nothing left to score.")
        left_out = sorted(set(score.subject[~scored]))
        ids = tiles.recordings_set.table["recording_id"].to_numpy()[np.unique(score.rec[scored])]
        tiles = tiles.subset(list(ids))
        score = _Windows.read(tiles)
    fit = _Windows(fit.x[keep], fit.rec[keep], fit.subject[keep])
    mode = "fit cohort" if train_subjects is None else "training subjects"
    return tiles, score, fit, {"mode": mode, "fit_cohorts": [str(c.path) for c in fit_cohorts],
                               "n_fit_subjects": len(np.unique(fit.subject)), "left_out_subjects": left_out}


def linear_predictability_and_occlusion(
        info: Any, cohort: Cohort, method: str = "ridge", *, fit_cohort: Cohort | Sequence[Cohort] | None = None,
        train_subjects: Sequence[str] | None = None, folds: int = DEFAULT_FOLDS,
        recordings: Sequence[str] | None = None, occlusion: bool = True, seed: int = 0,
        cache_dir: str | Path | None = None, progress: bool = False, tiles: TiledWindows | None = None
        ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Linear-reference predictability (and occlusion) on the model's windows.

    Parameters
    ----------
    info
        :class:`bi_core.train.CheckpointInfo` of the run (from :func:`bi_core.train.load_model`):
        ``atlas``, ``window`` (frames) and ``target_tr`` (s) fix the windows.
    cohort
        The cohort to score (on the run's atlas).
    method
        ``ridge`` or ``lagged-ridge`` (:data:`METHODS`).
    fit_cohort
        Fit on this cohort (or these cohorts) instead of cross-fitting on ``cohort``: mode (b).
    train_subjects
        Fit only on these subjects (of ``fit_cohort``, default ``cohort``) and score the
        other subjects of ``cohort``: mode (c).
    folds
        Subject-grouped folds of cross-fitting (mode (a), neither of the above given).
    recordings
        Score only these recording ids of ``cohort`` (when cross-fitting, fit on them too).
    occlusion
        Also compute the linear occlusion ΔR² (K·(K−1) refits per fold, same frames and penalty).
    seed
        Seed of the fitting-frame draw (:data:`MAX_FIT_FRAMES`).
    cache_dir
        Where TR-harmonized copies are cached (default: the user cache, :meth:`bi_core.cohort.Cohort.harmonized`).
    progress
        Show a progress bar (one step per fold and target network).
    tiles
        ``cohort``'s windows when a run's analyses share them (:func:`bi_core.windows.windows_of`).

    Returns
    -------
    (DataFrame, DataFrame or None)
        The predictability table ``recording_id, subject, session, network, r2, pearson_r,
        n_windows, method`` and, with ``occlusion``, the occlusion table ``recording_id,
        subject, session, target, source, linear_occlusion_delta_r2, n_windows, method``.
        Recordings shorter than one window are left out (``attrs["skipped"]``);
        ``attrs["fit"]`` says how the reference was fitted and ``attrs["penalties"]``
        lists each fit's penalty.
    """
    from threadpoolctl import threadpool_limits

    lags = _check_method(method)
    T = int(info.window)
    if T - max(lags) + min(lags) < 1:
        raise ConfigError(f"{method}: a window of {T} frames is too short for lags {list(lags)}.")
    tiles, score, fit, how = _data(info, cohort, fit_cohort, train_subjects, recordings, cache_dir, tiles)
    plans, note = _plan(score, fit, folds, f"cohort(s) {', '.join(how['fit_cohorts'])}")
    how.update(method=method, folds=len(plans) if fit is None else None, max_fit_frames=MAX_FIT_FRAMES)
    if note:
        how["note"] = note
    source = score if fit is None else fit
    atlas = info.atlas
    K, R = atlas.n_networks, atlas.n_rois
    net_of = atlas.network_index
    rois = [np.flatnonzero(net_of == k) for k in range(K)]
    n_rec = len(tiles.recordings_set)
    counts = np.bincount(score.rec, minlength=n_rec)
    frames = counts * float(T)
    sums = _Sums.zeros((n_rec, K, R))
    occ = _Sums.zeros((n_rec, K, K, R)) if occlusion else None
    penalties: list[dict[str, Any]] = []
    rng = np.random.default_rng([int(seed), 0x11AE])
    jobs: Any = [(f, k) for f in range(len(plans)) for k in range(K)]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc=f"{method} reference", unit="fit")
    fit_rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    # one BLAS thread: many small solves; measured several times faster than two threads
    # on a busy 2-core machine (and the book's steps run with one BLAS thread anyway)
    with threadpool_limits(1, user_api="blas"):
        for f, k in jobs:
            fit_win, score_win = plans[f]
            if f not in fit_rows:     # one frame draw per fold, shared by its networks and occlusion fits
                fit_rows[f] = _fit_frames(fit_win, T, lags, rng)
            w, t = fit_rows[f]
            srcs = np.flatnonzero(net_of != k)
            X, Y, groups = source.features(w, t, srcs, lags), source.targets(w, t, rois[k]), source.subject[w]
            model, alpha = _fit_ridge(X, Y, groups)
            penalties.append({"fold": f, "network": atlas.networks[k], "alpha": alpha})
            hidden: dict[int, tuple[RidgeFit, np.ndarray]] = {}
            for n in range(K) if occ is not None else ():
                if n != k:
                    cols = np.tile(net_of[srcs] != n, len(lags))       # lag-major columns without n's ROIs
                    hidden[n] = (_fit_ridge(X[:, cols], Y, groups, alpha=alpha)[0], cols)
            for chunk, sw, st in _score_frames(score_win, T):
                Xs = score.features(sw, st, srcs, lags)
                y = score.x[chunk][:, rois[k], :].astype(np.float64)                    # [B, n_k, T]
                sums.add(score.rec[chunk], (k,), rois[k], y, _as_windows(model.predict(Xs), T))
                for n, (m_n, cols) in hidden.items():
                    occ.add(score.rec[chunk], (k, n), rois[k], y, _as_windows(m_n.predict(Xs[:, cols]), T))
    table = recording_meta(tiles, cohort)
    pred = _predictability_table(sums, frames, counts, rois, table, atlas.networks).assign(method=method)
    occ_table = None if occ is None else _occlusion_table(sums, occ, frames, counts, rois, table, atlas.networks, method)
    for t_ in (pred, occ_table):
        if t_ is not None:
            t_.attrs.update(skipped=list(tiles.skipped), fit=how, penalties=penalties)
    return pred, occ_table


def _occlusion_table(sums: _Sums, occ: _Sums, frames: np.ndarray, counts: np.ndarray, rois: list[np.ndarray],
                     table: pd.DataFrame, networks: tuple[str, ...], method: str) -> pd.DataFrame:
    """Tidy per (recording, target, source) ΔR² = R²(all inputs) − R²(source left out)."""
    rows = []
    for k, target in enumerate(networks):
        r2_full = sums.scores(frames, (k,), rois[k])[0]
        for n, src in enumerate(networks):
            if n == k:
                continue
            dr2 = r2_full - occ.scores(frames, (k, n), rois[k])[0]
            for i in np.flatnonzero(counts):
                rows.append({"recording_id": table["recording_id"].iloc[i], "subject": table["subject"].iloc[i],
                             "session": table["session"].iloc[i], "target": target, "source": src,
                             "linear_occlusion_delta_r2": float(dr2[i]), "n_windows": int(counts[i]),
                             "method": method})
    return pd.DataFrame(rows).sort_values("recording_id", kind="stable").reset_index(drop=True)


def linear_predictability(info: Any, cohort: Cohort, method: str = "ridge", **kw: Any) -> pd.DataFrame:
    """Per (recording, network) R² and Pearson r of a linear reference (no occlusion).

    Same parameters and table as :func:`linear_predictability_and_occlusion`.
    """
    return linear_predictability_and_occlusion(info, cohort, method, occlusion=False, **kw)[0]


def linear_occlusion(info: Any, cohort: Cohort, method: str = "ridge", **kw: Any) -> pd.DataFrame:
    """Per (recording, target, source) ``linear_occlusion_delta_r2`` of a linear reference.

    Same parameters as :func:`linear_predictability_and_occlusion`; returns its occlusion table.
    """
    out = linear_predictability_and_occlusion(info, cohort, method, occlusion=True, **kw)[1]
    assert out is not None
    return out


__all__ = [
    "DEFAULT_FOLDS",
    "INNER_FOLDS",
    "LAGS",
    "MAX_FIT_FRAMES",
    "METHODS",
    "PENALTIES",
    "linear_occlusion",
    "linear_predictability",
    "linear_predictability_and_occlusion",
]
