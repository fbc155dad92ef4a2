"""The read-out study (bi_core.analysis.readouts): planted models and signals where the answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def _cohort(out, atlas, n_subjects=3, frames=200, seed=0):
    from bi_core.cohort import Cohort, CohortWriter

    rng = np.random.default_rng(seed)
    with CohortWriter(out, atlas) as w:
        for i in range(n_subjects):
            y = rng.normal(size=(frames, atlas.n_rois))
            w.add(((y - y.mean(0)) / y.std(0)).astype(np.float32), recording_id=f"r{i}", subject=f"s{i}", tr=1.5)
    return Cohort.open(out)


def _info(model, atlas):
    """A stand-in for the checkpoint info of a model built in the test (what model_readouts reads)."""
    from types import SimpleNamespace

    from bi_core.masking import TokenLayout

    return SimpleNamespace(atlas=atlas, window=model.cfg.window, target_tr=None, patch_size=model.cfg.patch_size,
                           layout=TokenLayout.from_atlas(atlas, model.cfg.n_patches), path="test model")


def test_hand_set_uniform_attention_gives_token_shares(small_atlas, tmp_path):
    """Decoder queries and encoder queries set to zero: every attention is uniform over the context, and
    every value vector has the same norm. Then attention per head, value-weighted attention and rollout all
    equal the source's share of the context tokens, which is known."""
    import torch

    from bi_core.analysis.readouts import model_readouts
    from bi_core.model import ModelConfig, build_model

    model = build_model(ModelConfig.from_atlas(small_atlas, "tiny"), seed=0).eval()
    with torch.no_grad():
        for blk in model.decoder_blocks:
            blk.attn.q.weight.zero_()
            blk.attn.q.bias.zero_()
            C = blk.attn.q.weight.shape[0]
            blk.attn.kv.weight[C:].zero_()          # values = their bias: the same vector for every token
            blk.attn.kv.bias[C:].fill_(0.3)
        for blk in model.blocks:
            C = blk.attn.proj.weight.shape[0]
            blk.attn.qkv.weight[:C].zero_()         # encoder queries zero: uniform self-attention
            blk.attn.qkv.bias[:C].zero_()
    cohort = _cohort(tmp_path / "c", small_atlas)
    t = model_readouts(model, _info(model, small_atlas), cohort, windows=1, gradient_windows=0)
    size = pd.Series(small_atlas.network_index).value_counts()
    nets = small_atlas.networks
    expected = t.apply(lambda r: size[nets.index(r["source"])] / (small_atlas.n_rois - size[nets.index(r["target"])]),
                       axis=1)
    for col in ("attention_l1_h1", "attention_l1_h2", "attention_l1", "value_weighted", "rollout"):
        np.testing.assert_allclose(t[col], expected, atol=1e-5, err_msg=col)
    # the shares of every target's sources sum to one
    np.testing.assert_allclose(t.groupby(["recording_id", "target"])["value_weighted"].sum(), 1.0, atol=1e-5)
    assert t["integrated_gradients"].isna().all()       # no gradient windows asked for


