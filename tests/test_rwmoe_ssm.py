"""Seed 001's LMAE → RWMOE → SSM: scan vs recurrence, router, regression (planted second-order signal,
pure noise), determinism, errors."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import cross_val_predict

from bi_core.errors import ConfigError, InputError
from bi_core.folds import subject_folds
from bi_core.related.rwmoe_ssm.graph import group_fc_graph, random_walk_features, rw_clusters, transition_matrix
from bi_core.related.rwmoe_ssm.model import RandomWalkMoE, RegressorConfig, RWMoESSMRegressor
from bi_core.related.rwmoe_ssm.report import PROFILE_METHOD, REFERENCE_DATASET, RWMOE_METHOD, regression_metrics
from bi_core.related.rwmoe_ssm.ssm import DiagonalSSM, parallel_scan
from bi_core.related.rwmoe_ssm.report import load_lmae
from bi_core.related.rwmoe_ssm.study import LMAEConfig
from bi_core.stats import standardized_ridge


def _graph(R: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((200, 3))
    x = latent[:, np.arange(R) % 3] + 0.5 * rng.standard_normal((200, R))  # three communities
    return transition_matrix(group_fc_graph([x[:100], x[100:]], k_neighbors=3))


def _planted(n: int = 160, R: int = 10, T: int = 8, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, R, T, d)).astype(np.float32)
    y = X.mean(axis=(1, 2)) @ rng.standard_normal(d)
    return X, y


def _second_order(n: int, R: int = 12, T: int = 6, d: int = 4, seed: int = 0):
    """Tokens whose target is a covariance: channels 0 and 1 correlate with ``ρ`` (the target) in half
    of the ROIs and with ``−ρ`` in the other half, balanced within each of the graph's communities
    (ROI r is in community r % 3) — no mean, no variance and no ROI-pooled product carries ``ρ``."""
    rng = np.random.default_rng(seed)
    rho = rng.uniform(-0.8, 0.8, n)
    sign = np.where((np.arange(R) // 3) % 2 == 0, 1.0, -1.0)
    c = rho[:, None, None] * sign[None, :, None]
    X = rng.standard_normal((n, R, T, d))
    X[..., 1] = c * X[..., 0] + np.sqrt(1 - c ** 2) * X[..., 1]
    return X.astype(np.float32), rho


#: Small and short: the planted tests train for seconds.
QUICK = RegressorConfig(lr=1e-2, max_epochs=40, patience=40, batch_size=16, n_seeds=1)


# ---------------------------------------------------------------------- SSM
@pytest.mark.parametrize("mode", ["conv", "scan"])
def test_ssm_parallel_forms_equal_the_recurrence(mode):
    torch.manual_seed(0)
    ssm = DiagonalSSM(5, 4).double()
    with torch.no_grad():  # move away from the initial values so every parameter matters
        for p in ssm.parameters():
            p.add_(0.3 * torch.randn_like(p))
    u = torch.randn(3, 19, 5, dtype=torch.float64)
    ref = ssm(u, "recurrence")
    assert torch.allclose(ssm(u, mode), ref, atol=1e-10, rtol=1e-9)
    # and the reference is what its docstring says: s_t = a s_{t-1} + b u_t, y_t = sum c s_t + d u_t
    a, b = ssm.discretize()
    s = torch.zeros(3, 5, 4, dtype=torch.float64)
    s = a * s + b * u[:, 0, :, None]
    s = a * s + b * u[:, 1, :, None]
    assert torch.allclose(ref[:, 1], (ssm.C * s).sum(-1) + ssm.D * u[:, 1])


def test_ssm_is_causal_and_stable():
    ssm = DiagonalSSM(4, 3).double()
    u = torch.zeros(1, 12, 4, dtype=torch.float64)
    u[0, 6] = 1.0
    y = ssm(u)
    assert float(y[0, :6].detach().abs().max()) < 1e-12                # nothing before the impulse (FFT round-off only)
    a, _ = ssm.discretize()
    assert bool(((a > 0) & (a < 1)).all())


def test_parallel_scan_with_time_varying_decay():
    rng = torch.Generator().manual_seed(1)
    a = torch.rand(2, 13, 3, generator=rng, dtype=torch.float64)
    x = torch.randn(2, 13, 3, generator=rng, dtype=torch.float64)
    s, ref = torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(13):
        s = a[:, t] * s + x[:, t]
        ref.append(s)
    assert torch.allclose(parallel_scan(a, x, dim=1), torch.stack(ref, 1))


def test_ssm_bad_input():
    ssm = DiagonalSSM(4, 2)
    with pytest.raises(InputError, match="batch, time, 4"):
        ssm(torch.zeros(2, 5, 3))
    with pytest.raises(ConfigError, match="unknown SSM mode"):
        ssm(torch.zeros(2, 5, 4), mode="fft")


# ---------------------------------------------------------------------- graph and router
def test_graph_and_random_walk_features():
    P = _graph()
    assert np.allclose(P.sum(1), 1.0) and (P >= 0).all() and np.allclose(np.diag(P), 0)
    f = random_walk_features(P, 3)
    assert f.shape == (10, 30)
    assert np.allclose(f[:, 10:20], (P @ P))
    # the walk's clusters recover the planted communities (ROI r is in community r % 3)
    lab = rw_clusters(f, 3)
    truth = np.arange(10) % 3
    assert len({(a, b) for a, b in zip(lab, truth)}) == 3
    # an isolated ROI stays put
    A = np.ones((3, 3)) - np.eye(3)
    A[2, :] = A[:, 2] = 0
    assert np.allclose(transition_matrix(A)[2], [0, 0, 1])


def test_router_weights_sum_to_one_and_per_roi_weights():
    torch.manual_seed(0)
    moe = RandomWalkMoE(6, 4, 3, _graph(), rw_steps=2)
    with torch.no_grad():
        moe.route_tok.weight.normal_()  # token-dependent routing: weights change over time
    x = torch.randn(2, 10, 7, 6)
    g = moe.gates(moe.diffuse(x))
    assert g.shape == (2, 10, 7, 3)
    assert torch.allclose(g.sum(-1), torch.ones(2, 10, 7), atol=1e-6) and bool((g >= 0).all())
    assert not torch.allclose(g[:, :, 0], g[:, :, 1])
    z, _ = moe(x)
    assert z.shape == (2, 7, moe.out_dim) and moe.out_dim == 3 * 4 + 6
    X, y = _planted(40, R=10, T=7)
    reg = RWMoESSMRegressor(RegressorConfig(max_epochs=2, n_experts=3, n_seeds=1), seed=0).fit(X, y, _graph())
    W = reg.expert_weights(X)
    assert W.shape == (10, 3) and np.allclose(W.sum(1), 1.0, atol=1e-5)


def test_graph_errors():
    with pytest.raises(InputError, match="at least one recording"):
        group_fc_graph([])
    with pytest.raises(InputError, match="recording 1"):
        group_fc_graph([np.zeros((20, 4)), np.zeros((20, 5))])
    with pytest.raises(InputError, match="non-negative"):
        transition_matrix(-np.ones((3, 3)))
    with pytest.raises(InputError, match="square"):
        transition_matrix(np.ones((3, 4)))


# ---------------------------------------------------------------------- regression
def test_planted_linear_signal_is_recovered():
    X, y = _planted()
    reg = RWMoESSMRegressor(replace(QUICK, max_epochs=20), seed=0).fit(X[:120], y[:120], _graph())
    r = np.corrcoef(reg.predict(X[120:]), y[120:])[0, 1]
    assert r > 0.95


def test_training_captures_a_planted_second_order_signal(one_thread):
    """The target is a sign-balanced channel covariance: the untrained extractor's features stay near
    chance, the trained one learns to route the two ROI halves apart and predicts held-out samples."""
    X, y = _second_order(190, seed=1)
    P = _graph(12)
    trained = RWMoESSMRegressor(QUICK, seed=1).fit(X[:90], y[:90], P)
    untrained = RWMoESSMRegressor(replace(QUICK, max_epochs=0), seed=1).fit(X[:90], y[:90], P)
    r_t = np.corrcoef(trained.predict(X[90:]), y[90:])[0, 1]
    r_u = np.corrcoef(untrained.predict(X[90:]), y[90:])[0, 1]
    # chance: r has SD ≈ 0.1 over 100 held-out samples
    assert r_u < 0.35 and r_t > 0.6 and r_t - r_u > 0.3
    # early stopping picked a trained epoch, on the read-out's validation error (standardized target)
    assert trained.best_epochs_[0] > 0 and trained.best_val_ < 0.8 < untrained.best_val_


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trained_features_do_not_fit_a_noise_target(seed, one_thread):
    """Pure noise: the cross-fitted read-out finds no skill at any epoch (the extractors keep training all
    20 epochs at the planted test's rate), and held-out predictions do not correlate with new noise."""
    rng = np.random.default_rng([seed, 7])
    X = rng.standard_normal((190, 12, 6, 4)).astype(np.float32)
    y = rng.standard_normal(190)
    reg = RWMoESSMRegressor(replace(QUICK, max_epochs=20), seed=seed).fit(X[:90], y[:90], _graph(12))
    hist = np.asarray(reg.history_[0])
    assert len(hist) == 21 and hist.min() > 0.9      # leave-one-out MSE of the read-out, every epoch: no skill
    # the read-out's rows are out-of-fold features: their cross-validated r is not inflated either
    models, readout = reg.members_[0]
    cv = cross_val_predict(standardized_ridge(), readout.cross_fitted_features_, y[:90], cv=5)
    assert abs(np.corrcoef(cv, y[:90])[0, 1]) < 0.3
    assert abs(np.corrcoef(reg.predict(X[90:]), y[90:])[0, 1]) < 0.3


def test_same_seed_same_numbers_and_untrained_option():
    X, y = _planted(60)
    P = _graph()
    cfg = RegressorConfig(max_epochs=5, n_seeds=2)
    a = RWMoESSMRegressor(cfg, seed=3).fit(X, y, P).predict(X)
    b = RWMoESSMRegressor(cfg, seed=3).fit(X, y, P).predict(X)
    c = RWMoESSMRegressor(cfg, seed=4).fit(X, y, P).predict(X)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert RWMoESSMRegressor(RegressorConfig(max_epochs=0, n_seeds=1), seed=0).fit(X, y, P).epochs_ == 0
    # inner folds never split a subject (two samples per subject here)
    groups = np.repeat(np.arange(30), 2)
    reg = RWMoESSMRegressor(RegressorConfig(max_epochs=1, n_seeds=1), seed=0).fit(X, y, P, groups=groups)
    for tr, va in reg.folds_:
        assert not set(groups[tr]) & set(groups[va])


def test_regressor_input_errors():
    X, y = _planted(30)
    P = _graph()
    reg = RWMoESSMRegressor(RegressorConfig(max_epochs=1, n_seeds=1))
    with pytest.raises(InputError, match="n_samples, n_rois"):
        reg.fit(X[:, :, :, 0], y, P)
    y_nan = y.copy()
    y_nan[3] = np.nan
    with pytest.raises(InputError, match="missing or non-finite"):
        reg.fit(X, y_nan, P)
    with pytest.raises(InputError, match="one value per sample"):
        reg.fit(X, y[:-1], P)
    with pytest.raises(InputError, match="constant"):
        reg.fit(X, np.ones(len(y)), P)
    with pytest.raises(InputError, match="ROIs"):
        reg.fit(X, y, P[:5, :5])
    with pytest.raises(InputError, match="too few"):
        reg.fit(X[:3], y[:3], P)
    for bad in ({"n_experts": 0}, {"dropout": 1.5}, {"readout": "mlp"}, {"max_epochs": -1}, {"inner_folds": 1},
                {"batch_size": 0}, {"n_seeds": 0}):
        with pytest.raises(ConfigError):
            RegressorConfig(**bad)
    with pytest.raises(ConfigError):
        LMAEConfig(targets=())


def test_metrics_and_folds():
    y = np.arange(20.0)
    m = regression_metrics(y, y, n_boot=50)
    assert m["mae"] == 0 and m["r"] == pytest.approx(1.0)
    noisy = y + np.random.default_rng(0).normal(0, 3, 20)
    m = regression_metrics(y, noisy, n_boot=200, seed=1)
    assert m["mae_ci_low"] <= m["mae"] <= m["mae_ci_high"] and m["r_ci_low"] <= m["r"] <= m["r_ci_high"]
    assert m == regression_metrics(y, noisy, n_boot=200, seed=1)
    subjects = np.repeat([f"s{i}" for i in range(10)], 2)
    folds = subject_folds(subjects, 5, seed=0)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(20))
    for tr, te in folds:
        assert not set(subjects[tr]) & set(subjects[te])
    with pytest.raises(InputError, match="folds"):
        subject_folds(subjects, 11)
    with pytest.raises(InputError, match="matching"):
        regression_metrics(y, y[:-1])


