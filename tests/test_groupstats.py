import numpy as np
import pandas as pd
import pytest

from bi_core.analysis.groundtruth import score_dmn_drop, score_interaction_changes
from bi_core.analysis.groupstats import baseline_rows, check_groups, group_differences
from bi_core.errors import InputError


def _table(rng, effect=1.0, n=40):
    rows = []
    for i in range(n):
        dx = ["CN", "MCI", "AD"][i % 3]
        age = rng.uniform(60, 85)
        for net in ("VIS", "DMN", "LIM"):
            shift = {"CN": 0.0, "MCI": -0.5 * effect, "AD": -effect}[dx] if net == "DMN" else 0.0
            rows.append(dict(subject=f"s{i}", diagnosis=dx, age=age, sex="MF"[i % 2], site="AB"[i % 2 if i < n // 2 else 0],
                             network=net, r2=0.5 + shift + 0.01 * (age - 70) + rng.normal(0, 0.3)))
    return pd.DataFrame(rows)


def test_group_differences_finds_planted_effect(rng):
    df = _table(rng, effect=1.0, n=60)
    out = group_differences(df, "r2", ["network"])
    ad = out[out["contrast"] == "AD-CN"].set_index("network")
    assert ad.loc["DMN", "significant"] and ad.loc["DMN", "estimate"] < -0.6
    assert not ad.loc["VIS", "significant"] and not ad.loc["LIM", "significant"]
    assert ad.loc["DMN", "ci_low"] < ad.loc["DMN", "estimate"] < ad.loc["DMN", "ci_high"]
    assert ad.loc["DMN", "cohens_d"] < -1.5
    assert (out["q"] >= out["p"] - 1e-12).all()
    assert score_dmn_drop(out)["found"]


def test_group_differences_equal_one_formula_fit_per_cell(rng):
    """Shared design matrices give the numbers of fitting each cell's formula on its own."""
    import statsmodels.formula.api as smf

    df = _table(rng, effect=1.0, n=45)
    df.loc[(df["network"] == "LIM") & (df["subject"] == "s3"), "r2"] = np.nan   # a cell with its own row set
    out = group_differences(df, "r2", ["network"]).set_index(["network", "contrast"])
    for net in ("DMN", "LIM"):
        for grp in ("AD", "MCI"):
            sub = df[(df["network"] == net) & df["diagnosis"].isin([grp, "CN"])].dropna(subset=["r2"]).copy()
            sub["_grp"] = (sub["diagnosis"] == grp).astype(float)
            fit = smf.ols("r2 ~ _grp + age + C(sex) + C(site)", data=sub).fit()
            row = out.loc[(net, f"{grp}-CN")]
            assert row["estimate"] == pytest.approx(fit.params["_grp"], rel=1e-9)
            assert row["p"] == pytest.approx(fit.pvalues["_grp"], rel=1e-9)
            assert row["n_group"] + row["n_ref"] == len(sub)


def test_fdr_family_is_one_measure_and_contrast_across_its_cells(rng):
    """q is Benjamini–Hochberg over the networks of one contrast, and each row says so."""
    from statsmodels.stats.multitest import multipletests

    df = _table(rng, effect=0.6, n=45)
    out = group_differences(df, "r2", ["network"])
    for contrast, g in out.groupby("contrast"):
        np.testing.assert_allclose(g["q"], multipletests(g["p"], method="fdr_bh")[1])
        assert set(g["fdr_family"]) == {f"r2 {contrast}, across 3 networks"}
    # a different family size gives a different q: the families are not pooled
    both = multipletests(out["p"], method="fdr_bh")[1]
    assert not np.allclose(out["q"], both)
    pairs = df.rename(columns={"network": "target"}).assign(source="VIS")
    fam = group_differences(pairs, "r2", ["target", "source"])["fdr_family"]
    assert set(fam) == {"r2 AD-CN, across 3 target × source cells", "r2 MCI-CN, across 3 target × source cells"}


def test_group_differences_null_has_few_discoveries(rng):
    df = _table(rng, effect=0.0, n=60)
    out = group_differences(df, "r2", ["network"])
    assert out["significant"].sum() == 0


def test_single_group_and_missing_dx_errors(rng):
    df = _table(rng)
    with pytest.raises(InputError, match="only one group"):
        group_differences(df[df["diagnosis"] == "CN"], "r2", ["network"])
    with pytest.raises(InputError, match="needs diagnoses"):
        group_differences(df.assign(diagnosis=np.nan), "r2", ["network"])
    with pytest.raises(InputError, match="covariate 'handedness'"):
        group_differences(df, "r2", ["network"], covariates=("handedness",))
    with pytest.raises(InputError, match="too few subjects"):
        check_groups(df[df["subject"].isin(["s0", "s1", "s2"])], min_per_group=2)


def test_baseline_rows_one_per_subject():
    t = pd.DataFrame({"subject": ["a", "a", "b", "c", "c"], "years_from_baseline": [1.0, 0.0, 0.0, 0.0, 0.0]})
    m = baseline_rows(t)
    assert list(m) == [False, True, True, True, False]


def test_score_interaction_changes():
    truth = {"disease": {"altered_pairs": [{"pair": ["DMN", "LIM"], "sign": -1}, {"pair": ["DAN", "VAN"], "sign": -1},
                                           {"pair": ["FPN", "DMN"], "sign": 1}]}}
    diff = pd.DataFrame([
        dict(target="DMN", source="LIM", contrast="AD-CN", estimate=-0.1, q=0.001, significant=True),
        dict(target="LIM", source="DMN", contrast="AD-CN", estimate=-0.1, q=0.01, significant=True),
        dict(target="VAN", source="DAN", contrast="AD-CN", estimate=0.2, q=0.02, significant=True),   # wrong sign
        dict(target="VIS", source="SMN", contrast="AD-CN", estimate=0.1, q=0.03, significant=True),   # false positive
        dict(target="FPN", source="DMN", contrast="AD-CN", estimate=0.1, q=0.3, significant=False),   # missed
    ])
    s = score_interaction_changes(diff, truth)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["sign_agreement"] == pytest.approx(0.5)
    assert s["false_positives"] == ["SMN–VIS"] and s["missed"] == ["DMN–FPN"]


def test_score_interaction_changes_unestimable_measure_and_unknown_contrast():
    truth = {"disease": {"altered_pairs": [{"pair": ["DMN", "LIM"], "sign": -1}]}}
    diff = pd.DataFrame([dict(target="DMN", source="LIM", contrast="AD-CN", measure="attention", estimate=-0.1,
                              q=0.001, significant=True)])
    s = score_interaction_changes(diff, truth, "AD-CN", "occlusion_share")  # measure with no estimable cell
    assert not s["estimable"] and s["n_found"] == 0 and s["recall"] == 0 and np.isnan(s["precision"])
    assert score_interaction_changes(diff, truth, "AD-CN", "attention")["estimable"]
    with pytest.raises(InputError, match="MCI-CN.*contrasts present"):
        score_interaction_changes(diff, truth, "MCI-CN", "attention")


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_ols_effect_is_statsmodels_ols(rng, rank_deficient):
    """The direct OLS gives statsmodels' estimate, se, t, p, CI and residual SD (a collinear column included)."""
    import statsmodels.api as sm

    from bi_core.analysis.groupstats import ols_effect

    n = 23
    X = pd.DataFrame({"Intercept": 1.0, "_grp": (np.arange(n) % 2).astype(float), "age": rng.normal(70, 5, n)})
    if rank_deficient:
        X["age2"] = 2 * X["age"]                  # collinear: the pseudo-inverse solution, rank 3
    y = pd.Series(0.4 * X["_grp"] + 0.02 * X["age"] + rng.standard_normal(n))
    got = ols_effect(y, X, "_grp")
    fit = sm.OLS(y.to_numpy(), X).fit()
    lo, hi = fit.conf_int().loc["_grp"]
    want = {"estimate": fit.params["_grp"], "se": fit.bse["_grp"], "t": fit.tvalues["_grp"], "p": fit.pvalues["_grp"],
            "ci_low": lo, "ci_high": hi, "residual_sd": np.sqrt(fit.scale)}
    for k, v in want.items():
        assert got[k] == pytest.approx(float(v), rel=1e-9, abs=1e-12), k