def test_rollout_traces_attention_through_the_encoder():
    """One encoder layer in which every token attends to token 0; the decoder reads token 2 only.
    Rollout (½A + ½I) gives token 0 and token 2 half the mass each; without the encoder it is token 2 alone."""
    import torch

    from bi_core.analysis.readout_registry.attention import rollout_matrix as _rollout

    nv = 4
    enc = torch.zeros(1, 2, nv, nv)
    enc[..., 0] = 1.0
    dec = torch.zeros(1, 2, 3, nv)
    dec[..., 2] = 1.0
    r = _rollout([enc], [dec])
    np.testing.assert_allclose(r[0].numpy(), np.tile([0.5, 0.0, 0.5, 0.0], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(_rollout([], [dec])[0].numpy(), dec[0, 0].numpy())
    # two such layers: token 0 keeps collecting (0.75)
    np.testing.assert_allclose(_rollout([enc, enc], [dec])[0, 0].numpy(), [0.75, 0.0, 0.25, 0.0], atol=1e-6)


def test_integrated_gradients_are_complete(small_atlas):
    """Σ IG = f(x) − f(0) within 1 % with 32 Simpson intervals on a random tiny model (smooth GELU network);
    attributions on the masked network's own ROIs are exactly zero (they are not inputs)."""
    import torch

    from bi_core.analysis.readouts import gradient_attributions
    from bi_core.masking import network_mask
    from bi_core.model import ModelConfig, build_model

    model = build_model(ModelConfig.from_atlas(small_atlas, "tiny"), seed=1).eval()
    with torch.no_grad():           # O(1) weights: a clearly nonlinear function with a sizeable output
        g = torch.Generator().manual_seed(1)
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / mod.weight.shape[1] ** 0.5)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, small_atlas.n_rois, 64)).astype(np.float32))
    lay = model.layout
    ixg, ig, f_x, f_0 = gradient_attributions(model, x, lambda b: network_mask(lay, "DMN", batch_size=b), 32)
    gap = f_x - f_0
    assert (gap.abs() > 0.5).all(), gap
    rel = ((ig.sum((1, 2)) - gap).abs() / gap.abs()).max().item()
    assert rel < 0.01, rel
    dmn = np.flatnonzero(np.asarray(small_atlas.networks)[small_atlas.network_index] == "DMN")
    assert float(ig[:, dmn].abs().max()) == 0.0 and float(ixg[:, dmn].abs().max()) == 0.0
    # the coarsest rule (2 intervals) is less exact than 32; an odd count is refused (Simpson's rule)
    _, ig2, _, _ = gradient_attributions(model, x, lambda b: network_mask(lay, "DMN", batch_size=b), 2)
    assert ((ig2.sum((1, 2)) - gap).abs() / gap.abs()).max().item() > rel
    with pytest.raises(ValueError, match="even"):
        gradient_attributions(model, x, lambda b: network_mask(lay, "DMN", batch_size=b), 3)


def test_gradient_attribution_finds_a_planted_coupling(tmp_path):
    """A tiny model trained (~10 s) on cohorts where DMN is a linear copy of the VIS latent and SMN is
    independent: the DMN reconstruction's integrated gradients come from VIS, not SMN."""
    from bi_core.analysis.readouts import model_readouts
    from bi_core.atlas import NetworkAtlas
    from bi_core.cohort import Cohort
    from bi_core.model import tiny
    from bi_core.runs import TrainConfig, load_model
    from bi_core.train import pretrain
    from tests.test_train import _planted_cohort

    nets = ["VIS"] * 6 + ["SMN"] * 2 + ["DMN"] * 4
    atlas = NetworkAtlas("planted", tuple(f"roi{i}" for i in range(len(nets))), tuple(nets))
    train = _planted_cohort(tmp_path / "train", atlas, 12, seed=0)
    held_out = Cohort.open(_planted_cohort(tmp_path / "test", atlas, 3, seed=99))
    pretrain([train], TrainConfig(model=tiny(), epochs=60, batch_size=16, lr=3e-3, val_fraction=0.2, patience=0),
             tmp_path / "run", device="cpu", progress=False)
    model, info = load_model(tmp_path / "run", cohort=held_out)
    t = model_readouts(model, info, held_out, windows=2, gradient_windows=2, ig_steps=16)
    m = t.groupby(["target", "source"])[["integrated_gradients", "input_x_gradient"]].mean()
    # measured (seed 0, with the linear path): IG DMN←VIS 0.91, DMN←SMN −0.00, SMN←VIS −0.01 (0.51 / −0.01 / 0.00
    # with the plain decoder)
    ig = "integrated_gradients"
    assert m.loc[("DMN", "VIS"), ig] > 0.5
    assert abs(m.loc[("DMN", "SMN"), ig]) < m.loc[("DMN", "VIS"), ig] / 10
    assert abs(m.loc[("SMN", "VIS"), ig]) < m.loc[("DMN", "VIS"), ig] / 10
    # input × gradient is the local slope at the window: the gradient of the explained energy is proportional to
    # the residual, so for a model that fits the planted map well it is small (0.01 here) whatever drives the target
    assert abs(m.loc[("DMN", "VIS"), "input_x_gradient"]) < m.loc[("DMN", "VIS"), ig] / 10
    assert t.attrs["completeness"]["median_relative_error"] < 0.01