# ---------------------------------------------------------------------- pipeline (smoke)
def test_lmae_age_smoke(smoke_dir, tmp_path):
    from bi_core.related.rwmoe_ssm.study import lmae_preset, run_lmae_age

    cfg = lmae_preset("smoke", jobs=1, n_boot=50, regressor=RegressorConfig(max_epochs=3, patience=2, n_seeds=1))
    s = run_lmae_age(smoke_dir, tmp_path / "lmae", cfg, progress=False)
    res = load_lmae(tmp_path / "lmae")
    r = res["results"]
    ref = r[r["dataset"] == REFERENCE_DATASET].set_index("target")
    assert ref.loc["age", "mae"] == pytest.approx(5.343) and ref.loc["fluid", "r"] == pytest.approx(0.887)
    ours = r[r["dataset"] != REFERENCE_DATASET]
    assert set(ours["method"]) >= {RWMOE_METHOD, PROFILE_METHOD, "FC correlation + ridge"} and ours["mae"].notna().all()
    # every method is scored on the same subjects
    p = res["predictions"]
    assert p.groupby(["target", "method"])["recording_id"].apply(frozenset).nunique() == 1
    w = res["expert_weights"]
    assert np.allclose(w.groupby(["target", "roi"])["weight"].sum(), 1.0, atol=1e-5)
    assert json.loads((tmp_path / "lmae" / "summary.json").read_text())["n_windows"] == s["n_windows"] >= 1
    assert (tmp_path / "lmae" / "runs" / "temporal_block-s0" / "best.pt").is_file()


