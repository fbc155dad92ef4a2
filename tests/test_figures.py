"""Figure functions draw what their tables say (checked on the artists, not by eye)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bi_core.figures import matrix_from_table, network_matrix  # noqa: E402
from bi_core.figures import classification as FCL  # noqa: E402
from bi_core.figures import cohorts as FC  # noqa: E402
from bi_core.figures import interactions as FI  # noqa: E402
from bi_core.figures import longitudinal as FL  # noqa: E402
from bi_core.figures import predictability as FP  # noqa: E402
from bi_core.figures import pretraining as FT  # noqa: E402
from bi_core.synth import synthetic_atlas  # noqa: E402

NETS = ["VIS", "SMN", "DMN"]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_network_matrix_marks_and_symmetric_limits():
    M = np.array([[np.nan, 0.5, -0.2], [0.1, np.nan, 0.3], [-0.4, 0.2, np.nan]])
    marks = np.zeros((3, 3), bool)
    marks[0, 1] = True
    ax = network_matrix(M, NETS, marks=marks)
    im = ax.get_images()[0]
    assert im.get_clim() == (-0.5, 0.5)
    texts = [t.get_text() for t in ax.texts]
    assert "0.50*" in texts and "-0.40" in texts           # two significant digits of the ±0.5 scale
    assert len(ax.patches) == 1  # one boxed (significant) cell


def test_matrix_from_table_orders_cells():
    df = pd.DataFrame({"target": ["DMN", "VIS"], "source": ["VIS", "DMN"], "v": [1.0, 2.0]})
    M = matrix_from_table(df, "target", "source", "v", NETS)
    assert M[2, 0] == 1.0 and M[0, 2] == 2.0 and np.isnan(M[1, 1])


def test_example_series_and_purity():
    atlas = synthetic_atlas(24, 2)
    x = np.random.default_rng(0).normal(size=(200, atlas.n_rois))
    ax = FC.example_series(x, atlas, tr=1.5, per_network=1)
    assert len(ax.lines) == atlas.n_networks
    assert ax.lines[0].get_xdata()[-1] == pytest.approx(199 * 1.5)
    with pytest.raises(ValueError, match="no purity"):
        FC.atlas_purity(atlas)


def test_visit_structure_one_row_per_subject():
    t = pd.DataFrame({"subject": ["a", "a", "b"], "years_from_baseline": [0, 1, 0], "diagnosis": ["MCI", "AD", "CN"]})
    ax = FC.visit_structure(t)
    assert len(ax.lines) == 2


def test_loss_curves_and_reconstruction():
    m = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.8, 0.7], "val_loss": [1.0, 0.9, 0.85],
                      "val_zero_loss": [1.0] * 3})
    ax = FT.loss_curves(m)
    assert len(ax.lines) == 3 and ax.lines[2].get_ydata()[0] == 1.0
    y = np.sin(np.linspace(0, 6, 64))[None].repeat(3, 0)
    fig = FT.reconstruction(y, y * 0.5, ["a", "b", "c"], tr=1.5, n_rois=2)
    assert len(fig.axes) == 2 and "r = 1.00" in [t.get_text() for t in fig.axes[0].texts]
    curve = pd.DataFrame([{"method": "model", "step": st, "network": n, "r2": r} for st, r in ((10, 0.1), (20, 0.3))
                          for n in NETS] + [{"method": "ridge", "step": None, "network": n, "r2": 0.5} for n in NETS])
    ax = FT.learning_curve(curve)
    assert np.allclose(ax.lines[0].get_xdata(), [10, 20]) and np.allclose(ax.lines[0].get_ydata(), [0.1, 0.3])
    assert list(ax.lines[1].get_ydata()) == [0.5, 0.5]        # the reference as a horizontal line
    cfg = FT.config_table({"a": 1, "b": {"c": [1] * 20, "d": "x"}})
    assert list(cfg["setting"]) == ["a", "b.c", "b.d"] and cfg["value"].iloc[1] == "[20 values]"


def test_predictability_figures():
    rng = np.random.default_rng(0)
    df = pd.DataFrame([{"network": n, "r2": v + rng.normal(0, 0.05), "diagnosis": d}
                       for n, v in zip(NETS, (0.6, 0.4, 0.3)) for d in ("CN", "MCI", "AD") for _ in range(5)])
    ax = FP.profile(df, {"VIS": "r", "SMN": "g", "DMN": "b"})
    assert [t.get_text() for t in ax.get_xticklabels()] == NETS  # sorted by mean R²
    diff = pd.DataFrame([{"network": n, "contrast": c, "estimate": -0.1, "ci_low": -0.2, "ci_high": 0.0,
                          "significant": n == "DMN"} for n in NETS for c in ("AD-CN", "MCI-CN")])
    ax = FP.effect_sizes(diff, NETS)
    filled = [c for c in ax.collections if c.get_label().endswith("(q < .05)")]
    assert sum(len(c.get_offsets()) for c in filled) == 2  # DMN in both contrasts
    ref = pd.DataFrame({"model": [0.3, 0.1, -0.05], "ridge": [0.6, 0.4, 0.2]}, index=NETS)
    ax = FP.versus_reference(ref)
    heights = [[p.get_height() for p in c.patches] for c in ax.containers]
    assert heights == [[0.3, 0.1, -0.05], [0.6, 0.4, 0.2]]        # one bar group per network, methods in order
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["model", "ridge"]


def test_strip_plots_jitter_the_same_in_every_build():
    """seaborn jitters strip-plot points with NumPy's global generator: the figures seed it (and restore it),
    so chapters 1, 3 and 7 draw the same points whatever ran before them."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame([{"network": n, "r2": v + rng.normal(0, 0.05), "source": s}
                       for n, v in zip(NETS, (0.6, 0.4, 0.3)) for s in ("a", "b") for _ in range(8)])
    points = []
    for seed in (1, 2):
        np.random.seed(seed)
        ax = FP.profile(df, {"VIS": "r", "SMN": "g", "DMN": "b"})
        after = np.random.random()
        np.random.seed(seed)
        assert after == np.random.random(), "the global generator was not restored"
        fig = FC.summary_comparison(df.assign(within_fc=df["r2"]), stats=("within_fc",), hue="source")
        points.append([c.get_offsets().copy() for a in (ax, fig.axes[0]) for c in a.collections])
        plt.close("all")
    assert all(np.array_equal(p, q) for p, q in zip(*points)) and len(points[0]) == len(points[1])


