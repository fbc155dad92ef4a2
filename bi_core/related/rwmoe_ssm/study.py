"""``bi-core related lmae-age``: LMAE tokens → RWMOE → SSM against ridge baselines on identical folds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..._io import write_json, write_tsv
from ...analysis.classify import connectivity_features
from ...analysis.embeddings import embed
from ...analysis.predictability import predictability
from ...analysis.suite import EMBEDDING_KIND
from ...cohort import Cohort
from ...config import pick_preset
from ...errors import ConfigError, InputError
from ...folds import subject_folds
from ...masking import Mask
from ...runs import load_model
from ...windows import RecordingSet
from ..masking_study.config import study_preset
from ..masking_study.training import ensure_run
from ..parallel import map_jobs
from ..ridge import ridge_predictions
from .graph import group_fc_graph, transition_matrix
from .model import RegressorConfig, RWMoESSMRegressor
from .report import (EMBEDDING_METHOD, PROFILE_METHOD, REFERENCE_DATASET, REFERENCE_METHOD, RWMOE_METHOD,
                     RWMOE_UNTRAINED, SEED001_REPORTED, best_methods, regression_metrics)

def encoder_tokens(model: Any, info: Any, cohort: Any, recordings: Sequence[str], n_windows: int,
                   batch_size: int = 64) -> np.ndarray:
    """Encoder tokens of the first ``n_windows`` consecutive windows of each recording.

    Windows are cut at the checkpoint's TR and length (``info.target_tr``, ``info.window``)
    starting at frame 0 without overlap, encoded with every token visible, and their
    patches concatenated in time.

    Returns
    -------
    ndarray float32 ``[n_recordings, n_rois, n_windows * n_patches, d]``

    Raises
    ------
    InputError
        When a recording is shorter than ``n_windows`` windows.
    """
    h = cohort.harmonized(info.target_tr)
    rs = RecordingSet([h])
    pos = {r: i for i, r in enumerate(rs.table["recording_id"])}
    missing = [r for r in recordings if r not in pos]
    if missing:
        raise InputError(f"recording(s) {missing[:3]} are not in cohort {cohort.path}.")
    T, n_p, R = info.window, info.model_config.n_patches, info.atlas.n_rois
    rec = np.array([pos[r] for r in recordings], np.int64)
    short = [recordings[i] for i, n in enumerate(rs.n_frames[rec]) if n < n_windows * T]
    if short:
        raise InputError(f"{len(short)} recording(s) (e.g. {short[0]}) are shorter than {n_windows} windows of {T} "
                         f"frames at TR {info.target_tr} s; lower n_windows.")
    rr = np.repeat(rec, n_windows)
    ss = np.tile(np.arange(n_windows) * T, len(rec))
    out = np.zeros((len(rec) * n_windows, R, n_p, info.model_config.d_model), np.float32)
    model.eval()
    with torch.inference_mode():
        for a in range(0, len(rr), batch_size):
            x = torch.from_numpy(rs.read(rr[a:a + batch_size], ss[a:a + batch_size], T))
            L = R * n_p
            allt = torch.arange(L).expand(len(x), -1)
            hid = model.forward_encoder(x, Mask(allt, allt[:, :0]))                      # [B, L, d]
            out[a:a + len(x)] = hid.reshape(len(x), R, n_p, -1).numpy()
    # [n_rec, n_windows, R, n_p, d] → [n_rec, R, n_windows * n_p, d]
    out = out.reshape(len(rec), n_windows, R, n_p, -1).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(out.reshape(len(rec), R, n_windows * n_p, -1))


@dataclass(frozen=True)
class LMAEConfig:
    """Settings of ``bi-core related lmae-age``.

    Parameters
    ----------
    study
        Masking-study preset whose ``temporal_block`` (LMAE) and ``network`` runs are used
        (and trained if missing) — same model size and compute as the study.
    seed
        Seed of the pretraining runs, the folds, the regressors and the bootstrap.
    targets
        Phenotype columns of the pretraining cohort to predict.
    n_windows
        Consecutive windows per recording fed to the SSM (capped by the shortest recording).
    cv_folds, n_boot
        Outer subject folds; bootstrap resamples for the intervals.
    jobs
        RWMOE + SSM fits run in parallel processes (one torch thread each); results do not depend on it.
    regressor
        RWMOE + SSM settings.
    """

    study: str = "default"
    seed: int = 0
    targets: tuple[str, ...] = ("age", "fluid")
    n_windows: int = 3
    cv_folds: int = 5
    n_boot: int = 1000
    jobs: int = 2
    regressor: RegressorConfig = field(default_factory=RegressorConfig)

    def __post_init__(self) -> None:
        if isinstance(self.regressor, dict):
            object.__setattr__(self, "regressor", RegressorConfig(**self.regressor))
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise ConfigError("give at least one target column.")
        if self.n_windows < 1 or self.cv_folds < 2 or self.n_boot < 10:
            raise ConfigError("n_windows must be >= 1, cv_folds >= 2 and n_boot >= 10.")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d


LMAE_PRESETS: dict[str, LMAEConfig] = {
    "smoke": LMAEConfig(study="smoke", cv_folds=3, n_boot=200, jobs=1,
                        regressor=RegressorConfig(max_epochs=20, patience=10, n_seeds=1)),
    "default": LMAEConfig(study="default"),
    "full": LMAEConfig(study="full", n_boot=2000, regressor=RegressorConfig(max_epochs=300, patience=60, n_seeds=5)),
}


def lmae_preset(name: str, **overrides: Any) -> LMAEConfig:
    """An ``lmae-age`` preset (:data:`LMAE_PRESETS`) with field overrides."""
    return pick_preset(LMAE_PRESETS, name, "lmae-age", **overrides)


def _fit_job(job: dict[str, Any]) -> dict[str, Any]:
    """One RWMOE + SSM fit (a worker process): predictions on ``test`` or, without it, expert weights."""
    torch.set_num_threads(int(job["threads"]))
    t0 = time.perf_counter()
    X = np.load(job["tokens"], mmap_mode="r")
    tr = job["train"]
    reg = RWMoESSMRegressor(job["cfg"], seed=job["seed"]).fit(np.ascontiguousarray(X[tr]), job["y"][tr], job["P"],
                                                              groups=job["groups"][tr])
    out: dict[str, Any] = {"epochs": reg.epochs_, "best_epochs": reg.best_epochs_, "best_val": reg.best_val_}
    if job["test"] is None:
        out["weights"] = reg.expert_weights(np.ascontiguousarray(X[tr]))
    else:
        out["pred"] = reg.predict(np.ascontiguousarray(X[job["test"]]))
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def run_lmae_age(synth_dir: str | Path, out: str | Path, cfg: LMAEConfig | None = None,
                 study_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """LMAE → RWMOE → SSM against ridge baselines for ``cfg.targets`` on identical subject folds.

    Parameters
    ----------
    synth_dir
        Synthetic root (``DIR/pretrain`` with ``age`` and ``fluid``; ``DIR/ground_truth.json``).
    out
        Output directory: ``results.tsv``, ``predictions.tsv``, ``expert_weights.tsv``,
        ``training.tsv``, ``summary.json`` (written last).
    study_dir
        A masking-study directory whose runs to reuse (``STUDY/runs``); default ``out/runs``
        (runs are trained there when missing).

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    cfg = cfg or lmae_preset("default")
    t_start = time.perf_counter()
    synth_dir, out = Path(synth_dir), Path(out)
    pre_dir = synth_dir / "pretrain"
    cohort, tab = _lmae_cohort(pre_dir, cfg.targets)
    ids, subjects = tab["recording_id"].tolist(), tab["subject"].to_numpy()
    runs = Path(study_dir) / "runs" if study_dir is not None else out / "runs"
    scfg = study_preset(cfg.study)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    lmae_run, lmae_trained = ensure_run(pre_dir, scfg, "temporal_block", cfg.seed, runs, progress=progress)
    net_run, net_trained = ensure_run(pre_dir, scfg, "network", cfg.seed, runs, progress=progress)
    timings["pretraining_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    tokens, series, feats, n_windows = _lmae_features(cohort, ids, lmae_run, net_run, cfg.n_windows, pre_dir)
    timings["features_s"] = round(time.perf_counter() - t0, 2)

    folds = subject_folds(subjects, cfg.cv_folds, cfg.seed)
    t0 = time.perf_counter()
    preds, train_rows, weight_rows = _rwmoe_fits(tokens, series, tab, folds, cfg, cohort.atlas, progress)
    for target in cfg.targets:
        y = tab[target].to_numpy(float)
        for name, X in feats.items():
            preds[(target, name)] = ridge_predictions(X, y, folds)
    timings["regression_s"] = round(time.perf_counter() - t0, 2)

    results, predictions = _lmae_scores(preds, tab, folds, cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "results.tsv", results)
    write_tsv(out / "predictions.tsv", predictions)
    write_tsv(out / "expert_weights.tsv", pd.DataFrame(weight_rows))
    write_tsv(out / "training.tsv", pd.DataFrame(train_rows))
    summary = {"config": cfg.to_dict(), "n_subjects": len(np.unique(subjects)), "n_recordings": len(ids),
               "n_windows": n_windows, "n_patches": int(tokens.shape[2]), "token_dim": int(tokens.shape[3]),
               "lmae_run": str(lmae_run), "network_run": str(net_run),
               "trained_now": {"lmae": lmae_trained, "network": net_trained},
               "best_method": best_methods(results), "timings": {**timings,
                                                                   "total_s": round(time.perf_counter() - t_start, 2)}}
    write_json(out / "summary.json", summary)
    return summary


def _lmae_cohort(pre_dir: Path, targets: tuple[str, ...]) -> tuple[Any, pd.DataFrame]:
    """The pretraining cohort and its recordings with every target, or a clear error."""
    if not (pre_dir / "cohort.json").is_file():
        raise InputError(f"{pre_dir} is not a cohort store; --synth must be a root made by `bi-core synth --out DIR`.")
    cohort = Cohort.open(pre_dir)
    tab = cohort.table
    missing = [t for t in targets if t not in tab or tab[t].notna().sum() == 0]
    if missing:
        raise InputError(f"cohort {pre_dir} has no values for target(s) {missing}; columns: {list(tab.columns)}. "
                         "The synthetic pretraining cohort (bi-core synth) has 'age' and 'fluid'.")
    keep = tab[list(targets)].notna().all(axis=1).to_numpy()
    return cohort, tab[keep].reset_index(drop=True)


def _lmae_features(cohort: Any, ids: list[str], lmae_run: Path, net_run: Path, max_windows: int, pre_dir: Path
                   ) -> tuple[np.ndarray, list[np.ndarray], dict[str, np.ndarray], int]:
    """What each method regresses on, for the recordings ``ids``.

    Returns ``(tokens, series, features, n_windows)``: the LMAE encoder's tokens (RWMOE+SSM's
    input, ``[n_recordings, n_windows, n_patches, dim]``), each recording's harmonized series
    (``[n_frames, n_rois]``; the regressor's ROI graphs), the ridge baselines' feature matrices
    by method name (embeddings of both runs, the network-masked run's predictability profile,
    FC correlation) and the windows used per recording.
    """
    lmae, info = load_model(lmae_run, cohort=cohort)
    h = cohort.harmonized(info.target_tr)
    n_frames = h.table.set_index("recording_id").loc[ids, "n_frames"].to_numpy()
    n_windows = int(min(max_windows, n_frames.min() // info.window))
    if n_windows < 1:
        raise InputError(f"some recordings of {pre_dir} are shorter than one {info.window}-frame window at TR "
                         f"{info.target_tr} s.")
    tokens = encoder_tokens(lmae, info, cohort, ids, n_windows)
    feats: dict[str, np.ndarray] = {}
    for name, run in ((EMBEDDING_METHOD, net_run),
                      ("LMAE embedding (temporal-block masking) + ridge", lmae_run)):
        m, inf = load_model(run, cohort=cohort)
        e = embed(m, inf, cohort, recordings=ids)
        # the classification chapter's embedding (bi_core.analysis.suite.EMBEDDING_KIND)
        feats[name] = e.features(EMBEDDING_KIND)[pd.Index(e.table["recording_id"]).get_indexer(ids)]
        if run == net_run:
            # the paper's own read-out: one R² per network with that network masked
            pr = predictability(m, inf, cohort, recordings=ids)
            feats[PROFILE_METHOD] = pr.pivot(index="recording_id", columns="network", values="r2") \
                .reindex(index=ids, columns=list(cohort.atlas.networks)).to_numpy()
    series = [np.asarray(h.series(h.index_of(r))) for r in ids]
    feats["FC correlation + ridge"] = connectivity_features(series, "correlation")
    return tokens, series, feats, n_windows


def _rwmoe_fits(tokens: np.ndarray, series: list[np.ndarray], tab: pd.DataFrame, folds: list[Any], cfg: LMAEConfig,
                atlas: Any, progress: bool) -> tuple[dict[tuple[str, str], np.ndarray], list[dict], list[dict]]:
    """RWMOE+SSM (trained and untrained read-out) out of fold per target, and one fit on every subject for the
    experts' ROI weights; worker processes (``cfg.jobs``) memory-map the tokens.

    Returns ``(predictions by (target, method), training rows, expert-weight rows)``.
    """
    import tempfile

    subjects = tab["subject"].to_numpy()
    untrained = replace(cfg.regressor, max_epochs=0)
    with tempfile.TemporaryDirectory(prefix="bi_core-lmae-") as tmp:
        # workers memory-map the tokens instead of receiving a copy each
        tok_path = Path(tmp) / "tokens.npy"
        np.save(tok_path, tokens)
        # the ROI graph of each fold from its training subjects' FC only
        graphs = [transition_matrix(group_fc_graph([series[i] for i in tr], cfg.regressor.k_neighbors))
                  for tr, _ in folds]
        P_all = transition_matrix(group_fc_graph(series, cfg.regressor.k_neighbors))
        jobs = []
        for target in cfg.targets:
            y = tab[target].to_numpy(float)
            for k, (tr, te) in enumerate(folds):
                for name, rcfg in ((RWMOE_METHOD, cfg.regressor), (RWMOE_UNTRAINED, untrained)):
                    jobs.append({"tokens": str(tok_path), "y": y, "train": tr, "test": te, "P": graphs[k],
                                 "groups": subjects, "cfg": rcfg, "seed": cfg.seed * 1000 + k, "target": target,
                                 "method": name, "fold": k, "threads": 1})
            # interpretation model: every subject, to read the experts' ROI weights (no test score)
            jobs.append({"tokens": str(tok_path), "y": y, "train": np.arange(len(y)), "test": None, "P": P_all,
                         "groups": subjects, "cfg": cfg.regressor, "seed": cfg.seed, "target": target,
                         "method": RWMOE_METHOD, "fold": -1, "threads": 1})
        done = map_jobs(_fit_job, jobs, cfg.jobs, progress, desc="lmae-age (RWMOE+SSM fits)")
    preds = {(target, name): np.full(len(tab), np.nan) for target in cfg.targets
             for name in (RWMOE_METHOD, RWMOE_UNTRAINED)}
    train_rows, weight_rows = [], []
    for j, d in zip(jobs, done):
        if j["fold"] < 0:
            W = d["weights"]
            for r in range(W.shape[0]):
                for e in range(W.shape[1]):
                    weight_rows.append({"target": j["target"], "roi": atlas.roi_names[r],
                                        "network": atlas.roi_networks[r],
                                        "region": atlas.roi_regions[r] if atlas.roi_regions else "",
                                        "expert": e, "weight": float(W[r, e])})
            continue
        preds[(j["target"], j["method"])][j["test"]] = d["pred"]
        train_rows.append({"target": j["target"], "method": j["method"], "fold": j["fold"], "epochs": d["epochs"],
                           "best_epoch_per_seed": " ".join(map(str, d["best_epochs"])),
                           "readout_val_mse_std": d["best_val"], "n_train": len(j["train"]),
                           "n_test": len(j["test"]), "seconds": d["seconds"]})
    return preds, train_rows, weight_rows


def _lmae_scores(preds: dict[tuple[str, str], np.ndarray], tab: pd.DataFrame, folds: list[Any], cfg: LMAEConfig
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, predictions)``: every method's metrics per target beside predicting the fold's mean, the
    reported reference values, and the out-of-fold predictions per recording."""
    ids, subjects = tab["recording_id"].tolist(), tab["subject"].to_numpy()
    fold_of = np.empty(len(ids), dtype=int)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    res_rows, pred_rows = [], []
    for (target, name), p in preds.items():
        y = tab[target].to_numpy(float)
        met = regression_metrics(y, p, cfg.n_boot, cfg.seed)
        # the scale of the problem: error of predicting each training fold's mean
        base = np.full(len(y), np.nan)
        for tr, te in folds:
            base[te] = y[tr].mean()
        res_rows.append({"target": target, "method": name, "dataset": "synthetic pretraining cohort (this study)",
                         **met, "mae_predict_mean": float(np.abs(y - base).mean()), "target_sd": float(y.std())})
        for i in range(len(y)):
            pred_rows.append({"target": target, "method": name, "recording_id": ids[i], "subject": subjects[i],
                              "fold": int(fold_of[i]), "y_true": y[i], "y_pred": p[i]})
    for ref in SEED001_REPORTED:
        if ref["target"] in cfg.targets:
            res_rows.append({"target": ref["target"], "method": REFERENCE_METHOD, "dataset": REFERENCE_DATASET,
                             "n": np.nan, "mae": ref["mae"], "r": ref["r"]})
    return pd.DataFrame(res_rows), pd.DataFrame(pred_rows)
