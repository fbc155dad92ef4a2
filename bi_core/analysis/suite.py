"""The whole analysis suite on one run and one cohort, written as tidy tables.

``run_suite`` is what ``bi-core analyze`` and ``bi-core reproduce`` call; each chapter's
notebook reads the tables it names. The group analyses compare the levels of one
categorical column (:class:`~bi_core.analysis.groupstats.Groups`: ``diagnosis`` with CN
as the reference and CN < MCI < AD by default; contrasts and tasks below are named
after the cohort's own levels); a cohort without one gets the tables that need no
groups, and ``summary.json`` says what was skipped and why. Output directory layout::

    predictability.tsv            per (baseline or retest recording, network): r2, pearson_r
    predictability_linear.tsv     the same for the linear references (method ridge / lagged-ridge), same windows
    interactions.tsv              per (baseline or retest recording, target, source): attention, enrichment, occlusion_delta_r2,
                                  occlusion_share, source_only_r, fc_correlation and linear_occlusion_delta_r2
                                  (model-free baselines)
    interactions_agreement.json   attention vs occlusion agreement
    embeddings.tsv                per recording: pooled and per-network embeddings
    embeddings_untrained.tsv      the same for the encoder at its initial weights (the untrained-encoder control)
    reliability.tsv               (subjects with ≥ 2 sessions/runs at their first time point) test–retest ICC(3,1)
                                  per network (predictability), per cell (interactions) and per FC edge (reference)
    groupdiff_largest.tsv         per network and contrast: Cohen's d and the bootstrap probability that its |d| is
                                  the largest of all networks (2,000 subject resamples within groups)
    groupdiff_predictability.tsv  each level − the reference per network (AD−CN, MCI−CN; baseline visits,
                                  covariates, Benjamini–Hochberg FDR per contrast across the networks)
    groupdiff_predictability_linear.tsv  the same for the same-frame ridge's predictability (method ridge): the
                                  scorecard's linear verdict on the DMN claim
    groupdiff_interactions.tsv    the same per (target, source) and measure (one FDR family per measure and
                                  contrast, across the target × source cells); every row names its family
                                  (fdr_family), summary.json lists them (fdr_families)
    classification_<task>_summary.tsv / _predictions.tsv   every feature set on the same folds; tasks are the
                                  reference vs each level (ad_cn, mci_cn) and all levels (3class)
    target_<col>_association.tsv  (--target) OLS of each network's predictability on a numeric column, covariates, FDR
                                  across the networks
    target_<col>_prediction.tsv / _predictions.tsv   ridge prediction of it from every feature set on the
                                  same subject-grouped folds: r and MAE with intervals / out-of-fold predictions
    marker.tsv                    the out-of-fold summary marker of every visit (last level vs the reference)
    marker_<ref>.tsv, longitudinal_slopes_<ref>.tsv, longitudinal_<ref>.json, longitudinal_association_<ref>.tsv
                                  the same marker, trajectory model and clinical association on the
                                  references' features (<ref>: untrained, the untrained encoder's embedding;
                                  fc, network FC correlation, when the FC baselines are scored)
    longitudinal_*.tsv / .json    mixed-model slopes, fixed effects, LRT, clinical association, converters; the
                                  random effects of each model and whether its fits converged
    groundtruth.json              (synthetic cohorts) recovery of the generator's truth
    timings.json                  seconds per stage
    summary.json                  headline numbers, the groups compared and what was skipped (and why)
    *.png                         (``figures``, as ``bi-core analyze`` passes it) the book's figures for the cohort
    dataset_description.json      the BIDS-derivative description (GeneratedBy, SourceDatasets: the run and cohort)

Every table with ``subject``/``session`` columns also has BIDS ``participant_id`` (``sub-…``) and
``session_id`` (``ses-…``, ``n/a`` without sessions) beside them (:func:`add_bids_ids`).
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_dir, derived, refuse_overlap, write_json, write_tsv
from ..cohort import Cohort
from ..connectome import fc_from_bold
from ..errors import InputError
from ..windows import TiledWindows, windows_of
from . import classify as C
from . import groundtruth as GT
from . import groupstats as G
from . import longitudinal as L
from . import reliability as R
from . import target as T
from .dynamic import dynamic_fc_features
from .embeddings import embed, read_embeddings, write_embeddings
from .interactions import add_network_fc, agreement, predictability_and_interactions
from .linear import METHODS as LINEAR_METHODS
from .linear import linear_predictability_and_occlusion
from .predictability import PHENOTYPES, with_phenotypes
from .readout_registry import interaction_measures

# In-function imports: torch (..model, ..runs) loads only when the suite runs a model; the chapters and the CLI import
# its constants and table helpers.

#: Columns of the interactions table compared between groups and scored against the truth
#: (``fc_correlation`` and ``linear_occlusion_delta_r2`` are model-free baselines, see
#: bi_core.analysis.interactions and bi_core.analysis.linear).
#: The read-out registry's suite measures, in its order (bi_core.analysis.readout_registry).
INTERACTION_MEASURES = interaction_measures()
#: The embedding used for classification and the marker (see bi_core.analysis.embeddings).
EMBEDDING_KIND = "temporal_sd"
#: The untrained-encoder control: the same encoder at its initial weights, pooled alike (a feature set beside
#: every embedding result; training "helps" only where the trained embedding beats it on the same folds).
UNTRAINED_EMBEDDING = "embedding (untrained encoder)"
UNTRAINED_PREFIX = "untrained:"


def untrained_model(info: Any, device: str = "cpu") -> Any:
    """The run's model at its initial weights (its config and seed, no training), in eval mode."""
    from ..model import build_model

    return build_model(info.model_config, seed=info.train_config.seed).to(device).eval()
