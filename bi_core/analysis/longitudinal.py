"""Longitudinal mixed-effects models of the summary marker (statsmodels MixedLM).

Trajectories: ``marker ~ years * C(baseline_dx) + age + C(sex) (+ C(site))`` with a
random intercept and a random slope of ``years`` per subject; per-group slopes with 95 %
intervals, and likelihood-ratio tests (ML fits) of the ``years × baseline_dx``
interaction. Stable vs converting MCI: the same random effects. Every model says which
random effects it has (intercept only, with the reason, when the slope variance cannot
be estimated) and whether its fits converged; an LRT whose ML fits did not converge says
so. The groups are each subject's first-visit level of a group column
(``diagnosis`` by default, whose baseline column is ``baseline_dx``; another column
``x`` gives ``baseline_x``), compared with its reference level. Clinical association: the marker's within-subject (visit-to-visit) and
between-subject (subject mean) parts as separate predictors of CDR-SB or MMSE.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import DIAGNOSIS_LEVELS
from ..errors import InputError
from ..stats import wald_interval


def baseline_column(column: str = "diagnosis") -> str:
    """Name of the first-visit group column: ``baseline_dx`` for ``diagnosis``, else ``baseline_<column>``."""
    return "baseline_dx" if column == "diagnosis" else "baseline_" + re.sub(r"\W", "_", column)


def prepare(df: pd.DataFrame, value: str = "marker", column: str = "diagnosis",
            groups: Sequence[str] = DIAGNOSIS_LEVELS) -> pd.DataFrame:
    """Validate and complete a longitudinal table (adds the baseline group, ``years``, ``age_c``).

    Parameters
    ----------
    df
        One row per visit: ``subject``, ``years_from_baseline``, ``value`` and the group
        ``column`` (for ``diagnosis``, an existing ``baseline_dx`` column is used as is).
    groups
        The levels kept (subjects whose baseline level is another are left out).

    Raises
    ------
    InputError
        When columns needed for longitudinal models are missing, or there is no repeated
        measurement.
    """
    bcol = baseline_column(column)
    need = ["subject", "years_from_baseline", value]
    missing = [c for c in need if c not in df]
    if bcol not in df and column not in df:
        missing.append(f"{bcol} (or {column})")
    if missing:
        raise InputError(f"longitudinal models need the columns {missing}, missing from the table; the cohort needs "
                         f"subject, years_from_baseline and a {column} value per visit.")
    d = df.copy()
    if d["years_from_baseline"].isna().all():
        raise InputError("years_from_baseline is empty for every recording: the cohort has no longitudinal timing.")
    d = d.dropna(subset=["years_from_baseline", value])
    if column != "diagnosis" or bcol not in d or d[bcol].isna().all():
        first = d.sort_values("years_from_baseline").groupby("subject")[column].first()
        d[bcol] = d["subject"].map(first)
    d = d[d[bcol].isin(groups)]
    visits = d.groupby("subject").size()
    if (visits > 1).sum() < 3:
        raise InputError(f"longitudinal models need subjects with repeated visits; only {(visits > 1).sum()} "
                         "subject(s) have more than one.")
    d["years"] = d["years_from_baseline"].astype(float)
    if "age" in d and d["age"].notna().all():
        base_age = d.groupby("subject")["age"].transform("min")
        d["age_c"] = base_age - base_age.mean()
    return d


def _covariate_formula(d: pd.DataFrame, covariates: Sequence[str]) -> str:
    terms = []
    for c in covariates:
        col = "age_c" if c == "age" else c
        if col in d and d[col].notna().all() and d[col].nunique() > 1:
            terms.append(f"C({col})" if d[col].dtype == object or col in ("sex", "site") else col)
    return "".join(f" + {t}" for t in terms)


def _fit(formula: str, d: pd.DataFrame, re_formula: str | None, reml: bool, start: Any = None,
         start_re: Any = None) -> Any:
    """Fit a MixedLM with random effects ``re_formula`` per subject, checked by a restart.

    statsmodels' optimizers can report convergence well short of the optimum: on a score
    whose groups differ by many SDs (CDR-SB in CN vs AD) L-BFGS from the default start stops
    ~20 log-likelihood units below it, and a likelihood-ratio test between two such fits is
    noise (the clinical association's null calibration found p = 1 and p < 1e-9 in half of
    its permutations). So L-BFGS is restarted once from its own estimate; where the restart
    gains nothing the fit is taken (a restart at an optimum costs a few iterations). Where it
    climbs, or L-BFGS does not converge (then without the restart), it is crawling along a badly
    scaled ridge (often towards a random-effects correlation of ±1), so Powell
    (which steps across it) is run from the same start, polished by one L-BFGS restart, and
    the converged fit with the higher likelihood is taken.
    When neither converges, Nelder–Mead is tried; when nothing converges, the best finite
    fit is returned with ``converged`` False, for the caller to report or replace.

    ``start``: a ``MixedLMParams`` to start from (the default start otherwise). ``start_re``: instead, a fit
    of another formula with the same random effects, whose random-effects estimate this fit starts from
    (statsmodels profiles the fixed effects out, so they start at zero).
    """
    import statsmodels.formula.api as smf
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    model = smf.mixedlm(formula, d, groups=d["subject"], re_formula=re_formula)
    if start_re is not None:
        start = MixedLMParams.from_components(fe_params=np.zeros(model.k_fe), cov_re=start_re.params_object.cov_re)
    errors: list[Exception] = []

    def run(method: str, start_params: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = model.fit(reml=reml, method=method, maxiter=4000, start_params=start_params)
            except (np.linalg.LinAlgError, ValueError) as exc:
                errors.append(exc)
                return None
        return fit if np.all(np.isfinite(fit.params)) and np.isfinite(fit.llf) else None

    def polish(fit: Any) -> tuple[Any, float]:
        """One L-BFGS restart from ``fit``: the better of the two, and the likelihood gained."""
        again = run("lbfgs", fit.params_object)
        if again is None or again.llf < fit.llf - 1e-8:
            return fit, 0.0
        return again, again.llf - fit.llf

    fits = []
    first = run("lbfgs", start)
    if first is not None and not first.converged:
        fits.append(first)    # a restart would crawl on: Powell runs from the same start below
    elif first is not None:
        fit, gain = polish(first)
        if fit.converged and gain < _SETTLED:
            return fit
        fits.append(fit)
    # L-BFGS crawls (the restart still climbs) or never converges: Powell from the same start, polished
    powell = run("powell", start)
    if powell is not None:
        fits.append(polish(powell)[0] if powell.converged else powell)
    if not any(f.converged for f in fits):
        nm = run("nm", start)
        fits += [nm] if nm is not None else []
    if not fits:
        raise InputError(f"the mixed model {formula!r} could not be fitted ({errors[-1] if errors else 'no finite fit'}); "
                         "the data may have too few subjects or visits for this model.")
    return max(fits, key=lambda f: (f.converged, f.llf))


#: log-likelihood gain of an L-BFGS restart below which the first run is taken as settled (an LRT needs ~0.01)
_SETTLED = 1e-3


#: ``random_effects`` of a model with a random intercept and a random slope of ``years`` per subject.
RANDOM_SLOPE = "intercept + slope"


def _fit_random_slope(formula: str, d: pd.DataFrame) -> tuple[Any, str]:
    """REML fit with a random intercept and slope of ``years`` per subject, else intercept only.

    Every subject has its own trajectory, so an intercept-only model understates the
    uncertainty of slope effects (anti-conservative p-values); it is used only when the
    slope variance cannot be estimated, and the returned description says why.

    Returns
    -------
    (fit, random_effects)
        ``random_effects`` is :data:`RANDOM_SLOPE` or ``"intercept only (<reason>)"``.
    """
    fit = _fit(formula, d, "~years", reml=True)
    if fit.converged and np.all(np.isfinite(fit.bse)):
        return fit, RANDOM_SLOPE
    why = "did not converge" if not fit.converged else "gave non-finite standard errors"
    return _fit(formula, d, None, reml=True), f"intercept only (the random-slope model {why})"


def _lrt(full: str, reduced: str, d: pd.DataFrame, re_formula: str | None, dof: int, test: str,
         ml_full: Any = None, start: Any = None) -> dict[str, Any]:
    """Likelihood-ratio test of nested fixed effects (both models fitted by ML, same random effects).

    ``ml_full``: the full model's ML fit when the caller already has it (several terms tested
    against one full model); else it is fitted from ``start`` (the REML estimate of the same model,
    say). The likelihoods are as precise as statsmodels' optimizers (about 0.01 near a flat
    optimum). Returns ``test``, ``statistic``, ``df``, ``p``, ``converged_full``,
    ``converged_reduced`` and ``note``: empty, or which fit did not converge (the statistic is
    then unreliable).
    """
    from scipy import stats

    if ml_full is None:
        ml_full = _fit(full, d, re_formula, reml=False, start=start)
    # the reduced model starts from the full model's random effects (statsmodels profiles the fixed effects out):
    # from there one L-BFGS run usually settles, where the default start can cost a crawl and a Powell run
    ml_red = _fit(reduced, d, re_formula, reml=False, start_re=ml_full)
    if ml_red.llf > ml_full.llf:
        # the full model contains the reduced one, so this is an optimizer's miss: restart the full model from
        # the reduced model's random effects (where its likelihood is at least the reduced one's)
        again = _fit(full, d, re_formula, reml=False, start_re=ml_red)
        ml_full = max((ml_full, again), key=lambda f: (f.converged, f.llf))
    lr = max(0.0, 2 * (ml_full.llf - ml_red.llf))
    failed = [name for name, f in (("full", ml_full), ("reduced", ml_red)) if not f.converged]
    note = (f"the ML fit of the {' and the '.join(failed)} model did not converge; the statistic is unreliable"
            if failed else "")
    return {"test": test, "statistic": float(lr), "df": dof, "p": float(stats.chi2.sf(lr, dof)),
            "converged_full": bool(ml_full.converged), "converged_reduced": bool(ml_red.converged), "note": note}


def marker_trajectories(df: pd.DataFrame, value: str = "marker", covariates: Sequence[str] = ("age", "sex", "site"),
                        groups: Sequence[str] = DIAGNOSIS_LEVELS, reference: str = DIAGNOSIS_LEVELS[0],
                        column: str = "diagnosis") -> dict[str, Any]:
    """Fit per-group marker trajectories with random intercepts and slopes.

    Parameters
    ----------
    groups, reference, column
        The baseline levels of ``column`` compared (in this order) and the reference
        level (default: CN < MCI < AD of ``diagnosis``, reference CN).

    Returns
    -------
    dict
        ``slopes`` (group, slope per year, ci_low, ci_high, p), ``fixed`` (all fixed
        effects), ``lrt`` (interaction test: statistic, df, p, whether both ML fits
        converged and a ``note`` when one did not), ``random_effects`` (:data:`RANDOM_SLOPE`
        or the intercept-only fallback with its reason), ``converged`` (the REML fit),
        ``n_subjects``, ``n_visits``.
    """
    bcol = baseline_column(column)
    d = prepare(df, value, column, groups)
    present = [g for g in groups if g in set(d[bcol])]
    if reference not in present or len(present) < 2:
        raise InputError(f"trajectories need {reference} and at least one other baseline group; found {present}.")
    d[bcol] = pd.Categorical(d[bcol], categories=present)
    cov = _covariate_formula(d, covariates)
    term = f"C({bcol}, Treatment({reference!r}))"
    full = f"{value} ~ years * {term}{cov}"
    reduced = f"{value} ~ years + {term}{cov}"
    fit, re_used = _fit_random_slope(full, d)
    lrt = _lrt(full, reduced, d, "~years" if re_used == RANDOM_SLOPE else None, len(present) - 1,
               f"years x {bcol}", start=fit.params_object)
    names = list(fit.fe_params.index)  # t_test contrasts cover fixed effects only
    slopes = []
    for g in present:
        L = np.zeros(len(names))
        L[names.index("years")] = 1
        if g != reference:
            L[names.index(f"years:{term}[T.{g}]")] = 1
        tt = fit.t_test(L[None, :])
        lo, hi = np.asarray(tt.conf_int()).ravel()
        slopes.append({"group": g, "slope": float(np.ravel(tt.effect)[0]), "se": float(np.ravel(tt.sd)[0]),
                       "ci_low": float(lo), "ci_high": float(hi), "p": float(np.ravel(tt.pvalue)[0]),
                       "n_subjects": int(d.loc[d[bcol] == g, "subject"].nunique())})
    lines = _group_lines(fit, d, present, term)
    k = len(names)
    ci = fit.conf_int().iloc[:k]
    fixed = pd.DataFrame({"term": names, "estimate": fit.fe_params.to_numpy(), "se": np.asarray(fit.bse_fe),
                          "ci_low": ci.iloc[:, 0].to_numpy(), "ci_high": ci.iloc[:, 1].to_numpy(),
                          "p": fit.pvalues.iloc[:k].to_numpy()})
    return {"slopes": pd.DataFrame(slopes), "fixed": fixed, "lines": lines,
            "lrt": lrt, "random_effects": re_used, "converged": bool(fit.converged), "n_subjects": int(d["subject"].nunique()),
            "n_visits": int(len(d)), "formula": full}


def _group_lines(fit: Any, d: pd.DataFrame, groups: Sequence[str], term: str, n: int = 25) -> pd.DataFrame:
    """Fitted marker trajectory per group with 95 % bands (covariates at their mean / reference level).

    ``term`` is the group term of the formula, e.g. ``C(baseline_dx, Treatment('CN'))``.
    """
    names = list(fit.fe_params.index)
    cov = np.asarray(fit.cov_params())[: len(names), : len(names)]
    beta = fit.fe_params.to_numpy()
    means = {c: float(d[c].mean()) for c in ("age_c",) if c in d}
    yrs = np.linspace(0, float(d["years"].max()), n)
    rows = []
    for g in groups:
        for t in yrs:
            x = np.zeros(len(names))
            for i, nm in enumerate(names):
                if nm == "Intercept":
                    x[i] = 1
                elif nm == "years":
                    x[i] = t
                elif nm == f"{term}[T.{g}]":
                    x[i] = 1
                elif nm == f"years:{term}[T.{g}]":
                    x[i] = t
                elif nm in means:
                    x[i] = means[nm]
            est = float(x @ beta)
            se = float(np.sqrt(max(x @ cov @ x, 0.0)))
            lo, hi = wald_interval(est, se)
            rows.append({"group": g, "years": float(t), "fit": est, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def clinical_association(df: pd.DataFrame, score: str, value: str = "marker",
                         covariates: Sequence[str] = ("age", "sex", "site"), column: str = "diagnosis",
                         groups: Sequence[str] = DIAGNOSIS_LEVELS) -> pd.DataFrame:
    """Association of the marker with a clinical score, within vs between subjects.

    ``score ~ marker_within + marker_between + years + covariates`` (the trajectories'
    covariates: age, sex, site) with a random intercept and a random slope of ``years`` per
    subject (intercept only, with the reason, when the slope variance cannot be estimated),
    where ``marker_between`` is the subject's mean marker and ``marker_within`` the visit's
    deviation from it. *Within* asks whether a subject's impairment rises when their marker
    rises; *between* whether subjects with a higher marker are more impaired.

    Each part's p-value is a likelihood-ratio test (ML fits with and without that term, the
    same random effects): the Wald z of a mixed model is anti-conservative at the book's
    sizes. The Wald p is kept as ``p_wald``.

    ``column`` and ``groups``: the subjects analysed (those whose baseline level of the
    group column is one of ``groups``).

    Returns
    -------
    DataFrame
        Rows ``within`` and ``between``: estimate (score units per marker unit), se, ci_low,
        ci_high (Wald), ``p`` (likelihood ratio), ``p_wald``, ``random_effects``, ``test``,
        ``converged`` (the REML fit), n_subjects, n_visits.
    """
    if score not in df:
        raise InputError(f"clinical score {score!r} is not in the table; available columns: {list(df.columns)}.")
    d = prepare(df.dropna(subset=[score]), value, column, groups)
    d["marker_between"] = d.groupby("subject")[value].transform("mean")
    d["marker_within"] = d[value] - d["marker_between"]
    cov = _covariate_formula(d, covariates)
    full = f"{score} ~ marker_within + marker_between + years{cov}"
    fit, re_used = _fit_random_slope(full, d)
    ci = fit.conf_int()
    rows = []
    re_formula = "~years" if re_used == RANDOM_SLOPE else None
    ml_full = _fit(full, d, re_formula, reml=False, start=fit.params_object)   # one ML fit for both tests
    for part in ("within", "between"):
        t = f"marker_{part}"
        other = "marker_between" if part == "within" else "marker_within"
        lrt = _lrt(full, f"{score} ~ {other} + years{cov}", d, re_formula, 1, f"{t} = 0", ml_full=ml_full)
        rows.append({"score": score, "part": part, "estimate": float(fit.params[t]), "se": float(fit.bse[t]),
                     "ci_low": float(ci.loc[t].iloc[0]), "ci_high": float(ci.loc[t].iloc[1]), "p": lrt["p"],
                     "p_wald": float(fit.pvalues[t]), "test": "likelihood ratio" + (f" ({lrt['note']})"
                                                                                 if lrt["note"] else ""),
                     "random_effects": re_used, "n_subjects": int(d["subject"].nunique()), "n_visits": int(len(d)),
                     "converged": bool(fit.converged)})
    return pd.DataFrame(rows)


def converter_trajectories(df: pd.DataFrame, value: str = "marker", covariates: Sequence[str] = ("age", "sex")) -> dict[str, Any]:
    """Marker slopes of stable vs converting MCI (baseline MCI subjects only).

    ``value ~ years * converter + covariates`` with a random intercept and a random slope
    of ``years`` per subject (each subject has its own trajectory; an intercept-only model
    would make the slope difference look more certain than it is), falling back to a
    random intercept only, with the reason, when the slope variance cannot be estimated.
    Needs a ``converter`` column (1 when the subject converted to AD during follow-up).

    Returns
    -------
    dict
        ``slopes`` (group, slope, ci_low, ci_high, n_subjects), ``difference`` and
        ``difference_p`` (converting − stable slope), ``baseline_difference`` and its
        ``baseline_difference_p``, ``random_effects``, ``converged`` (the REML fit).
    """
    if "converter" not in df:
        raise InputError("stable vs converting MCI needs a 'converter' column (1 = converted to AD during follow-up).")
    d = prepare(df, value)
    d = d[d["baseline_dx"] == "MCI"].copy()
    if d.empty or d["converter"].nunique() < 2:
        raise InputError("stable vs converting MCI needs both stable and converting MCI subjects.")
    d["converter"] = d["converter"].astype(int)
    cov = _covariate_formula(d, covariates)
    fit, re_used = _fit_random_slope(f"{value} ~ years * converter{cov}", d)
    names = list(fit.fe_params.index)
    out = []
    for label, L in (("stable MCI", {"years": 1}), ("converting MCI", {"years": 1, "years:converter": 1})):
        v = np.zeros(len(names))
        for k, w in L.items():
            v[names.index(k)] = w
        tt = fit.t_test(v[None, :])
        lo, hi = np.asarray(tt.conf_int()).ravel()
        out.append({"group": label, "slope": float(np.ravel(tt.effect)[0]), "ci_low": float(lo), "ci_high": float(hi),
                    "n_subjects": int(d.loc[d["converter"] == (label == "converting MCI"), "subject"].nunique())})
    return {"slopes": pd.DataFrame(out), "difference": float(fit.params["years:converter"]),
            "difference_p": float(fit.pvalues["years:converter"]),
            "baseline_difference": float(fit.params["converter"]), "baseline_difference_p": float(fit.pvalues["converter"]),
            "random_effects": re_used, "converged": bool(fit.converged)}


def term_label(term: str) -> str:
    """A fixed-effect term as a reader reads it.

    ``years:C(baseline_dx, Treatment('CN'))[T.AD]`` → ``years × AD (vs CN)``;
    ``C(sex)[T.M]`` → ``sex = M``; ``age_c`` → ``baseline age (centred)``.
    """
    t = re.sub(r"C\((\w+), Treatment\('([^']*)'\)\)\[T\.([^\]]+)\]", r"\3 (vs \2)", term)
    t = re.sub(r"C\((\w+)\)\[T\.([^\]]+)\]", r"\1 = \2", t)
    t = t.replace("age_c", "baseline age (centred)").replace(":", " × ")
    return t


def compare_with_truth(slopes: pd.DataFrame, association: pd.DataFrame, truth: dict[str, Any]) -> dict[str, Any]:
    """How the estimates compare with the generator: slope order and the CDR-SB association sign."""
    s = slopes.set_index("group")["slope"]
    order = truth["disease"]["slope_order"]
    ok_order = all(s[a] > s[b] for a, b in zip(order, order[1:]) if a in s and b in s)
    est_order = list(s.sort_values(ascending=False).index)
    a = association[(association["score"] == "cdr_sb")]
    sign = int(truth["disease"]["marker_cdr_sb_association_sign"])
    signs = {r["part"]: int(np.sign(r["estimate"])) for _, r in a.iterrows()}
    return {"true_slope_order": order, "estimated_slope_order": est_order, "slope_order_recovered": bool(ok_order),
            "cdr_sb_sign_truth": sign, "cdr_sb_sign_between": signs.get("between"),
            "cdr_sb_sign_within": signs.get("within"),
            "cdr_sb_sign_recovered": bool(signs.get("between") == sign and signs.get("within") == sign)}


#: The references of the summary marker (``marker_<suffix>.tsv`` and its models, written by
#: :func:`bi_core.analysis.suite.run_suite`): the untrained encoder's embedding, and network FC
#: (correlation), the simplest honest marker, beside the model's.
MARKER_REFERENCES = {"untrained": "the untrained encoder's embedding", "fc": "network FC correlation"}


def marker_reference_text(suite_dir: str | Path, suffix: str, last: str, reference: str,
                          score: str = "cdr_sb") -> str:
    """One sentence: a reference marker beside the model's (chapter 6's controls).

    Reads the model's ``marker.tsv``, ``longitudinal_slopes.tsv`` and
    ``longitudinal_association.tsv`` and the reference's ``marker_<suffix>.tsv``,
    ``longitudinal_slopes_<suffix>.tsv``, ``longitudinal_<suffix>.json`` and
    ``longitudinal_association_<suffix>.tsv`` (written by
    :func:`bi_core.analysis.suite.run_suite`; ``suffix``: ``untrained`` or ``fc``). Two markers
    built on different features have different units, so both are compared per SD of the
    marker over all visits: the ``last`` − ``reference`` slope difference (SD per year, signed:
    the marker is the ``last``-vs-``reference`` decision value, so positive moves towards
    ``last``; point estimates) with each interaction test's p, and the between-subject
    association with ``score`` (score points per marker SD) with its likelihood-ratio p.
    """
    d = Path(suite_dir)
    label = MARKER_REFERENCES.get(suffix, suffix)
    f = d / f"longitudinal_slopes_{suffix}.tsv"
    if not f.is_file():
        return f"The marker built on {label} was not computed for these results"
    sd = {k: float(pd.read_csv(d / f"marker{k}.tsv", sep="\t")["marker"].std()) for k in ("", f"_{suffix}")}
    slopes = {k: pd.read_csv(d / f"longitudinal_slopes{k}.tsv", sep="\t").set_index("group")["slope"]
              for k in ("", f"_{suffix}")}
    diff = {k: float(v[last] - v[reference]) / sd[k] for k, v in slopes.items()}
    p_ref = json.loads((d / f"longitudinal_{suffix}.json").read_text())["lrt"]["p"]
    p_model = json.loads((d / "longitudinal.json").read_text())["lrt"]["p"] if (d / "longitudinal.json").is_file() \
        else float("nan")
    what = "pretraining" if suffix == "untrained" else "the model"
    # the marker is the decision value of last vs reference, so a positive difference moves towards the last level
    text = (f"The same marker built on {label}, with the same classifier, folds and mixed model, changes "
            f"{diff[f'_{suffix}']:+.2f} marker SD per year faster in {last} than in {reference} (interaction "
            f"p = {p_ref:.2g}); the model's marker {diff['']:+.2f} (p = {p_model:.2g}). So {what} "
            + ("makes the marker move towards " + last + " faster" if diff[""] > diff[f"_{suffix}"] else
               f"does not make the marker move towards {last} faster than {label} does")
            + " (point estimates)")
    assoc = {k: d / f"longitudinal_association{k}.tsv" for k in ("", f"_{suffix}")}
    if all(a.is_file() for a in assoc.values()):
        between = {}
        for k, a in assoc.items():
            t = pd.read_csv(a, sep="\t")
            row = t[(t["score"] == score) & (t["part"] == "between")]
            if len(row):
                between[k] = (float(row["estimate"].iloc[0]) * sd[k], float(row["p"].iloc[0]))
        if len(between) == 2:
            (bm, pm), (br, pr) = between[""], between[f"_{suffix}"]
            text += (f"; between subjects, {score} changes by {br:.2f} points per marker SD for it (p = {pr:.2g}) "
                     f"and by {bm:.2f} for the model's (p = {pm:.2g})")
    return text