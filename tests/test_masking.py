"""Masking strategies: coverage, ratios, shapes, deterministic masks and config errors."""

import numpy as np
import pytest
import torch

from bi_core.atlas import NetworkAtlas
from bi_core.errors import ConfigError
from bi_core.masking import (STRATEGIES, MaskConfig, MaskSampler, TokenLayout, matched_ratio, network_mask,
                             region_mask, rois_mask)
from bi_core.synth import synthetic_atlas


@pytest.fixture(scope="module")
def atlas():
    return synthetic_atlas(30, 3)  # 8 networks, 7 regions


@pytest.fixture(scope="module")
def layout(atlas):
    return TokenLayout.from_atlas(atlas, n_patches=4)


def _state(mask, layout):
    return mask.token_state(layout.n_tokens).numpy().reshape(mask.batch_size, layout.n_rois, layout.n_patches)


def test_layout_ids_are_roi_major(layout):
    assert layout.n_tokens == layout.n_rois * 4
    assert list(layout.token_roi[:6]) == [0, 0, 0, 0, 1, 1] and list(layout.token_patch[:6]) == [0, 1, 2, 3, 0, 1]
    assert list(layout.tokens_of_rois([2])) == [8, 9, 10, 11]
    # the same layout as x.reshape(B, R, n_p, P): token r * n_p + p holds ROI r, patch p
    x = torch.arange(layout.n_rois * 4 * 2).reshape(1, layout.n_rois, 8).float()
    tok = x.reshape(1, layout.n_rois, 4, 2).reshape(1, -1, 2)
    assert torch.equal(tok[0, 2 * 4 + 3], x[0, 2, 6:8])


def test_network_masks_cover_whole_networks(layout):
    s = MaskSampler(layout, MaskConfig("network", p_two=0.5))
    rng = np.random.default_rng(0)
    n_two = 0
    for _ in range(40):
        m = s.sample(5, rng)
        assert not m.padded and m.kind == "network"
        st = _state(m, layout)
        assert (st == st[:1]).all()  # one draw shared by the batch
        nets = [u for u in m.units[0].tolist() if u >= 0]
        n_two += len(nets) == 2
        want = np.isin(np.asarray(layout.roi_network), nets)
        assert (st[0][want] == 1).all() and (st[0][~want] == 0).all()  # every patch of exactly those ROIs
        assert m.visible.shape[1] + m.masked.shape[1] == layout.n_tokens
        assert torch.all(m.masked[:, 1:] > m.masked[:, :-1])
    assert 8 <= n_two <= 32


def test_per_sample_network_masks_are_padded_consistently(layout):
    s = MaskSampler(layout, MaskConfig("network", p_two=0.3, per_sample=True))
    m = s.sample(16, np.random.default_rng(1))
    assert m.padded and m.masked_pad is not None
    st = _state(m, layout)
    for b in range(16):
        nets = [u for u in m.units[b].tolist() if u >= 0]
        want = np.isin(np.asarray(layout.roi_network), nets)
        assert (st[b][want] == 1).all() and (st[b][~want] == 0).all()
        n_real = int((~m.masked_pad[b]).sum())
        assert n_real == want.sum() * layout.n_patches
    assert m.n_masked_tokens() == int((st == 1).sum())


def test_random_ratio_matches_average_network_share(layout):
    cfg = MaskConfig("random")
    s = MaskSampler(layout, cfg)
    r = matched_ratio(layout, cfg.p_two)
    shares = np.bincount(layout.roi_network) / layout.n_rois
    assert r == pytest.approx((1 - 0.25) * shares.mean() + 0.25 * 2 * shares.mean())
    m = s.sample(64, np.random.default_rng(0))
    st = _state(m, layout).reshape(64, -1)
    assert not m.padded and abs((st == 1).mean() - r) < 1 / layout.n_tokens
    # the network strategy's empirical masked share agrees with the matched ratio
    ns = MaskSampler(layout, cfg.__class__("network"))
    rng = np.random.default_rng(3)
    emp = np.mean([ns.sample(1, rng).masked.shape[1] / layout.n_tokens for _ in range(3000)])
    assert emp == pytest.approx(r, abs=0.01)
    assert ns.expected_ratio == pytest.approx(r)
    # different samples get different tokens
    assert not (st[0] == st[1]).all()


def test_region_masks_are_whole_regions(atlas, layout):
    s = MaskSampler(layout, MaskConfig("region", p_two=0.5, per_sample=True))
    m = s.sample(20, np.random.default_rng(2))
    st = _state(m, layout)
    reg = np.asarray(layout.roi_region)
    for b in range(20):
        regions = [u for u in m.units[b].tolist() if u >= 0]
        want = np.isin(reg, regions)
        assert (st[b][want] == 1).all() and (st[b][~want] == 0).all()
        # regions cut across networks: a region mask is not a network mask
    assert any(len(set(np.asarray(layout.roi_network)[reg == r])) > 1 for r in range(layout.n_regions))
    one = region_mask(layout, atlas.regions[0], batch_size=2)
    assert (_state(one, layout)[0][reg == 0] == 1).all()


