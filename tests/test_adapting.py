"""The adapting chapter's cohort: a custom group design, its BIDS round trip, planted test–retest stability,
and split-half reliability for cohorts with one run per subject."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bi_core.cohort import Cohort
from bi_core.errors import ConfigError, InputError
from bi_core.steps import ADAPTING_GROUPS, BOOK_PRESETS, adapting_config
from bi_core.synth import GroupSpec, generate


def _small(n: int = 4, frames: int = 96):
    """The chapter's design on the smoke atlas, ``n`` subjects per group."""
    cfg = adapting_config(BOOK_PRESETS["smoke"])
    sites = (replace(cfg.sites[0], n_frames=(frames, frames)),)
    return replace(cfg, sites=sites, groups=tuple(replace(g, n_subjects=n) for g in cfg.groups))


def test_group_design_writes_its_labels_severities_and_sessions(tmp_path):
    cfg = _small()
    out = generate(tmp_path / "s", cfg, seed=3, progress=False)
    assert not (out / "pretrain").exists()              # an empty pretrain tuple writes no pretraining cohort
    t = Cohort.open(out / "eval").table
    assert list(t["recording_id"][:2]) == ["sub-S001_ses-1", "sub-S001_ses-2"]
    assert all(s == ["1", "2"] for s in t.groupby("subject")["session"].apply(list))
    assert t.drop_duplicates("subject")["group"].value_counts().to_dict() == {"TD": 4, "ADHD": 4}
    assert t["diagnosis"].isna().all() and t["mmse"].isna().all()    # no ADNI-like scores in a custom design
    assert (t.groupby("subject")["age"].nunique() == 1).all() and t["age"].between(8, 60).all()
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["groups"]["column"] == "group"
    assert truth["groups"]["levels"]["ADHD"]["severity"] == list(ADAPTING_GROUPS["ADHD"])
    assert "slope_order" not in truth["disease"] and truth["disease"]["altered_pairs"]
    assert truth["retest"]["repeats_are"] == "sessions"
    # every subject's severity lies in its group's range, and both sessions share it
    sev = pd.read_csv(out / "ground_truth_recordings.tsv", sep="\t").set_index("recording_id")["severity"]
    t = t.assign(severity=sev.loc[t["recording_id"]].to_numpy())
    for label, (lo, hi) in ADAPTING_GROUPS.items():
        assert t.loc[t["group"] == label, "severity"].between(lo, hi).all(), label
    assert (t.groupby("subject")["severity"].nunique() == 1).all()


