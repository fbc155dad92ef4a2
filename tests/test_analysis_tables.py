"""Per-recording analysis tables: predictability, interactions, embeddings (and their CLI)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bi_core.analysis.embeddings import embed, read_embeddings, write_embeddings
from bi_core.analysis.interactions import agreement, interactions, mean_matrix, predictability_and_interactions
from bi_core.analysis.predictability import predictability
from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.masking import network_mask
from bi_core.runs import load_model
from bi_core.windows import TiledWindows


@pytest.fixture(scope="module")
def loaded(smoke_dir, smoke_run):
    cohort = Cohort.open(smoke_dir / "eval")
    model, info = load_model(smoke_run, cohort=cohort)
    return model, info, cohort.subset(np.arange(6))


def _manual_r2(model, info, cohort, rid, net):
    """R² of one recording and network, computed window by window the slow, obvious way."""
    tiles = TiledWindows(cohort, info.window, target_tr=info.target_tr, recordings=[rid])
    rois = info.layout.rois_of_networks([info.atlas.networks.index(net)])
    ys, ps = [], []
    with torch.no_grad():
        for i in range(len(tiles)):
            x = torch.from_numpy(tiles[i][None])
            out = model(x, network_mask(info.layout, net))
            ys.append(out.target.reshape(len(rois), -1).numpy())
            ps.append(out.pred.reshape(len(rois), -1).numpy())
    y, p = np.concatenate(ys, 1).astype(float), np.concatenate(ps, 1).astype(float)
    sst = ((y - y.mean(1, keepdims=True)) ** 2).sum()
    r = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(y, p)])
    return 1 - ((y - p) ** 2).sum() / sst, r


def test_predictability_matches_window_by_window(loaded):
    model, info, cohort = loaded
    df = predictability(model, info, cohort, batch_size=5)
    assert len(df) == len(cohort) * info.atlas.n_networks
    assert list(df.columns) == ["recording_id", "subject", "session", "network", "r2", "pearson_r", "n_windows"]
    rid = cohort.table["recording_id"].iloc[2]
    for net in ("VIS", "DMN", "SUB"):
        r2, r = _manual_r2(model, info, cohort, rid, net)
        row = df[(df["recording_id"] == rid) & (df["network"] == net)].iloc[0]
        assert row["r2"] == pytest.approx(r2, abs=1e-4) and row["pearson_r"] == pytest.approx(r, abs=1e-4)
    # batching does not change the numbers
    df2 = predictability(model, info, cohort, batch_size=64)
    np.testing.assert_allclose(df["r2"], df2["r2"], atol=1e-6)


def test_interactions_shares_enrichment_occlusion(loaded):
    model, info, cohort = loaded
    df = interactions(model, info, cohort, occlusion_windows=1, batch_size=4)
    K = info.atlas.n_networks
    assert len(df) == len(cohort) * K * (K - 1)
    sums = df.groupby(["recording_id", "target"])["attention"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)     # attention shares over sources sum to one
    sizes = info.atlas.network_sizes()
    row = df[(df["target"] == "DMN") & (df["source"] == "VIS")].iloc[0]
    share = sizes["VIS"] / (info.atlas.n_rois - sizes["DMN"])
    assert row["enrichment"] == pytest.approx(row["attention"] / share, rel=1e-5)
    assert df["occlusion_delta_r2"].notna().all()
    ok = df["occlusion_share"].notna()
    full = df.loc[ok, "occlusion_delta_r2"] / df.loc[ok, "occlusion_share"]
    assert np.allclose(full.groupby([df.loc[ok, "recording_id"], df.loc[ok, "target"]]).std().fillna(0), 0, atol=1e-6)
    M = mean_matrix(df, "attention", info.atlas.networks)
    assert np.isnan(np.diag(M)).all() and np.isfinite(M[~np.eye(K, dtype=bool)]).all()
    a = agreement(df, info.atlas.networks)
    assert a["n_recordings"] == len(cohort) and a["attention_measure"] == "enrichment"
    # occlusion that follows attention exactly agrees perfectly; reversed, it disagrees everywhere
    same = agreement(df.assign(occlusion_delta_r2=df["enrichment"]), info.atlas.networks)
    assert same["spearman_group_matrices"] == pytest.approx(1.0) and same["top_source_match"] == 1.0
    assert same["spearman_per_recording_median"] == pytest.approx(1.0)
    rev = agreement(df.assign(occlusion_delta_r2=-df["enrichment"]), info.atlas.networks)
    assert rev["spearman_group_matrices"] == pytest.approx(-1.0) and rev["top_source_match"] == 0.0


@pytest.mark.parametrize("target,source", [("DMN", "LIM"), ("LIM", "DMN"), ("VIS", "SUB")])
def test_occlusion_delta_is_full_minus_hidden(loaded, target, source):
    """The pair pass ({m, n} both masked) equals hiding the source from the target's context."""
    model, info, cohort = loaded
    sub = cohort.subset([0])
    df = interactions(model, info, sub, batch_size=8)
    rid = sub.table["recording_id"].iloc[0]
    full, _ = _manual_r2(model, info, sub, rid, target)
    tiles = TiledWindows(sub, info.window, target_tr=info.target_tr)
    rois = info.layout.rois_of_networks([info.atlas.networks.index(target)])
    ys, ps = [], []
    with torch.no_grad():
        for i in range(len(tiles)):
            o = model(torch.from_numpy(tiles[i][None]), network_mask(info.layout, target, hidden=[source]))
            ys.append(o.target.reshape(len(rois), -1).numpy())
            ps.append(o.pred.reshape(len(rois), -1).numpy())
    y, p = np.concatenate(ys, 1).astype(float), np.concatenate(ps, 1).astype(float)
    hidden = 1 - ((y - p) ** 2).sum() / ((y - y.mean(1, keepdims=True)) ** 2).sum()
    row = df[(df["target"] == target) & (df["source"] == source)].iloc[0]
    assert row["occlusion_delta_r2"] == pytest.approx(full - hidden, abs=1e-4)


