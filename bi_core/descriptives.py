"""Descriptive statistics of cohorts: who is in them and what their connectivity looks like.

Used by the cohorts chapter to put synthetic and real recordings side by side with the
same summary statistics, computed on TR-harmonized, z-scored series.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cohort import Cohort, default_level_order


def cohort_overview(cohort: Cohort, by: str = "dataset") -> pd.DataFrame:
    """One row per dataset (or site): subjects, recordings, TR, frames, minutes, age, diagnoses.

    Parameters
    ----------
    cohort
        An opened cohort store.
    by
        Grouping column of the recordings table (``dataset`` or ``site``).
    """
    t = cohort.table
    rows = []
    for key, g in t.groupby(by, sort=True):
        row = {
            by: key,
            "subjects": int(g["subject"].nunique()),
            "recordings": int(len(g)),
            "TR (s)": ", ".join(f"{v:g}" for v in sorted(g["tr"].unique())),
            "frames (median)": float(g["n_frames"].median()),
            "minutes (median)": round(float((g["tr"] * g["n_frames"]).median() / 60), 1),
            "age (mean ± SD)": (f"{g['age'].mean():.1f} ± {g['age'].std():.1f}" if g["age"].notna().any() else "n/a"),
        }
        if g["diagnosis"].notna().any():
            counts = g["diagnosis"].value_counts()
            row["diagnosis"] = ", ".join(f"{d} {int(counts.get(d, 0))}" for d in default_level_order(t["diagnosis"].dropna()))
        else:
            row["diagnosis"] = "unlabeled"
        rows.append(row)
    return pd.DataFrame(rows)


def network_signals(x: np.ndarray, network_index: np.ndarray, n_networks: int) -> np.ndarray:
    """Mean signal of each network, ``[n_frames, n_networks]`` from ``x`` ``[n_frames, n_rois]``."""
    x = np.asarray(x, dtype=np.float64)
    onehot = np.zeros((len(network_index), n_networks))
    onehot[np.arange(len(network_index)), network_index] = 1.0
    return x @ (onehot / onehot.sum(0, keepdims=True))


def network_fc(cohort: Cohort, rows: np.ndarray | None = None) -> np.ndarray:
    """Correlation between network-mean signals per recording, ``[n_recordings, K, K]``."""
    idx = np.arange(len(cohort)) if rows is None else np.asarray(rows)
    ni, K = cohort.atlas.network_index, cohort.atlas.n_networks
    return np.stack([np.corrcoef(network_signals(cohort.series(i), ni, K).T) for i in idx])


def roi_fc(x: np.ndarray) -> np.ndarray:
    """ROI-level Pearson correlation ``[n_rois, n_rois]`` (nilearn ConnectivityMeasure)."""
    from nilearn.connectome import ConnectivityMeasure

    return ConnectivityMeasure(kind="correlation", standardize="zscore_sample").fit_transform([np.asarray(x, np.float64)])[0]


#: Readable names of the :func:`fc_summary` statistics (figure titles and tables).
STAT_LABELS: dict[str, str] = {"within_fc": "within-network FC", "between_fc": "between-network FC",
                               "fc_contrast": "within − between FC", "mean_abs_fc": "mean |FC|",
                               "pc1_share": "PC1 variance share", "lag1_autocorr": "lag-1 autocorrelation",
                               "lowfreq_power": "0.01–0.1 Hz power share"}


def fc_summary(cohort: Cohort, label: str | None = None, max_recordings: int | None = None,
               seed: int = 0) -> pd.DataFrame:
    """Per-recording connectivity and signal statistics (one row per recording).

    Columns: ``within_fc`` / ``between_fc`` (mean ROI-pair correlation inside / across
    networks), ``fc_contrast`` (their difference), ``mean_abs_fc``, ``pc1_share`` (variance
    share of the first principal component of the ROI signals), ``lag1_autocorr`` (mean
    lag-one autocorrelation at the cohort's TR) and ``lowfreq_power`` (share of power
    between 0.01 and 0.1 Hz). Compute it on TR-harmonized cohorts to compare sources.

    Parameters
    ----------
    label
        Value of the ``source`` column (defaults to the cohort name).
    max_recordings
        Random subset size (seeded) for large cohorts.
    """
    n = len(cohort)
    idx = np.arange(n)
    if max_recordings is not None and n > max_recordings:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_recordings, replace=False))
    ni = cohort.atlas.network_index
    same = (ni[:, None] == ni[None, :]) & ~np.eye(len(ni), dtype=bool)
    diff = ni[:, None] != ni[None, :]
    rows = []
    for i in idx:
        row = cohort.table.iloc[int(i)]
        x = np.asarray(cohort.series(int(i)), dtype=np.float64)
        F = roi_fc(x)
        off = ~np.eye(len(F), dtype=bool)
        ev = np.linalg.eigvalsh(np.corrcoef(x.T))
        xs = (x - x.mean(0)) / x.std(0)
        lag1 = float(np.mean((xs[1:] * xs[:-1]).mean(0)))
        freqs = np.fft.rfftfreq(len(x), d=float(row["tr"]))
        power = (np.abs(np.fft.rfft(xs, axis=0)) ** 2).mean(1)
        band = (freqs >= 0.01) & (freqs <= 0.1)
        rows.append({
            "source": label or cohort.name,
            "recording_id": row["recording_id"],
            "dataset": row["dataset"],
            "tr": float(row["tr"]),
            "within_fc": float(F[same].mean()),
            "between_fc": float(F[diff].mean()),
            "fc_contrast": float(F[same].mean() - F[diff].mean()),
            "mean_abs_fc": float(np.abs(F[off]).mean()),
            "pc1_share": float(ev[-1] / ev.sum()),
            "lag1_autocorr": lag1,
            "lowfreq_power": float(power[band].sum() / power[freqs > 0].sum()),
        })
    return pd.DataFrame(rows)
