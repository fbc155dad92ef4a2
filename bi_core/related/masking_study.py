"""Masking-strategy study: does masking whole networks beat the alternatives? (seed 002 vs the paper)

The paper masks whole functional networks; seed 002 (region-aware masking) masks whole
anatomical regions and reports +4.23 % ADHD-vs-control accuracy over random masking; seed
001 masks local temporal blocks. Here the same model size is pretrained with each strategy
of :mod:`bi_core.masking` on the synthetic pretraining cohort and every model is scored on
the **same** held-out data and folds.

Design (choices of this companion)
----------------------------------
Matched compute
    Same model size, steps, batch, optimizer, learning-rate schedule and seeds for every
    strategy; every pretraining subject is used for training (``val_fraction=0``) and
    the final weights are scored (no early stopping, so no strategy trains longer).
Matched masked fraction
    ``network`` masks 1 network (2 with probability ``p_two``); every other strategy
    gets the setting that gives the ``network`` strategy's expected share
    (:func:`bi_core.masking.matched_ratio`): ``random`` and ``temporal_block`` a ratio,
    ``region`` the ``p_two`` for the atlas's region sizes (:func:`matched_mask_configs`,
    which asks each strategy of :data:`bi_core.masking.STRATEGIES`).
    Realized fractions are measured on draws of the training samplers
    (:func:`mask_fractions`) and reported.
Held-out data
    The baseline visits of the ADNI-like evaluation cohort, which no model sees in
    pretraining. Reconstruction error is scored under every strategy's masking with
    identical mask draws for every model (:func:`reconstruction_errors`), and under
    deterministic network masks (each network in turn: the predictability analysis).
Downstream
    Embeddings as the classification chapter uses them
    (:data:`bi_core.analysis.suite.EMBEDDING_KIND`) → AD vs CN AUC and CN/MCI/AD balanced
    accuracy with :func:`bi_core.analysis.classify.run_classification` — one call for all
    models, so the folds are identical. Predictability and interaction maps are probed with
    network masks (attention shares, and occlusion ΔR² on the first window(s) of each
    recording); their AD−CN differences (:mod:`bi_core.analysis.groupstats`) are scored
    against the generator's truth (:mod:`bi_core.analysis.groundtruth`).
Spread
    Every number is per seed; tables give mean, SD and range over seeds and paired
    (same-seed) differences to network masking.

Presets (:data:`STUDY_PRESETS`)
-------------------------------
``smoke`` (seconds, tests), ``default`` (the book: ``tiny`` model, 4 epochs of ~15 steps
of 32 windows in 4 mask groups, 15 held-out subjects per group, occlusion on one window
per recording, one CV repeat; a few minutes on a 2-core CPU next to the book's other
steps — a **reduced-compute** study) and ``full``
(the book's ``small`` model, 40 epochs in 4 mask groups, 5 seeds, all held-out subjects,
occlusion on two windows, 5 CV repeats: ``bi-core related masking-study --preset full``;
about an hour on a 2-core CPU).

Outputs (``OUT/``)
------------------
``mask_fractions.tsv``  expected and realized masked share per strategy
``runs.tsv``            one row per (strategy, seed): steps, final training loss, times
``reconstruction.tsv``  per (seed, strategy, eval_mask): held-out error relative to predicting zero
``predictability.tsv``  per (seed, strategy, network): mean R² and Pearson r on held-out recordings
``interactions.tsv``    per (seed, strategy, target, source): mean attention share and enrichment
``groundtruth.tsv``     per (seed, strategy, check): recovery of the generator's truth
``classification.tsv``  per (seed, strategy, task): AUC and balanced accuracy (+ the FC reference)
``metrics.tsv``         tidy headline metrics per (seed, strategy, metric)
``summary.tsv``         per (strategy, metric): mean, SD, min, max over seeds
``paired.tsv``          per (metric, strategy): paired difference to network masking over seeds
``summary.json``        config, timings and the computed conclusions (written last)
``runs/<strategy>-s<seed>/``  the pretraining runs (:func:`bi_core.train.pretrain`)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import streams
from .._io import write_json, write_tsv
from ..config import pick_preset
from ..errors import ConfigError, InputError
from ..masking import DEFAULT_P_TWO, STRATEGIES, MaskConfig, MaskSampler, TokenLayout, get_strategy, matched_ratio

REFERENCE = "network"

#: Headline metrics: name → (label, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "nmse_own": ("held-out error, own masking (vs predict-zero)", False),
    "nmse_network": ("held-out error, network masking (vs predict-zero)", False),
    "r2_network": ("mean network predictability R²", True),
    "profile_rho": ("predictability profile vs generator (Spearman ρ)", True),
    "auc_ad_cn": ("AD vs CN AUC (embeddings)", True),
    "bacc_3class": ("CN/MCI/AD balanced accuracy (embeddings)", True),
    "gt_precision": ("altered pairs: precision (occlusion, AD−CN)", True),
    "gt_recall": ("altered pairs: recall (occlusion, AD−CN)", True),
    "dmn_d": ("DMN predictability AD−CN (Cohen's d; truth < 0)", False),
}


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class StudyConfig:
    """Everything that determines the study (hashed into its stamp).

    Parameters
    ----------
    name
        Preset name (informative).
    model_size
        :data:`bi_core.model.SIZES` key; the same for every strategy.
    strategies
        Masking strategies to compare (:data:`bi_core.masking.STRATEGIES`).
    n_seeds, first_seed
        Seeds ``first_seed .. first_seed + n_seeds - 1`` (weights, crops, masks); ≥ 3 for a spread.
    epochs, batch_size, mask_groups, lr, warmup_frac
        The shared training schedule (:class:`bi_core.runs.TrainConfig` fields).
    p_two
        ``network``: probability of masking two networks; sets the matched share.
    eval_subjects_per_group
        Cap on baseline subjects per diagnosis used for the probes (``None``: all).
    occlusion, occlusion_windows
        Compute occlusion dependencies on the first ``occlusion_windows`` windows of each
        held-out recording (``None``: all). The truth scores use occlusion when it is on
        (attention weights cannot carry a subject's coupling to the masked network: its
        signal is not in the input), attention otherwise.
    cv_folds, cv_repeats, cv_inner_splits, cv_Cs
        Outer folds and repeats of the classification CV (identical for every model), inner
        folds and the grid of inverse regularization strengths they tune.
    fc_reference
        Also score FC-correlation features on the same folds, as a reference row.
    jobs, threads
        Parallel worker processes and torch threads per worker (results do not depend on them).
    eval_seed, fraction_draws
        Seed of the held-out mask draws; draws used to measure realized mask fractions.
    """

    name: str = "default"
    model_size: str = "tiny"
    strategies: tuple[str, ...] = tuple(STRATEGIES)
    n_seeds: int = 3
    first_seed: int = 0
    epochs: int = 8
    batch_size: int = 8
    mask_groups: int = 2
    lr: float = 3e-3
    warmup_frac: float = 0.05
    p_two: float = DEFAULT_P_TWO
    eval_subjects_per_group: int | None = None
    eval_batch_size: int = 64
    occlusion: bool = True
    occlusion_windows: int | None = 1
    cv_folds: int = 5
    cv_repeats: int = 2
    cv_inner_splits: int = 3
    cv_Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    fc_reference: bool = True
    jobs: int = 2
    threads: int = 1
    eval_seed: int = 12345
    fraction_draws: int = 2000

    def __post_init__(self) -> None:
        from ..model import SIZES

        object.__setattr__(self, "strategies", tuple(self.strategies))
        object.__setattr__(self, "cv_Cs", tuple(float(c) for c in self.cv_Cs))
        if not self.cv_Cs or min(self.cv_Cs) <= 0:
            raise ConfigError(f"cv_Cs={list(self.cv_Cs)} must be a non-empty list of positive numbers.")
        if self.model_size not in SIZES:
            raise ConfigError(f"model_size={self.model_size!r} is not a model size; choose one of {sorted(SIZES)}.")
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad or not self.strategies:
            raise ConfigError(f"unknown masking strateg(ies) {bad}; choose from {list(STRATEGIES)}.")
        if REFERENCE not in self.strategies:
            raise ConfigError(f"the study compares against {REFERENCE!r} masking (the paper's); include it in "
                              "strategies.")
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategies {list(self.strategies)} list a strategy twice.")
        for nm in ("n_seeds", "epochs", "batch_size", "mask_groups", "cv_folds", "cv_repeats", "cv_inner_splits",
                   "jobs", "threads",
                   "eval_batch_size", "fraction_draws"):
            if int(getattr(self, nm)) < 1:
                raise ConfigError(f"{nm}={getattr(self, nm)} must be at least 1.")
        if self.batch_size % self.mask_groups:
            raise ConfigError(f"mask_groups={self.mask_groups} must divide batch_size={self.batch_size}.")
        if self.eval_subjects_per_group is not None and self.eval_subjects_per_group < self.cv_folds:
            raise ConfigError(f"eval_subjects_per_group={self.eval_subjects_per_group} is below cv_folds="
                              f"{self.cv_folds}; every fold needs subjects of each group.")

    @property
    def seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.n_seeds))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["strategies"] = list(self.strategies)
        d["cv_Cs"] = list(self.cv_Cs)
        return d


#: Study presets by name (see the module docstring).
STUDY_PRESETS: dict[str, StudyConfig] = {
    "smoke": StudyConfig(name="smoke", epochs=2, batch_size=8, mask_groups=2, occlusion=False, cv_folds=3,
                         cv_repeats=1, cv_inner_splits=2, cv_Cs=(0.01, 1.0), fc_reference=False, fraction_draws=300),
    # batches of 32 in 4 mask groups: the same windows per epoch as 8 in 2 groups, twice
    # as fast on a CPU (fewer, larger steps)
    "default": StudyConfig(name="default", epochs=4, batch_size=32, mask_groups=4, eval_subjects_per_group=15,
                           cv_repeats=1),
    "full": StudyConfig(name="full", model_size="small", n_seeds=5, epochs=40, batch_size=16, mask_groups=4,
                        lr=2e-3, occlusion_windows=2, cv_folds=5, cv_repeats=5),
}


def study_preset(name: str, **overrides: Any) -> StudyConfig:
    """A study preset (:data:`STUDY_PRESETS`) with field overrides (e.g. ``n_seeds``)."""
    return pick_preset(STUDY_PRESETS, name, "masking-study", **overrides)


# ---------------------------------------------------------------------- masks
def matched_mask_configs(layout: TokenLayout, p_two: float = DEFAULT_P_TWO,
                         strategies: Sequence[str] = STRATEGIES) -> dict[str, MaskConfig]:
    """One :class:`~bi_core.masking.MaskConfig` per strategy with the masked share matched to ``network``.

    The target share is the ``network`` strategy's expected share (``(1 + p_two)`` times the
    mean network share); each strategy picks its setting for it
    (:meth:`~bi_core.mask_strategies.MaskStrategy.matched_settings`). ``random`` and
    ``temporal_block`` mask it exactly (up to rounding to whole tokens or blocks);
    ``region`` masks 1 or 2 whole regions, with the probability of two chosen so that the
    expected share matches (clipped to [0, 1] when regions are too small or too large to
    match).

    Raises
    ------
    ConfigError
        An unknown strategy, or ``region`` requested on an atlas without regions.
    """
    target = matched_ratio(layout, p_two)
    return {s: MaskConfig(s, **get_strategy(s).matched_settings(layout, target, p_two)) for s in strategies}


def mask_fractions(layout: TokenLayout, configs: dict[str, MaskConfig], n_draws: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """Expected and realized share of masked tokens per strategy.

    Draws ``n_draws`` single-window masks from each strategy's training sampler.

    Returns
    -------
    DataFrame
        ``strategy, expected, realized_mean, realized_sd, realized_min, realized_max,
        target, n_draws, setting`` (``setting``: the strategy's ``p_two`` or ``ratio``).
    """
    target = matched_ratio(layout, configs[REFERENCE].p_two if REFERENCE in configs else DEFAULT_P_TWO)
    rows = []
    for k, (s, mc) in enumerate(configs.items()):
        sampler = MaskSampler(layout, mc)
        rng = np.random.default_rng([int(seed), k])
        share = np.array([sampler.sample(1, rng).n_masked_tokens() for _ in range(int(n_draws))]) / layout.n_tokens
        rows.append({"strategy": s, "expected": sampler.expected_ratio, "realized_mean": float(share.mean()),
                     "realized_sd": float(share.std(ddof=1)) if len(share) > 1 else 0.0,
                     "realized_min": float(share.min()), "realized_max": float(share.max()), "target": target,
                     "n_draws": int(n_draws), "setting": sampler.setting})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- training
def train_config(cfg: StudyConfig, strategy: str, seed: int, layout: TokenLayout) -> Any:
    """The :class:`~bi_core.runs.TrainConfig` of one study run (shared schedule, strategy's mask)."""
    from ..model import SIZES
    from ..runs import TrainConfig

    mask = matched_mask_configs(layout, cfg.p_two, [strategy])[strategy]
    return TrainConfig(model=SIZES[cfg.model_size](), mask=mask, epochs=cfg.epochs, batch_size=cfg.batch_size,
                       lr=cfg.lr, warmup_frac=cfg.warmup_frac, mask_groups=cfg.mask_groups, val_fraction=0.0,
                       patience=0, seed=int(seed))


def run_name(strategy: str, seed: int) -> str:
    return f"{strategy}-s{int(seed)}"


def ensure_run(pretrain_dir: str | Path, cfg: StudyConfig, strategy: str, seed: int, runs: str | Path,
               progress: bool = False) -> tuple[Path, bool]:
    """Pretrain one study run unless ``runs/<strategy>-s<seed>`` already holds it (same config hash).

    Returns ``(run directory, trained now)``. Always on the CPU, so the numbers do not
    depend on whether a GPU is present.
    """
    from ..cohort import Cohort
    from ..runs import run_is_current
    from ..train import pretrain

    c = Cohort.open(pretrain_dir)
    layout = TokenLayout.from_atlas(c.atlas, _n_patches(cfg))
    tcfg = train_config(cfg, strategy, seed, layout)
    out = Path(runs) / run_name(strategy, seed)
    if run_is_current(out, [pretrain_dir], tcfg):
        return out, False
    pretrain([pretrain_dir], tcfg, out, overwrite=True, device="cpu", progress=progress)
    return out, True


def _n_patches(cfg: StudyConfig) -> int:
    from ..model import SIZES

    m = SIZES[cfg.model_size]()
    return m.n_patches


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
    from ..analysis.groupstats import baseline_rows, check_groups

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
              truth: dict[str, Any] | None) -> dict[str, Any]:
    """Every held-out measure of one trained model.

    Returns
    -------
    dict
        ``reconstruction`` (:func:`reconstruction_errors`), ``predictability`` and
        ``interactions`` (per network / pair, averaged over recordings), ``groundtruth``
        (rows per check), ``embedding`` ``[n_recordings, d]`` in ``recordings`` order,
        ``scores`` (scalar metrics) and ``seconds`` per stage.
    """
    from ..analysis import groundtruth as GT
    from ..analysis import groupstats as G
    from ..analysis.embeddings import embed
    from ..analysis.interactions import predictability_and_interactions
    from ..analysis.predictability import with_phenotypes
    from ..analysis.suite import EMBEDDING_KIND
    from ..cohort import Cohort
    from ..runs import load_model
    from ..windows import TiledWindows

    t = {}
    t0 = time.perf_counter()
    cohort = Cohort.open(eval_dir)
    model, info = load_model(run, cohort=cohort)
    layout = info.layout
    configs = matched_mask_configs(layout, cfg.p_two, cfg.strategies)
    tiles = TiledWindows(cohort, info.window, target_tr=info.target_tr, recordings=recordings)
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
    p = with_phenotypes(pred, cohort)
    gp = G.group_differences(p, "r2", ["network"], contrasts=(("AD", "CN"),))
    dmn = GT.score_dmn_drop(gp) if "DMN" in nets else None
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


def _task(job: dict[str, Any]) -> dict[str, Any]:
    """One (strategy, seed): pretrain unless current, then probe. Runs in a worker process."""
    import torch

    torch.set_num_threads(int(job["cfg"].threads))
    t0 = time.perf_counter()
    run, trained = ensure_run(job["pretrain_dir"], job["cfg"], job["strategy"], job["seed"], job["runs"])
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = probe_run(run, job["eval_dir"], job["recordings"], job["cfg"], job["truth"])
    summary = json.loads((run / "summary.json").read_text())
    res["run"] = {"strategy": job["strategy"], "seed": job["seed"], "run_dir": str(run), "trained_now": trained,
                  "steps": summary["steps"], "epochs": summary["epochs_run"],
                  "final_train_loss": summary["final_train_loss"], "n_params": summary["n_params"],
                  "train_time_s": summary["train_time_s"], "wall_train_s": round(train_s, 2),
                  "wall_probe_s": round(time.perf_counter() - t0, 2),
                  "windows_per_epoch": summary["windows_per_epoch"]}
    return res


# ---------------------------------------------------------------------- the study
def run_study(synth_dir: str | Path, out: str | Path, cfg: StudyConfig | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) every (strategy, seed) run, probe them, and write the study tables.

    Parameters
    ----------
    synth_dir
        A synthetic root (``bi-core synth --out DIR``): ``DIR/pretrain``, ``DIR/eval`` and
        ``DIR/ground_truth.json`` (the latter optional: without it, no truth scores).
    out
        Output directory (tables at its top, runs under ``runs/``); finished runs with
        the same config are reused.
    cfg
        Study settings (default: the ``default`` preset).

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from ..analysis import classify as C
    from ..cohort import Cohort

    cfg = cfg or study_preset("default")
    t_start = time.perf_counter()
    synth_dir, out = Path(synth_dir), Path(out)
    pre_dir, eval_dir = synth_dir / "pretrain", synth_dir / "eval"
    for d in (pre_dir, eval_dir):
        if not (d / "cohort.json").is_file():
            raise InputError(f"{d} is not a cohort store; --cohorts must be a synthetic root made by "
                             "`bi-core synth --out DIR` (with pretrain/ and eval/).")
    pre, ev = Cohort.open(pre_dir), Cohort.open(eval_dir)
    pre.atlas.check_same(ev.atlas, what=f"cohorts {pre_dir} and {eval_dir}")
    truth_file = synth_dir / "ground_truth.json"
    truth = json.loads(truth_file.read_text()) if truth_file.is_file() else None
    layout = TokenLayout.from_atlas(pre.atlas, _n_patches(cfg))
    configs = matched_mask_configs(layout, cfg.p_two, cfg.strategies)
    fractions = mask_fractions(layout, configs, cfg.fraction_draws, seed=cfg.first_seed)
    recordings = eval_recordings(ev.table, cfg.eval_subjects_per_group, seed=cfg.first_seed)
    out.mkdir(parents=True, exist_ok=True)
    # resample both cohorts once here, so worker processes only ever read the caches
    from ..windows import DEFAULT_TARGET_TR

    pre.harmonized(DEFAULT_TARGET_TR, progress=progress)
    evh = ev.harmonized(DEFAULT_TARGET_TR, progress=progress)

    jobs = [{"pretrain_dir": str(pre_dir), "eval_dir": str(eval_dir), "runs": str(out / "runs"), "cfg": cfg,
             "strategy": s, "seed": seed, "recordings": recordings, "truth": truth}
            for seed in cfg.seeds for s in cfg.strategies]
    results = _map(_task, jobs, cfg.jobs, progress, desc="masking study (train + probe)")
    t_models = time.perf_counter() - t_start

    # classification: every model's embedding (and FC) on the same folds, in one call per task
    t0 = time.perf_counter()
    table = ev.table.set_index("recording_id").loc[recordings].reset_index()
    feats = [C.FeatureSet(_fs_name(r["run"]["strategy"], r["run"]["seed"]), r["embedding"]) for r in results]
    if cfg.fc_reference:
        series = C.as_series_array([np.asarray(evh.series(evh.index_of(r))) for r in recordings])
        feats.append(C.FeatureSet("FC correlation", C.connectivity_features(series, "correlation")))
    cv = C.CVConfig(n_splits=cfg.cv_folds, n_repeats=cfg.cv_repeats, seed=cfg.first_seed,
                    inner_splits=cfg.cv_inner_splits, Cs=cfg.cv_Cs)
    cls_rows = []
    for task in C.TASKS:
        res = C.run_classification(feats, table, task, cv, progress=progress)
        for _, row in res["summary"].iterrows():
            strat, seed = _parse_fs(row["feature_set"])
            cls_rows.append({"seed": seed, "strategy": strat, "task": task, **{k: row[k] for k in row.index
                                                                               if k != "feature_set"}})
    cls = pd.DataFrame(cls_rows)
    t_cls = time.perf_counter() - t0

    tables = _assemble(results, cls, fractions)
    for name, df in tables.items():
        write_tsv(out / f"{name}.tsv", df)
    summary = {"config": cfg.to_dict(), "n_eval_recordings": len(recordings),
               "eval_groups": table["diagnosis"].value_counts().to_dict(),
               "mask_configs": {s: asdict(m) for s, m in configs.items()},
               "conclusions": conclusions(tables["summary"], tables["paired"], cfg),
               "timings": {"models_s": round(t_models, 2), "classification_s": round(t_cls, 2),
                           "total_s": round(time.perf_counter() - t_start, 2),
                           "per_run": [{k: r["run"][k] for k in ("strategy", "seed", "wall_train_s", "wall_probe_s")}
                                       | {"probe": r["seconds"]} for r in results]}}
    write_json(out / "summary.json", summary)
    return summary


def _fs_name(strategy: str, seed: int) -> str:
    return f"{strategy}|{int(seed)}"


def _parse_fs(name: str) -> tuple[str, float]:
    if "|" in name:
        s, seed = name.rsplit("|", 1)
        return s, float(seed)
    return name, np.nan


def _map(fn: Any, jobs: list[dict[str, Any]], n_jobs: int, progress: bool, desc: str) -> list[Any]:
    """``[fn(j) for j in jobs]``, in ``n_jobs`` spawned processes when > 1 (order kept)."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="run")
    results: list[Any] = [None] * len(jobs)
    if n_jobs <= 1 or len(jobs) <= 1:
        for i, j in enumerate(jobs):
            results[i] = fn(j)
            if bar:
                bar.update()
    else:
        import multiprocessing as mp
        import warnings
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        # spawn: forked children of a process that already ran torch kernels can deadlock
        try:
            with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=mp.get_context("spawn")) as ex:
                futs = {ex.submit(fn, j): i for i, j in enumerate(jobs)}
                for f in as_completed(futs):
                    results[futs[f]] = f.result()
                    if bar:
                        bar.update()
        except BrokenProcessPool:
            # e.g. a script without `if __name__ == "__main__":` cannot spawn workers
            warnings.warn("worker processes could not start (a script calling this needs an "
                          "`if __name__ == '__main__':` guard); running the remaining jobs in this process.",
                          RuntimeWarning, stacklevel=3)
            for i, j in enumerate(jobs):
                if results[i] is None:
                    results[i] = fn(j)
                    if bar:
                        bar.update()
    if bar:
        bar.close()
    return results


def _assemble(results: list[dict[str, Any]], cls: pd.DataFrame, fractions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tidy study tables from the per-run results and the classification summary."""
    def stack(key: str) -> pd.DataFrame:
        parts = [r[key].assign(seed=r["run"]["seed"], strategy=r["run"]["strategy"]) for r in results
                 if len(r[key])]
        df = pd.concat(parts, ignore_index=True)
        front = ["seed", "strategy"]
        return df[front + [c for c in df.columns if c not in front]]

    runs = pd.DataFrame([r["run"] for r in results])
    recon = stack("reconstruction")
    metrics = []
    for r in results:
        s, seed = r["run"]["strategy"], r["run"]["seed"]
        own = r["reconstruction"].set_index("eval_mask")["nmse"]
        vals = {**r["scores"], "nmse_own": float(own.get(s, np.nan))}
        metrics.extend({"seed": seed, "strategy": s, "metric": m, "value": vals.get(m, np.nan)} for m in METRICS
                       if m in vals)
    for _, row in cls.iterrows():
        m = {"ad_cn": ("auc_ad_cn", "auc"), "3class": ("bacc_3class", "balanced_accuracy")}[row["task"]]
        metrics.append({"seed": row["seed"], "strategy": row["strategy"], "metric": m[0], "value": row[m[1]]})
    metrics = pd.DataFrame(metrics)
    order = {m: i for i, m in enumerate(METRICS)}
    metrics = metrics.sort_values(["metric", "strategy", "seed"], key=lambda c: c.map(order) if c.name == "metric"
                                  else c, kind="stable").reset_index(drop=True)
    return {"mask_fractions": fractions, "runs": runs, "reconstruction": recon,
            "predictability": stack("predictability"), "interactions": stack("interactions"),
            "groundtruth": stack("groundtruth"), "classification": cls, "metrics": metrics,
            "summary": summarize(metrics), "paired": paired_differences(metrics)}


# ---------------------------------------------------------------------- summaries
def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD, min, max and count over seeds per (strategy, metric).

    Rows with no seed (references such as FC correlation) are kept with ``n_seeds = 0``.
    """
    rows = []
    for (metric, strat), g in metrics.groupby(["metric", "strategy"], sort=False):
        v = g["value"].astype(float)
        ok = v.dropna()
        label, higher = METRICS.get(metric, (metric, True))
        rows.append({"metric": metric, "strategy": strat, "mean": ok.mean() if len(ok) else np.nan,
                     "sd": ok.std(ddof=1) if len(ok) > 1 else np.nan, "min": ok.min() if len(ok) else np.nan,
                     "max": ok.max() if len(ok) else np.nan, "n_seeds": int(g["seed"].notna().sum()),
                     "n_missing": int(v.isna().sum()), "higher_is_better": higher, "label": label})
    return pd.DataFrame(rows)


def paired_differences(metrics: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Same-seed differences ``strategy − reference`` per metric, with a t-interval over seeds.

    ``reference_better`` counts the seeds in which the reference is better (by the metric's
    direction); NaN pairs are skipped.
    """
    from ..stats import t_interval

    m = metrics[metrics["seed"].notna()]
    wide = m.pivot_table(index=["metric", "seed"], columns="strategy", values="value", aggfunc="mean", dropna=False)
    rows = []
    if reference not in wide.columns:
        return pd.DataFrame(rows)
    for metric in wide.index.get_level_values(0).unique():
        g = wide.loc[metric]
        higher = METRICS.get(metric, (metric, True))[1]
        for s in g.columns:
            if s == reference:
                continue
            d = (g[s] - g[reference]).dropna()
            n = len(d)
            mean, lo, hi = t_interval(d.to_numpy())
            sd = float(d.std(ddof=1)) if n > 1 else np.nan
            ref_better = int(((d < 0) if higher else (d > 0)).sum())
            rows.append({"metric": metric, "strategy": s, "reference": reference, "mean_diff": mean, "sd_diff": sd,
                         "ci_low": lo, "ci_high": hi, "n_seeds": n, "reference_better": ref_better,
                         "higher_is_better": higher})
    return pd.DataFrame(rows)


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def conclusions(summary: pd.DataFrame, paired: pd.DataFrame, cfg: StudyConfig | None = None) -> dict[str, Any]:
    """Plain-language conclusions computed from the tables (nothing hard-coded about the outcome).

    A difference to network masking counts as *consistent* when the same-seed difference
    has the same sign in every seed and its 95 % t-interval excludes zero; otherwise it is
    *within the seed spread*.

    Returns
    -------
    dict
        ``per_metric`` (metric → sentence), ``network_better`` / ``network_worse`` /
        ``undecided`` (metric lists), ``verdict`` (one paragraph), ``region_vs_random``
        (seed 002's comparison on AD vs CN AUC).
    """
    per_metric: dict[str, str] = {}
    better, worse, undecided = [], [], []
    s = summary[summary["n_seeds"] > 0]
    for metric in [m for m in METRICS if m in set(s["metric"])]:
        g = s[s["metric"] == metric].set_index("strategy")
        label, higher = METRICS[metric]
        if g["mean"].notna().sum() == 0:
            per_metric[metric] = f"{label}: no finite values."
            undecided.append(metric)
            continue
        best = g["mean"].idxmax() if higher else g["mean"].idxmin()
        tie = bool(np.nanmax(g["mean"]) - np.nanmin(g["mean"]) < 1e-12)
        pm = paired[paired["metric"] == metric]
        n = int(pm["n_seeds"].max()) if len(pm) else 0

        def consistent(r: pd.Series) -> bool:
            return bool(r["n_seeds"] >= 2 and np.isfinite(r["ci_low"]) and (r["ci_low"] > 0 or r["ci_high"] < 0)
                        and r["reference_better"] in (0, r["n_seeds"]))

        cons = pm[pm.apply(consistent, axis=1)] if len(pm) else pm
        ref_wins = [r["strategy"] for _, r in cons.iterrows() if r["reference_better"] == r["n_seeds"]]
        ref_loses = [r["strategy"] for _, r in cons.iterrows() if r["reference_better"] == 0]
        others = [x for x in g.index if x != REFERENCE]
        if others and len(ref_wins) == len(others):
            better.append(metric)
        elif ref_loses:
            worse.append(metric)
        else:
            undecided.append(metric)
        ref = g.loc[REFERENCE] if REFERENCE in g.index else None
        if tie:
            txt = f"{label}: every strategy gives {_fmt(g.loc[best, 'mean'])} (mean over seeds)"
        else:
            txt = (f"{label}: best mean with {best} masking ({_fmt(g.loc[best, 'mean'])} ± "
                   f"{_fmt(g.loc[best, 'sd'])} SD over {int(g.loc[best, 'n_seeds'])} seeds)")
        if ref is not None and best != REFERENCE and not tie:
            txt += f"; network masking {_fmt(ref['mean'])} ± {_fmt(ref['sd'])}"
        if ref_wins:
            txt += f"; network masking consistently better than {', '.join(ref_wins)}"
        if ref_loses:
            txt += f"; network masking consistently worse than {', '.join(ref_loses)}"
        if not ref_wins and not ref_loses:
            txt += f"; no difference to network masking is consistent over the {n} seeds"
        per_metric[metric] = txt + "."
    labels = lambda ms: ", ".join(METRICS[m][0] for m in ms) or "none"
    verdict = (f"Network masking (the paper's choice) was consistently better than every other strategy on "
               f"{len(better)} of {len(per_metric)} measures ({labels(better)}), consistently worse than at least one "
               f"alternative on {len(worse)} ({labels(worse)}), and neither on the remaining {len(undecided)} "
               f"({labels(undecided)}): there, at least one alternative is within the seed spread of network "
               "masking (consistent means: the same sign in every seed and a 95 % interval over seeds that "
               "excludes zero).")
    if cfg is not None and cfg.name in ("smoke", "default"):
        verdict += (f" This is the reduced-compute '{cfg.name}' study ({cfg.model_size} model, {cfg.epochs} epochs); "
                    "run the 'full' preset before drawing conclusions about the strategies themselves.")
    rr = paired[(paired["metric"] == "auc_ad_cn") & (paired["strategy"].isin(["region", "random"]))]
    region_vs_random = "not computed (needs both region and random masking)."
    sa = summary[(summary["metric"] == "auc_ad_cn")].set_index("strategy")
    if {"region", "random"} <= set(sa.index) and len(rr) == 2:
        diff = sa.loc["region", "mean"] - sa.loc["random", "mean"]
        region_vs_random = (f"AD vs CN AUC: region-aware {_fmt(sa.loc['region', 'mean'])} vs random "
                            f"{_fmt(sa.loc['random', 'mean'])} (difference {diff:+.3f}; seed SDs "
                            f"{_fmt(sa.loc['region', 'sd'])} and {_fmt(sa.loc['random', 'sd'])}).")
    return {"per_metric": per_metric, "network_better": better, "network_worse": worse, "undecided": undecided,
            "verdict": verdict, "region_vs_random": region_vs_random}


# ---------------------------------------------------------------------- reading back
TABLES = ("mask_fractions", "runs", "reconstruction", "predictability", "interactions", "groundtruth",
          "classification", "metrics", "summary", "paired")


def load_study(out: str | Path) -> dict[str, Any]:
    """Read a finished study directory: every table (DataFrames) and ``summary`` (``summary.json``).

    Raises
    ------
    InputError
        When ``out`` holds no finished study (``summary.json`` is written last).
    """
    out = Path(out)
    f = out / "summary.json"
    if not f.is_file():
        raise InputError(f"{out} holds no finished masking study (no summary.json); run "
                         "`bi-core related masking-study --cohorts SYNTH --out DIR`.")
    res: dict[str, Any] = {"json": json.loads(f.read_text())}
    for name in TABLES:
        p = out / f"{name}.tsv"
        if not p.is_file():
            raise InputError(f"{p} is missing; the study directory is incomplete — run the study again.")
        res[name] = pd.read_csv(p, sep="\t", na_values=["n/a"])
    return res


__all__ = [
    "METRICS",
    "STUDY_PRESETS",
    "StudyConfig",
    "conclusions",
    "ensure_run",
    "eval_recordings",
    "load_study",
    "mask_fractions",
    "matched_mask_configs",
    "paired_differences",
    "probe_run",
    "reconstruction_errors",
    "run_study",
    "study_preset",
    "summarize",
    "train_config",
]