def test_partial_correlation_separates_a_direct_coupling_from_a_proxy():
    """Chain A → B → C: A and C correlate (through B), but their partial correlation given B is ≈ 0;
    A–B and B–C stay large."""
    from bi_core.connectome import fc_from_bold

    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    b = a + rng.normal(size=2000)
    c = b + rng.normal(size=2000)
    x = np.c_[a, b, c]
    fc = fc_from_bold([x])[0]
    pc = fc_from_bold([x], kind="partial correlation")[0]
    assert fc[0, 2] > 0.4
    assert abs(pc[0, 2]) < 0.06
    assert pc[0, 1] > 0.4 and pc[1, 2] > 0.4


def test_ranking_and_verdict_follow_the_table():
    from bi_core.analysis.readouts import rank_readouts, verdict

    def row(r, fam, c, p, rec, s, rho):
        return {"readout": r, "family": fam, "contrast": c, "precision": p, "recall": rec, "sign_agreement": s,
                "spearman_implied": rho, "seed": 0}

    rows = []
    for c in ("AD-CN", "MCI-CN"):
        rows += [row("attention", "attention", c, np.nan, 0.0, np.nan, -0.05),
                 row("rollout", "attention", c, 0.5, 1 / 3, 1.0, 0.1),
                 row("source_only_r", "model", c, 1.0, 1.0, 1.0, 0.6),
                 row("fc_correlation", "reference", c, 1.0, 2 / 3, 1.0, 0.5),
                 row("attention_l1_h1", "attention", c, 1.0, 1.0, 1.0, 0.9)]     # per-head rows are not ranked
    s = pd.DataFrame(rows)
    r = rank_readouts(s)
    assert list(r["readout"]) == ["source_only_r", "fc_correlation", "rollout", "attention"]
    v = verdict(s)
    assert v["recommended"] == "source_only_r" and v["beats_references"]
    assert v["best_attention"] == "rollout" and not v["claim_reproduced"]
    s.loc[s["readout"] == "rollout", ["precision", "recall"]] = [1.0, 1.0]
    assert verdict(s)["claim_reproduced"]


def test_verdict_reads_the_attention_read_out_chosen_on_the_selection_subjects():
    """Given the read-out chosen on the selection subjects, the verdict reads it even where another attention
    read-out scores better on the scored subjects; without one it is the best of N there, and says so."""
    from bi_core.analysis.readouts import verdict
    from bi_core.errors import InputError

    rows = []
    for c in ("AD-CN", "MCI-CN"):
        for r, fam, p, rec in (("attention", "attention", 0.5, 1 / 3), ("rollout", "attention", 1.0, 1.0),
                               ("enrichment", "attention", np.nan, 0.0), ("fc_correlation", "reference", 1.0, 0.5)):
            rows.append({"readout": r, "family": fam, "contrast": c, "precision": p, "recall": rec,
                         "sign_agreement": 1.0, "spearman_implied": 0.3, "seed": 0})
    s = pd.DataFrame(rows)
    old = verdict(s)
    assert old["best_attention"] == "rollout" and old["claim_reproduced"]
    assert old["attention_selected_on"] == "scored subjects (best of 3)" and old["n_attention_candidates"] == 3
    v = verdict(s, attention_readout="attention")
    assert v["best_attention"] == "attention" and not v["claim_reproduced"]      # rollout scores better: not picked
    assert v["attention_selected_on"] == "selection subjects" and v["n_attention_candidates"] == 3
    assert v["best_attention_f1"] == pytest.approx(0.4)
    assert v["best_attention_contrast"]["recall"] == pytest.approx(1 / 3)
    assert v["recommended"] == old["recommended"] == "rollout"                   # the ranking itself is unchanged
    with pytest.raises(InputError):
        verdict(s, attention_readout="fc_correlation")                            # not an attention read-out


