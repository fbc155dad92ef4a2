"""Group differences per cell (network, or target × source pair) with covariates and FDR.

For every cell, an ordinary least-squares model (statsmodels)
``value ~ C(diagnosis, Treatment("CN")) + age + C(sex) + C(site)`` is fitted on baseline
visits; the AD−CN and MCI−CN coefficients are the adjusted group differences. p-values are
corrected with Benjamini–Hochberg across cells, separately for each contrast. The
effect size is the adjusted difference divided by the residual standard deviation
(an adjusted Cohen's d).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

CONTRASTS: tuple[tuple[str, str], ...] = (("AD", "CN"), ("MCI", "CN"))


def baseline_rows(table: pd.DataFrame) -> np.ndarray:
    """Boolean mask of each subject's first visit (smallest ``years_from_baseline``, else first row)."""
    if "years_from_baseline" in table and table["years_from_baseline"].notna().any():
        yrs = table["years_from_baseline"].fillna(np.inf)
        first = yrs.groupby(table["subject"]).transform("min")
        mask = (yrs == first).to_numpy()
        # one row per subject even if two visits tie: the first of the tied rows
        tied_later = pd.Series(table["subject"].to_numpy()).where(mask).duplicated(keep="first").to_numpy()
        return mask & ~(tied_later & mask)
    return ~table.duplicated("subject", keep="first").to_numpy()


def check_groups(table: pd.DataFrame, need: Sequence[str] = ("CN",), min_per_group: int = 2,
                 what: str = "this analysis") -> pd.Series:
    """Validate the diagnosis column and return the per-group subject counts."""
    if "diagnosis" not in table or table["diagnosis"].notna().sum() == 0:
        raise InputError(f"{what} needs diagnoses (CN/MCI/AD), but the cohort has none; use a labelled cohort "
                         "(e.g. the synthetic eval cohort, or a participants.tsv with a diagnosis column).")
    counts = table.dropna(subset=["diagnosis"]).groupby("diagnosis")["subject"].nunique()
    if len(counts) < 2:
        raise InputError(f"{what} compares diagnosis groups, but only one group is present "
                         f"({counts.index[0]}: {int(counts.iloc[0])} subjects).")
    missing = [g for g in need if g not in counts]
    if missing:
        raise InputError(f"{what} needs the reference group(s) {missing}; groups present: {dict(counts)}.")
    small = {g: int(n) for g, n in counts.items() if n < min_per_group}
    if small:
        raise InputError(f"{what}: too few subjects in group(s) {small} (need at least {min_per_group} each).")
    return counts


def _covariate_terms(df: pd.DataFrame, covariates: Sequence[str]) -> list[str]:
    terms = []
    for c in covariates:
        if c not in df:
            raise InputError(f"covariate {c!r} is not a column of the recordings table; available: {list(df.columns)}.")
        col = df[c]
        if col.isna().any():
            raise InputError(f"covariate {c!r} has missing values in {int(col.isna().sum())} rows; fill them or drop "
                             "the covariate.")
        if col.nunique() < 2:
            continue  # a constant covariate (e.g. a single site) carries no information
        terms.append(f"C({c})" if col.dtype == object or isinstance(col.dtype, pd.StringDtype) or c in ("sex", "site")
                     else c)
    return terms


def group_differences(df: pd.DataFrame, value: str, cells: Sequence[str], covariates: Sequence[str] = ("age", "sex", "site"),
                      contrasts: Sequence[tuple[str, str]] = CONTRASTS, alpha: float = 0.05) -> pd.DataFrame:
    """Adjusted group differences per cell with Benjamini–Hochberg FDR.

    Parameters
    ----------
    df
        Tidy table, one row per (recording, cell), already restricted to baseline visits,
        with ``subject``, ``diagnosis``, the covariates, the cell columns and ``value``.
    value
        Column to compare (e.g. ``r2``, ``attention``).
    cells
        Columns that identify a cell (e.g. ``["network"]`` or ``["target", "source"]``).
    covariates
        Adjustment variables; constant ones are dropped.
    contrasts
        ``(group, reference)`` pairs.

    Returns
    -------
    DataFrame
        One row per (cell, contrast): ``estimate`` (adjusted difference), ``se``, ``t``,
        ``p``, ``ci_low``/``ci_high`` (95 %), ``cohens_d``, ``mean_group``, ``mean_ref``,
        ``n_group``, ``n_ref``, ``q`` (BH-FDR within the contrast) and ``significant``.
    """
    import patsy
    import statsmodels.api as sm
    from statsmodels.stats.multitest import multipletests

    refs = sorted({r for _, r in contrasts})
    check_groups(df, need=refs, what=f"group comparison of {value!r}")
    terms = _covariate_terms(df, covariates)
    rows = []
    # cells usually share their recordings: the design matrix of a row set is built once
    # (covariates are per recording, so the same rows give the same design)
    designs: dict[tuple[str, tuple[Any, ...]], pd.DataFrame] = {}
    for key, g in df.groupby(list(cells), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g.dropna(subset=[value, "diagnosis"])
        for grp, ref in contrasts:
            sub = g[g["diagnosis"].isin([grp, ref])].copy()
            n_g, n_r = int((sub["diagnosis"] == grp).sum()), int((sub["diagnosis"] == ref).sum())
            base = dict(zip(cells, key), contrast=f"{grp}-{ref}", n_group=n_g, n_ref=n_r,
                        mean_group=float(sub.loc[sub["diagnosis"] == grp, value].mean()) if n_g else np.nan,
                        mean_ref=float(sub.loc[sub["diagnosis"] == ref, value].mean()) if n_r else np.nan)
            if n_g < 2 or n_r < 2:
                rows.append({**base, "estimate": np.nan, "se": np.nan, "t": np.nan, "p": np.nan, "ci_low": np.nan,
                             "ci_high": np.nan, "cohens_d": np.nan})
                continue
            sub["_grp"] = (sub["diagnosis"] == grp).astype(float)
            ids = tuple(sub["recording_id"]) if "recording_id" in sub else tuple(sub.index)
            X = designs.get((grp, ids))
            if X is None:
                use = [t for t in terms if sub[t[2:-1] if t.startswith("C(") else t].nunique() > 1]
                X = designs[grp, ids] = patsy.dmatrix("_grp" + "".join(f" + {t}" for t in use), sub,
                                                      return_type="dataframe")
            fit = sm.OLS(sub[value].astype(float).to_numpy(), X).fit()
            est, se = float(fit.params["_grp"]), float(fit.bse["_grp"])
            lo, hi = fit.conf_int().loc["_grp"].astype(float)
            sd = float(np.sqrt(fit.scale)) if fit.scale > 0 else np.nan
            rows.append({**base, "estimate": est, "se": se, "t": float(fit.tvalues["_grp"]),
                         "p": float(fit.pvalues["_grp"]), "ci_low": float(lo), "ci_high": float(hi),
                         "cohens_d": est / sd if sd else np.nan})
    out = pd.DataFrame(rows)
    out["q"] = np.nan
    for c, g in out.groupby("contrast"):
        ok = g["p"].notna()
        if ok.any():
            out.loc[g.index[ok], "q"] = multipletests(g.loc[ok, "p"], alpha=alpha, method="fdr_bh")[1]
    out["significant"] = out["q"] < alpha
    return out