#: Name of the dynamic-FC reference's feature set (``run_suite(..., dynamic_fc=True)``).
DYNAMIC_FC_NAME = "dynamic FC (window SD)"


def features_from_table(df: pd.DataFrame, value: str, cells: Sequence[str], ids: Sequence[str]) -> np.ndarray:
    """Pivot a tidy per-recording table into ``[len(ids), n_cells]`` features in ``ids`` order."""
    piv = df.pivot_table(index="recording_id", columns=list(cells), values=value, aggfunc="mean")
    missing = [i for i in ids if i not in piv.index]
    if missing:
        raise InputError(f"{len(missing)} recording(s) have no {value!r} values (e.g. {missing[:3]}).")
    return piv.loc[list(ids)].to_numpy(float)


def group_tables(pred: pd.DataFrame, inter: pd.DataFrame | None, cohort: Cohort, alpha: float = 0.05,
                 groups: G.Groups | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Each level's difference from the reference (AD−CN, MCI−CN) of predictability and interactions.

    Baseline visits of the subjects in ``groups.order`` only; adjusted for the covariates
    among age, sex and site that every such visit has.

    Raises
    ------
    InputError
        A group with fewer than 2 subjects, or so few subjects that no difference can be
        estimated once the covariates are adjusted for.
    """
    groups = groups or G.Groups()
    t = cohort.table
    base = t.loc[G.baseline_rows(t) & t[groups.column].isin(groups.order).to_numpy()]
    base_ids = set(base["recording_id"])
    cov = G.available_covariates(base)
    kw = dict(covariates=cov, contrasts=groups.contrasts, alpha=alpha, column=groups.column)
    cols = (*PHENOTYPES, groups.column)
    p = with_phenotypes(pred[pred["recording_id"].isin(base_ids)], cohort, cols)
    gp = G.group_differences(p, "r2", ["network"], **kw)
    if gp["p"].isna().all():
        most = int((gp["n_group"] + gp["n_ref"]).max())
        raise InputError(f"a comparison of {most} subjects leaves no residual degrees of freedom once the group and "
                         f"the covariates ({', '.join(cov) or 'none'}) are fitted; add subjects")
    gi = None if inter is None else interaction_differences(inter, cohort, INTERACTION_MEASURES, alpha, groups)
    return gp, gi


def _largest_effects(pred: pd.DataFrame, cohort: Cohort, groups: G.Groups, n_boot: int = 2000,
                     seed: int = 0) -> pd.DataFrame:
    """:func:`bi_core.analysis.groupstats.largest_effect_probability` of predictability for every contrast."""
    t = cohort.table
    base = t.loc[G.baseline_rows(t) & t[groups.column].isin(groups.order).to_numpy()]
    p = with_phenotypes(pred[pred["recording_id"].isin(set(base["recording_id"]))], cohort,
                        (*PHENOTYPES, groups.column))
    return pd.concat([G.largest_effect_probability(p, "r2", "network", c, G.available_covariates(base),
                                                   groups.column, n_boot=n_boot, seed=seed)
                      for c in groups.contrasts], ignore_index=True)


def interaction_differences(inter: pd.DataFrame, cohort: Cohort, measures: Sequence[str], alpha: float = 0.05,
                            groups: G.Groups | None = None) -> pd.DataFrame:
    """Each level's difference from the reference per (target, source) cell, for every column in ``measures``.

    Baseline visits of the subjects in ``groups.order``, the covariates among age, sex and site
    that every such visit has; one Benjamini–Hochberg family per measure and contrast. A
    measure absent from ``inter`` or all-NaN is left out. Returns the
    :func:`~bi_core.analysis.groupstats.group_differences` rows with a ``measure`` column.
    """
    groups = groups or G.Groups()
    t = cohort.table
    base = t.loc[G.baseline_rows(t) & t[groups.column].isin(groups.order).to_numpy()]
    kw = dict(covariates=G.available_covariates(base), contrasts=groups.contrasts, alpha=alpha, column=groups.column)
    it = with_phenotypes(inter[inter["recording_id"].isin(set(base["recording_id"]))], cohort,
                         (*PHENOTYPES, groups.column))
    parts = [G.group_differences(it, m, ["target", "source"], **kw).assign(measure=m)
             for m in measures if m in it and it[m].notna().any()]
    return pd.concat(parts, ignore_index=True)


def bids_ids(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with BIDS ``participant_id`` (``sub-<subject>``) and ``session_id`` (``ses-<session>``, ``n/a``
    without one) beside its ``subject`` and ``session`` columns (unchanged when it has neither or both already)."""
    out = df.copy()
    for col, new, prefix in (("subject", "participant_id", "sub-"), ("session", "session_id", "ses-")):
        if col not in out or new in out:
            continue
        v = out[col].astype(str)
        empty = out[col].isna() | v.isin(["", "n/a", "nan"])
        ids = v.where(v.str.startswith(prefix), prefix + v).where(~empty, "n/a")
        out.insert(out.columns.get_loc(col) + 1, new, ids)
    return out


def add_bids_ids(out: str | Path) -> None:
    """Give every table in ``out`` with a ``subject``/``session`` column its :func:`bids_ids` (rewritten atomically;
    every other cell is kept as written)."""
    for f in sorted(Path(out).glob("*.tsv")):
        df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
        if {"subject", "session"} & set(df.columns):
            new = bids_ids(df)
            if new.shape[1] != df.shape[1]:
                write_tsv(f, new, float_format=None)


def _staged(suite: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run ``suite`` into a staging sibling of its ``out``, renamed over ``out`` when it finishes.

    A re-run replaces the whole directory, so no table of an earlier run (e.g. an earlier
    ``--target``) outlives it, and a killed run leaves the previous directory as it was.
    ``out`` must not overlap an input, and an existing ``out`` must hold analysis results.
    """
    signature = inspect.signature(suite)

    @functools.wraps(suite)
    def staged(*args: Any, **kwargs: Any) -> dict[str, Any]:
        from ..runs import run_dir

        a = signature.bind(*args, **kwargs)
        a.apply_defaults()
        arg = a.arguments
        refuse_overlap(arg["out"], {"--run": run_dir(arg["run"]), "--cohort": arg["cohort_dir"],
                                    "--fit-cohort": arg["linear_fit_cohort"], "--ground-truth": arg["ground_truth"]})
        fit = arg["linear_fit_cohort"]
        fit = [fit] if isinstance(fit, (str, Path)) else list(fit or [])
        with derived(sources=[run_dir(arg["run"]), arg["cohort_dir"], *fit]), \
                atomic_dir(arg["out"], overwrite=True, kind="results") as tmp:
            arg["out"] = tmp
            summary = suite(*a.args, **a.kwargs)
            add_bids_ids(tmp)
            return summary

    return staged


@_staged
def run_suite(run: str | Path, cohort_dir: str | Path, out: str | Path, cv: C.CVConfig | None = None,
              ground_truth: str | Path | None = None, occlusion_windows: int | None = None, batch_size: int = 64,
              device: str = "cpu", fc_baselines: bool = True, progress: bool = False, group_column: str | None = None,
              reference: str | None = None, order: Sequence[str] | None = None,
              retest_years: float = R.RETEST_YEARS, target: str | None = None,
              linear_fit_cohort: str | Path | Sequence[str | Path] | None = None,
              dynamic_fc: bool = False, tasks: Sequence[str] | None = None,
              figures: Callable[[Path, dict[str, Any], Cohort], list[str]] | None = None) -> dict[str, Any]:
    """Compute and write every analysis table for ``run`` on the cohort ``cohort_dir``.

    Parameters
    ----------
    run
        Run directory or checkpoint (``bi-core pretrain``).
    cohort_dir
        A cohort on the run's atlas; group analyses need a group column, the marker
        models longitudinal visits.
    out
        Output directory: built in a staging sibling and renamed into place at the end,
        replacing an earlier run's results (a non-empty directory of anything else is refused).
    cv
        Cross-validation settings for classification and the marker.
    ground_truth
        ``ground_truth.json`` of a synthetic cohort: adds the recovery scores.
    occlusion_windows
        Windows per recording used for the occlusion dependency (``None``: all).
    fc_baselines
        Score the FC correlation and tangent baselines next to the model's features.
    dynamic_fc
        Also score the sliding-window FC variability of network pairs
        (:func:`bi_core.analysis.dynamic.dynamic_fc_features`), the model-free reference of
        the dynamic synthetic scenario (a classification feature set ``dynamic FC (window SD)``).
    tasks
        Classification tasks to run (names as in ``classification_<task>_summary.tsv``, e.g.
        ``ad_cn``, ``mci_cn``, ``3class``); ``None``: all of the groups'.
    figures
        Called with the (staging) output directory, the summary and the cohort (its group
        column as labels) once every table is written; writes figures beside the tables and
        returns their file names (``summary.json``'s ``figures``). The analysis stage draws
        nothing itself: ``bi-core analyze`` passes :func:`bi_core.commands.analysis.write_figures`.
    group_column
        Categorical column whose levels are compared (default: ``diagnosis`` when the
        cohort has diagnoses; without one, the group analyses are skipped).
    reference, order
        The reference level and the compared levels in order (defaults: CN and
        CN < MCI < AD for ADNI diagnoses; see
        :func:`~bi_core.analysis.groupstats.resolve_groups`).
    retest_years
        Recordings of a subject at most this long after its first one are test–retest
        repeats (see :mod:`bi_core.analysis.reliability`).
    target
        A numeric column (e.g. ``age``): its association with each network's
        predictability and its prediction from every feature set
        (:mod:`bi_core.analysis.target`).
    linear_fit_cohort
        Cohort(s) the linear references (:mod:`bi_core.analysis.linear`: ridge and lagged
        ridge predictability, ridge occlusion) are fitted on, e.g. the run's pretraining
        cohort (what the book does). Default: cross-fitted on the scored recordings of
        ``cohort_dir`` over :data:`~bi_core.analysis.linear.DEFAULT_FOLDS` subject-grouped
        folds — a run records its cohorts' names and content digests, not their paths, so
        the suite cannot find the pretraining cohort by itself.

    Returns
    -------
    dict
        The headline numbers (also written to ``summary.json``), with ``skipped``: what
        was not computed and why.
    """
    from ..runs import load_model

    cv = cv or C.CVConfig()
    out = Path(out)
    cohort = Cohort.open(cohort_dir)
    skipped: dict[str, str] = {}
    adapted: dict[str, str] = {}
    groups = _groups_and_target(cohort, group_column, reference, order, target, skipped)
    out.mkdir(parents=True, exist_ok=True)
    model, info = load_model(run, cohort=cohort, device=device)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        timings[name] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        if progress:
            print(f"  {name}: {timings[name]:.1f} s", flush=True)

    # group statistics and classification use baseline visits, reliability the repeats at the
    # first time point: reconstruct those only
    base_ids = set(cohort.table.loc[G.baseline_rows(cohort.table), "recording_id"])
    retest = R.retest_sets(cohort.table, retest_years)
    rec_ids = [r for r in cohort.table["recording_id"] if r in base_ids or r in set(retest["recording_id"])]
    # one windowing of the cohort at the run's window and TR, shared by every analysis below
    tiles = windows_of(info, cohort)
    # one pass: the attention pass masks every network in every window, which is exactly
    # what predictability scores (timed together as "predictability + interactions")
    pred, inter = predictability_and_interactions(model, info, cohort, occlusion_windows=occlusion_windows,
                                                  batch_size=batch_size, device=device, progress=progress,
                                                  recordings=rec_ids, tiles=tiles)
    inter = add_network_fc(inter, cohort)
    write_tsv(out / "predictability.tsv", pred)
    agree = {m: agreement(inter, info.atlas.networks, attention=m) for m in ("attention", "enrichment")}
    write_json(out / "interactions_agreement.json", agree)
    lap("predictability + interactions")
    # the model-free references on the same recordings and windows: ridge (with its occlusion) and lagged ridge
    linear_pred, lin_occ, linear_summary = _linear_references(info, cohort, tiles, rec_ids, linear_fit_cohort, cv.seed,
                                                              out, skipped, adapted, progress)
    if lin_occ is not None:
        inter = inter.merge(lin_occ[["recording_id", "target", "source", "linear_occlusion_delta_r2"]],
                            on=["recording_id", "target", "source"], how="left")
    write_tsv(out / "interactions.tsv", inter)
    lap("linear references")
    emb_rows, etab = _embeddings(model, info, cohort, tiles, out, batch_size, device, progress)
    lap("embeddings")

    if retest.empty:
        skipped["reliability"] = (f"no subject has two sessions or runs within {retest_years:g} years of its first "
                                  "recording (follow-up visits are not test-retest; see --retest-years)")
        summary_rel = None
    else:
        summary_rel = _reliability(retest, cohort, pred, inter, out)
        lap("reliability")

    summary: dict[str, Any] = {"groups": None, "occlusion_windows": occlusion_windows, "linear": linear_summary,
                               "reliability": summary_rel}
    gp = gi = traj = assoc = None
    if groups is not None:
        gp, gi, traj, assoc = _group_analyses(cohort, groups, pred, inter, linear_pred, emb_rows, etab, info, cv,
                                              fc_baselines, out, summary, skipped, adapted, progress, dynamic_fc,
                                              tasks, lap)
    if target is not None:
        summary["target"] = _target(cohort, target, pred, inter, linear_pred, emb_rows, etab, info, cv, fc_baselines,
                                    out, skipped, progress, adapted)
        lap("target")

    if ground_truth is not None:
        summary["groundtruth"] = _ground_truth_scores(ground_truth, cohort, pred, gp, gi, traj, assoc, out, skipped)
        lap("ground truth")
    summary["agreement"] = agree
    summary["skipped"] = skipped
    summary["adapted"] = adapted
    if figures is not None:
        summary["figures"] = figures(out, summary, cohort)
        lap("figures")
    summary["timings"] = timings
    write_json(out / "timings.json", timings)
    write_json(out / "summary.json", summary)
    return summary


def _groups_and_target(cohort: Cohort, group_column: str | None, reference: str | None, order: Sequence[str] | None,
                       target: str | None, skipped: dict[str, str]) -> G.Groups | None:
    """The compared groups of ``cohort`` (their column made labels), or ``None`` with the reason in ``skipped``;
    refuses a ``target`` that is not a numeric column with values."""
    groups = G.resolve_groups(cohort.table, group_column, reference, order, where=f"cohort {cohort.path}")
    if target is not None:
        # a known numeric column with values; too few subjects skips its prediction below
        T.check_target(cohort.table, target, where=f"cohort {cohort.path}", min_subjects=1)
    if groups is None:
        skipped["group analyses"] = ("group differences, classification, the summary marker and the longitudinal "
                                     "models need groups, and the cohort has no diagnoses (or a single one); choose "
                                     "a categorical column with --group-column (see `bi-core info --json`)")
    else:
        cohort.table[groups.column] = G.as_labels(cohort.table[groups.column])
    return groups


def _embeddings(model: Any, info: Any, cohort: Cohort, tiles: TiledWindows, out: Path, batch_size: int, device: str,
                progress: bool) -> tuple[Callable[[str, list[str]], np.ndarray], pd.DataFrame]:
    """:func:`run_suite`'s embeddings of every recording, trained and untrained (``embeddings.tsv``,
    ``embeddings_untrained.tsv``).

    Returns ``(rows, table)``: ``rows(kind, recording_ids)`` gives the ``[n, d]`` features of
    one pooling ``kind`` (prefixed :data:`UNTRAINED_PREFIX` for the untrained encoder), and the
    trained embedding's table.
    """
    emb_all = embed(model, info, cohort, batch_size=batch_size, device=device, progress=progress, tiles=tiles)
    write_embeddings(out / "embeddings.tsv", emb_all, info.atlas.networks)
    # the control for every embedding result: the same encoder at its initial weights (the run's seed), pooled alike
    emb_raw = embed(untrained_model(info, device), info, cohort, batch_size=batch_size, device=device, progress=progress,
                    tiles=tiles)
    write_embeddings(out / "embeddings_untrained.tsv", emb_raw, info.atlas.networks)

    def rows(kind: str, ids: list[str]) -> np.ndarray:
        src = emb_raw if kind.startswith(UNTRAINED_PREFIX) else emb_all
        return pd.DataFrame(src.features(kind.removeprefix(UNTRAINED_PREFIX)),
                            index=src.table["recording_id"]).loc[ids].to_numpy()

    return rows, emb_all.table


def _reliability(retest: pd.DataFrame, cohort: Cohort, pred: pd.DataFrame, inter: pd.DataFrame,
                 out: Path) -> dict[str, Any]:
    """:func:`run_suite`'s test–retest reliability of predictability, interactions and FC edges over the
    ``retest`` sets: writes ``reliability.tsv`` and returns its summary."""
    fc_ids = list(retest["recording_id"])
    fc = fc_from_bold([np.asarray(cohort.series(r)) for r in fc_ids], names=fc_ids)
    rel = R.reliability(retest, pred, inter, INTERACTION_MEASURES, fc, cohort.atlas.roi_names,
                        cohort.atlas.roi_networks, fc_ids)
    write_tsv(out / "reliability.tsv", rel)
    return R.summarize(rel)


def _ground_truth_scores(ground_truth: str | Path, cohort: Cohort, pred: pd.DataFrame, gp: pd.DataFrame | None,
                         gi: pd.DataFrame | None, traj: dict[str, Any] | None, assoc: pd.DataFrame | None, out: Path,
                         skipped: dict[str, str]) -> dict[str, Any]:
    """:func:`run_suite`'s recovery scores against a synthetic cohort's ``ground_truth.json``: writes
    ``groundtruth.json`` and returns the summary's ``groundtruth`` (the headline entries)."""
    truth = GT.load_ground_truth(ground_truth)
    gts: dict[str, Any] = {"predictability_order": _order_check(pred, truth)}
    if gp is not None and gi is not None and (gp["contrast"] == "AD-CN").any():
        gts["dmn_drop"] = GT.score_dmn_drop(gp)
        for contrast in [c for c in ("AD-CN", "MCI-CN") if (gi["contrast"] == c).any()]:
            for m in INTERACTION_MEASURES:
                gts[f"interactions_{contrast}_{m}"] = GT.score_interaction_changes(gi, truth, contrast, m)
    if traj is not None and assoc is not None:
        gts["longitudinal"] = L.compare_with_truth(traj["slopes"], assoc, truth)
    # what an ideal linear reconstruction would show (threshold-free check)
    synth_dir = Path(ground_truth).parent if Path(ground_truth).is_file() else Path(ground_truth)
    # the generator-implied changes follow the static scenario's model (couplings, coherence)
    static_truth = truth.get("scenario", "static") == "static"
    if not static_truth:
        skipped["implied changes"] = (f"the {truth['scenario']} scenario leaves the time-averaged covariance "
                                      "unchanged: the linear, instantaneous changes it implies are all zero")
    if static_truth and gp is not None and "dmn_drop" in gts and \
            (synth_dir / "ground_truth_recordings.tsv").is_file():
        from scipy.stats import spearmanr

        imp = GT.implied_changes(synth_dir, cohort.atlas, "AD-CN")
        ad = gp[gp["contrast"] == "AD-CN"].set_index("network")["estimate"].reindex(cohort.atlas.networks)
        gts["implied_AD-CN"] = {
            "predictability_spearman": float(spearmanr(ad, imp["r2_full"]).statistic),
            **{f"{m}_spearman": GT.agreement_with_implied(gi, imp[k], cohort.atlas.networks, "AD-CN", m)
               for m, k in (("occlusion_delta_r2", "delta_r2"), ("occlusion_share", "share"),
                            ("attention", "delta_r2"), ("enrichment", "delta_r2"),
                            ("linear_occlusion_delta_r2", "delta_r2"))}}
    write_json(out / "groundtruth.json", gts)
    keep = {"precision", "recall", "sign_agreement", "found", "slope_order_recovered", "cdr_sb_sign_recovered",
            "most", "least", "vis_gt_sub"}
    return {k: (v if k.startswith("implied") else {kk: vv for kk, vv in v.items() if kk in keep})
            for k, v in gts.items()}


def _group_analyses(cohort: Cohort, groups: G.Groups, pred: pd.DataFrame, inter: pd.DataFrame,
                    linear_pred: pd.DataFrame, emb_rows: Callable[[str, list[str]], np.ndarray], etab: pd.DataFrame,
                    info: Any, cv: C.CVConfig, fc_baselines: bool, out: Path, summary: dict[str, Any],
                    skipped: dict[str, str], adapted: dict[str, str], progress: bool, dynamic_fc: bool,
                    tasks: Sequence[str] | None, lap: Callable[[str], None]) -> tuple[Any, Any, Any, Any]:
    """:func:`run_suite`'s group stage: group differences (and ridge's), the largest-effect bootstraps,
    classification, the summary marker and the longitudinal models; fills ``summary``.

    Returns ``(groupdiff_predictability, groupdiff_interactions, trajectories, association)``, each None when
    not computed (``skipped`` says why).
    """
    gp = gi = None
    summary["groups"] = {"column": groups.column, "reference": groups.reference, "order": list(groups.order),
                         "contrasts": [f"{g}-{r}" for g, r in groups.contrasts]}
    # a level with a single subject cannot be compared; the other contrasts still are
    compared, why = G.comparable_groups(cohort.table.loc[G.baseline_rows(cohort.table)], groups)
    skipped.update({f"group differences {c}": w for c, w in why.items()})
    try:
        if compared is not None:
            gp, gi = group_tables(pred, inter, cohort, groups=compared)
            write_tsv(out / "groupdiff_predictability.tsv", gp)
            # "the largest effect" with its uncertainty: a subject bootstrap of every network's d (claim 3);
            # a pilot too small for it keeps its group differences
            try:
                largest = _largest_effects(pred, cohort, compared, n_boot=cv.n_bootstrap, seed=cv.seed)
                write_tsv(out / "groupdiff_largest.tsv", largest)
            except InputError as exc:
                skipped["largest-effect bootstrap"] = str(exc)
            write_tsv(out / "groupdiff_interactions.tsv", gi)
            # one Benjamini–Hochberg family per measure and contrast, across its cells
            summary["fdr_families"] = list(dict.fromkeys(pd.concat([gp, gi])["fdr_family"]))
    except InputError as exc:
        gp = gi = None
        skipped["group differences"] = str(exc)
    ridge = linear_pred[linear_pred["method"] == "ridge"] if "method" in linear_pred else linear_pred.iloc[:0]
    if gp is not None and len(ridge):
        try:    # the same test on ridge's predictability: the scorecard's linear verdict on the DMN claim
            write_tsv(out / "groupdiff_predictability_linear.tsv",
                      group_tables(ridge, None, cohort, groups=compared)[0].assign(method="ridge"))
            # and ridge's "largest effect" with the same bootstrap (same resamples: same seed and strata)
            write_tsv(out / "groupdiff_largest_linear.tsv",
                      _largest_effects(ridge, cohort, compared, n_boot=cv.n_bootstrap, seed=cv.seed)
                      .assign(method="ridge"))
        except InputError as exc:
            skipped["ridge group differences"] = str(exc)
    lap("group statistics")
    summary["classification"] = _classification(cohort, groups, pred, inter, linear_pred, emb_rows, etab, info,
                                                cv, fc_baselines, out, skipped, progress, dynamic_fc, tasks,
                                                adapted)
    lap("classification")
    def fc_rows(ids: list[str]) -> np.ndarray:
        h = cohort.harmonized(info.target_tr)
        return C.connectivity_features(C.as_series_array([np.asarray(h.series(h.index_of(r))) for r in ids]))

    summary["longitudinal"], traj, assoc = _marker_and_longitudinal(cohort, groups, emb_rows, etab, cv, out,
                                                                    skipped, progress, adapted,
                                                                    fc_rows if fc_baselines else None)
    lap("marker and longitudinal")
    return gp, gi, traj, assoc


def _linear_references(info: Any, cohort: Cohort, tiles: TiledWindows, rec_ids: list[str],
                       linear_fit_cohort: str | Path | Sequence[str | Path] | None, seed: int, out: Path,
                       skipped: dict[str, str], adapted: dict[str, str],
                       progress: bool) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any] | None]:
    """:func:`run_suite`'s linear references (ridge with its occlusion, lagged ridge) on the model's recordings;
    writes ``predictability_linear.tsv``. Returns ``(predictions, ridge occlusion or None, summary or None)``."""
    fit_paths = [linear_fit_cohort] if isinstance(linear_fit_cohort, (str, Path)) else linear_fit_cohort
    fit_cohorts = [Cohort.open(p) for p in fit_paths] if fit_paths else None
    linear, lin_occ, lin_fit = [], None, {}
    try:
        for method in LINEAR_METHODS:
            lp, lo = linear_predictability_and_occlusion(info, cohort, method, fit_cohort=fit_cohorts,
                                                         recordings=rec_ids, occlusion=method == "ridge", seed=seed,
                                                         progress=progress, tiles=tiles)
            linear.append(lp)
            lin_occ = lo if lo is not None else lin_occ
            lin_fit = lp.attrs["fit"]
    except InputError as exc:
        # e.g. cross-fitting on 2 subjects: each fit needs 2 subjects to choose its penalty
        skipped["linear references"] = str(exc)
        linear, lin_occ = [], None
    linear_summary = None
    linear_pred = pd.concat(linear, ignore_index=True) if linear else pd.DataFrame(columns=["recording_id", "method"])
    if linear:
        write_tsv(out / "predictability_linear.tsv", linear_pred)
        mean_r2 = linear_pred.groupby(["method", "network"], sort=False)["r2"].mean().round(4)
        linear_summary = {"fit": {k: v for k, v in lin_fit.items() if k not in ("left_out_subjects", "method")},
                          "mean_r2": {m: mean_r2[m].to_dict() for m in LINEAR_METHODS}}
        if lin_fit.get("note"):
            adapted["linear references"] = lin_fit["note"]
    return linear_pred, lin_occ, linear_summary


