"""Cross-network interactions: where the reconstruction of a masked network looks.

For every recording, target network ``m`` (masked) and source network ``n`` (visible):

- ``attention`` — the share of ``m``'s decoder queries' attention mass that lands on
  ``n``'s tokens, averaged over decoder layers, heads, queries and windows (the shares of
  all sources sum to one);
- ``enrichment`` — ``attention`` divided by ``n``'s share of the context tokens (1 = as much
  attention as its size predicts);
- ``occlusion_delta_r2`` — R² of ``m`` with all context minus R² of ``m`` with ``n``
  also hidden from the encoder: how much the reconstruction actually *depends* on ``n``;
- ``occlusion_share`` — that loss as a share of ``m``'s R² with all context (NaN when the
  full R² is below 0.02): the part of ``m``'s predictability owed to ``n``, which does not
  scale with how predictable ``m`` is overall;
- ``source_only_r`` — mean Pearson r (over ``m``'s ROIs) between ``m``'s true series and
  its reconstruction from ``n`` *alone* (every other network hidden): what one source by
  itself tells about the target, the model's analogue of pairwise functional connectivity;
- ``fc_correlation`` (added by :func:`add_network_fc`, no model) — Fisher-z correlation of
  the two networks' mean series: the baseline for the pairwise measures.

Occlusion is *conditional*: it measures what ``n`` adds to all other sources, so a change in
one coupling (or in one network's coherence) also moves the unique contributions of the
sources correlated with it. ``source_only_r`` is *pairwise*. It is a correlation rather than
an R² because with all but one network hidden the model is far from the masks it was
trained on: its amplitudes are off (R² is mostly negative) and R² would mix a change in a
network's amplitude or coherence with a change in coupling; the correlation does not depend
on the scale of the reconstruction.

Attention cannot measure a subject's coupling between the masked network and a source:
the masked network's signal is not in the model's input, so its attention weights can only
depend on the context (and on what the model learned across subjects). Occlusion compares
reconstructions with the held-out truth and can.

Attention says where the model looks; occlusion says what it needs. Because the decoder
has no self-attention among queries, each reconstructed value depends on the context only
through these attention weights — but large attention to an uninformative source is still
possible, which is why both are reported and compared (:func:`agreement`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..descriptives import network_signals
from ..errors import InputError
from ..masking import network_mask
from ..windows import TiledWindows, windows_of
from .predictability import _predictability_table, _Sums, _window_values, recording_meta
from .readout_registry import READOUTS, InteractionPass, fc_kinds, registered

if TYPE_CHECKING:  # torch loads inside the functions that run the model (cheap imports for notebooks)
    import torch

# In-function imports: torch loads with the model (..model), inside the model pass; the agreement and FC helpers here
# serve notebooks without it.


def interactions(model: torch.nn.Module, info: Any, cohort: Cohort, occlusion: bool = True,
                 occlusion_windows: int | None = None, batch_size: int = 64, device: str | torch.device = "cpu",
                 progress: bool = False, recordings: list[str] | None = None,
                 source_only: bool = True) -> pd.DataFrame:
    """Per (recording, target, source) attention, enrichment, occlusion ΔR² and source-only r.

    Parameters
    ----------
    model, info
        From :func:`bi_core.runs.load_model`.
    cohort
        A cohort on the checkpoint's atlas.
    occlusion
        Also compute the occlusion dependency (K·(K−1)/2 extra reconstructions per window:
        hiding the pair {m, n} gives both "m without n" and "n without m" in one pass).
    occlusion_windows
        Use only the first ``occlusion_windows`` windows of each recording for occlusion
        (all by default); attention and source-only reconstruction use every window.
    batch_size
        Windows per forward pass.
    recordings
        Restrict to these recording ids (default: every recording of the cohort).
    source_only
        Also compute the source-only reconstruction (K extra reconstructions per window: with
        only ``n`` visible, every other network is reconstructed from it in one pass; the
        encoder sees one network's tokens, so a pass costs less than an occlusion pass).

    Returns
    -------
    DataFrame
        ``recording_id, subject, session, target, source, attention, enrichment,
        occlusion_delta_r2, occlusion_share, source_only_r, n_windows`` (NaN where the
        measure was not asked for).
    """
    return predictability_and_interactions(model, info, cohort, occlusion=occlusion,
                                           occlusion_windows=occlusion_windows, batch_size=batch_size, device=device,
                                           progress=progress, recordings=recordings, source_only=source_only)[1]


def predictability_and_interactions(model: torch.nn.Module, info: Any, cohort: Cohort, occlusion: bool = True,
                                    occlusion_windows: int | None = None, batch_size: int = 64,
                                    device: str | torch.device = "cpu", progress: bool = False,
                                    recordings: list[str] | None = None,
                                    source_only: bool = True, tiles: TiledWindows | None = None
                                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`~bi_core.analysis.predictability.predictability` and :func:`interactions` in one pass.

    The attention pass masks each network in every window — exactly the reconstructions
    predictability scores — so the suite reads them once. Occlusion runs one pass per
    unordered pair {m, n} with both networks masked: the decoder has no self-attention
    among queries, so the reconstruction of ``m``'s tokens there is the reconstruction of
    ``m`` with ``n`` hidden from the context (and vice versa); this halves the cost of
    hiding each source separately and gives the same numbers (tested). The source-only
    pass likewise masks every network but ``n`` once and scores every target from it.

    ``tiles``: the cohort's windows when a run's analyses share them (:func:`bi_core.windows.windows_of`).

    Returns
    -------
    (DataFrame, DataFrame)
        The predictability table (as :func:`~bi_core.analysis.predictability.predictability`)
        and the interactions table (as :func:`interactions`).
    """
    import torch

    from ..model import context_shares

    info.atlas.check_same(cohort.atlas, what=f"checkpoint {info.path} and cohort {cohort.path}")
    layout = info.layout
    tiles = windows_of(info, cohort, recordings, tiles)
    K, R = layout.n_networks, layout.n_rois
    rois = [layout.rois_of_networks([k]) for k in range(K)]
    token_net = torch.as_tensor(layout.token_network)
    n_rec = len(tiles.recordings_set)
    att = np.zeros((n_rec, K, K))                 # summed per-window attention shares
    share = np.zeros((K, K))                      # context-token share of each source for each target
    counts = np.zeros(n_rec, dtype=int)
    pred_sums = _Sums.zeros((n_rec, K, R))        # every window, each network masked (predictability)
    frames = np.zeros(n_rec)
    occ = _Sums.zeros((n_rec, K, K + 1, R))       # source index K = "nothing hidden"
    occ_frames = np.zeros(n_rec)
    solo = _Sums.zeros((n_rec, K, K, R))          # [rec, target, source]: target from that source alone
    rec_of_row = tiles.index["recording"].to_numpy()
    win_of_row = tiles.index["window"].to_numpy()
    pair_pos, solo_pos = _hidden_source_positions(layout, rois)
    it = tiles.batches(batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=-(-len(tiles) // batch_size), desc="predictability + interactions", unit="batch")
    model.eval()
    with torch.inference_mode():
        for x, rows in it:
            x = x.to(device)
            rec = rec_of_row[rows]
            np.add.at(counts, rec, 1)
            np.add.at(frames, rec, info.window)
            do_occ = np.ones(len(rows), bool) if occlusion_windows is None else win_of_row[rows] < occlusion_windows
            sel = np.flatnonzero(do_occ)
            if occlusion:
                np.add.at(occ_frames, rec[sel], info.window)
            for m in range(K):
                mask = network_mask(layout, m, batch_size=len(rows)).to(device)
                out = model(x, mask, return_attention=True)
                # shares of the mass that reads the context (a sink's share is reading nothing)
                a = torch.stack(context_shares(out.attention)).float().mean(dim=(0, 2, 3))   # [B, Nv]
                src = token_net[mask.visible[0].cpu()]                                  # [Nv] network of each key
                onehot = torch.nn.functional.one_hot(src, K).float()                    # [Nv, K]
                np.add.at(att, (rec, m), (a.cpu() @ onehot).numpy())
                share[m] = onehot.mean(0).numpy()
                y, p = _window_values(out.pred, out.target, len(rois[m]))
                pred_sums.add(rec, (m,), rois[m], y, p)
                if occlusion and sel.size:
                    occ.add(rec[sel], (m, K), rois[m], y[sel], p[sel])
            if occlusion and sel.size:
                _occlusion_pass(model, x[torch.as_tensor(sel)], rec[sel], layout, rois, pair_pos, occ, device)
            if source_only:
                _source_only_pass(model, x, rec, layout, rois, solo_pos, solo, device)
    table = recording_meta(tiles, cohort)
    nets = info.atlas.networks
    pred_table = _predictability_table(pred_sums, frames, counts, rois, table, nets)
    pred_table.attrs["skipped"] = list(tiles.skipped)
    # every registered `interactions` read-out, from the passes' sums
    r2_full = {m: occ.scores(occ_frames, (m, K), rois[m])[0] for m in range(K)} if occlusion else {}
    sums = InteractionPass(attention=att / np.maximum(counts, 1)[:, None, None], context_share=share, r2_full=r2_full,
                           r2_without=lambda m, n: occ.scores(occ_frames, (m, n), rois[m])[0],
                           r_alone=lambda m, n: solo.scores(frames, (m, n), rois[m])[1],
                           occlusion=occlusion, source_only=source_only, n_recordings=n_rec)
    out = _interaction_table(sums, table, counts, nets)
    out.attrs["skipped"] = list(tiles.skipped)
    return pred_table, out


def _hidden_source_positions(layout: Any, rois: list[np.ndarray]) -> tuple[dict, dict]:
    """Where each network's ROIs sit among the ROIs a hiding pass masks (ascending ids).

    Returns ``(pair_pos, solo_pos)``: ``pair_pos[m, n] = (positions of m's ROIs, of n's ROIs,
    ROIs masked)`` for the occlusion pass of the pair {m, n} (m < n); ``solo_pos[n] = (the
    other networks, {target: positions of its ROIs}, ROIs masked)`` for the source-only pass
    of source ``n`` (every other network masked).
    """
    K = len(rois)
    pair_pos = {}
    for m in range(K):
        for n in range(m + 1, K):
            union = layout.rois_of_networks([m, n])
            pair_pos[m, n] = (np.searchsorted(union, rois[m]), np.searchsorted(union, rois[n]), len(union))
    solo_pos = {}
    for n in range(K):
        others = [m for m in range(K) if m != n]
        union = layout.rois_of_networks(others)
        solo_pos[n] = (others, {m: np.searchsorted(union, rois[m]) for m in others}, len(union))
    return pair_pos, solo_pos


def _occlusion_pass(model: Any, xs: Any, rec: np.ndarray, layout: Any, rois: list[np.ndarray], pair_pos: dict,
                    occ: _Sums, device: Any) -> None:
    """Occlusion on the windows ``xs`` (recordings ``rec``): each pair {m, n} masked once scores m without n
    and n without m (the decoder's queries do not attend to each other)."""
    for (m, n), (pos_m, pos_n, n_union) in pair_pos.items():
        o = model(xs, network_mask(layout, [m, n], batch_size=len(xs)).to(device))
        y, p = _window_values(o.pred, o.target, n_union)
        occ.add(rec, (m, n), rois[m], y[:, pos_m], p[:, pos_m])
        occ.add(rec, (n, m), rois[n], y[:, pos_n], p[:, pos_n])


def _source_only_pass(model: Any, x: Any, rec: np.ndarray, layout: Any, rois: list[np.ndarray], solo_pos: dict,
                      solo: _Sums, device: Any) -> None:
    """Each target reconstructed from one source network alone (every other network masked), per source."""
    for n, (others, pos, n_union) in solo_pos.items():
        o = model(x, network_mask(layout, others, batch_size=len(x)).to(device))
        y, p = _window_values(o.pred, o.target, n_union)
        for m in others:
            solo.add(rec, (m, n), rois[m], y[:, pos[m]], p[:, pos[m]])


def _interaction_table(sums: InteractionPass, table: pd.DataFrame, counts: np.ndarray,
                       networks: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """One row per (target, source, recording read), in that order: the registered ``interactions`` read-outs
    (:mod:`bi_core.analysis.readout_registry`) and ``n_windows``."""
    have = np.flatnonzero(counts)
    meta = {c: table[c].to_numpy()[have] for c in ("recording_id", "subject", "session")}
    K = len(networks)
    blocks = []
    for m in range(K):
        for n in range(K):
            if n == m:
                continue
            blocks.append(pd.DataFrame({**meta, "target": networks[m], "source": networks[n],
                                        **{r.name: np.asarray(r.compute(sums, m, n), float)[have]
                                           for r in registered("interactions")},
                                        "n_windows": counts[have]}))
    return pd.concat(blocks, ignore_index=True)


def mean_matrix(table: pd.DataFrame, value: str, networks: tuple[str, ...] | list[str],
                rows: pd.Series | np.ndarray | None = None) -> np.ndarray:
    """Average a per-recording interaction table into a ``[K, K]`` target × source matrix (NaN diagonal)."""
    t = table if rows is None else table[np.asarray(rows)]
    piv = t.groupby(["target", "source"])[value].mean().unstack()
    return piv.reindex(index=list(networks), columns=list(networks)).to_numpy(float)


def agreement(table: pd.DataFrame, networks: tuple[str, ...] | list[str], attention: str = "enrichment") -> dict[str, Any]:
    """How well attention and occlusion agree.

    Returns the Spearman correlation between the group-mean attention (or enrichment)
    and occlusion matrices over off-diagonal cells, the median of per-recording Spearman
    correlations, and the share of targets whose most-attended source is also the one
    whose occlusion hurts most.
    """
    from scipy.stats import spearmanr

    A = mean_matrix(table, attention, networks)
    O = mean_matrix(table, "occlusion_delta_r2", networks)
    off = ~np.eye(len(networks), dtype=bool)
    rho_group = float(spearmanr(A[off], O[off]).statistic)
    per = []
    for _, g in table.groupby("recording_id"):
        if g["occlusion_delta_r2"].notna().all() and g[attention].nunique() > 1:
            per.append(spearmanr(g[attention], g["occlusion_delta_r2"]).statistic)
    top_match = float(np.mean([np.nanargmax(np.where(off[m], A[m], -np.inf)) == np.nanargmax(np.where(off[m], O[m], -np.inf))
                               for m in range(len(networks))]))
    return {"attention_measure": attention, "spearman_group_matrices": rho_group,
            "spearman_per_recording_median": float(np.nanmedian(per)) if per else float("nan"),
            "top_source_match": top_match, "n_recordings": len(per)}


def add_network_fc(table: pd.DataFrame, cohort: Cohort,
                   kinds: tuple[str, ...] = ("correlation",)) -> pd.DataFrame:
    """Add ``fc_correlation``: the Fisher-z correlation of the target's and source's mean series.

    The model-free baseline for the pairwise interaction measures. Each network's signal is
    the mean of its ROIs' z-scored series at the cohort's own TR
    (:func:`bi_core.descriptives.network_signals`); the correlation is nilearn's
    ``ConnectivityMeasure`` (:func:`bi_core.connectome.fc_from_bold`). Symmetric: both
    directed cells of a pair carry the same value.

    Parameters
    ----------
    table
        An interactions table (``recording_id, target, source`` at least).
    cohort
        The cohort the table was computed on.
    kinds
        The registered ``fc`` read-outs to add (:func:`bi_core.analysis.readout_registry.fc_kinds`):
        ``"correlation"`` adds ``fc_correlation``; ``"partial correlation"`` adds
        ``fc_partial_correlation`` (Fisher z of the partial correlation given every other
        network: the conditional model-free reference).

    Returns
    -------
    DataFrame
        ``table`` with an ``fc_correlation`` (and/or ``fc_partial_correlation``) column (a copy).
    """
    nets = list(cohort.atlas.networks)
    ids = list(dict.fromkeys(table["recording_id"]))
    unknown = [r for r in ids if r not in set(cohort.table["recording_id"])]
    if unknown:
        raise InputError(f"{len(unknown)} recording(s) of the interactions table are not in cohort {cohort.path} "
                         f"(e.g. {unknown[:3]}).")
    signals = []
    for rid in ids:
        x = cohort.series(rid)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (x - x.mean(0)) / x.std(0)
        signals.append(network_signals(np.nan_to_num(z), cohort.atlas.network_index, len(nets)))
    pos = {r: i for i, r in enumerate(ids)}
    t_idx = table["target"].map({n: i for i, n in enumerate(nets)}).to_numpy()
    s_idx = table["source"].map({n: i for i, n in enumerate(nets)}).to_numpy()
    out = table.copy()
    for kind in kinds:
        name = "fc_" + kind.replace(" ", "_")
        if name not in READOUTS or READOUTS[name].source != "fc":
            raise ValueError(f"no model-free FC read-out {name!r}: kinds are {fc_kinds()}.")
        fc = READOUTS[name].compute(signals, [f"recording {r} of {cohort.path}" for r in ids])
        out[name] = fc[table["recording_id"].map(pos).to_numpy(), t_idx, s_idx]
    return out