def test_lmae_age_bad_synth(tmp_path):
    from bi_core.related.rwmoe_ssm.study import run_lmae_age

    with pytest.raises(InputError, match="bi-core synth"):
        run_lmae_age(tmp_path, tmp_path / "out", progress=False)


def test_expert_figure_matrix():
    from bi_core.figures.related import expert_heatmap, expert_network_matrix

    w = pd.DataFrame({"target": "age", "roi": np.repeat(["a", "b", "c"], 2), "network": np.repeat(["V", "V", "D"], 2),
                      "expert": [0, 1] * 3, "weight": [0.9, 0.1, 0.7, 0.3, 0.2, 0.8]})
    M = expert_network_matrix(w, "age", ["V", "D"])
    assert np.allclose(M.sum(axis=1), 1) and M.loc["V", 0] == pytest.approx(0.8)
    ax = expert_heatmap(w, "age", ["V", "D"])
    assert ax.get_title().startswith("age")
    with pytest.raises(ValueError):
        expert_network_matrix(w, "fluid", ["V"])


def test_paired_difference_uses_the_same_subjects():
    """The paired interval is that of the difference: tight for two methods with nearly equal errors, where
    two unpaired intervals overlap widely; the sign and size follow the methods' quality."""
    import numpy as np
    import pandas as pd

    from bi_core.related.rwmoe_ssm.report import paired_difference, result_sentences

    rng = np.random.default_rng(0)
    n = 120
    y = rng.normal(50, 10, n)
    shared = rng.normal(0, 8, n)
    rows = []
    for m, extra in (("good", 0.0), ("worse", 4.0)):
        pred = y + shared + rng.normal(0, extra + 0.5, n)
        rows += [{"target": "age", "method": m, "recording_id": f"r{i}", "subject": f"s{i // 2}", "y_true": y[i],
                  "y_pred": pred[i]} for i in range(n)]
    preds = pd.DataFrame(rows)
    d = paired_difference(preds, "age", "worse", "good", n_boot=500)
    assert d["r_difference"] < 0 and d["r_difference_ci_high"] < 0 and d["mae_difference_ci_low"] > 0
    assert d["n_subjects"] == n // 2
    assert d == paired_difference(preds, "age", "worse", "good", n_boot=500)
    with pytest.raises(InputError, match="lack method"):
        paired_difference(preds, "age", "worse", "missing")
    # the chapter's sentence reports the paired interval when predictions are given
    res = pd.DataFrame([{"target": "age", "method": m, "dataset": "x", "r": r, "r_ci_low": 0.0, "r_ci_high": 1.0,
                         "mae": 1.0, "mae_predict_mean": 2.0} for m, r in (("FC", 0.9), (RWMOE_METHOD, 0.5))])
    p2 = pd.concat([preds.replace({"good": "FC", "worse": RWMOE_METHOD})])
    assert "paired difference in r on the same 60 subjects" in result_sentences(res, p2)["age"]
