import pandas as pd
import pytest

from bi_core.analysis.longitudinal import (clinical_association, compare_with_truth, converter_trajectories,
                                           marker_trajectories)
from bi_core.errors import InputError


def _long(rng, n=30):
    rows = []
    slopes = {"CN": 0.02, "MCI": 0.25, "AD": 0.6}
    for dx in ("CN", "MCI", "AD"):
        for i in range(n):
            s = f"{dx}{i}"
            b0 = rng.normal({"CN": -1, "MCI": 0, "AD": 1}[dx], 0.3)
            sl = rng.normal(slopes[dx], 0.05)
            conv = int(dx == "MCI" and i % 3 == 0)
            sl += 0.3 * conv
            age = rng.uniform(60, 85)
            u = rng.normal(0, 0.5)  # subject-level CDR-SB offset
            for v in range(int(rng.integers(2, 5))):
                yrs = v + rng.normal(0, 0.05) if v else 0.0
                m = b0 + sl * yrs + rng.normal(0, 0.1)
                rows.append(dict(subject=s, baseline_dx=dx, diagnosis=dx, years_from_baseline=yrs, age=age + yrs,
                                 sex="MF"[i % 2], site="A", marker=m, converter=conv,
                                 cdr_sb=max(0.0, 2 + 1.5 * m + u + rng.normal(0, 0.3))))
    return pd.DataFrame(rows)


def test_slopes_recovered_and_lrt(rng):
    res = marker_trajectories(_long(rng))
    s = res["slopes"].set_index("group")
    assert s.loc["AD", "slope"] > s.loc["MCI", "slope"] > s.loc["CN", "slope"]
    assert s.loc["AD", "ci_low"] < 0.6 + 0.1 and s.loc["AD", "ci_high"] > 0.6 - 0.1
    assert res["lrt"]["p"] < 1e-6 and res["lrt"]["df"] == 2
    assert res["n_subjects"] == 90


def test_clinical_association_within_between(rng):
    a = clinical_association(_long(rng), "cdr_sb").set_index("part")
    assert a.loc["within", "estimate"] == pytest.approx(1.5, abs=0.3)
    assert a.loc["between", "estimate"] == pytest.approx(1.5, abs=0.3)
    truth = {"disease": {"slope_order": ["AD", "MCI", "CN"], "marker_cdr_sb_association_sign": 1}}
    cmp = compare_with_truth(marker_trajectories(_long(rng))["slopes"], a.reset_index(), truth)
    assert cmp["slope_order_recovered"] and cmp["cdr_sb_sign_recovered"]


def test_converters_steeper(rng):
    res = converter_trajectories(_long(rng))
    s = res["slopes"].set_index("group")
    assert s.loc["converting MCI", "slope"] > s.loc["stable MCI", "slope"] + 0.15
    assert res["difference_p"] < 0.01
    assert res["random_effects"] == "intercept + slope" and res["converged"]


def test_converter_model_has_a_random_slope_so_its_p_is_not_anti_conservative(rng):
    """Subjects' own slopes vary (SD 0.15/year) around a small converter difference.

    An intercept-only model treats every visit as independent evidence about the slopes
    and reports a much smaller p than the random-slope model, which is the right one here.
    """
    import statsmodels.formula.api as smf

    from bi_core.analysis.longitudinal import prepare

    rows = []
    for i in range(40):
        conv = int(i % 2)
        sl = 0.1 + 0.08 * conv + rng.normal(0, 0.15)
        b0 = rng.normal(0, 0.5)
        for v in range(5):
            rows.append(dict(subject=f"s{i}", diagnosis="MCI", years_from_baseline=float(v), converter=conv,
                             marker=b0 + sl * v + rng.normal(0, 0.05)))
    df = pd.DataFrame(rows)
    res = converter_trajectories(df)
    assert res["random_effects"] == "intercept + slope"
    d = prepare(df)
    naive = smf.mixedlm("marker ~ years * converter", d, groups=d["subject"]).fit(reml=True)
    assert res["difference_p"] > 3 * float(naive.pvalues["years:converter"])


def test_an_lrt_whose_ml_fits_did_not_converge_says_so(rng, monkeypatch):
    from bi_core.analysis import longitudinal as L

    ok = marker_trajectories(_long(rng))
    assert ok["lrt"]["converged_full"] and ok["lrt"]["converged_reduced"] and ok["lrt"]["note"] == ""
    orig = L._fit

    def ml_stalls(formula, d, re_formula, reml, start=None, start_re=None):
        fit = orig(formula, d, re_formula, reml, start=start, start_re=start_re)
        if not reml and "*" not in formula:       # the reduced model's ML fit
            fit.converged = False
        return fit

    monkeypatch.setattr(L, "_fit", ml_stalls)
    lrt = marker_trajectories(_long(rng))["lrt"]
    assert lrt["converged_full"] and not lrt["converged_reduced"]
    assert "reduced model did not converge" in lrt["note"]


def test_missing_longitudinal_columns(rng):
    df = _long(rng)
    with pytest.raises(InputError, match="years_from_baseline"):
        marker_trajectories(df.drop(columns=["years_from_baseline"]))
    with pytest.raises(InputError, match="repeated visits"):
        marker_trajectories(df.groupby("subject").head(1))
    with pytest.raises(InputError, match="'converter' column"):
        converter_trajectories(df.drop(columns=["converter"]))
    with pytest.raises(InputError, match="clinical score 'adas'"):
        clinical_association(df, "adas")