@pytest.mark.parametrize("change, message", [
    (dict(n_cn=3), "set n_cn = n_mci = n_ad = 0"),
    (dict(groups=(GroupSpec("A", 2, (0, 0.1), (8, 9)), GroupSpec("A", 2, (0.5, 0.6), (8, 9)))), "distinct"),
    (dict(groups=(GroupSpec("A", 2, (0.5, 0.1), (8, 9)),)), "severity low <= high"),
])
def test_bad_group_designs_are_config_errors(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        generate(tmp_path / "s", replace(_small(), **change), seed=0, progress=False)
    assert not (tmp_path / "s").exists()


def test_export_bids_round_trips_through_ingest(tmp_path):
    from bi_core.ingest import export_bids, ingest_bids

    out = generate(tmp_path / "s", _small(n=3), seed=1, progress=False)
    synthetic = Cohort.open(out / "eval")
    bids = export_bids(synthetic, tmp_path / "bids", participants=("group", "age", "sex", "site"), sessions=("age",))
    assert (bids / "sub-S001" / "sub-S001_sessions.tsv").is_file()
    assert json.loads(next(bids.rglob("*_timeseries.json")).read_text()) == {"RepetitionTime": 2.0}
    back = ingest_bids(bids, synthetic.atlas.name, tmp_path / "cohort", progress=False)
    a, b = synthetic.table, back.table
    assert list(b["recording_id"]) == list(a["recording_id"])
    # participants.tsv's `group` keeps its name and labels (issue 24: the user's names stay the user's)
    assert list(b["group"]) == list(a["group"]) and np.allclose(b["age"], a["age"])
    assert list(b["session"]) == list(a["session"]) and list(b["sex"]) == list(a["sex"])
    for i in (0, len(a) - 1):
        assert np.allclose(back.series(i), synthetic.series(i), atol=1e-4)
    with pytest.raises(InputError, match="no column"):
        export_bids(synthetic, tmp_path / "bids2", participants=("handedness",))


def test_adapting_cohort_icc_recovers_the_planted_stability(tmp_path):
    """The chapter's default cohort: the within-network FC ICCs order the networks as the generator planted."""
    from scipy.stats import spearmanr

    from bi_core.analysis.reliability import reliability, retest_sets
    from bi_core.connectome import fc_from_bold

    cfg = adapting_config(BOOK_PRESETS["default"])
    out = generate(tmp_path / "s", cfg, seed=BOOK_PRESETS["default"].seed, progress=False)
    c = Cohort.open(out / "eval")
    sets = retest_sets(c.table)
    assert len(sets) == 2 * sum(g.n_subjects for g in cfg.groups)      # both sessions of every subject
    ids = list(sets["recording_id"])
    rel = reliability(sets, fc=fc_from_bold([np.asarray(c.series(r)) for r in ids]), roi_names=c.atlas.roi_names,
                      roi_networks=c.atlas.roi_networks, fc_ids=ids)
    planted = pd.Series(json.loads((out / "ground_truth.json").read_text())["retest"]["stability"])
    within = rel[rel["target_network"] == rel["source_network"]].groupby("target_network")["icc"].median()
    within = within[planted.index]
    assert spearmanr(within, planted).statistic > 0.6, within.round(2).to_dict()
    order = planted.sort_values(ascending=False).index
    assert within[order[:3]].mean() > within[order[-3:]].mean() + 0.25, within.round(2).to_dict()


def test_split_half_cohort_halves_each_run(tmp_path, small_atlas):
    """One run per subject: the halves are two runs, z-scored, and a stable subject trait makes their ICC high."""
    from bi_core.analysis.reliability import reliability, retest_sets, split_half_cohort
    from bi_core.cohort import CohortWriter
    from bi_core.connectome import fc_from_bold

    rng = np.random.default_rng(0)
    with CohortWriter(tmp_path / "c", small_atlas) as w:
        for i in range(10):
            shared = rng.uniform(0.1, 2.0)      # the subject's trait: how strongly its ROIs co-fluctuate
            x = shared * rng.normal(size=(201, 1)) + rng.normal(size=(201, small_atlas.n_rois))
            w.add(x, recording_id=f"sub-{i}", subject=str(i), tr=1.0, age=20 + i)
    halves = split_half_cohort(Cohort.open(tmp_path / "c"), tmp_path / "h")
    t = halves.table
    assert list(t["recording_id"][:2]) == ["sub-0_half-1", "sub-0_half-2"] and set(t["run"]) == {"1", "2"}
    assert t["n_frames"].eq(100).all() and t["age"].iloc[1] == 20
    x = np.asarray(halves.series(1))
    assert np.allclose(x.mean(0), 0, atol=1e-5) and np.allclose(x.std(0), 1, atol=1e-4)
    sets = retest_sets(t)
    ids = list(sets["recording_id"])
    rel = reliability(sets, fc=fc_from_bold([np.asarray(halves.series(r)) for r in ids]),
                      roi_names=small_atlas.roi_names, roi_networks=small_atlas.roi_networks, fc_ids=ids)
    assert rel["n_sessions"].eq(2).all() and rel["n_subjects"].eq(10).all()
    assert rel["icc"].median() > 0.6


def test_icc_figure_draws_every_network_and_measure():
    import matplotlib

    matplotlib.use("Agg")
    from bi_core.figures.reliability import icc_vs_truth

    nets = ["VIS", "DMN", "SMN"]
    table = pd.DataFrame({"measure": ["a"] * 3 + ["b"] * 3, "network": nets * 2, "truth": [0.9, 0.1, 0.5] * 2,
                          "icc": [0.8, 0.2, 0.4, 0.7, 0.0, 0.5], "ci_low": 0.0, "ci_high": 0.9})
    ax = icc_vs_truth(table, {"VIS": "#781286", "DMN": "#CD3E4E"})
    points = np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets()) == 3])
    assert sorted(points[:, 1].round(2)) == sorted(table["icc"])
    assert [t.get_text() for t in ax.texts] == nets
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
