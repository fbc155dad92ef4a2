import dataclasses
import inspect

import numpy as np
import pandas as pd
import pytest
import torch

from bi_core.cli import main
from bi_core.connectome import PAIRED_PRESETS, synth_paired
from bi_core.errors import CompatibilityError, ConfigError, InputError
from bi_core.folds import loso_splits, subject_folds
from bi_core.related.jivnet.fit import (MIN_TRAIN_SUBJECTS, encode_numpy, fit_jivnet, load_jivnet, predict_cross_numpy,
                                       save_jivnet)
from bi_core.related.jivnet.model import JIVNET_PRESETS, JIVNetConfig, jivnet_preset, kl_normal
from bi_core.related.jivnet.scores import canonical_correlations, summarise_reconstruction
from bi_core.related.jivnet.study import evaluate_splits, synthetic_study

TINY = JIVNET_PRESETS["smoke"]


@pytest.fixture(scope="module")
def smoke_pc():
    return synth_paired("smoke", seed=0)


@pytest.fixture(scope="module")
def fitted(smoke_pc):
    model, hist = fit_jivnet(smoke_pc.sc[:40], smoke_pc.fc[:40], TINY)
    return model, hist


def test_kl_closed_form():
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    assert torch.allclose(kl_normal(mu, logvar), torch.zeros(3))
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4)
    mu2, logvar2 = torch.randn(3, 4), torch.randn(3, 4)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(mu2, (0.5 * logvar2).exp())
    ref = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(kl_normal(mu, logvar, mu2, logvar2), ref, atol=1e-5)
    prior = torch.distributions.Normal(torch.zeros(3, 4), torch.ones(3, 4))
    assert torch.allclose(kl_normal(mu, logvar), torch.distributions.kl_divergence(q, prior).sum(-1), atol=1e-5)
    assert (kl_normal(mu, logvar) > 0).all()
    assert torch.allclose(kl_normal(mu, logvar, mu, logvar), torch.zeros(3), atol=1e-6)