def test_random_slope_falls_back_to_intercept_only_with_the_reason(rng, monkeypatch):
    from bi_core.analysis import longitudinal as L

    orig = L._fit

    def slope_stalls(formula, d, re_formula, reml, start=None, start_re=None):
        fit = orig(formula, d, re_formula, reml, start=start, start_re=start_re)
        if re_formula is not None:
            fit.converged = False
        return fit

    monkeypatch.setattr(L, "_fit", slope_stalls)
    df = _long(rng)
    for res in (converter_trajectories(df), marker_trajectories(df)):
        assert res["random_effects"] == "intercept only (the random-slope model did not converge)"
        assert res["converged"]


def test_fixed_effect_terms_read_as_words():
    from bi_core.analysis.longitudinal import term_label

    assert term_label("years:C(baseline_dx, Treatment('CN'))[T.AD]") == "years × AD (vs CN)"
    assert [term_label(t) for t in ("C(sex)[T.M]", "age_c", "Intercept")] == ["sex = M", "baseline age (centred)",
                                                                              "Intercept"]


def test_clinical_association_p_is_a_likelihood_ratio_with_the_trajectories_design(rng):
    """LRT p-values (not Wald), site among the covariates, random slopes (or the fallback named), and an
    association that is truly absent within subjects is not found there."""
    import numpy as np

    d = _long(rng)
    d["site"] = np.where(d["subject"].str[-1].isin(list("02468")), "A", "B")
    # CDR-SB follows each subject's mean marker only: no within-subject association
    d["cdr_sb"] = 2 + 1.5 * d.groupby("subject")["marker"].transform("mean") + rng.normal(0, 0.3, len(d))
    a = clinical_association(d, "cdr_sb").set_index("part")
    assert set(a["random_effects"]) <= {"intercept + slope"} or a["random_effects"].str.startswith("intercept only (").all()
    assert a["test"].str.startswith("likelihood ratio").all()
    assert a.loc["between", "p"] < 1e-6 and a.loc["within", "p"] > 0.01
    assert ((a["p"] > 0) & (a["p"] <= 1)).all() and "p_wald" in a


def _wide_score(seed=0, n=8):
    """A CDR-SB-like score whose groups differ by many SDs (CN 0.6, MCI 5, AD 12), with a null marker."""
    import numpy as np

    rng, rows = np.random.default_rng(seed), []
    for dx, mu, sd, slope in (("CN", 0.6, 0.5, 0.05), ("MCI", 5, 1.2, 0.6), ("AD", 12, 2.5, 1.5)):
        for i in range(n):
            u, s, m0 = rng.normal(0, sd), rng.normal(slope, 0.3 * slope + 0.05), rng.normal(0, 1)
            for v in range(int(rng.integers(1, 6))):
                rows.append(dict(subject=f"{dx}{i}", diagnosis=dx, years_from_baseline=float(v), age=70.0 + v,
                                 sex="MF"[i % 2], site="A", marker=m0 + rng.normal(0, 0.5),
                                 cdr_sb=max(0.0, mu + u + s * v + rng.normal(0, 0.3))))
    return pd.DataFrame(rows)


def _reference_fit(formula, d, reml):
    """Powell, then Nelder–Mead from Powell's estimate: slow, but at the optimum on these data."""
    import warnings

    import statsmodels.formula.api as smf

    m = smf.mixedlm(formula, d, groups=d["subject"], re_formula="~years")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = m.fit(reml=reml, method="powell", maxiter=4000).params_object
        return m, m.fit(reml=reml, method="nm", maxiter=20000, start_params=start)


def test_mixed_fits_reach_the_optimum_where_lbfgs_reports_convergence_short_of_it():
    """statsmodels' L-BFGS stops ~30 log-likelihood units short on a wide-ranged score and says it converged.

    The old fitter took that fit, so REML estimates and likelihood-ratio tests on CDR-SB were
    an optimizer's accident (the clinical null: p = 1 or p < 1e-9 in half its permutations).
    """
    import warnings

    from bi_core.analysis import longitudinal as L

    d = L.prepare(_wide_score(), "marker", "diagnosis", L.DIAGNOSIS_LEVELS)
    model, ref = _reference_fit("cdr_sb ~ marker + years", d, reml=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lbfgs = model.fit(reml=True, method="lbfgs", maxiter=4000)
    assert lbfgs.converged and lbfgs.llf < ref.llf - 10      # the failure this test guards against is there
    fit = L._fit("cdr_sb ~ marker + years", d, "~years", reml=True)
    assert fit.converged and fit.llf == pytest.approx(ref.llf, abs=0.05)

    # a likelihood-ratio test handed a full-model fit short of its optimum restarts it from the reduced model's
    # estimate (the full model contains the reduced one), so the statistic is the reference one, not clamped at 0
    _, ref_full = _reference_fit("cdr_sb ~ marker + years", d, reml=False)
    _, ref_red = _reference_fit("cdr_sb ~ years", d, reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        poor = model.fit(reml=False, method="lbfgs", maxiter=4000)
    assert poor.llf < ref_red.llf - 1
    lrt = L._lrt("cdr_sb ~ marker + years", "cdr_sb ~ years", d, "~years", 1, "marker = 0", ml_full=poor)
    assert lrt["statistic"] == pytest.approx(2 * (ref_full.llf - ref_red.llf), abs=0.1)