def _classification(cohort: Cohort, groups: G.Groups, pred: pd.DataFrame, inter: pd.DataFrame,
                    linear_pred: pd.DataFrame, emb_rows: Callable[[str, list[str]], np.ndarray],
                    etab: pd.DataFrame, info: Any, cv: C.CVConfig, fc_baselines: bool, out: Path,
                    skipped: dict[str, str], progress: bool, dynamic_fc: bool = False,
                    tasks: Sequence[str] | None = None, adapted: dict[str, str] | None = None) -> dict[str, Any]:
    """Every task of ``groups`` (reference vs each level, all levels) on baseline visits, every feature set.

    All feature sets of a task share its folds. A task that cannot be cross-validated
    (a level with fewer than 2 subjects) is skipped and named in ``skipped``; folds that
    a small cohort changed are described in ``adapted``.
    """
    have = set(etab["recording_id"]) & set(pred["recording_id"])
    ids = [r for r in cohort.table["recording_id"] if r in have]
    table = cohort.table.set_index("recording_id").loc[ids].reset_index()
    feats = _feature_sets(cohort, pred, inter, linear_pred, emb_rows, ids, info, fc_baselines, dynamic_fc)
    results: dict[str, Any] = {}
    for task in C.tasks_for(groups):
        if tasks is not None and task.name not in tasks:
            continue
        what = f"classification {task.name} ({' vs '.join(task.classes)})"
        try:
            res = C.run_classification(feats, table, task, cv, progress=progress)
        except InputError as exc:
            results[task.name] = {"skipped": str(exc)}
            skipped[what] = str(exc)
            continue
        _note(adapted, what, res["folds"].notes)
        write_tsv(out / f"classification_{task.name}_summary.tsv", res["summary"])
        write_tsv(out / f"classification_{task.name}_predictions.tsv", res["predictions"])
        results[task.name] = res["summary"].set_index("feature_set")[["auc", "balanced_accuracy"]].to_dict("index")
    return results