def test_source_only_r_is_the_target_reconstructed_from_that_source_alone(loaded):
    """source_only_r = mean Pearson r of the target's ROIs with only the source visible."""
    model, info, cohort = loaded
    sub = cohort.subset([1])
    df = interactions(model, info, sub, occlusion_windows=1, batch_size=8)   # source-only uses every window
    tiles = TiledWindows(sub, info.window, target_tr=info.target_tr)
    nets = list(info.atlas.networks)
    for target, source in (("DMN", "LIM"), ("VIS", "SUB")):
        rois = info.layout.rois_of_networks([nets.index(target)])
        others = [n for n in nets if n != source]
        union = info.layout.rois_of_networks([nets.index(n) for n in others])
        pos = np.searchsorted(union, rois)
        ys, ps = [], []
        with torch.no_grad():
            for i in range(len(tiles)):
                o = model(torch.from_numpy(tiles[i][None]), network_mask(info.layout, others))
                ys.append(o.target.reshape(len(union), -1).numpy()[pos])
                ps.append(o.pred.reshape(len(union), -1).numpy()[pos])
        y, p = np.concatenate(ys, 1).astype(float), np.concatenate(ps, 1).astype(float)
        r = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(y, p)])
        row = df[(df["target"] == target) & (df["source"] == source)].iloc[0]
        assert row["source_only_r"] == pytest.approx(r, abs=1e-4)
    # each measure can be switched off on its own; what is not computed is NaN, not zero
    att = interactions(model, info, sub, occlusion=False, batch_size=8)
    np.testing.assert_allclose(att["source_only_r"], df["source_only_r"], atol=1e-6)
    assert att["occlusion_delta_r2"].isna().all()
    assert interactions(model, info, sub, source_only=False, batch_size=8)["source_only_r"].isna().all()


