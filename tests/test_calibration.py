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
