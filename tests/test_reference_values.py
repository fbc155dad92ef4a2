"""Reference values (issue 25, part 6): each statistic of the book against a published or hand-computed example.

ICC: Shrout & Fleiss (1979), Table 2 (also in tests/test_labels.py, with the intervals).
Cohen's d with covariates: an OLS design whose residuals are known exactly.
BH-FDR: Benjamini & Hochberg (1995), the 15 p-values of their section 4 example.
AUC and its bootstrap: the classic four-point example, an exactly enumerable bootstrap, and
Hanley & McNeil (1982), Table 1 (AUC 0.893, SE 0.032).
MixedLM LRT: a balanced random-intercept design, where the ML likelihood ratio of a
subject-level fixed effect has a closed form.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bi_core.stats import auc_rows, balanced_accuracy_rows, percentile_interval, permutation_p, stratified_bootstrap


# ---------------------------------------------------------------------- ICC
def test_icc_of_shrout_and_fleiss_table_2():
    from bi_core.analysis.reliability import icc

    Y = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    published = {"1,1": 0.17, "2,1": 0.29, "3,1": 0.71}
    for kind, value in published.items():
        assert round(float(icc(Y, kind)["icc"].iloc[0]), 2) == value, kind
    # their ANOVA table to two decimals: BMS 11.24, EMS 1.02 (F 11.03 on 5 and 15 df)
    r = icc(Y, "3,1").iloc[0]
    assert round(float(r["f"]), 1) == round(11.24 / 1.02, 1) and (r["df1"], r["df2"]) == (5, 15)


# ---------------------------------------------------------------------- Cohen's d with covariates
def _two_groups_with_age() -> pd.DataFrame:
    """y = 1 + 2·AD + 1·age + e, with residuals e = ±(0.5, −1, 0.5) orthogonal to the design.

    So the OLS estimate is exactly 2, the residual SS 3 on 6 − 3 = 3 df: residual SD 1 and
    the covariate-adjusted d = 2 / 1 = 2. Unadjusted, the pooled SD is √(7/4): d = 1.512.
    """
    age = [-1.0, 0.0, 1.0] * 2
    e = [0.5, -1.0, 0.5, -0.5, 1.0, -0.5]
    dx = ["CN"] * 3 + ["AD"] * 3
    y = [2 + 2 * (g == "AD") + a + r - 1 for g, a, r in zip(dx, age, e)]
    return pd.DataFrame({"recording_id": [f"r{i}" for i in range(6)], "subject": [f"s{i}" for i in range(6)],
                         "diagnosis": dx, "age": age, "network": "DMN", "r2": y})


def test_cohens_d_is_the_adjusted_difference_over_the_residual_sd():
    from bi_core.analysis.groupstats import group_differences

    df = _two_groups_with_age()
    r = group_differences(df, "r2", ["network"], covariates=("age",), contrasts=[("AD", "CN")]).iloc[0]
    assert r["estimate"] == pytest.approx(2.0) and r["cohens_d"] == pytest.approx(2.0)
    # se² = σ² (1/3 + 1/3) with σ = 1 (the design is balanced and age is orthogonal to the group)
    assert r["se"] == pytest.approx(np.sqrt(2 / 3)) and r["t"] == pytest.approx(2 / np.sqrt(2 / 3))
    assert r["p"] == pytest.approx(2 * stats.t.sf(2 / np.sqrt(2 / 3), 3))
    raw = group_differences(df, "r2", ["network"], covariates=(), contrasts=[("AD", "CN")]).iloc[0]
    assert raw["cohens_d"] == pytest.approx(2 / np.sqrt(7 / 4))       # 1.512: the textbook pooled-SD d


# ---------------------------------------------------------------------- BH-FDR
#: Benjamini & Hochberg (1995), section 4: 15 p-values; at q* = 0.05 their procedure rejects the 4 smallest
#: (Bonferroni: 3).
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
           0.6528, 0.7590, 1.0000]


def test_bh_fdr_rejects_benjamini_and_hochbergs_four():
    from statsmodels.stats.multitest import multipletests

    from bi_core.analysis.groupstats import fdr

    rng = np.random.default_rng(0)
    order = rng.permutation(len(BH_1995))
    out = fdr(pd.DataFrame({"p": np.array(BH_1995)[order], "family": "a"}), "family", 0.05)
    rejected = sorted(out.loc[out["significant"], "p"])
    assert rejected == BH_1995[:4]
    assert (np.array(BH_1995) <= 0.05 / 15).sum() == 3               # Bonferroni, for contrast
    # the adjusted q by hand: q_(i) = min_{j ≥ i} p_(j)·m/j; q of the 4th is 0.0095·15/4 = 0.035625
    p = np.array(BH_1995)
    q_hand = np.minimum.accumulate((p * 15 / np.arange(1, 16))[::-1])[::-1]
    assert out.set_index("p").loc[p, "q"].to_numpy() == pytest.approx(np.minimum(q_hand, 1))
    assert q_hand[3] == pytest.approx(0.035625) and out["q"].to_numpy() == pytest.approx(
        multipletests(out["p"], method="fdr_bh")[1])
    # two families are corrected separately, and a missing p-value is no test
    two = pd.DataFrame({"p": [0.01, 0.04, 0.03, 0.005, np.nan], "family": ["x"] * 4 + ["y"]})
    out = fdr(two, "family", 0.05)
    assert out["q"].iloc[:4].to_numpy() == pytest.approx([0.02, 0.04, 0.04, 0.02]) and np.isnan(out["q"].iloc[4])
    assert out["fdr_family"].iloc[0] == "4 tests" and out["fdr_family"].iloc[4] == "0 tests"


# ---------------------------------------------------------------------- AUC and its bootstrap
def test_auc_of_the_four_point_example_and_ties():
    from sklearn.metrics import roc_auc_score

    s, y = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    assert auc_rows(s, y == 1) == pytest.approx(0.75) == roc_auc_score(y, s)     # 3 of 4 pairs ordered
    assert auc_rows(np.array([0.5, 0.5]), np.array([False, True])) == 0.5      # a tie counts one half
    assert np.isnan(auc_rows(np.array([0.1, 0.2]), np.array([True, True])))
    rows = np.vstack([s, -s])
    assert auc_rows(rows, y == 1) == pytest.approx([0.75, 0.25])
    assert balanced_accuracy_rows(np.array([[0, 1, 1, 1]]), y, 2) == pytest.approx([0.75])   # (1/2 + 1) / 2


def test_stratified_bootstrap_of_the_four_point_auc_is_its_exact_distribution():
    """Positives {0.35, 0.8}, negatives {0.1, 0.4}, resampled within class: 16 equally likely draws.

    AUC = 0 when both positives are 0.35 and both negatives 0.4 (1/16); AUC = 1 when neither
    pair (0.35, 0.4) is drawn: both positives 0.8 or both negatives 0.1 (1/4 + 1/4 − 1/16 =
    7/16); the mean is the AUC, 0.75.
    """
    s, y = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    idx = stratified_bootstrap(y, 20000, 1)
    assert (y[idx] == y).all()                                   # every resample keeps the classes in place
    a = auc_rows(s[idx], y[idx] == 1)
    se = lambda p: 4 * np.sqrt(p * (1 - p) / len(a))            # noqa: E731 (4 Monte-Carlo SEs)
    assert np.mean(a == 0) == pytest.approx(1 / 16, abs=se(1 / 16))
    assert np.mean(a == 1) == pytest.approx(7 / 16, abs=se(7 / 16))
    assert a.mean() == pytest.approx(0.75, abs=0.01)
    assert percentile_interval(a) == (0.0, 1.0)


def test_bootstrap_se_of_hanley_and_mcneils_auc():
    """Hanley & McNeil (1982), Table 1: 58 normal and 51 abnormal CT images rated 1–5; AUC 0.893, SE 0.032.

    The stratified subject bootstrap's SD is the plug-in (DeLong) SE of the Mann–Whitney AUC;
    Hanley & McNeil's 0.032 is their exponential approximation of it.
    """
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    s, pos = np.r_[normal, abnormal].astype(float), np.r_[np.zeros(58), np.ones(51)].astype(bool)
    auc = float(auc_rows(s, pos))
    assert round(auc, 3) == 0.893
    # DeLong's structural components (ddof 0: the plug-in variance the bootstrap estimates)
    H = (abnormal[:, None] > normal[None]) + 0.5 * (abnormal[:, None] == normal[None])
    delong = np.sqrt(H.mean(1).var() / 51 + H.mean(0).var() / 58)
    a = auc_rows(s[idx := stratified_bootstrap(pos, 4000, 2)], pos[idx])
    assert a.std() == pytest.approx(delong, rel=0.05) and a.std() == pytest.approx(0.032, abs=0.003)
    lo, hi = percentile_interval(a)
    assert lo < auc < hi and hi - lo == pytest.approx(2 * 1.96 * delong, rel=0.1)


def test_permutation_p_counts_the_observed_as_one_permutation():
    assert permutation_p(0.9, np.array([0.5, 0.6, 0.95, 0.9])) == pytest.approx(3 / 5)    # ties count
    assert permutation_p(1.0, np.zeros(999)) == pytest.approx(1 / 1000)                  # never 0


# ---------------------------------------------------------------------- MixedLM likelihood-ratio test
def test_mixedlm_lrt_of_a_subject_level_effect_has_its_closed_form():
    """Balanced random-intercept data (n subjects × m visits), x constant within subject.

    The ML likelihood splits into the subjects' means (variance τ² = σ_b² + σ_e²/m) and the
    within-subject deviations, which x does not touch; so, with both variance estimates inside
    their range, LR = n · log(RSS₀ / RSS₁) of the regressions of the subject means on 1 and on x.
    """
    from bi_core.analysis.longitudinal import _lrt

    rng = np.random.default_rng(5)
    n, m = 12, 3
    x = rng.normal(size=n)
    b = rng.normal(scale=2.0, size=n)
    rows = [{"subject": f"s{i}", "x": x[i], "y": 0.8 * x[i] + b[i] + rng.normal()} for i in range(n) for _ in range(m)]
    d = pd.DataFrame(rows)
    means = d.groupby("subject", sort=False)["y"].mean().to_numpy()
    rss0 = ((means - means.mean()) ** 2).sum()
    rss1 = ((means - np.polyval(np.polyfit(x, means, 1), x)) ** 2).sum()
    lr = n * np.log(rss0 / rss1)
    res = _lrt("y ~ x", "y ~ 1", d, None, 1, "x")
    assert res["converged_full"] and res["converged_reduced"] and res["note"] == ""
    assert res["statistic"] == pytest.approx(lr, rel=1e-4)
    assert res["p"] == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-3) and res["df"] == 1