def test_network_fc_baseline_is_the_correlation_of_network_means(loaded):
    from bi_core.analysis.interactions import add_network_fc
    from bi_core.errors import InputError

    model, info, cohort = loaded
    df = add_network_fc(interactions(model, info, cohort.subset([0, 1]), occlusion=False, batch_size=8),
                        cohort.subset([0, 1]))
    rid = df["recording_id"].iloc[0]
    x = np.asarray(cohort.series(rid), float)
    z = (x - x.mean(0)) / x.std(0)
    nets = list(info.atlas.networks)
    means = {n: z[:, info.atlas.network_index == i].mean(1) for i, n in enumerate(nets)}
    row = df[(df["recording_id"] == rid) & (df["target"] == "DMN") & (df["source"] == "LIM")].iloc[0]
    assert row["fc_correlation"] == pytest.approx(np.arctanh(np.corrcoef(means["DMN"], means["LIM"])[0, 1]), abs=1e-6)
    back = df.set_index(["recording_id", "source", "target"])["fc_correlation"]   # symmetric
    np.testing.assert_allclose(df.set_index(["recording_id", "target", "source"])["fc_correlation"].sort_index(),
                               back.rename_axis(["recording_id", "target", "source"]).sort_index(), atol=1e-12)
    with pytest.raises(InputError, match="not in cohort"):
        add_network_fc(df.assign(recording_id="nope"), cohort)


def test_fused_pass_equals_separate_tables(loaded):
    model, info, cohort = loaded
    pred, inter = predictability_and_interactions(model, info, cohort, occlusion_windows=1, batch_size=5)
    alone = predictability(model, info, cohort, batch_size=5)
    assert list(pred.columns) == list(alone.columns) and len(pred) == len(alone)
    np.testing.assert_allclose(pred["r2"], alone["r2"], atol=1e-5)
    np.testing.assert_allclose(pred["pearson_r"], alone["pearson_r"], atol=1e-5)
    pd.testing.assert_frame_equal(inter, interactions(model, info, cohort, occlusion_windows=1, batch_size=5))


def test_embeddings_roundtrip_and_pooling(loaded, tmp_path):
    model, info, cohort = loaded
    emb = embed(model, info, cohort)
    d, K = info.model_config.d_model, info.atlas.n_networks
    assert emb.pooled.shape == (len(cohort), d)
    assert emb.per_network.shape == emb.temporal_sd.shape == (len(cohort), K, d)
    assert (emb.temporal_sd >= 0).all() and emb.features("mean_sd").shape == (len(cohort), 2 * K * d)
    write_embeddings(tmp_path / "e.tsv", emb, info.atlas.networks)
    back, nets = read_embeddings(tmp_path / "e.tsv")
    assert nets == list(info.atlas.networks)
    np.testing.assert_allclose(back.pooled, emb.pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.temporal_sd, emb.temporal_sd, rtol=1e-5, atol=1e-6)
    assert list(back.table["recording_id"]) == list(emb.table["recording_id"])