def test_agreement_and_split_half_stability():
    """A read-out that is the same map in every subject is perfectly stable; pure noise is not; a read-out
    agrees perfectly with a monotone transform of itself."""
    from bi_core.analysis.readouts import agreement_matrix, split_half_stability

    rng = np.random.default_rng(0)
    cells = [(t, s) for t in "ABCD" for s in "ABCD" if t != s]
    base = rng.normal(size=len(cells))
    rows = []
    for subj in range(6):
        for (t, s), b in zip(cells, base):
            rows.append({"subject": f"s{subj}", "target": t, "source": s, "stable": b + 0.01 * rng.normal(),
                         "noise": rng.normal(), "cubed": b ** 3})
    v = pd.DataFrame(rows)
    st = split_half_stability(v, ["stable", "noise"]).set_index("readout")["stability"]
    assert st["stable"] > 0.95 and abs(st["noise"]) < 0.5
    ag = agreement_matrix(v, ["stable", "cubed"]).set_index(["readout_a", "readout_b"])["spearman"]
    assert ag[("stable", "cubed")] > 0.99


def test_readout_figures_show_every_readout_and_contrast():
    import matplotlib.pyplot as plt

    from bi_core.figures.readouts import agreement_heatmap, readout_scores

    s = pd.DataFrame([{"readout": r, "contrast": c, "precision": 0.5, "recall": 1.0, "spearman_implied": -0.2}
                      for r in ("a", "b", "c") for c in ("AD-CN", "MCI-CN")])
    fig = readout_scores(s, ["c", "a", "b"], {"a": "A label"}, {"a": "attention", "b": "model", "c": "reference"})
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["AD-CN", "MCI-CN"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["c", "A label", "b"]
    assert len(axes[0].collections) == 3 and len(axes[0].collections[0].get_offsets()) == 3
    plt.close(fig)
    ag = pd.DataFrame([{"readout_a": a, "readout_b": b, "spearman": 1.0 if a == b else 0.3} for a in "ab" for b in "ab"])
    ax = agreement_heatmap(ag, ["a", "b"])
    np.testing.assert_allclose(ax.images[0].get_array(), [[1.0, 0.3], [0.3, 1.0]])
    plt.close(ax.figure)


def test_encoder_attention_is_what_the_encoder_computes(small_atlas):
    """The explicit weights of BrainInterNet.encoder_attention reproduce the SDPA layer's output, rows sum to one,
    and padded keys get no weight."""
    import torch

    from bi_core.masking import MaskConfig, MaskSampler, network_mask
    from bi_core.model import ModelConfig, build_model

    model = build_model(ModelConfig.from_atlas(small_atlas, "tiny"), seed=0).eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, small_atlas.n_rois, 64)).astype(np.float32))
    mask = network_mask(model.layout, "SMN", batch_size=2)
    att = model.encoder_attention(x, mask)
    assert len(att) == len(model.blocks)
    h, _ = model._embed_visible(x, mask)
    blk = model.blocks[0]
    B, N, C = h.shape
    H = blk.attn.n_heads
    v = blk.attn.qkv(blk.ln1(h)).view(B, N, 3, H, C // H)[:, :, 2].transpose(1, 2)        # [B, H, N, hd]
    y = blk.attn.proj((att[0] @ v).transpose(1, 2).reshape(B, N, C))
    with torch.no_grad():
        torch.testing.assert_close(y, blk.attn(blk.ln1(h)), atol=1e-5, rtol=1e-4)
    for a in att:
        torch.testing.assert_close(a.sum(-1), torch.ones_like(a.sum(-1)))
    padded = MaskSampler(model.layout, MaskConfig(per_sample=True)).sample(2, np.random.default_rng(0))
    if padded.visible_pad is not None and padded.visible_pad.any():
        with torch.no_grad():
            a = model.encoder_attention(x, padded)[0]
        assert float(a.masked_select(padded.visible_pad[:, None, None, :].expand_as(a)).abs().max()) == 0.0


def test_selection_split_is_stratified_disjoint_and_seeded():
    """The layer/head is chosen on one half of the baseline subjects and every read-out scored on the other."""
    from bi_core.analysis.groupstats import Groups
    from bi_core.analysis.readouts import selection_split
    from bi_core.errors import InputError

    rows = [{"recording_id": f"{g}{i}-v{v}", "subject": f"{g}{i}", "diagnosis": g, "visit": v}
            for g, n in (("CN", 6), ("MCI", 4), ("AD", 5)) for i in range(n) for v in (0, 1)]
    t = pd.DataFrame(rows).assign(session="1", run="1", time_point=lambda d: d["visit"])
    sel, scored = selection_split(t, Groups(), seed=3)
    assert not set(sel) & set(scored) and set(sel) | set(scored) == set(t["subject"])
    for g in ("CN", "MCI", "AD"):             # every group on both sides
        assert any(s.startswith(g) for s in sel) and any(s.startswith(g) for s in scored)
    assert selection_split(t, Groups(), seed=3) == (sel, scored)
    assert selection_split(t, Groups(), seed=4) != (sel, scored)
    with pytest.raises(InputError, match="at least 2 baseline subjects"):
        selection_split(t[~t["subject"].isin(["AD1", "AD2", "AD3", "AD4"])], Groups())


def test_read_out_study_scores_only_subjects_the_selection_did_not_see(smoke_dir, smoke_run, toy_readouts):
    """... and scores a read-out registered by the test (no other edit) beside the others."""
    from bi_core.analysis.readouts import readout_scenario

    res = readout_scenario(smoke_run, smoke_dir / "eval", smoke_dir / "ground_truth.json", "static", windows=1,
                           gradient_windows=0, ig_steps=2)
    sel = res.meta["selection"]
    assert sel["subjects"] and sel["scored_subjects"] and not set(sel["subjects"]) & set(sel["scored_subjects"])
    assert set(res.values["subject"].astype(str)) == set(sel["scored_subjects"])
    assert sel["chosen"] in sel["spearman"] and "other" in sel["data"]
    assert (res.values["attention_selected"] == res.values[sel["chosen"]]).all()
    # the verdict's attention read-out is chosen on the selection subjects, by the same criterion, among every
    # attention-family read-out the study scores (the selected layer/head included, the per-head columns not) ...
    from bi_core.analysis.readouts import family, verdict

    att = {r for r in res.scores["readout"] if family(r) == "attention" and not r.startswith("attention_l")}
    assert set(sel["verdict_criterion"]) == att and "attention_selected" in att
    crit = {r: c for r, c in sel["verdict_criterion"].items() if np.isfinite(c)}
    assert sel["verdict_readout"] in att and (not crit or crit.get(sel["verdict_readout"]) == max(crit.values()))
    # ... on one half of them, the head of the selected-head candidate chosen on the other half (on the subjects
    # that chose it, that candidate's value would be the best of the heads': a choice that favours it)
    head_half, compared_half = set(sel["verdict_head_subjects"]), set(sel["verdict_compared_subjects"])
    assert head_half and compared_half and not head_half & compared_half
    assert head_half | compared_half == set(sel["subjects"])
    assert "selection subjects" in sel["verdict_data"] and "chosen on the other" in sel["verdict_data"]
    assert verdict(res.scores, attention_readout=sel["verdict_readout"])["best_attention"] == sel["verdict_readout"]
    # the registered toy window read-out was read, compared between groups and scored like the others
    np.testing.assert_allclose(res.values["toy_layer1"], res.values["attention_l1"], atol=1e-6)
    assert set(res.scores.loc[res.scores["readout"] == "toy_layer1", "family"]) == {"model"}
    assert "toy_layer1" in set(res.diffs["measure"])


# ---------------------------------------------------------------------- the registry
#: The read-outs and their order before the registry (the study's tables list them in this order; the suite's
#: group comparison in INTERACTION_MEASURES' order): the registry must keep both.
STUDY_ORDER = ["attention", "enrichment", "attention_selected", "value_weighted", "rollout", "input_x_gradient",
               "integrated_gradients", "occlusion_delta_r2", "occlusion_share", "source_only_r",
               "linear_occlusion_delta_r2", "fc_correlation", "fc_partial_correlation"]
META = {"recording_id", "subject", "session", "target", "source", "n_windows", "n_gradient_windows"}


@pytest.fixture()
def toy_readouts():
    """Two read-outs registered by a test, removed after it: a ``window`` one (the first decoder layer's attention
    shares, recomputed from the pass) and an ``interactions`` one (attention squared)."""
    from bi_core.analysis.readout_registry import READOUTS, register

    @register("toy_layer1", "toy: layer 1 attention", "model", "window", needs=("decoder attention",))
    def toy_layer1(p):
        return p.decoder_attention[0].mean(dim=(1, 2)) @ p.token_sources

    @register("toy_attention_sq", "toy: attention²", "attention", "interactions", needs=("decoder attention",))
    def toy_attention_sq(s, m, n):
        return s.attention[:, m, n] ** 2

    yield ("toy_layer1", "toy_attention_sq")
    for name in ("toy_layer1", "toy_attention_sq"):
        READOUTS.pop(name)


def test_the_registry_names_the_measures_the_tables_hold(small_atlas, tmp_path):
    """The registry's read-outs are exactly the columns of the tables that compute them, in the order the tables
    always had; the suite's interaction measures are the registry's."""
    from bi_core.analysis import readout_registry as RR
    from bi_core.analysis.interactions import add_network_fc, predictability_and_interactions
    from bi_core.analysis.readouts import LABELS, family, model_readouts
    from bi_core.analysis.suite import INTERACTION_MEASURES
    from bi_core.model import ModelConfig, build_model

    assert RR.study_order() == STUDY_ORDER
    assert RR.interaction_measures() == INTERACTION_MEASURES
    model = build_model(ModelConfig.from_atlas(small_atlas, "tiny"), seed=0).eval()
    cohort = _cohort(tmp_path / "c", small_atlas, n_subjects=2)
    info = _info(model, small_atlas)
    v = model_readouts(model, info, cohort, windows=1, gradient_windows=1, ig_steps=2)
    heads = [c for c in v.columns if RR.is_head_column(c)]
    assert heads == ["attention_l1_h1", "attention_l1_h2", "attention_l1"]
    assert [c for c in v.columns if c not in META] == heads + [r.name for r in RR.registered("window")
                                                               if r.columns is None]
    _, inter = predictability_and_interactions(model, info, cohort, batch_size=8)
    assert [c for c in inter.columns if c not in META] == [r.name for r in RR.registered("interactions")]
    fc = add_network_fc(inter, cohort, kinds=RR.fc_kinds())
    assert [c for c in fc.columns if c not in inter.columns] == [r.name for r in RR.registered("fc")]
    # what the tables hold, plus the ridge (added by the suite) and the selected head (by the study): every name
    held = set(v.columns) | set(fc.columns) | {"linear_occlusion_delta_r2", "attention_selected"}
    assert set(RR.study_order()) <= held and set(RR.study_order(heads)) == held - META
    assert all(LABELS[r] for r in RR.study_order()) and {family(r) for r in RR.study_order()} == set(RR.FAMILIES)
    assert not any(RR.READOUTS[r].model_based for r in RR.study_order() if family(r) == "reference")


def test_a_registered_readout_reaches_every_table_without_another_edit(small_atlas, tmp_path, toy_readouts):
    """A read-out is one registered function: the window pass, the interactions table, the study's order, its
    labels and family pick it up."""
    from bi_core.analysis import readout_registry as RR
    from bi_core.analysis.interactions import predictability_and_interactions
    from bi_core.analysis.readouts import LABELS, family, model_readouts
    from bi_core.model import ModelConfig, build_model

    model = build_model(ModelConfig.from_atlas(small_atlas, "tiny"), seed=0).eval()
    cohort = _cohort(tmp_path / "c", small_atlas, n_subjects=2)
    v = model_readouts(model, _info(model, small_atlas), cohort, windows=2, gradient_windows=0)
    np.testing.assert_allclose(v["toy_layer1"], v["attention_l1"], atol=1e-6)
    _, inter = predictability_and_interactions(model, _info(model, small_atlas), cohort, occlusion=False,
                                               source_only=False, batch_size=8)
    np.testing.assert_allclose(inter["toy_attention_sq"], inter["attention"] ** 2)
    # listed with its family, after the registered ones: the tables' order of the others does not change
    order = RR.study_order()
    assert order.index("rollout") < order.index("toy_attention_sq") < order.index("input_x_gradient")
    assert order.index("source_only_r") < order.index("toy_layer1") < order.index("linear_occlusion_delta_r2")
    assert [r for r in order if not r.startswith("toy_")] == STUDY_ORDER
    assert "toy_attention_sq" in RR.suite_columns() and "toy_layer1" not in RR.suite_columns()
    assert LABELS["toy_layer1"] == "toy: layer 1 attention" and family("toy_attention_sq") == "attention"
    assert "toy_layer1" not in RR.interaction_measures()          # the suite's group comparison only when suite=True


def test_registering_twice_or_an_unknown_family_is_refused():
    from bi_core.analysis.readout_registry import register

    with pytest.raises(ValueError, match="twice"):
        register("rollout", "again", "attention", "window")(lambda p: None)
    with pytest.raises(ValueError, match="family"):
        register("toy_bad", "bad", "weights", "window")


def test_real_readouts_read_each_fold_on_the_subjects_it_held_out(smoke_dir, smoke_run, tmp_path):
    """The real-data read-outs with a k-fold: each run reads only its held-out subjects; every registered read-out
    the table holds is compared, in the registry's order; completeness is pooled over the folds."""
    from bi_core.analysis.readout_registry import study_order
    from bi_core.analysis.readouts import real_readouts
    from bi_core.cohort import Cohort

    subj = sorted(Cohort.open(smoke_dir / "eval").table["subject"].astype(str).unique())[:4]
    meta = real_readouts([(smoke_run, subj[:2]), (smoke_run, subj[2:])], smoke_dir / "eval", [], tmp_path,
                         windows=1, gradient_windows=1, ig_steps=2)
    v = pd.read_csv(tmp_path / "readout_values.tsv", sep="\t")
    assert v["held_out"].all() and set(v["subject"].astype(str)) == set(subj)
    assert v.groupby("subject")["fold"].first().to_dict() == {s: int(i >= 2) for i, s in enumerate(subj)}
    assert meta["readouts"] == [r for r in study_order() if r in meta["readouts"]]
    assert {"attention", "rollout", "integrated_gradients", "fc_partial_correlation"} <= set(meta["readouts"])
    assert len(meta["completeness"]["per_fold"]) == 2
    assert meta["completeness"]["n"] == sum(c["n"] for c in meta["completeness"]["per_fold"])
    agree = pd.read_csv(tmp_path / "readout_agreement.tsv", sep="\t")
    assert len(agree) == len(meta["readouts"]) ** 2


@pytest.mark.parametrize("per_group", [8, 3])
def test_the_verdicts_read_out_is_chosen_without_judging_the_selected_head_on_its_own_subjects(monkeypatch, per_group):
    """Halves of the selection subjects: the head on one, the candidates compared on the other; too few
    subjects to halve (3 per group): the selected head is no candidate, and the text says why."""
    from types import SimpleNamespace

    import bi_core.analysis.suite as S
    from bi_core.analysis import readouts as R
    from bi_core.analysis.groupstats import Groups

    subjects = [f"{g}{i}" for g in ("CN", "MCI", "AD") for i in range(per_group)]
    table = pd.DataFrame({"subject": subjects, "recording_id": subjects, "diagnosis": [s.rstrip("0123456789")
                                                                                      for s in subjects]})
    heads = ["attention_l1_h1", "attention_l1_h2"]
    sel = table[["recording_id", "subject"]].assign(attention=0.0, enrichment=0.0, **{h: 0.0 for h in heads})
    seen = []
    monkeypatch.setattr(S, "interaction_differences", lambda v, cohort, cols, groups: (set(v["subject"]), list(cols)))

    def choose(diff, cands, *scoring):
        seen.append(diff)
        return cands[-1], {c: 0.0 for c in cands}, "criterion"

    monkeypatch.setattr(R, "_choose_head", choose)
    best, rho, how = R._choose_verdict_readout(sel, SimpleNamespace(table=table), heads, subjects, Groups(), 101,
                                               (None, None, None, "AD-CN"))
    if per_group == 8:
        (head_subj, head_cands), (cmp_subj, cmp_cands) = seen
        assert head_cands == heads and "attention_selected" in cmp_cands and set(rho) == set(cmp_cands)
        assert head_subj == set(how["head_subjects"]) and cmp_subj == set(how["compared_subjects"])
        assert not head_subj & cmp_subj and head_subj | cmp_subj == set(subjects)
        assert "chosen on the other" in how["text"]
    else:
        ((subj, cands),) = seen
        assert subj == set(subjects) and "attention_selected" not in cands and set(rho) == set(cands)
        assert how["head_subjects"] == [] and "not a candidate" in how["text"]