def _note(adapted: dict[str, str] | None, what: str, notes: Sequence[str]) -> None:
    """Record how a small cohort changed an analysis's folds (nothing when it did not)."""
    if adapted is not None and notes:
        adapted[what] = "; ".join(notes)


def _feature_sets(cohort: Cohort, pred: pd.DataFrame, inter: pd.DataFrame, linear_pred: pd.DataFrame,
                  emb_rows: Callable[[str, list[str]], np.ndarray], ids: list[str], info: Any,
                  fc_baselines: bool, dynamic_fc: bool = False) -> list[C.FeatureSet]:
    """The model's features and the references of the recordings ``ids`` (in that order).

    References: the same-frame ridge's predictability profile (what the model's profile is
    measured against, :mod:`bi_core.analysis.linear`), with ``fc_baselines`` FC
    correlation and tangent, and with ``dynamic_fc`` the SD of network pairs' sliding-window
    correlations (every series at the model's TR).
    """
    feats = [C.FeatureSet("BrainInterNet embedding", emb_rows(EMBEDDING_KIND, ids)),
             C.FeatureSet(UNTRAINED_EMBEDDING, emb_rows(UNTRAINED_PREFIX + EMBEDDING_KIND, ids)),
             C.FeatureSet("embedding (mean-pooled)", emb_rows("pooled", ids)),
             C.FeatureSet("predictability profile", features_from_table(pred, "r2", ["network"], ids)),
             C.FeatureSet("interaction matrix", features_from_table(inter, "attention", ["target", "source"], ids))]
    if (linear_pred["method"] == "ridge").any():      # absent when the linear references were skipped
        feats.append(C.FeatureSet("ridge predictability profile", features_from_table(
            linear_pred[linear_pred["method"] == "ridge"], "r2", ["network"], ids)))
    if fc_baselines:
        h = cohort.harmonized(info.target_tr)
        series = C.as_series_array([np.asarray(h.series(h.index_of(r))) for r in ids])
        feats += [C.FeatureSet("FC correlation", C.connectivity_features(series, "correlation")),
                  C.FeatureSet("FC tangent", series, connectivity="tangent")]
    if dynamic_fc:

        h = cohort.harmonized(info.target_tr)
        tr = float(info.target_tr) if info.target_tr is not None else float(h.table["tr"].iloc[0])
        feats.append(C.FeatureSet(DYNAMIC_FC_NAME, dynamic_fc_features(
            [np.asarray(h.series(h.index_of(r))) for r in ids], tr, cohort.atlas)))
    return feats