def test_interaction_figures():
    rows = []
    for c in ("AD-CN", "MCI-CN"):
        for t in NETS:
            for s in NETS:
                if t != s:
                    rows.append({"target": t, "source": s, "contrast": c, "measure": "occlusion_share",
                                 "cohens_d": -1.0 if {t, s} == {"VIS", "DMN"} else 0.1, "estimate": 0.0,
                                 "q": 0.01 if {t, s} == {"VIS", "DMN"} else 0.5,
                                 "significant": {t, s} == {"VIS", "DMN"}})
    diff = pd.DataFrame(rows)
    colors = {"VIS": "#111111", "SMN": "#222222", "DMN": "#333333"}
    fig = FI.difference_maps(diff, NETS, colors, "occlusion_share")
    assert len(fig.axes) == 4  # two maps + two colour bars
    ax = FI.network_graph(diff, NETS, colors, "occlusion_share", truth_pairs=[("VIS", "DMN")])
    blue = [ln for ln in ax.lines if ln.get_color() == "#2471a3" and len(ln.get_xdata()) == 2]
    assert len(blue) == 1  # one significant pair, a decrease
    A = np.array([[np.nan, 1, 2], [3, np.nan, 4], [5, 6, np.nan]], float)
    ax = FI.attention_vs_occlusion(A, A, NETS, colors)
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6  # one point per off-diagonal cell


