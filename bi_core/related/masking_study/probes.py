"""Every held-out measure of one trained model of the masking study."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import streams
from ...cohort import Cohort
from ...errors import InputError
from ...masking import STRATEGIES, MaskConfig, MaskSampler, TokenLayout
from ...windows import windows_of
from .config import StudyConfig
from .training import matched_mask_configs

# In-function imports: the analysis suite (scikit-learn, statsmodels) and the model (torch) load only when a run is
# probed.

# ---------------------------------------------------------------------- probes
def reconstruction_errors(model: Any, layout: TokenLayout, tiles: Any, configs: dict[str, MaskConfig],
                          batch_size: int = 64, seed: int = 12345, device: str = "cpu") -> pd.DataFrame:
    """Held-out reconstruction error under each strategy's masking, with identical draws for every model.

    Masks are drawn per window (``per_sample=True``, padded where sizes differ) from
    ``np.random.default_rng([seed, strategy position, batch])``, so two models scored on
    the same ``tiles`` with the same ``seed`` see exactly the same masks.

    Parameters
    ----------
    model
        A :class:`~bi_core.model.BrainInterNet` (eval mode is set here).
    layout
        Token layout with region ids (``info.layout``).
    tiles
        :class:`~bi_core.windows.TiledWindows` of the held-out recordings.

    Returns
    -------
    DataFrame
        ``eval_mask, sse, sse_zero, nmse, n_values``: ``nmse = sse / sse_zero`` is the error
        relative to predicting zero (the z-scored series' mean).
    """
    import torch

    rows = []
    model.eval()
    with torch.inference_mode():
        for k, s in enumerate(STRATEGIES):
            if s not in configs:
                continue
            sampler = MaskSampler(layout, replace(configs[s], per_sample=True))
            sse = zse = 0.0
            n = 0
            for b, (x, _) in enumerate(tiles.batches(batch_size)):
                mask = sampler.sample(len(x), np.random.default_rng([int(seed), k, b])).to(device)
                x = x.to(device)
                out = model(x, mask)
                sse += float(model.forward_loss(x, out.pred, mask, reduction="sum"))
                zse += float(model.forward_loss(x, torch.zeros_like(out.pred), mask, reduction="sum"))
                n += mask.n_masked_tokens() * x.shape[-1] // layout.n_patches
            rows.append({"eval_mask": s, "sse": sse, "sse_zero": zse, "nmse": sse / zse if zse else np.nan,
                         "n_values": int(n)})
    return pd.DataFrame(rows)


def eval_recordings(table: pd.DataFrame, per_group: int | None, seed: int = 0) -> list[str]:
    """Baseline-visit recording ids of the held-out cohort, optionally capped per diagnosis group.

    The cap draws subjects with a fixed seed (the same for every model and seed of the study).
    """
    from ...analysis.groupstats import baseline_rows, check_groups

    check_groups(table, need=("CN", "AD"), what="the masking study's evaluation cohort")
    base = table[baseline_rows(table)]
    if per_group is None:
        return base["recording_id"].tolist()
    keep = []
    rng = np.random.default_rng([int(seed), streams.EVAL_SUBJECTS])
    for _, g in base.groupby("diagnosis", sort=True):
        ids = g["recording_id"].to_numpy()
        keep.extend(ids if len(ids) <= per_group else rng.choice(ids, per_group, replace=False))
    return [r for r in base["recording_id"] if r in set(keep)]


def probe_run(run: str | Path, eval_dir: str | Path, recordings: list[str], cfg: StudyConfig,
              truth: dict[str, Any] | None, labelled: bool = True) -> dict[str, Any]:
    """Every held-out measure of one trained model.

    ``truth``: the generator's ground truth (``None``: no truth scores); ``labelled``: the
    held-out recordings carry AD/CN labels (``False``: no AD−CN statistics, e.g. on a
    single real cohort).

    Returns
    -------
    dict
        ``reconstruction`` (:func:`reconstruction_errors`), ``predictability`` and
        ``interactions`` (per network / pair, averaged over recordings), ``groundtruth``
        (rows per check), ``embedding`` ``[n_recordings, d]`` in ``recordings`` order,
        ``scores`` (scalar metrics) and ``seconds`` per stage.
    """
    from ...analysis import groundtruth as GT
    from ...analysis import groupstats as G
    from ...analysis.embeddings import embed
    from ...analysis.interactions import predictability_and_interactions
    from ...analysis.predictability import with_phenotypes
    from ...analysis.suite import EMBEDDING_KIND
    from ...runs import load_model

    t = {}
    t0 = time.perf_counter()
    cohort = Cohort.open(eval_dir)
    model, info = load_model(run, cohort=cohort)
    layout = info.layout
    configs = matched_mask_configs(layout, cfg.p_two, cfg.strategies)
    tiles = windows_of(info, cohort, recordings)
    recon = reconstruction_errors(model, layout, tiles, configs, cfg.eval_batch_size, cfg.eval_seed)
    t["reconstruction"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred, inter = predictability_and_interactions(model, info, cohort, occlusion=cfg.occlusion,
                                                  occlusion_windows=cfg.occlusion_windows,
                                                  batch_size=cfg.eval_batch_size, recordings=recordings,
                                                  source_only=False)   # the study scores occlusion
    t["predictability + interactions"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb_all = embed(model, info, cohort, batch_size=cfg.eval_batch_size, recordings=recordings)
    # the embedding the classification chapter uses (bi_core.analysis.suite.EMBEDDING_KIND)
    pos = pd.Index(emb_all.table["recording_id"]).get_indexer(recordings)
    if (pos < 0).any():
        raise InputError(f"{int((pos < 0).sum())} held-out recording(s) are shorter than one {info.window}-frame "
                         f"window (e.g. {recordings[int(np.argmax(pos < 0))]}); they cannot be embedded.")
    emb = emb_all.features(EMBEDDING_KIND)[pos]
    t["embeddings"] = time.perf_counter() - t0
    del model

    t0 = time.perf_counter()
    nets = list(info.atlas.networks)
    pred_mean = pred.groupby("network", sort=False)[["r2", "pearson_r"]].mean().reindex(nets).reset_index()
    inter_mean = inter.groupby(["target", "source"], sort=False)[["attention", "enrichment", "occlusion_delta_r2"]] \
        .mean().reset_index()
    headline = "occlusion_delta_r2" if cfg.occlusion else "attention"
    # enrichment is attention divided by a per-cell constant: identical group statistics, so not re-tested
    measures = ["attention"] + (["occlusion_delta_r2"] if cfg.occlusion else [])
    scores: dict[str, float] = {}
    own = recon.set_index("eval_mask")["nmse"]
    scores["r2_network"] = float(pred["r2"].mean())
    scores["nmse_network"] = float(own.get("network", np.nan))
    gt_rows: list[dict[str, Any]] = []
    dmn = None
    if labelled and "DMN" in nets:
        p = with_phenotypes(pred, cohort)
        dmn = GT.score_dmn_drop(G.group_differences(p, "r2", ["network"], contrasts=(("AD", "CN"),)))
    if dmn is not None:
        scores["dmn_d"] = dmn["cohens_d"]
        gt_rows.append({"check": "dmn_drop", "measure": "r2", "found": dmn["found"], "estimate": dmn["estimate"],
                        "q": dmn["q"], "cohens_d": dmn["cohens_d"]})
    if truth is not None:
        from scipy.stats import spearmanr

        expected = pd.Series({n: truth["latent_r2_from_other_networks"][n] * truth["coherence"][n] ** 2
                              for n in nets if n in truth.get("coherence", {})})
        prof = pred_mean.set_index("network")["r2"].reindex(expected.index)
        scores["profile_rho"] = float(spearmanr(prof, expected).statistic)
        it = with_phenotypes(inter, cohort)
        for m in measures:
            gi = G.group_differences(it, m, ["target", "source"], contrasts=(("AD", "CN"),)).assign(measure=m)
            sc = GT.score_interaction_changes(gi, truth, "AD-CN", m)
            gt_rows.append({"check": "altered_pairs", "measure": m, "precision": sc["precision"],
                            "recall": sc["recall"], "sign_agreement": sc["sign_agreement"], "n_found": sc["n_found"],
                            "n_true": sc["n_true"], "n_true_positives": sc["n_true_positives"],
                            "found_pairs": "; ".join(sc["found"])})
            if m == headline:
                scores["gt_precision"] = sc["precision"]
                scores["gt_recall"] = sc["recall"]
    t["statistics"] = time.perf_counter() - t0
    return {"reconstruction": recon, "predictability": pred_mean, "interactions": inter_mean,
            "groundtruth": pd.DataFrame(gt_rows), "embedding": emb, "scores": scores,
            "seconds": {k: round(v, 2) for k, v in t.items()}}