def _target(cohort: Cohort, target: str, pred: pd.DataFrame, inter: pd.DataFrame, linear_pred: pd.DataFrame,
            emb_rows: Callable[[str, list[str]], np.ndarray], etab: pd.DataFrame, info: Any, cv: C.CVConfig,
            fc_baselines: bool, out: Path, skipped: dict[str, str], progress: bool,
            adapted: dict[str, str] | None = None) -> dict[str, Any]:
    """Association of the numeric ``target`` with each network's predictability, and its prediction.

    Baseline visits with a value of the target; the prediction is skipped (and named in
    ``skipped``) with fewer than :data:`~bi_core.analysis.target.MIN_PREDICTION_SUBJECTS`
    subjects, and uses leave-one-subject-out with fewer subjects than folds (``adapted``).
    """
    t = cohort.table
    base = t.loc[G.baseline_rows(t) & t[target].notna().to_numpy()]
    have = set(etab["recording_id"]) & set(pred["recording_id"])
    ids = [r for r in base["recording_id"] if r in have]
    name = G.slug(target)
    p = with_phenotypes(pred[pred["recording_id"].isin(ids)], cohort, (*PHENOTYPES, target))
    assoc = T.target_association(p, "r2", ["network"], target)
    write_tsv(out / f"target_{name}_association.tsv", assoc)
    res: dict[str, Any] = {"column": target, "n_subjects": len(ids),
                           "association_significant": assoc.loc[assoc["significant"], "network"].tolist()}
    rows = base.set_index("recording_id").loc[ids]
    try:
        pr = T.predict_target(_feature_sets(cohort, pred, inter, linear_pred, emb_rows, ids, info, fc_baselines),
                              rows[target].to_numpy(float), rows["subject"].to_numpy(), cv, progress=progress)
    except InputError as exc:
        skipped[f"prediction of {target}"] = str(exc)
        return res
    _note(adapted, f"prediction of {target}", pr["cv_notes"])
    write_tsv(out / f"target_{name}_prediction.tsv", pr["summary"])
    write_tsv(out / f"target_{name}_predictions.tsv", pr["predictions"])
    res["prediction"] = pr["summary"].set_index("feature_set")[["r", "mae"]].to_dict("index")
    return res


