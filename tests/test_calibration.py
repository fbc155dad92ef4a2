"""Null calibration (issue 25, part 5): no path of the book is anti-conservative on data without a disease effect."""

import numpy as np
import pandas as pd
import pytest

from bi_core.analysis.calibration import NULL_GROUPS, RULES, null_calibration, null_config
from bi_core.analysis.classify import CVConfig


def test_the_null_scenario_has_no_disease_effect():
    cfg = null_config(5)
    assert [g.label for g in cfg.groups] == list(NULL_GROUPS) and cfg.pretrain == ()
    assert all(g.severity == (0.0, 0.0) and g.age == cfg.groups[0].age and g.n_subjects == 5 for g in cfg.groups)


def test_no_path_is_anti_conservative_on_null_cohorts():
    """16 null cohorts (8 subjects per group, smoke atlas, C fixed for speed): every decision rule at or below its level.

    A rule fails when its false-positive rate exceeds the nominal level by more than 3
    Monte-Carlo SEs; the per-test rate of the group differences must also not be far below
    its level (a path that never rejects would pass the first check trivially). The rules
    shown only for comparison (the bootstrap interval alone, the former claim 5 rule) are
    not the book's decisions; at 100 such cohorts they reject 7 % and 8 % against 2.5 %.
    """
    cv = CVConfig(n_splits=3, n_repeats=2, inner_splits=1, Cs=(0.1,), n_permutations=99, n_bootstrap=300)
    table = null_calibration(16, 8, cv=cv, seed=3)
    assert list(table["rule"]) == [r for _, _, r, _ in RULES] and (table["n_replicates"] == 16).all()
    nominal = table.set_index("rule")["nominal"]
    assert nominal["label-permutation p < α"] == 0.05
    assert nominal["AUC bootstrap interval above 0.5"] == pytest.approx(0.025)
    decides = table[table["book_decides"]]
    assert set(decides["rule"]) == {"p < α, each pair", "any pair with BH q < α", "label-permutation p < α",
                                    "claim 5: bootstrap interval above chance and p < α"}
    bad = decides[decides["anti_conservative"]]
    assert bad.empty, bad.to_string()
    assert (decides["rate"] <= decides["nominal"] + 3 * decides["mc_se"]).all()
    per_test = table.iloc[0]
    assert per_test["rate"] > per_test["nominal"] - 4 * per_test["mc_se"]
    reps = table.attrs["replicates"]
    assert len(reps) == 16 and set(np.unique(reps.drop(columns="gd_per_test").to_numpy())) <= {0.0, 1.0}


def test_the_flag_counts_monte_carlo_error():
    """Anti-conservative means rate > nominal + z·SE, the binomial SE of a decision per replicate."""
    from bi_core.analysis.calibration import rates

    keys = [k for k, _, _, _ in RULES]
    res = pd.DataFrame(0.0, index=range(20), columns=keys)
    res.loc[0, "auc_perm"] = 1.0                                    # 1 false positive in 20: the nominal 0.05
    row = rates(res).set_index("rule").loc["label-permutation p < α"]
    assert row["rate"] == 0.05 and row["mc_se"] == pytest.approx(np.sqrt(0.05 * 0.95 / 20))
    assert not row["anti_conservative"]
    res.loc[:5, "auc_perm"] = 1.0                                   # 6 in 20 = 0.30 > 0.05 + 3 · 0.049
    assert rates(res).set_index("rule").loc["label-permutation p < α", "anti_conservative"]
    res.loc[:, "gd_per_test"] = [0.4, 0.1] * 10                     # per-test share: the SE of the shares
    g = rates(res).iloc[0]
    assert g["mc_se"] == pytest.approx(np.std([0.4, 0.1] * 10, ddof=1) / np.sqrt(20)) and g["anti_conservative"]


def _longitudinal_table(rng: np.random.Generator, n_per_group: int = 8, ad_slope: float = -0.6) -> pd.DataFrame:
    """3 visits per subject; AD declines ``ad_slope`` per year faster than CN and MCI (subject intercepts and slopes)."""
    rows = []
    for g in NULL_GROUPS:
        for i in range(n_per_group):
            a, b = rng.normal(0, 1), rng.normal(0, 0.2) + (ad_slope if g == "AD" else 0.0)
            age, sex = rng.uniform(60, 85), rng.choice(["F", "M"])
            for t in (0.0, 1.0, 2.0):
                rows.append({"subject": f"{g}{i:02d}", "years_from_baseline": t, "diagnosis": g, "age": age + t,
                             "sex": sex, "marker": a + b * t + rng.normal(0, 0.3)})
    return pd.DataFrame(rows)


def test_the_mixed_model_null_permutes_subjects_and_stays_at_its_level(rng):
    """The trajectory model's LRT on a table with a strong AD slope: the fit itself finds it (p < 0.01); with the
    baseline groups permuted across subjects it says "found" at most at its level within Monte-Carlo error."""
    from bi_core.analysis.calibration import mixed_model_null
    from bi_core.analysis.longitudinal import marker_trajectories

    df = _longitudinal_table(rng)
    assert marker_trajectories(df, covariates=("age", "sex"))["lrt"]["p"] < 0.01
    table = mixed_model_null(df, 12, seed=1, covariates=("age", "sex"))
    row = table.iloc[0]
    assert (row["n_replicates"], row["nominal"]) == (12, 0.05) and row["path"].startswith("longitudinal mixed model")
    assert not row["anti_conservative"] and row["rate"] <= row["nominal"] + 3 * row["mc_se"]
    p = table.attrs["replicates"]["p"]
    # permutations break the AD slope: the p-values spread over (0, 1) instead of sitting at the unpermuted ~0
    assert p.nunique() == 12 and p.median() > 0.1
    again = mixed_model_null(df, 3, seed=1, covariates=("age", "sex")).attrs["replicates"]["p"]
    assert again.tolist() == p.iloc[:3].tolist()          # seeded: the same permutations in the same order


