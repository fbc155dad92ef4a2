"""The dynamic scenario: disease changes how couplings alternate between states, never their average."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bi_core.analysis.dynamic import dynamic_fc_features, network_pairs, sliding_window_fc, static_network_fc
from bi_core.cohort import Cohort
from bi_core.errors import ConfigError, InputError
from bi_core.synth import (DYNAMIC_SWINGS, NETWORKS, PRESETS, SCENARIOS, DynamicScenario, _Simulator, generate, state_couplings,
                           state_sequence, subject_coupling, swing_matrix, synthetic_atlas)

#: sha256 of the static smoke cohort (seed 0) as written before the dynamic scenario existed: the
#: static scenario must stay bit-identical. A deliberate change to the static generator updates these.
STATIC_SMOKE_DIGESTS = {
    "eval/timeseries.f32": "348d8af069418c0f70cfe30735acf4581858c534e910ee2c62b1d6d7c2871378",
    "pretrain/timeseries.f32": "cc93892bb27c75222159f6cc265b74746044c33566c6054df6d96004b2c18c21",
    "ground_truth.json": "f28f58aff8189d2e4bb74209e9f507560430754f289131f18d2a8ba7765194aa",
}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny(n: int = 4) -> object:
    """The smoke atlas and sites, a few baseline subjects per group, two healthy subjects per dataset."""
    cfg = PRESETS["smoke"]
    return replace(cfg, name="tiny-dynamic", n_cn=n, n_mci=0, n_ad=n, max_visits=1,
                   pretrain=tuple(replace(d, n_subjects=1) for d in cfg.pretrain))


@pytest.fixture(scope="module")
def dyn_dir(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("dyn") / "d", _tiny(), seed=0, progress=False, scenario="dynamic")


def test_static_scenario_is_bit_identical_to_before(smoke_dir):
    for rel, digest in STATIC_SMOKE_DIGESTS.items():
        assert _sha(smoke_dir / rel) == digest, rel
    assert "scenario" not in json.loads((smoke_dir / "ground_truth.json").read_text())
    assert "scenario" not in json.loads((smoke_dir / "synth_config.json").read_text())
    assert not any(c.startswith("swing_") for c in pd.read_csv(smoke_dir / "ground_truth_recordings.tsv", sep="\t"))


def test_dynamic_is_deterministic_by_seed_and_differs_from_static(tmp_path, dyn_dir):
    again = generate(tmp_path / "again", _tiny(), seed=0, progress=False, scenario=DynamicScenario())
    for rel in ("eval/timeseries.f32", "pretrain/timeseries.f32", "ground_truth.json", "ground_truth_recordings.tsv"):
        assert _sha(again / rel) == _sha(dyn_dir / rel), rel
    other = generate(tmp_path / "other", _tiny(), seed=1, progress=False, scenario="dynamic")
    assert _sha(other / "eval/timeseries.f32") != _sha(dyn_dir / "eval/timeseries.f32")
    static = generate(tmp_path / "static", _tiny(), seed=0, progress=False)
    assert _sha(static / "eval/timeseries.f32") != _sha(dyn_dir / "eval/timeseries.f32")
    with pytest.raises(ConfigError, match="scenario"):
        generate(tmp_path / "bad", _tiny(), seed=0, progress=False, scenario="lagged")


def test_dynamic_cohort_loads_like_the_static_one(dyn_dir):
    ev, pre = Cohort.open(dyn_dir / "eval"), Cohort.open(dyn_dir / "pretrain")
    assert set(ev.table["diagnosis"]) == {"CN", "AD"} and ev.table["visit"].eq(0).all()
    assert pre.table["diagnosis"].isna().all() and pre.table["fluid"].notna().all()
    assert json.loads((dyn_dir / "synth_config.json").read_text())["scenario"] == DynamicScenario().to_dict()


def test_ground_truth_is_written_from_the_generators_parameters(dyn_dir):
    gt = json.loads((dyn_dir / "ground_truth.json").read_text())
    nets = tuple(gt["networks"])
    sc = SCENARIOS["dynamic"]
    assert gt["scenario"] == "dynamic" and gt["dynamic"]["parameters"] == sc.to_dict()
    C0 = np.array(gt["coupling"]["matrix"])
    # the time-averaged coupling at severity 1 is the healthy one: static FC has nothing to see
    np.testing.assert_allclose(np.array(gt["coupling_at_severity_1"]["matrix"]), C0, atol=1e-4)
    assert gt["static_fc_expectation"]["time_averaged_coupling_max_abs_change_at_severity_1"] < 1e-9
    A1, B1, f1 = state_couplings(subject_coupling(0.0, 40.0, np.zeros((len(nets),) * 2), nets), 1.0, sc, nets)
    assert gt["dynamic"]["swing_factor_population"]["severity_1"] == f1
    k = {n: i for i, n in enumerate(nets)}
    assert [sw["pair"] for sw in gt["dynamic"]["swings"]] == [[a, b] for a, b, _, _ in DYNAMIC_SWINGS]
    for sw, (a, b, healthy, change) in zip(gt["dynamic"]["swings"], DYNAMIC_SWINGS):
        assert sw["sign"] == int(np.sign(change))
        assert sw["swing_at_severity_1"] == pytest.approx(f1 * (healthy + change), abs=1e-4)
        assert sw["state_A_coupling_at_severity_1"] == pytest.approx(A1[k[a], k[b]], abs=1e-4)
        assert sw["state_B_coupling_at_severity_1"] == pytest.approx(B1[k[a], k[b]], abs=1e-4)
        assert sw["relative_change_at_severity_1"] == 0.0
    assert [p["pair"] for p in gt["disease"]["altered_pairs"]] == [sw["pair"] for sw in gt["dynamic"]["swings"]]
    assert gt["disease"]["dmn_coherence_relative_change_at_severity_1"] == 0.0
    # per recording: the swing actually used (healthy subjects keep the healthy swing only)
    rec = pd.read_csv(dyn_dir / "ground_truth_recordings.tsv", sep="\t")
    pre = rec[rec["cohort"] == "pretrain"]
    a, b, healthy, _ = DYNAMIC_SWINGS[-1]
    assert np.allclose(pre[f"swing_{a}_{b}"], healthy * pre["swing_factor"], atol=1e-4)


def test_state_couplings_average_exactly_and_stay_valid():
    nets = NETWORKS
    rng = np.random.default_rng(3)
    sc = SCENARIOS["dynamic"]
    for sev in (0.0, 0.5, 1.0):
        C = subject_coupling(0.0, float(rng.uniform(20, 90)), np.zeros((8, 8)), nets)
        A, B, f = state_couplings(C, sev, sc, nets)
        np.testing.assert_allclose((A + B) / 2, C, atol=1e-12)
        assert np.linalg.eigvalsh(A).min() > 0.0199 and np.linalg.eigvalsh(B).min() > 0.0199
        np.testing.assert_allclose(A - C, f * swing_matrix(sev, sc, nets))
    # equal time in both states over whole cycles; dwell times of tens of seconds
    s = state_sequence(np.random.default_rng(0), 200_000, 0.25, sc)
    assert abs(s.mean() - 0.5) < 0.02
    runs = np.diff(np.flatnonzero(np.diff(s.astype(int)) != 0)) * 0.25
    assert 0.6 * sc.dwell_mean_s < np.median(runs) < 1.4 * sc.dwell_mean_s


def test_disease_leaves_static_fc_unchanged_and_changes_its_fluctuation():
    """Same subject, severity 0 vs 1, long recordings: static network FC within noise, window SD moved.

    The tolerance is checked against the static scenario, whose disease moves static FC far beyond it.
    """
    atlas = synthetic_atlas(24, 2)
    sim = _Simulator(atlas, PRESETS["smoke"])
    nets = sim.nets
    sc = SCENARIOS["dynamic"]
    C = subject_coupling(0.0, 70.0, np.zeros((sim.K, sim.K)), nets)
    static, dyn = {}, {}
    for sev in (0.0, 1.0):
        A, B, _ = state_couplings(C, sev, sc, nets)
        xs = [sim.recording(np.random.default_rng([7, i]), 1.5, 2000, C, 0.0, 0.3, states=(A, B, sc))
              for i in range(5)]
        static[sev] = static_network_fc(xs, atlas).mean(0)
        dyn[sev] = dynamic_fc_features(xs, 1.5, atlas).mean(0)
    idx = {frozenset(p): i for i, p in enumerate(network_pairs(atlas))}
    tol = 0.04
    assert np.abs(static[1.0] - static[0.0]).max() < tol
    swing = [idx[frozenset((a, b))] for a, b, _, _ in sc.swings]
    delta = dyn[1.0] - dyn[0.0]
    assert [np.sign(delta[i]) for i in swing] == [np.sign(c) for _, _, _, c in sc.swings]
    # specific: the other pairs move little (ROIs mix in coupled networks, so pairs that share a
    # network with a swing pair move a bit too)
    assert np.abs(delta[swing]).min() > 5 * np.median(np.abs(np.delete(delta, swing)))
    # the static scenario's disease at the same severity moves static FC well beyond the tolerance
    C1 = subject_coupling(1.0, 70.0, np.zeros((sim.K, sim.K)), nets)
    xs1 = [sim.recording(np.random.default_rng([7, i]), 1.5, 2000, C1, 1.0, 0.3) for i in range(5)]
    xs0 = [sim.recording(np.random.default_rng([7, i]), 1.5, 2000, C, 0.0, 0.3) for i in range(5)]
    assert np.abs(static_network_fc(xs1, atlas).mean(0) - static_network_fc(xs0, atlas).mean(0)).max() > 3 * tol


def test_sliding_window_fc_matches_numpy_and_rejects_short_series():
    x = np.random.default_rng(0).standard_normal((40, 3))
    fc = sliding_window_fc(x, tr=1.0, window_s=10, step_s=5)
    assert fc.shape == (7, 3)
    r = np.corrcoef(x[5:15].T)
    np.testing.assert_allclose(fc[1], [r[1, 0], r[2, 0], r[2, 1]], atol=1e-10)
    with pytest.raises(InputError, match="too short"):
        sliding_window_fc(x[:12], tr=1.0, window_s=10, step_s=5)
