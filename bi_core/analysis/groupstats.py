"""Group differences per cell (network, or target × source pair) with covariates and FDR.

The groups are the levels of one categorical column of the recordings table
(:class:`Groups`; by default ``diagnosis`` with CN as the reference and CN < MCI < AD).
For every cell, an ordinary least-squares model (statsmodels)
``value ~ group + age + C(sex) + C(site)`` is fitted on baseline visits for each
level against the reference (AD−CN and MCI−CN by default); the coefficient is the
adjusted group difference. p-values are corrected with Benjamini–Hochberg; one FDR
family is one measure and one contrast across all its cells (e.g. predictability AD−CN
over the networks; attention MCI−CN over the target × source pairs): contrasts and
measures are corrected separately, and every row says its family (``fdr_family``). The
effect size is the adjusted difference divided by the residual standard deviation (an
adjusted Cohen's d).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import DIAGNOSIS_LEVELS, default_level_order
from ..errors import InputError

#: Covariates adjusted for when the cohort has them (complete and not constant).
COVARIATES: tuple[str, ...] = ("age", "sex", "site")
#: A numeric column with more distinct values than this (or a fraction) is a continuous phenotype, not groups.
MAX_NUMERIC_LEVELS = 10


@dataclass(frozen=True)
class Groups:
    """The levels of one categorical column, in order, and the reference they are compared with.

    Parameters
    ----------
    column
        Column of the recordings table holding the labels.
    order
        The compared levels in their order (e.g. disease stage); figures and the
        all-levels classification follow it, the summary marker scores its last level
        against the reference.
    reference
        The level every other level is compared with.
    """

    column: str = "diagnosis"
    order: tuple[str, ...] = DIAGNOSIS_LEVELS
    reference: str = DIAGNOSIS_LEVELS[0]

    @property
    def contrasts(self) -> tuple[tuple[str, str], ...]:
        """``(level, reference)`` pairs, the level furthest along the order first (AD−CN, MCI−CN)."""
        return tuple((g, self.reference) for g in reversed(self.order) if g != self.reference)


CONTRASTS: tuple[tuple[str, str], ...] = Groups().contrasts


def as_labels(values: pd.Series) -> pd.Series:
    """A group column as text labels (NaN when missing; ``2.0`` reads as ``2``)."""
    def one(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return np.nan
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return values.map(one).astype(object)


def resolve_groups(table: pd.DataFrame, column: str | None = None, reference: str | None = None,
                   order: Sequence[str] | None = None, where: str = "the cohort") -> Groups | None:
    """Check a group column and its levels against a recordings table.

    Parameters
    ----------
    table
        The recordings table.
    column
        The group column; ``None`` takes ``diagnosis`` when the cohort has two or more
        diagnoses and returns ``None`` (no groups: an unlabelled cohort) otherwise.
    reference
        The reference level (default: the first of ``order``; CN for ADNI diagnoses).
    order
        The levels to compare, in order (default: CN < MCI < AD for ADNI diagnoses, else
        the reference first and the other levels sorted). Levels left out are not compared.
    where
        The cohort, as messages name it.

    Returns
    -------
    Groups or None

    Raises
    ------
    InputError
        An unknown column, a continuous column, a level that does not exist, fewer than
        two levels, or no reference where none can be inferred.
    """
    if column is None:
        if "diagnosis" not in table or table["diagnosis"].nunique() < 2:
            return None
        column = "diagnosis"
    categorical = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c]) and c not in
                   ("recording_id", "subject", "session", "run", "dataset")]
    if column not in table:
        raise InputError(f"--group-column {column!r} is not a column of {where}; its categorical columns are "
                         f"{categorical} (see `bi-core info --json`).")
    col = table[column]
    if col.notna().sum() == 0:
        raise InputError(f"--group-column {column!r} has no values in {where}; fill it in participants.tsv / "
                         "sessions.tsv or choose another column.")
    if pd.api.types.is_numeric_dtype(col) and (col.nunique() > MAX_NUMERIC_LEVELS
                                               or not np.allclose(col.dropna() % 1, 0)):
        raise InputError(f"--group-column {column!r} is numeric with {col.nunique()} distinct values in {where}: "
                         "a continuous phenotype, not groups; analyse it with --target instead.")
    present = default_level_order(as_labels(col).dropna())
    if order:
        order = [str(v).strip() for v in order if str(v).strip()]
        unknown = [v for v in order if v not in present]
        if unknown or len(set(order)) != len(order):
            raise InputError(f"--order {','.join(order)}: level(s) {unknown or 'repeated'} not in column {column!r} "
                             f"of {where}; its levels are {present}.")
    if reference is not None and reference not in (order or present):
        raise InputError(f"--reference {reference!r} is not a level of column {column!r} in {where}"
                         f"{' (or not in --order)' if order else ''}; its levels are {present}.")
    if len(order or present) < 2:
        raise InputError(f"column {column!r} of {where} has only the level(s) {list(order or present)}; group "
                         "analyses need at least two.")
    if reference is None:
        if order:
            reference = order[0]
        elif set(present) <= set(DIAGNOSIS_LEVELS) and DIAGNOSIS_LEVELS[0] in present:
            reference = DIAGNOSIS_LEVELS[0]
        else:
            raise InputError(f"column {column!r} of {where} has levels {present}; say which one is the reference "
                             "with --reference LEVEL (or give --order with the reference first).")
    if not order:
        order = present if set(present) <= set(DIAGNOSIS_LEVELS) else [reference] + [v for v in present
                                                                                     if v != reference]
    return Groups(column=column, order=tuple(order), reference=reference)


def slug(level: str) -> str:
    """A level as a file-name part: ``AD`` → ``ad``, ``Early MCI`` → ``early-mci``."""
    return re.sub(r"[^0-9a-z]+", "-", str(level).lower()).strip("-") or "level"


def available_covariates(df: pd.DataFrame, covariates: Sequence[str] = COVARIATES) -> list[str]:
    """The covariates a table has with no missing value (the others cannot adjust every row)."""
    return [c for c in covariates if c in df and df[c].notna().all()]


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


def comparable_groups(table: pd.DataFrame, groups: Groups,
                      min_per_group: int = 2) -> tuple[Groups | None, dict[str, str]]:
    """``groups`` without the levels that have fewer than ``min_per_group`` subjects in ``table``.

    Returns the groups left (``None`` when the reference is too small or no other level
    is left) and, per contrast left out (``"MCI-CN"``), the reason in words.
    """
    counts = table.dropna(subset=[groups.column]).groupby(groups.column)["subject"].nunique()
    n = {g: int(counts.get(g, 0)) for g in groups.order}
    small = {g for g, k in n.items() if k < min_per_group}
    why = {f"{g}-{r}": f"group {s} has {n[s]} subject{'' if n[s] == 1 else 's'} (need at least {min_per_group})"
           for g, r in groups.contrasts for s in (g, r) if s in small}
    keep = tuple(g for g in groups.order if g not in small)
    if groups.reference in small or len(keep) < 2:
        return None, why
    return Groups(groups.column, keep, groups.reference), why


def check_groups(table: pd.DataFrame, need: Sequence[str] = ("CN",), min_per_group: int = 2,
                 what: str = "this analysis", column: str = "diagnosis") -> pd.Series:
    """Validate a group column (default ``diagnosis``) and return the per-group subject counts."""
    if column not in table or table[column].notna().sum() == 0:
        if column == "diagnosis":
            raise InputError(f"{what} needs diagnoses, but the cohort has none; use a labelled cohort (e.g. the "
                             "synthetic eval cohort, or a participants.tsv with a diagnosis column), or run "
                             "`bi-core analyze` without groups.")
        raise InputError(f"{what} needs values in column {column!r}, but the cohort has none.")
    counts = table.dropna(subset=[column]).groupby(column)["subject"].nunique()
    if len(counts) < 2:
        raise InputError(f"{what} compares the groups of column {column!r}, but only one group is present "
                         f"({counts.index[0]}: {int(counts.iloc[0])} subjects).")
    missing = [g for g in need if g not in counts]
    if missing:
        raise InputError(f"{what} needs the reference group(s) {missing}; groups present: {dict(counts)}.")
    small = {g: int(n) for g, n in counts.items() if n < min_per_group}
    if small:
        raise InputError(f"{what}: too few subjects in group(s) {small} (need at least {min_per_group} each).")
    return counts


def covariate_terms(df: pd.DataFrame, covariates: Sequence[str]) -> list[str]:
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


def group_differences(df: pd.DataFrame, value: str, cells: Sequence[str], covariates: Sequence[str] = COVARIATES,
                      contrasts: Sequence[tuple[str, str]] = CONTRASTS, alpha: float = 0.05,
                      column: str = "diagnosis") -> pd.DataFrame:
    """Adjusted group differences per cell with Benjamini–Hochberg FDR.

    Parameters
    ----------
    df
        Tidy table, one row per (recording, cell), already restricted to baseline visits,
        with ``subject``, the group ``column``, the covariates, the cell columns and ``value``.
    value
        Column to compare (e.g. ``r2``, ``attention``).
    cells
        Columns that identify a cell (e.g. ``["network"]`` or ``["target", "source"]``).
    covariates
        Adjustment variables; constant ones are dropped.
    contrasts
        ``(group, reference)`` pairs (:attr:`Groups.contrasts`).
    column
        The group column (default ``diagnosis``).

    Returns
    -------
    DataFrame
        One row per (cell, contrast): ``estimate`` (adjusted difference), ``se``, ``t``,
        ``p``, ``ci_low``/``ci_high`` (95 %), ``cohens_d``, ``mean_group``, ``mean_ref``,
        ``n_group``, ``n_ref``, ``q`` (Benjamini–Hochberg over the cells of this ``value``
        and contrast), ``significant`` (q < alpha) and ``fdr_family`` (that family in
        words, with its number of tests).
    """
    import patsy

    refs = sorted({r for _, r in contrasts})
    check_groups(df, need=refs, what=f"group comparison of {value!r}", column=column)
    terms = covariate_terms(df, covariates)
    rows = []
    # thousands of cells (target × source pairs × read-outs): per-cell pandas filtering was most of the time, so the
    # rows of each (cell, contrast) are found on arrays computed once, and a row set's design is solved once
    vals = df[value].to_numpy(dtype=float)
    ok = ~np.isnan(vals) & df[column].notna().to_numpy()
    is_level = {lvl: (df[column] == lvl).to_numpy() for pair in contrasts for lvl in pair}
    rec = df["recording_id"].to_numpy() if "recording_id" in df else df.index.to_numpy()
    # cells usually share their recordings: the design of a row set is built once (covariates are per recording, so
    # the same recordings give the same design)
    designs: dict[tuple[str, tuple[Any, ...]], OLSDesign | None] = {}
    for key, idx in df.groupby(list(cells), sort=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        idx = idx[ok[idx]]
        for grp, ref in contrasts:
            in_g, in_r = is_level[grp][idx], is_level[ref][idx]
            sub = idx[in_g | in_r]
            n_g, n_r = int(in_g.sum()), int(in_r.sum())
            base = dict(zip(cells, key), contrast=f"{grp}-{ref}", n_group=n_g, n_ref=n_r,
                        mean_group=float(vals[idx[in_g]].mean()) if n_g else np.nan,
                        mean_ref=float(vals[idx[in_r]].mean()) if n_r else np.nan)
            design = None
            if n_g >= 2 and n_r >= 2:
                ids = (grp, tuple(rec[sub]))
                if ids not in designs:
                    d = df.iloc[sub].assign(_grp=is_level[grp][sub].astype(float))
                    use = [t for t in terms if d[t[2:-1] if t.startswith("C(") else t].nunique() > 1]
                    X = patsy.dmatrix("_grp" + "".join(f" + {t}" for t in use), d, return_type="dataframe")
                    # as many coefficients as subjects: no residual to test the difference against
                    designs[ids] = OLSDesign(X, "_grp") if len(sub) > X.shape[1] else None
                design = designs[ids]
            if design is None:
                rows.append({**base, "estimate": np.nan, "se": np.nan, "t": np.nan, "p": np.nan, "ci_low": np.nan,
                             "ci_high": np.nan, "cohens_d": np.nan})
                continue
            fit = design.effect(vals[sub])
            sd = fit.pop("residual_sd")
            rows.append({**base, **fit, "cohens_d": fit["estimate"] / sd if sd else np.nan})
    what = " × ".join(cells) + (" cells" if len(cells) > 1 else "s")
    return fdr(pd.DataFrame(rows), "contrast", alpha, family=f"{value} {{group}}, across {{n}} {what}")


def largest_effect_probability(df: pd.DataFrame, value: str, cell: str, contrast: tuple[str, str],
                               covariates: Sequence[str] = COVARIATES, column: str = "diagnosis",
                               n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """How sure is "cell X has the largest |Cohen's d|"? A subject bootstrap of the adjusted differences.

    The same model as :func:`group_differences` (OLS of ``value`` on the group indicator and
    the covariates, Cohen's d = the adjusted difference over the residual SD), fitted for
    every cell at once on ``n_boot`` resamples of the subjects, drawn with replacement within
    each group (so both group sizes stay fixed). Statements such as "DMN has the largest effect"
    are then reported with the share of resamples in which it does (``p_largest``), not as
    a bare rank.

    Parameters
    ----------
    df
        One row per (subject, cell) at baseline with ``subject``, ``column``, the covariates,
        ``cell`` and ``value`` (the frame :func:`group_differences` receives).
    contrast
        ``(group, reference)``.

    Returns
    -------
    DataFrame
        One row per cell: ``cohens_d`` (full sample), ``p_largest`` (share of resamples in
        which its |d| is the largest), ``rank`` (by |d|, 1 = largest), ``contrast``, ``n_boot``.
    """
    import patsy

    grp, ref = contrast
    sub = df[df[column].isin([grp, ref])].dropna(subset=[value])
    wide = sub.pivot_table(index="subject", columns=cell, values=value, aggfunc="mean").dropna()
    if wide.shape[1] < 2:
        raise InputError(f"the largest {value} effect needs at least two {cell}s with values; found {wide.shape[1]}.")
    info = sub.drop_duplicates("subject").set_index("subject").loc[wide.index]
    info["_grp"] = (info[column] == grp).astype(float)
    use = [t for t in covariate_terms(info, covariates) if info[t[2:-1] if t.startswith("C(") else t].nunique() > 1]
    design = patsy.dmatrix("_grp" + "".join(f" + {t}" for t in use), info, return_type="dataframe")
    g_col = list(design.columns).index("_grp")      # patsy puts categorical terms before numeric ones
    X = design.to_numpy()
    Y = wide.to_numpy(float)
    n, k = X.shape
    if n <= k + 1:
        raise InputError(f"{n} subjects leave no residual degrees of freedom for the {grp}-{ref} effect sizes.")

    def d_of(rows: np.ndarray) -> np.ndarray:
        Xb, Yb = X[rows], Y[rows]
        beta, *_ = np.linalg.lstsq(Xb, Yb, rcond=None)
        resid = Yb - Xb @ beta
        sd = np.sqrt((resid ** 2).sum(0) / max(len(rows) - np.linalg.matrix_rank(Xb), 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return beta[g_col] / sd

    d = d_of(np.arange(n))
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(info["_grp"].to_numpy() == v) for v in (0.0, 1.0)]
    wins = np.zeros(Y.shape[1])
    for _ in range(int(n_boot)):
        rows = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        db = np.abs(d_of(rows))
        if np.isfinite(db).any():
            wins[int(np.nanargmax(db))] += 1
    order = (-np.abs(d)).argsort().argsort() + 1
    return pd.DataFrame({cell: wide.columns.astype(str), "contrast": f"{grp}-{ref}", "cohens_d": d,
                         "p_largest": wins / n_boot, "rank": order, "n_boot": int(n_boot), "n_subjects": n})


class OLSDesign:
    """One OLS design ``X`` ``[n, p]`` solved once for many responses: :meth:`effect` is ``term``'s estimate, se, t,
    p, 95 % CI and the residual SD.

    statsmodels' ``OLS(y, X).fit()`` computed directly (its pseudo-inverse solution, residual
    degrees of freedom ``n − rank(X)`` and t distribution): the group comparisons fit one
    small model per cell, thousands per table, on a few shared designs, and statsmodels' per-fit
    overhead was most of their time. Equal to statsmodels to rounding, rank-deficient designs
    included (tests/test_groupstats.py).
    """

    def __init__(self, X: pd.DataFrame, term: str) -> None:
        from scipy import stats

        self.X = X.to_numpy(dtype=float)
        self.pinv = np.linalg.pinv(self.X, rcond=1e-15)
        self.df = len(self.X) - np.linalg.matrix_rank(self.X)
        self.j = list(X.columns).index(term)
        self.quantile = float(stats.t.ppf(0.975, self.df))
        self._t = stats.t

    def effect(self, y: np.ndarray) -> dict[str, float]:
        """``term``'s effect for the response ``y`` ``[n]`` (the rows of ``X``)."""
        yv = np.asarray(y, dtype=float)
        beta = self.pinv @ yv
        resid = yv - self.X @ beta
        scale = float(resid @ resid) / self.df
        pj = self.pinv[self.j]
        se = float(np.sqrt(scale * (pj @ pj)))
        est = float(beta[self.j])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = est / se
        half = self.quantile * se
        return {"estimate": est, "se": se, "t": float(t), "p": float(2 * self._t.sf(abs(t), self.df)),
                "ci_low": est - half, "ci_high": est + half,
                "residual_sd": float(np.sqrt(scale)) if scale > 0 else np.nan}


