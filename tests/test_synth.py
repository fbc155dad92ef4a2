"""The generator does what its ground truth says (checked on the data themselves)."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from bi_core.cohort import Cohort
from bi_core.synth import PRESETS, SynthConfig, generate, subject_coupling, synthetic_atlas


def _digest(root):
    """Hashes of every file under ``root``, hidden ones included: the shared smoke cohorts are inputs
    of other tests, which must never write into them (no cache either: tests/test_data_safety.py)."""
    h = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return h


def test_same_seed_byte_identical(tmp_path, smoke_dir):
    from bi_core.steps import STAMP_NAME

    again = generate(tmp_path / "again", "smoke", seed=0, progress=False)
    # the shared cohorts are the smoke book's synth step: every file but the step's stamp is the generator's
    assert _digest(again) == {k: v for k, v in _digest(smoke_dir).items() if k != STAMP_NAME}
    other = generate(tmp_path / "other", "smoke", seed=1, progress=False)
    assert _digest(other)["eval/timeseries.f32"] != _digest(smoke_dir)["eval/timeseries.f32"]


def test_layout_and_ground_truth(smoke_dir):
    gt = json.loads((smoke_dir / "ground_truth.json").read_text())
    assert {tuple(p["pair"]) for p in gt["disease"]["altered_pairs"]} == {("DMN", "LIM"), ("DAN", "VAN"), ("FPN", "DMN")}
    assert gt["disease"]["slope_order"] == ["AD", "MCI", "CN"]
    ev = Cohort.open(smoke_dir / "eval")
    pre = Cohort.open(smoke_dir / "pretrain")
    assert set(ev.table["site"]) == {"ADNI-A", "ADNI-B"}
    assert sorted(ev.info()["tr"]) == [0.607, 3.0]
    assert set(pre.table["dataset"]) == {"ABCD", "HCP-D", "HCP-YA", "HCP-A"}
    assert pre.table["diagnosis"].isna().all() and pre.table["fluid"].notna().all()
    assert set(ev.table["diagnosis"].dropna()) <= {"CN", "MCI", "AD"}
    assert ev.table.groupby("subject")["years_from_baseline"].min().eq(0).all()
    assert ev.atlas.roi_regions is not None and len(ev.atlas.regions) >= 5


def test_ground_truth_states_the_generators_own_disease_course(smoke_dir):
    """ground_truth.json is written from the parameters the generator draws from, and the data obey them."""
    from bi_core.synth import CONVERSION_SEVERITY, DISEASE_COURSE

    gt = json.loads((smoke_dir / "ground_truth.json").read_text())["disease"]
    assert set(gt["severity"]) == set(DISEASE_COURSE)
    for dx, c in DISEASE_COURSE.items():
        assert gt["severity"][dx]["baseline"] == list(c["baseline"])
        assert (gt["severity"][dx]["slope_mean"], gt["severity"][dx]["slope_sd"]) == c["slope"]
        assert gt["severity_slopes"][dx] == c["slope"][0]
    assert gt["severity"]["MCI"]["converts_to_AD_at"] == CONVERSION_SEVERITY
    assert gt["slope_order"] == sorted(DISEASE_COURSE, key=lambda dx: -gt["severity_slopes"][dx])
    # every subject's baseline severity lies in its group's stated range; MCI converts at the stated severity
    sev = pd.read_csv(smoke_dir / "ground_truth_recordings.tsv", sep="\t")
    ev = Cohort.open(smoke_dir / "eval").table.merge(sev, on="recording_id")
    base = ev[ev["visit"] == 0]
    for dx, g in base.groupby("baseline_dx"):
        lo, hi = gt["severity"][dx]["baseline"]
        assert g["severity"].between(lo, hi).all(), dx
    mci = ev[ev["baseline_dx"] == "MCI"]
    assert ((mci["diagnosis"] == "AD") == (mci["severity"] >= CONVERSION_SEVERITY)).all()


def test_atlas_proportions_and_regions_cross_networks():
    a = synthetic_atlas(100, 8)
    assert a.network_sizes() == {"VIS": 17, "SMN": 14, "DAN": 15, "VAN": 12, "LIM": 5, "FPN": 13, "DMN": 24, "SUB": 8}
    t = a.to_table()
    assert (t.groupby("region")["network"].nunique() > 1).sum() >= 4  # regions cut across networks


@pytest.fixture(scope="module")
def bigger(tmp_path_factory):
    """More subjects than smoke, short recordings: enough power for group checks in seconds."""
    base = PRESETS["smoke"]
    cfg = SynthConfig(**{**base.__dict__, "name": "test", "n_cortical": 50, "n_cn": 30, "n_mci": 10, "n_ad": 30, "max_visits": 4,
                         "dropout": 0.1})
    return generate(tmp_path_factory.mktemp("g") / "c", cfg, seed=3, progress=False)


def _network_fc(c, x):
    a = c.atlas
    M = np.stack([np.asarray(x)[:, a.rois_of(n)].mean(1) for n in a.networks], 1)
    return np.corrcoef(M.T)


def test_within_network_fc_exceeds_between(bigger):
    c = Cohort.open(bigger / "eval")
    ni = c.atlas.network_index
    same = (ni[:, None] == ni[None, :]) & ~np.eye(len(ni), dtype=bool)
    diff = ni[:, None] != ni[None, :]
    w, b = [], []
    for _, x in c.iter_series():
        F = np.corrcoef(np.asarray(x).T)
        w.append(F[same].mean())
        b.append(F[diff].mean())
    assert np.mean(w) > np.mean(b) + 0.2


def test_weakened_couplings_are_weaker_in_ad(bigger):
    c = Cohort.open(bigger / "eval")
    nets = c.atlas.networks
    rows = []
    for row, x in c.iter_series():
        if row["visit"] != 0:
            continue
        F = _network_fc(c, x)
        rows.append({"dx": row["diagnosis"], **{f"{p}-{q}": F[nets.index(p), nets.index(q)]
                                                for p, q in [("DMN", "LIM"), ("DAN", "VAN"), ("FPN", "DMN")]}})
    df = pd.DataFrame(rows).groupby("dx").mean()
    assert df.loc["AD", "DMN-LIM"] < df.loc["CN", "DMN-LIM"] - 0.05
    assert df.loc["AD", "DAN-VAN"] < df.loc["CN", "DAN-VAN"] - 0.05
    assert df.loc["AD", "FPN-DMN"] > df.loc["CN", "FPN-DMN"]


def test_vis_more_predictable_than_sub_by_linear_regression(bigger):
    from sklearn.linear_model import Ridge

    c = Cohort.open(bigger / "pretrain")
    X = [np.asarray(x) for _, x in c.iter_series()]
    train, test = np.concatenate(X[::2]), np.concatenate(X[1::2])
    r2 = {}
    for net in ("VIS", "SUB"):
        m = c.atlas.rois_of(net)
        o = np.setdiff1d(np.arange(c.atlas.n_rois), m)
        pred = Ridge(10.0).fit(train[:, o], train[:, m]).predict(test[:, o])
        y = test[:, m]
        r2[net] = 1 - ((y - pred) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()
    assert r2["VIS"] > 0.3 and r2["VIS"] > r2["SUB"] + 0.25


def test_severity_rises_faster_for_ad_than_cn(bigger):
    gt = pd.read_csv(bigger / "ground_truth_recordings.tsv", sep="\t")
    ev = Cohort.open(bigger / "eval").table.merge(gt, on="recording_id")
    slopes = {}
    for dx, g in ev.groupby("baseline_dx"):
        per_subj = [np.polyfit(s["years_from_baseline"], s["severity"], 1)[0] for _, s in g.groupby("subject") if len(s) > 1]
        slopes[dx] = np.mean(per_subj)
    assert slopes["AD"] > slopes["MCI"] > slopes["CN"]
    # and the observed clinical scores follow severity
    base = ev[ev["visit"] == 0].groupby("baseline_dx")[["mmse", "cdr_sb"]].mean()
    assert base.loc["AD", "mmse"] < base.loc["CN", "mmse"] and base.loc["AD", "cdr_sb"] > base.loc["CN", "cdr_sb"]


def test_subject_coupling_is_a_valid_correlation():
    K = 8
    for s in (0.0, 0.5, 1.0):
        C = subject_coupling(s, 85.0, np.full((K, K), 0.5) - np.eye(K) * 0.5)
        assert np.allclose(np.diag(C), 1) and np.linalg.eigvalsh(C).min() > 0