def _marker_and_longitudinal(cohort: Cohort, groups: G.Groups, emb_rows: Callable[[str, list[str]], np.ndarray],
                             etab: pd.DataFrame, cv: C.CVConfig, out: Path, skipped: dict[str, str],
                             progress: bool, adapted: dict[str, str] | None = None,
                             fc_rows: Callable[[list[str]], np.ndarray] | None = None
                             ) -> tuple[dict[str, Any], dict[str, Any] | None, pd.DataFrame | None]:
    """The summary marker (the last level vs the reference) of every visit, its mixed models and its references
    (:func:`_reference_markers`: the untrained encoder, and with ``fc_rows`` network FC).

    Returns ``(summary, trajectories, clinical association)``; the last two are ``None``
    when the models were skipped (no longitudinal visits, too few subjects...).
    """
    last = [g for g in groups.order if g != groups.reference][-1]
    task = C.ClassificationTask(f"{G.slug(last)}_{G.slug(groups.reference)}", (groups.reference, last), groups.column)
    all_ids = [r for r in cohort.table["recording_id"] if r in set(etab["recording_id"])]
    all_table = cohort.table.set_index("recording_id").loc[all_ids].reset_index()
    what = f"summary marker ({last} vs {groups.reference})"
    try:
        marker = C.summary_marker(emb_rows(EMBEDDING_KIND, all_ids), all_table, cv, progress=progress, task=task)
    except InputError as exc:
        skipped[f"{what} and longitudinal models"] = str(exc)
        return {"skipped": str(exc)}, None, None
    _note(adapted, what, marker.attrs["cv_notes"])
    write_tsv(out / "marker.tsv", marker)
    long_df = with_phenotypes(marker, cohort, (*PHENOTYPES, groups.column))
    kw = dict(column=groups.column, groups=groups.order)
    try:
        traj = L.marker_trajectories(long_df, reference=groups.reference, **kw)
        write_tsv(out / "longitudinal_slopes.tsv", traj["slopes"])
        write_tsv(out / "longitudinal_fixed.tsv", traj["fixed"])
        write_tsv(out / "longitudinal_lines.tsv", traj["lines"])
        parts = [L.clinical_association(long_df, s, **kw) for s in ("cdr_sb", "mmse")
                 if s in long_df and long_df[s].notna().any()]
        assoc = pd.concat(parts, ignore_index=True) if parts else None
        if assoc is not None:
            write_tsv(out / "longitudinal_association.tsv", assoc)
        conv = None
        if "converter" in long_df and groups.column == "diagnosis":
            try:
                conv = L.converter_trajectories(long_df)
                write_tsv(out / "longitudinal_converters.tsv", conv["slopes"])
            except InputError as exc:
                conv = {"skipped": str(exc)}
        write_json(out / "longitudinal.json", {"lrt": traj["lrt"], "random_effects": traj["random_effects"],
                                               "converged": traj["converged"], "n_subjects": traj["n_subjects"],
                                               "n_visits": traj["n_visits"], "formula": traj["formula"],
                                               "converters": None if conv is None else
                                               {k: v for k, v in conv.items() if k != "slopes"}})
        refs = {"untrained": lambda ids: emb_rows(UNTRAINED_PREFIX + EMBEDDING_KIND, ids)}
        if fc_rows is not None:
            refs["fc"] = fc_rows
        _reference_markers(cohort, groups, refs, all_ids, all_table, task, cv, out, skipped, progress)
        return {"slopes": traj["slopes"].set_index("group")["slope"].to_dict(), "lrt_p": traj["lrt"]["p"]}, traj, assoc
    except InputError as exc:
        skipped["longitudinal models"] = str(exc)
        return {"skipped": str(exc)}, None, None