def test_an_anti_conservative_mixed_model_is_flagged(rng, monkeypatch):
    """The flag fails a path that rejects too often: an LRT that always says p = 0.01 is flagged."""
    from bi_core.analysis import longitudinal as L
    from bi_core.analysis.calibration import mixed_model_null

    real = L.marker_trajectories

    def always(*a, **k):
        res = real(*a, **k)
        return {**res, "lrt": {**res["lrt"], "p": 0.01}}

    monkeypatch.setattr(L, "marker_trajectories", always)
    row = mixed_model_null(_longitudinal_table(rng, 5), 6, seed=0, covariates=("age",)).iloc[0]
    assert row["rate"] == 1.0 and row["anti_conservative"]


def test_the_clinical_association_null_moves_whole_trajectories_between_subjects_with_as_many_visits(rng):
    """A score that tracks the marker within and between subjects: the fit finds both (p < 0.01); with marker
    trajectories permuted between subjects of equal visit count both parts fall to their level, every trajectory
    keeps its shape, and a subject alone in its visit-count stratum keeps its own."""
    from bi_core.analysis.calibration import clinical_association_null
    from bi_core.analysis.longitudinal import clinical_association

    df = _longitudinal_table(rng, n_per_group=6)
    df["cdr_sb"] = 2.0 * df["marker"] + rng.normal(0, 0.3, len(df))
    df = df[~((df["subject"] == "CN00") & (df["years_from_baseline"] == 2.0))]     # the only 2-visit subject
    res = clinical_association(df, "cdr_sb", covariates=("age", "sex")).set_index("part")
    assert (res["p"] < 0.01).all()
    table = clinical_association_null(df, "cdr_sb", 5, seed=2, covariates=("age", "sex"))
    assert list(table["path"].str.extract(r"(within|between)-subject")[0]) == ["within", "between"]
    assert (table["n_replicates"] == 5).all() and (table["n_fixed_subjects"] == 1).all()
    assert not table["anti_conservative"].any()
    rep = table.attrs["replicates"]
    assert rep["within"].median() > 0.05 and rep["between"].median() > 0.05
    again = clinical_association_null(df, "cdr_sb", 2, seed=2, covariates=("age", "sex")).attrs["replicates"]
    assert again["within"].tolist() == rep["within"].iloc[:2].tolist()       # seeded


def test_the_clinical_null_removes_an_association_carried_by_the_number_of_visits(rng, monkeypatch):
    """Subjects followed longer have a higher marker and score: a within-stratum permutation alone would keep that
    between-subject association; the permuted markers have the same stratum means, so none is left."""
    from bi_core.analysis import calibration as K
    from bi_core.analysis import longitudinal as L

    df = _longitudinal_table(rng, n_per_group=6)
    long_followed = df["subject"].isin(df["subject"].unique()[::2])
    df.loc[long_followed, "marker"] += 3.0
    df["cdr_sb"] = np.where(long_followed, 5.0, 1.0) + rng.normal(0, 0.3, len(df))
    df = df[long_followed | (df["years_from_baseline"] < 2.0)]        # the others have one visit fewer
    seen = []
    monkeypatch.setattr(L, "clinical_association", lambda d, *a, **k: (seen.append(d), L.pd.DataFrame(
        {"part": ["within", "between"], "p": [0.5, 0.5], "random_effects": L.RANDOM_SLOPE, "test": "likelihood ratio"}))[1])
    K.clinical_association_null(df, "cdr_sb", 3, seed=0, covariates=("age", "sex"))
    for d in seen:
        means = d.groupby("subject")["marker"].mean().groupby(d.groupby("subject").size()).mean()
        assert means.max() - means.min() < 1e-9        # the visit-count groups no longer differ in marker


def test_chapters_read_the_clinical_null_by_part(rng, tmp_path):
    """What chapter 6 and the reproducibility chapter read: the rows by part; nothing for a skipped or absent file."""
    from bi_core._io import write_tsv
    from bi_core.analysis.calibration import clinical_association_null
    from bi_core.analysis.chapters import clinical_null_parts

    df = _longitudinal_table(rng, n_per_group=4)
    df["cdr_sb"] = df["marker"] + rng.normal(0, 0.3, len(df))
    write_tsv(tmp_path / "null.tsv", clinical_association_null(df, "cdr_sb", 2, covariates=("age", "sex")))
    parts = clinical_null_parts(tmp_path / "null.tsv")
    assert list(parts.index) == ["within", "between"] and (parts["n_replicates"] == 2).all()
    write_tsv(tmp_path / "skipped.tsv", pd.DataFrame([{"path": "clinical association", "skipped": "no visits"}]))
    assert clinical_null_parts(tmp_path / "skipped.tsv") is None and clinical_null_parts(tmp_path / "no.tsv") is None