def test_classification_figures():
    roc = pd.DataFrame({"feature_set": ["x"] * 3, "fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1], "tpr_sd": [0, 0.1, 0]})
    s = pd.DataFrame({"feature_set": ["x"], "auc": [0.8], "auc_ci_low": [0.7], "auc_ci_high": [0.9]})
    ax = FCL.roc(roc, s)
    assert "AUC 0.80" in ax.get_legend().get_texts()[0].get_text()
    ax = FCL.metric_bars(s, "auc")
    assert ax.patches[0].get_width() == pytest.approx(0.8)


def test_longitudinal_figures():
    df = pd.DataFrame({"subject": ["a", "a", "b", "b"], "baseline_dx": ["CN", "CN", "AD", "AD"],
                       "diagnosis": ["CN", "CN", "AD", "AD"], "years_from_baseline": [0, 1, 0, 1],
                       "marker": [0, 0.1, 1, 1.5], "cdr_sb": [0, 0.5, 4, 6]})
    lines = pd.DataFrame({"group": ["CN", "CN", "AD", "AD"], "years": [0, 1, 0, 1], "fit": [0, 0.1, 1, 1.5],
                          "ci_low": [-0.1, 0, 0.9, 1.3], "ci_high": [0.1, 0.2, 1.1, 1.7]})
    ax = FL.trajectories(df, lines)
    assert len(ax.get_legend().get_texts()) == 2
    ax = FL.marker_vs_score(df, "cdr_sb")
    assert ax.get_ylabel() == "CDR-SB"
    sl = pd.DataFrame({"group": ["CN", "AD"], "slope": [0.1, 0.5], "ci_low": [0, 0.3], "ci_high": [0.2, 0.7]})
    ax = FL.slopes(sl)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CN", "AD"]


def _smallest_tick_pt(fig):
    """Smallest tick label of a drawn figure as the book shows it (page width, bi_core.figures.page_scale)."""
    from bi_core.figures import page_scale

    fig.canvas.draw()
    sizes = [t.get_fontsize() for a in fig.axes for t in (*a.get_xticklabels(), *a.get_yticklabels()) if t.get_text()]
    return min(sizes) * page_scale(fig)


def test_heatmap_labels_are_readable_at_page_width():
    """Tick labels ≥ 8 pt once the book shrinks the figure to its text column (7 in)."""
    from bi_core.figures import PAGE_WIDTH_IN, page_scale
    from bi_core.figures import jivnet as FJ
    from bi_core.figures import related as FR

    nets = ["VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN", "SUB"]
    M = np.random.default_rng(0).uniform(-1, 1, (8, 8))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), dpi=110)          # three maps side by side: shrunk
    for ax in axes:
        network_matrix(M, nets, ax=ax)
    assert page_scale(fig) == pytest.approx(PAGE_WIDTH_IN / 15)
    assert _smallest_tick_pt(fig) >= 8
    assert not axes[0].texts                        # numbers that would not fit readably are not printed at all
    fig, axes = plt.subplots(3, 1, figsize=(5.8, 14.4), dpi=110)        # chapter 1's three coupling maps, stacked
    for ax in axes:
        network_matrix(M, nets, ax=ax)
    fig.canvas.draw()
    cell_px = axes[0].get_window_extent().width / 8                         # annotations stay inside their cell
    assert len(axes[0].texts) == 64 and max(t.get_window_extent().width for t in axes[0].texts) < cell_px
    assert min(t.get_fontsize() for t in axes[0].texts) * page_scale(fig) >= 8
    rows = [{"target": t, "source": s, "contrast": c, "measure": "m", "cohens_d": 0.5, "significant": False}
            for c in ("AD-CN", "MCI-CN") for t in nets for s in nets if t != s]
    assert _smallest_tick_pt(FI.difference_maps(pd.DataFrame(rows), nets, {}, "m")) >= 8
    assert _smallest_tick_pt(FI.group_matrices({g: M for g in ("CN", "MCI", "AD")}, nets, {})) >= 8
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))                     # chapter 5's panel
    FCL.confusion_matrix(pd.DataFrame(np.eye(3), index=["CN", "MCI", "AD"], columns=["CN", "MCI", "AD"]), ax=axes[1])
    fig.delaxes(axes[0])                                                     # the other panel is not a heatmap
    assert _smallest_tick_pt(fig) >= 8
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))                       # chapter 10's panel
    rec = pd.DataFrame({"metric": "cc_mean", "latent": ["joint", "joint", "sc", "sc"], "truth": ["joint", "sc"] * 2,
                        "mean": [0.9, 0.1, 0.2, 0.8]})
    FJ.recovery_matrix(rec, ax=axes[1])
    fig.delaxes(axes[0])
    assert _smallest_tick_pt(fig) >= 8
    recon = pd.DataFrame({"seed": 0, "strategy": ["network", "random"] * 2, "eval_mask": ["network"] * 2 + ["random"] * 2,
                          "nmse": [0.9, 0.8, 0.85, 0.7]})
    assert _smallest_tick_pt(FR.reconstruction_heatmap(recon).figure) >= 8