def test_temporal_blocks_are_contiguous(layout):
    s = MaskSampler(layout, MaskConfig("temporal_block", block_patches=2))
    m = s.sample(10, np.random.default_rng(4))
    assert not m.padded
    st = _state(m, layout)
    assert abs((st == 1).mean() - s.expected_ratio) < 1e-9
    assert abs(s.expected_ratio - matched_ratio(layout)) < 2 / layout.n_rois
    for b in range(10):
        rows = np.flatnonzero((st[b] == 1).any(1))
        assert sorted(rows.tolist()) == sorted(m.units[b].tolist())
        for r in rows:
            p = np.flatnonzero(st[b, r] == 1)
            assert len(p) == 2 and p[1] - p[0] == 1  # one contiguous block of 2 patches


def test_same_seed_same_masks(layout):
    for strat in STRATEGIES:
        s = MaskSampler(layout, MaskConfig(strat))
        a = s.sample(4, np.random.default_rng(7))
        b = s.sample(4, np.random.default_rng(7))
        assert torch.equal(a.masked, b.masked) and torch.equal(a.visible, b.visible)


def test_deterministic_network_and_occlusion_masks(atlas, layout):
    m = network_mask(layout, "DMN", batch_size=3)
    dmn = atlas.rois_of("DMN")
    st = _state(m, layout)
    assert (st[:, dmn] == 1).all() and (np.delete(st, dmn, axis=1) == 0).all()
    assert m.units.tolist() == [[layout.network_id("DMN")]] * 3
    o = network_mask(layout, "DMN", hidden=["LIM"], batch_size=2)
    st = _state(o, layout)
    lim = atlas.rois_of("LIM")
    assert (st[:, lim] == 2).all() and (st[:, dmn] == 1).all()
    assert o.visible.shape[1] == layout.n_tokens - (len(dmn) + len(lim)) * layout.n_patches
    assert torch.equal(o.masked, m.masked[:2])
    pair = network_mask(layout, [0, 1])
    assert pair.masked.shape[1] == (np.isin(layout.roi_network, [0, 1]).sum()) * layout.n_patches
    shard = m.rows(slice(1, 3))
    assert shard.batch_size == 2 and torch.equal(shard.masked, m.masked[1:])


@pytest.mark.parametrize("kwargs, msg", [
    (dict(strategy="blocks"), "unknown masking strategy 'blocks'; known strategies: \\['network', 'random'"),
    (dict(strategy="random", ratio=1.0), "must be in \\(0, 1\\)"),
    (dict(strategy="random", ratio=0.0), "must be in \\(0, 1\\)"),
    (dict(p_two=1.5), "p_two=1.5 must be a probability"),
    (dict(strategy="temporal_block", block_patches=0), "at least 1"),
])
def test_bad_mask_configs(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        MaskConfig(**kwargs)


def test_masks_that_cover_everything_or_cannot_exist(layout):
    one_net = NetworkAtlas("one", ("a", "b", "c"), ("VIS",) * 3)
    with pytest.raises(ConfigError, match="would mask every token"):
        MaskSampler(TokenLayout.from_atlas(one_net, 4), MaskConfig("network"))
    two = NetworkAtlas("two", ("a", "b", "c"), ("VIS", "VIS", "DMN"))
    with pytest.raises(ConfigError, match="pair covers every token; set mask.p_two: 0"):
        MaskSampler(TokenLayout.from_atlas(two, 4), MaskConfig("network"))
    MaskSampler(TokenLayout.from_atlas(two, 4), MaskConfig("network", p_two=0))  # fine
    with pytest.raises(ConfigError, match="needs an atlas with an anatomical 'region' column"):
        MaskSampler(TokenLayout.from_atlas(two, 4), MaskConfig("region"))
    with pytest.raises(ConfigError, match="covers every token"):
        network_mask(layout, list(range(7)), hidden=[7])
    with pytest.raises(ConfigError, match="both masked and hidden"):
        network_mask(layout, "DMN", hidden=["DMN"])
    with pytest.raises(ConfigError, match="not in this model's networks"):
        network_mask(layout, "XYZ")
    with pytest.raises(ConfigError, match="longer than the window"):
        MaskSampler(layout, MaskConfig("temporal_block", block_patches=9))
    with pytest.raises(ConfigError, match="lower mask.ratio"):
        MaskSampler(layout, MaskConfig("temporal_block", ratio=0.9, block_patches=1))
    with pytest.raises(ConfigError, match="mask is empty"):
        rois_mask(layout, [])