def test_temporal_sd_pooling_matches_definition(loaded):
    """temporal_sd = SD over time patches of each network's mean token (one window)."""
    from bi_core.masking import Mask

    model, info, cohort = loaded
    tiles = TiledWindows(cohort, info.window, target_tr=info.target_tr)
    x = torch.from_numpy(tiles[0][None])
    with torch.no_grad():
        e = model.embed(x)
        L = info.layout.n_tokens
        h = model.forward_encoder(x, Mask(torch.arange(L)[None], torch.zeros(1, 0, dtype=torch.long)))
    h = h.reshape(info.layout.n_rois, info.layout.n_patches, -1).numpy()
    k = info.atlas.networks.index("DMN")
    g = h[info.atlas.rois_of("DMN")].mean(0)                          # [n_patches, d]
    np.testing.assert_allclose(e.temporal_sd[0, k].numpy(), g.std(0, ddof=1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(e.per_network[0, k].numpy(), g.mean(0), rtol=1e-4, atol=1e-6)


def test_run_and_cohort_with_different_atlases(smoke_run, tmp_path, capsys):
    from bi_core.synth import SynthConfig, PRESETS, generate

    cfg = SynthConfig(**{**PRESETS["smoke"].__dict__, "n_cortical": 30})
    other = generate(tmp_path / "o", cfg, seed=0, progress=False)
    rc = main(["predictability", "--run", str(smoke_run), "--cohort", str(other / "eval"), "--out", str(tmp_path / "p.tsv"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "use different atlases" in err and "26 vs 32 ROIs" in err
    assert not (tmp_path / "p.tsv").exists()


def test_cli_tables_and_groupdiff(smoke_dir, smoke_run, tmp_path, capsys):
    ev = str(smoke_dir / "eval")
    assert main(["predictability", "--run", str(smoke_run), "--cohort", ev, "--out", str(tmp_path / "p.tsv"), "--quiet"]) == 0
    assert main(["interactions", "--run", str(smoke_run), "--cohort", ev, "--out", str(tmp_path / "i.tsv"),
                 "--occlusion-windows", "1", "--quiet"]) == 0
    assert (tmp_path / "i_agreement.json").is_file()
    assert main(["embed", "--run", str(smoke_run), "--cohort", ev, "--out", str(tmp_path / "e.tsv"), "--quiet"]) == 0
    assert main(["groupdiff", "--table", str(tmp_path / "p.tsv"), "--cohort", ev, "--out", str(tmp_path / "g.tsv"),
                 "--ground-truth", str(smoke_dir / "ground_truth.json")]) == 0
    g = pd.read_csv(tmp_path / "g.tsv", sep="\t")
    assert set(g["contrast"]) == {"AD-CN", "MCI-CN"} and len(g) == 2 * 8
    out = capsys.readouterr().out
    assert '"network": "DMN"' in out
    # a cohort without diagnoses cannot be compared
    assert main(["groupdiff", "--table", str(tmp_path / "p.tsv"), "--cohort", str(smoke_dir / "pretrain"),
                 "--out", str(tmp_path / "g2.tsv")]) == 2
    assert "needs diagnoses" in capsys.readouterr().err


def test_suite_skips_group_analyses_of_an_unlabelled_cohort(smoke_dir, smoke_run, tmp_path, capsys):
    assert main(["analyze", "--run", str(smoke_run), "--cohort", str(smoke_dir / "pretrain"), "--out",
                 str(tmp_path / "s"), "--quiet", "--no-figures"]) == 0
    assert "skipped group analyses: " in capsys.readouterr().out
    assert (tmp_path / "s" / "predictability.tsv").is_file() and not (tmp_path / "s" / "marker.tsv").exists()


#: Chapters that run a model (a reconstruction shown, a fold's model loaded), and so
#: import torch; every other chapter imports table helpers only.
MODEL_CHAPTERS = {"02_pretraining", "07_real_data"}


def test_chapters_that_run_no_model_load_no_torch():
    """Notebooks import the table helpers only; torch (and scikit-learn's and scipy.signal's seconds of import)
    loads only in a chapter that runs a model or a classifier: every kernel the book and the tests start pays for
    what its chapter imports. Each chapter's imports run in a child forked from one process that has imported
    only numpy, pandas, matplotlib, seaborn and scipy.stats (none of them loads a heavy module: checked)."""
    import re
    import subprocess
    import sys

    heavy = ("torch", "sklearn", "scipy.signal")
    cases = {}
    for nb in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        src = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        cases[nb.stem] = "\n".join(f"from {m.group(1)} import {' '.join(m.group(2).split())}" for m in
                                   re.finditer(r"^\s*from (bi_core[\w.]*) import (\([^)]*\)|[^\n]*)", src, re.M))
    # the parent imports what every chapter imports anyway (the figures' seaborn brings scipy.stats), once
    probed = {k: v for k, v in cases.items() if k not in MODEL_CHAPTERS}     # those load torch by design
    probe = f"""import json, os, sys
import numpy, pandas, matplotlib.pyplot, seaborn, scipy.stats
assert not any(m in sys.modules for m in {heavy!r}), "the probe's own imports load a heavy module"
out = {{}}
for name, imports in {probed!r}.items():
    r, w = os.pipe()
    if os.fork() == 0:
        exec(imports)
        os.write(w, json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)).encode())
        os._exit(0)
    os.close(w)
    out[name] = json.loads(os.read(r, 1 << 16))
    os.wait()
print(json.dumps(out))"""
    res = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert len(cases) >= 14 and all(cases.values()) and set(res) == set(cases) - MODEL_CHAPTERS
    for name, loaded in res.items():
        allowed = {"sklearn"} if name == "05_classification" else set()    # it scores classifiers (classify)
        assert set(loaded) <= allowed, f"{name}.ipynb imports {loaded}"