def test_shapes_and_attention(fitted, smoke_pc):
    model, _ = fitted
    n, e = smoke_pc.n_nodes, smoke_pc.n_edges
    sc, fc = torch.tensor(smoke_pc.sc[:5]), torch.tensor(smoke_pc.fc[:5])
    with torch.no_grad():
        codes = model.encode(sc, fc)
        assert codes["joint"].shape == codes["joint_from_sc"].shape == (5, TINY.d_joint)
        assert codes["sc_individual"].shape == codes["fc_individual"].shape == (5, TINY.d_individual)
        rec = model.reconstruct(sc, fc)
        assert rec["sc"].shape == rec["fc"].shape == (5, e)
        assert model.predict_fc_from_sc(sc).shape == model.predict_sc_from_fc(fc).shape == (5, e)
        w = model.joint_attention(sc, fc)
        assert w.shape == (5, 2, n)
        torch.testing.assert_close(w.sum((1, 2)), torch.ones(5))
        terms = model.loss(sc, fc, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {"total", "rec_sc", "rec_fc", "kl", "cross", "align", "sep"}
    assert all(torch.isfinite(v) for v in terms.values())


def test_training_lowers_reconstruction(fitted):
    _, hist = fitted
    h = hist.dropna()  # the joint-first warm-up epochs have no reconstruction term
    first, last = h.iloc[:3].mean(), h.iloc[-3:].mean()
    assert last["rec_sc"] < 0.85 * first["rec_sc"] and last["rec_fc"] < 0.85 * first["rec_fc"]
    assert hist["cross"].iloc[-3:].mean() < hist["cross"].iloc[:3].mean()
    assert (hist["kl"] > 0).all()


def test_cross_modal_path_never_sees_target(fitted, smoke_pc):
    model, _ = fitted
    assert list(inspect.signature(model.predict_fc_from_sc).parameters) == ["sc"]
    assert list(inspect.signature(model.predict_sc_from_fc).parameters) == ["fc"]
    sc, fc = torch.tensor(smoke_pc.sc[40:]), torch.tensor(smoke_pc.fc[40:])
    with torch.no_grad():
        pred = model.predict_fc_from_sc(sc)
        # the modality-specific joint posterior ignores any FC, garbage included ...
        mu_sc, _ = model.joint_posterior(sc=sc)
        torch.testing.assert_close(model.decode(mu_sc, None, "fc"), pred)
        # ... while the fused posterior does depend on FC (so the check above could fail)
        mu_both, _ = model.joint_posterior(sc=sc, fc=fc)
        mu_other, _ = model.joint_posterior(sc=sc, fc=fc.flip(0))
    assert not torch.allclose(mu_both, mu_other)
    np.testing.assert_allclose(predict_cross_numpy(model, smoke_pc.sc[40:], "sc_to_fc"), pred.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_determinism_for_a_seed(smoke_pc):
    cfg = dataclasses.replace(TINY, epochs=3)
    a, ha = fit_jivnet(smoke_pc.sc[:20], smoke_pc.fc[:20], cfg)
    b, hb = fit_jivnet(smoke_pc.sc[:20], smoke_pc.fc[:20], cfg)
    c, _ = fit_jivnet(smoke_pc.sc[:20], smoke_pc.fc[:20], dataclasses.replace(cfg, seed=1))
    pd.testing.assert_frame_equal(ha, hb)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.decoder["fc"].linear.weight, c.decoder["fc"].linear.weight)


def test_checkpoint_round_trip(fitted, smoke_pc, tmp_path):
    model, _ = fitted
    path = save_jivnet(tmp_path / "m.pt", model, extra={"note": "test"})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "bi_core.jivnet/1" and raw["extra"] == {"note": "test"}
    back = load_jivnet(path)
    x = torch.tensor(smoke_pc.sc[40:])
    with torch.no_grad():
        torch.testing.assert_close(back.predict_fc_from_sc(x), model.predict_fc_from_sc(x))
    torch.save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(CompatibilityError, match="not a CM-JIVNet checkpoint"):
        load_jivnet(tmp_path / "bad.pt")


def test_presets_are_frozen_and_picked_with_overrides():
    assert jivnet_preset("real", epochs=30) == dataclasses.replace(JIVNET_PRESETS["real"], epochs=30)
    assert jivnet_preset("smoke", epochs=None) == TINY       # unset options do not override
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.epochs = 1
    with pytest.raises(ConfigError, match="unknown CM-JIVNet preset 'bogus'"):
        jivnet_preset("bogus")


def test_bad_input_errors(smoke_pc, fitted):
    model, _ = fitted
    with pytest.raises(InputError, match="SC has 16 nodes but FC has 15"):
        fit_jivnet(smoke_pc.sc, smoke_pc.fc[:, :15, :15], TINY)
    bad = smoke_pc.fc.copy()
    bad[3, 1, 2] = np.nan
    with pytest.raises(InputError, match=r"FC: 1 NaN/inf value\(s\) in subject index\(es\) \[3\]"):
        fit_jivnet(smoke_pc.sc, bad, TINY)
    with pytest.raises(InputError, match="at least 4 training subjects"):
        fit_jivnet(smoke_pc.sc[:3], smoke_pc.fc[:3], TINY)
    with pytest.raises(InputError, match="too few for 40-fold CV"):
        synthetic_study("smoke", n_folds=40)
    with pytest.raises(InputError, match="at least 5 subjects"):
        loso_splits(4, min_train=MIN_TRAIN_SUBJECTS)
    with pytest.raises(InputError, match="fitted on 16 nodes"):
        model.predict_fc_from_sc(torch.zeros(2, 15, 15))
    with pytest.raises(ConfigError, match="divisible"):
        JIVNetConfig(d_model=10, n_heads=4)


def test_canonical_correlations_recover_a_linear_map(rng):
    z = rng.standard_normal((400, 2))
    x = z @ rng.standard_normal((2, 3)) + 0.05 * rng.standard_normal((400, 3))
    y = np.hstack([z, rng.standard_normal((400, 1))])
    cc = canonical_correlations(x[:300], y[:300], x[300:], y[300:])
    assert cc.shape == (3,) and cc[0] > 0.95 and cc[1] > 0.95 and abs(cc[2]) < 0.3


def test_only_the_joint_latent_predicts_the_trait():
    # the trait is driven by the joint factors only: the joint code must predict it, the individual codes not
    pc = synth_paired(dataclasses.replace(PAIRED_PRESETS["smoke"], n_subjects=120, trait_r2=0.8), seed=1)
    cfg = dataclasses.replace(TINY, epochs=80)
    tabs = evaluate_splits(pc, subject_folds(np.arange(pc.n_subjects), 3, seed=0)[:1], cfg)
    r = tabs["behaviour"].set_index("feature_set")["r"]
    assert r["joint"] > 0.5
    assert r["joint"] > max(r["sc_individual"], r["fc_individual"]) + 0.25
    # the joint code recovers the true joint scores out of sample (separation from the individual factors is
    # only partial at this size: see the synthetic study's recovery table)
    rec = tabs["recovery"].groupby(["latent", "truth"])["r"].mean()
    assert rec["joint", "joint"] > 0.4


def test_evaluate_tables(smoke_pc):
    cfg = dataclasses.replace(TINY, epochs=5)
    tabs = evaluate_splits(smoke_pc, subject_folds(np.arange(smoke_pc.n_subjects), 3, seed=0), cfg)
    rec = tabs["reconstruction"]
    assert len(rec) == smoke_pc.n_subjects * (5 + 4)  # SC->FC: 5 methods, FC->SC: 4 (no communicability)
    assert set(rec["method"]) == {"jivnet", "group_mean", "pls", "ridge", "communicability"}
    assert rec.loc[rec["method"] == "group_mean", "r_dev"].isna().all()
    s = summarise_reconstruction(rec)
    gain = s[(s["method"] == "group_mean") & (s["metric"] == "r_gain")]
    assert np.allclose(gain["mean"], 0.0)
    assert {"behaviour", "recovery", "training"} <= set(tabs)
    assert len(tabs["behaviour"]) == 3 * 8


def test_encode_numpy_matches_module(fitted, smoke_pc):
    model, _ = fitted
    codes = encode_numpy(model, smoke_pc.sc[:4], smoke_pc.fc[:4])
    with torch.no_grad():
        ref = model.encode(torch.tensor(smoke_pc.sc[:4]), torch.tensor(smoke_pc.fc[:4]))
    np.testing.assert_allclose(codes["joint"], ref["joint"].numpy(), rtol=1e-5, atol=1e-6)


def test_cli_help(capsys):
    for argv in (["jivnet", "--help"], ["jivnet", "synth", "--help"], ["jivnet", "real", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    assert "no behavioural data" in capsys.readouterr().out
    assert main(["jivnet"]) == 0


def test_cli_synth_writes_tables(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("d_model: 8\nn_heads: 2\nd_joint: 2\nd_individual: 2\ntoken_hidden: 8\nhidden: 8\nepochs: 2\n")
    out = tmp_path / "out"
    argv = ["jivnet", "synth", "--preset", "smoke", "--folds", "2", "--jobs", "1", "--config", str(cfg),
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert {"reconstruction.tsv", "reconstruction_summary.tsv", "behaviour.tsv", "behaviour_summary.tsv",
            "recovery.tsv", "recovery_summary.tsv", "training.tsv", "summary.json", "config.yaml",
            "ground_truth.json"} <= names
    tab = pd.read_csv(out / "reconstruction_summary.tsv", sep="\t")
    assert {"direction", "method", "metric", "mean", "ci_low", "ci_high"} <= set(tab.columns)
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("bi-core: error: output directory")
    cfg.write_text("epochs: 2\nbogus: 1\n")
    assert main(argv[:-1] + ["--overwrite", "--quiet"]) == 2


def test_cli_real_loso(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("d_model: 8\nn_heads: 2\nd_joint: 2\nd_individual: 2\ntoken_hidden: 8\nhidden: 8\nepochs: 1\n")
    out = tmp_path / "real"
    # the 5 gw subjects keep the test short; `bi-core jivnet real` pools all 12 by default
    assert main(["jivnet", "real", "--datasets", "gw", "--jobs", "1", "--config", str(cfg), "--out", str(out),
                 "--quiet"]) == 0
    rec = pd.read_csv(out / "reconstruction.tsv", sep="\t")
    assert rec["subject"].nunique() == 5 and rec["fold"].nunique() == 5 and set(rec["dataset"]) == {"gw"}
    assert not (out / "behaviour.tsv").exists()
    import json

    s = json.loads((out / "summary.json").read_text())
    assert s["cv"] == "leave-one-subject-out" and any("no behavioural data" in n for n in s["notes"])


def test_parallel_folds_match_serial(smoke_pc):
    cfg = dataclasses.replace(TINY, epochs=2)
    splits = subject_folds(np.arange(smoke_pc.n_subjects), 2, seed=0)
    a = evaluate_splits(smoke_pc, splits, cfg, n_jobs=1)
    b = evaluate_splits(smoke_pc, splits, cfg, n_jobs=2)
    for k in ("reconstruction", "behaviour", "recovery"):
        pd.testing.assert_frame_equal(a[k], b[k])


def test_summaries_average_correlations_in_fisher_z():
    from bi_core.related.jivnet.scores import summarise
    from bi_core.stats import mean_ci

    m, lo, hi = mean_ci(np.array([0.2, 0.99, 0.95]), fisher=True)
    assert -1 < lo < m < hi < 1
    assert m == pytest.approx(np.tanh(np.arctanh([0.2, 0.99, 0.95]).mean()))
    df = pd.DataFrame({"g": ["a"] * 3, "r": [0.1, 0.2, 0.3], "r2": [0.1, 0.2, 0.3]})
    s = summarise(df, ["g"], ["r", "r2"]).set_index("metric")
    assert s.loc["r2", "mean"] == pytest.approx(0.2) and s.loc["r", "mean"] != pytest.approx(0.2, abs=1e-6)