def test_color_limits_centre_clip_and_mark_outliers():
    from bi_core.figures import color_limits

    rng = np.random.default_rng(0)
    flat = 1 + rng.normal(0, 0.003, (8, 8))
    lo, hi, ext = color_limits(flat, center=1.0)                 # an enrichment: symmetric around 1, full range
    assert lo + hi == pytest.approx(2.0) and ext == "neither"
    assert hi - 1 == pytest.approx(np.abs(flat - 1).max())
    out = flat.copy()
    out[0, 1] = 15.9                                              # one outlier cell must not wash out the map
    lo, hi, ext = color_limits(out, center=1.0)
    assert hi < 1.05 and lo + hi == pytest.approx(2.0) and ext in ("max", "both")
    lo, hi, ext = color_limits(out)                               # no centre: the 2nd/98th percentiles
    assert hi < 1.05 and ext in ("max", "both")
    d = rng.normal(0, 1, 50)
    lo, hi, ext = color_limits(d, center=0.0)                    # a difference: symmetric around 0
    assert lo == -hi and ext == "neither"
    assert color_limits(d, vmin=-5, vmax=5) == (-5, 5, "neither")  # given limits are kept
    assert color_limits(d, vmin=-0.1, vmax=0.1)[2] == "both"


def test_cell_annotation_digits_and_fit():
    from bi_core.figures import annotation_fontsize, cell_decimals, sig2

    assert [sig2(v) for v in (0.5, 1.0, 15.9, 0.012, -0.004)] == ["0.50", "1.0", "16", "0.012", "-0.0040"]
    assert cell_decimals(0.99, 1.01, 1.0) == 3 and cell_decimals(-0.5, 0.5, 0.0) == 2 and cell_decimals(-3, 3, 0) == 1
    _, ax = plt.subplots(figsize=(5.4, 4.6), dpi=110)
    assert annotation_fontsize(ax, 8, 5) is not None              # one 8 × 8 map on the page: numbers fit
    _, ax = plt.subplots(figsize=(15, 4.4), dpi=110)
    assert annotation_fontsize(ax, 8, 5) is not None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), dpi=110)
    assert annotation_fontsize(axes[0], 8, 5) is None             # a third of a shrunk row: no room


def test_enrichment_maps_centred_at_one_and_outlier_marked():
    nets = ["VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN", "SUB"]
    M = 1 + np.random.default_rng(1).normal(0, 0.004, (8, 8))
    M[2, 3] = 1.5
    fig = FI.group_matrices({g: M for g in ("CN", "MCI", "AD")}, nets, {}, label="attention enrichment")
    maps = [a for a in fig.axes if a.images]
    lo, hi = maps[0].images[0].get_clim()
    assert lo + hi == pytest.approx(2.0) and hi < 1.1            # centred at 1, the outlier clipped
    cb = maps[0].images[0].colorbar
    assert cb.extend in ("max", "both") and "centred at 1" in cb.ax.get_ylabel()
    assert fig.get_figwidth() <= 8                               # stacked, not shrunk on the page


def test_multi_panel_figures_fit_the_page():
    from bi_core.figures import MAX_FIG_WIDTH_IN, panel_grid
    from bi_core.figures import related as FR

    fig, axes = panel_grid(6, 2.6, 3.2)
    assert fig.get_figwidth() <= MAX_FIG_WIDTH_IN and len(axes) == 6 and sum(a.get_visible() for a in fig.axes) == 6
    df = pd.DataFrame({"source": ["a", "b"] * 4, **{s: np.arange(8.0) for s in ("within_fc", "between_fc", "fc_contrast",
                                                                                  "pc1_share", "lag1_autocorr",
                                                                                  "lowfreq_power")}})
    assert FC.summary_comparison(df).get_figwidth() <= MAX_FIG_WIDTH_IN
    rows = [{"target": t, "source": s, "contrast": c, "measure": "m", "cohens_d": 0.5, "significant": False}
            for c in ("AD-CN", "MCI-CN") for t in NETS for s in NETS if t != s]
    assert FI.difference_maps(pd.DataFrame(rows), NETS, {}, "m").get_figwidth() <= MAX_FIG_WIDTH_IN
    preds = pd.DataFrame({"target": "age", "method": ["a", "b", "c"] * 4, "y_true": np.arange(12.0),
                          "y_pred": np.arange(12.0)})
    axes = FR.predicted_vs_true(preds, "age", ["a", "b", "c"])
    assert axes[0].figure.get_figwidth() <= MAX_FIG_WIDTH_IN


def test_roc_legend_outside_the_data():
    roc = pd.DataFrame({"feature_set": ["x"] * 3, "fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1], "tpr_sd": [0, 0.1, 0]})
    ax = FCL.roc(roc)
    ax.figure.canvas.draw()
    leg = ax.get_legend().get_window_extent()
    assert leg.y1 <= ax.get_window_extent().y0                  # below the axes