def ols_effect(y: pd.Series, X: pd.DataFrame, term: str) -> dict[str, float]:
    """OLS of ``y`` ``[n]`` on the design ``X`` ``[n, p]``: ``term``'s estimate, se, t, p, 95 % CI and the residual SD
    (one :class:`OLSDesign` solve)."""
    return OLSDesign(X, term).effect(y.astype(float).to_numpy())


def fdr(out: pd.DataFrame, by: str | None, alpha: float = 0.05, family: str = "{n} tests") -> pd.DataFrame:
    """Add Benjamini–Hochberg ``q`` (statsmodels), ``significant`` (q < alpha) and ``fdr_family``.

    Each ``by`` group (all rows when ``None``) is one family, corrected on its own.
    ``family`` describes it in words: ``{group}`` is replaced by the group's ``by`` value
    and ``{n}`` by its number of tests (rows with a p-value), e.g.
    ``"r2 AD-CN, across 8 networks"``.
    """
    from statsmodels.stats.multitest import multipletests

    out["q"] = np.nan
    out["fdr_family"] = ""
    for key, g in (out.groupby(by) if by else [(None, out)]):
        ok = g["p"].notna()
        if ok.any():
            out.loc[g.index[ok], "q"] = multipletests(g.loc[ok, "p"], alpha=alpha, method="fdr_bh")[1]
        out.loc[g.index, "fdr_family"] = family.format(group=key, n=int(ok.sum()))
    out["significant"] = out["q"] < alpha
    return out