def _reference_markers(cohort: Cohort, groups: G.Groups, features: dict[str, Callable[[list[str]], np.ndarray]],
                       all_ids: list[str], all_table: pd.DataFrame, task: Any, cv: C.CVConfig, out: Path,
                       skipped: dict[str, str], progress: bool) -> None:
    """The summary marker's references: the same classifier, folds, mixed models and clinical association on
    other features of the same visits (``longitudinal.MARKER_REFERENCES``; ``features``: suffix -> rows of ``ids``).

    Writes ``marker_<suffix>.tsv``, ``longitudinal_slopes_<suffix>.tsv``, ``longitudinal_<suffix>.json`` and
    ``longitudinal_association_<suffix>.tsv`` (CDR-SB). Chapter 6 shows them beside the model's marker, so "the marker
    tracks severity" is credited to pretraining only where the untrained encoder's does not, and to the model
    only where it does better than FC (:func:`bi_core.analysis.longitudinal.marker_reference_text`).
    """
    for suffix, rows in features.items():
        what = f"{L.MARKER_REFERENCES[suffix]} marker"
        try:
            m = C.summary_marker(rows(all_ids), all_table, cv, progress=progress, task=task)
            write_tsv(out / f"marker_{suffix}.tsv", m)
            long_df = with_phenotypes(m, cohort, (*PHENOTYPES, groups.column))
            kw = dict(column=groups.column, groups=groups.order)
            traj = L.marker_trajectories(long_df, reference=groups.reference, **kw)
            # CDR-SB only: the score claim 6 and chapter 6's comparison read (each association is four mixed fits)
            parts = [L.clinical_association(long_df, "cdr_sb", **kw)] if "cdr_sb" in long_df and \
                long_df["cdr_sb"].notna().any() else []
        except InputError as exc:
            skipped[what] = str(exc)
            continue
        write_tsv(out / f"longitudinal_slopes_{suffix}.tsv", traj["slopes"])
        write_json(out / f"longitudinal_{suffix}.json", {"lrt": traj["lrt"], "converged": traj["converged"],
                                                         "formula": traj["formula"]})
        if parts:
            write_tsv(out / f"longitudinal_association_{suffix}.tsv", pd.concat(parts, ignore_index=True))


def _order_check(pred: pd.DataFrame, truth: dict[str, Any]) -> dict[str, Any]:
    """Most and least predictable networks versus the generator's expectation (VIS > SUB)."""
    means = pred.groupby("network")["r2"].mean().sort_values(ascending=False)
    exp = truth.get("expected_predictability", {"most": "VIS", "least": "SUB"})
    out = {"most": str(means.index[0]), "least": str(means.index[-1]), "expected_most": exp["most"],
           "expected_least": exp["least"], "mean_r2": {k: round(float(v), 4) for k, v in means.items()}}
    if "VIS" in means and "SUB" in means:
        out["vis_gt_sub"] = bool(means["VIS"] > means["SUB"])
    return out


def load_summary(out: str | Path) -> dict[str, Any]:
    """Read ``summary.json`` of a suite directory."""
    p = Path(out) / "summary.json"
    if not p.is_file():
        raise InputError(f"{p} not found; run `bi-core analyze` first.")
    return json.loads(p.read_text())


__all__ = ["UNTRAINED_EMBEDDING", "untrained_model", "run_suite", "group_tables", "interaction_differences", "features_from_table", "load_summary", "read_embeddings"]
