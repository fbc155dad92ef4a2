"""Null calibration: the book's group-difference and classification paths on data with no disease effect.

The ``null`` scenario is the synthetic generator (:mod:`bi_core.synth`) with its disease
effects set to zero: three groups (CN, MCI, AD, the book's labels) whose subjects all have
severity 0 and draw age, sex and site from the same ranges, so the labels carry no
information about the recordings. The generator draws every subject independently (its
own seed stream), so one null cohort of ``n_replicates × n_per_group`` subjects per group,
split into disjoint parts, gives independent replicate cohorts. Each runs through:

- **group differences** (:func:`bi_core.analysis.groupstats.group_differences`, the path of
  ``groupdiff_*.tsv``): the AD−CN difference of each network pair's functional
  connectivity (Fisher z of the correlation of the network-mean signals), OLS with the
  covariates every recording has (age, sex, site), Benjamini–Hochberg across the pairs.
  Two rates: the share of pairs with p < α (per test), and the share of replicates with
  any q < α (under this global null the FDR is the family-wise rate, ≤ α);
- **classification** (:func:`bi_core.analysis.classify.run_classification`, the path of
  ``classification_<task>_summary.tsv``) on FC correlation features: AD vs CN with a
  label-permutation p < α, AD vs CN with the AUC's bootstrap interval above chance
  (one-sided, nominal (1 − level) / 2), claim 5's rule on the 3-class balanced accuracy
  (interval above chance and p < α), and, for comparison, the rule it replaced (the
  lower end of a t interval over the CV repeats above chance).

A path is **anti-conservative** when its observed rate exceeds its nominal level by more
than ``z`` Monte-Carlo standard errors: ``√(nominal · (1 − nominal) / n)`` for a decision
per replicate, the SE of the per-replicate shares for the per-test rate (the pairs of one
replicate are correlated).

Cost: about a second per replicate at 8 subjects per group on the smoke atlas with ``C``
fixed (``inner_splits=1``), a few with ``C`` tuned as in the book.

Wiring (not done here): a ``null-calibration`` step in :mod:`bi_core.steps` calling
:func:`null_calibration` at the book's sizes (``n_per_group`` of the default cohort's
groups, the preset's :class:`~bi_core.analysis.classify.CVConfig`) and writing the table
for the reproducibility chapter.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..stats import t_interval
from ..synth import PRESETS, GroupSpec, generate
from . import classify as C
from . import groupstats as G
from . import longitudinal as L

#: Significance level of the calibrated rules (the scorecard's).
ALPHA = 0.05
#: The null groups: the book's labels, none with a disease effect.
NULL_GROUPS: tuple[str, ...] = ("CN", "MCI", "AD")


def null_config(n_per_group: int = 20, base: str = "smoke", age: tuple[float, float] = (60.0, 85.0)) -> Any:
    """The ``null`` scenario: ``base``'s atlas and sites, :data:`NULL_GROUPS` at severity 0, one visit each.

    No pretraining cohort is written (the paths calibrated here do not train a model).
    """
    groups = tuple(GroupSpec(g, int(n_per_group), (0.0, 0.0), age) for g in NULL_GROUPS)
    return replace(PRESETS[base], name=f"null-{base}", pretrain=(), n_cn=0, n_mci=0, n_ad=0, groups=groups,
                   group_column="diagnosis")


def network_fc(cohort: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """Network-pair FC of every recording and the ROI series' FC edges.

    Returns
    -------
    (tidy, edges)
        ``tidy``: one row per (recording, network pair): ``recording_id``, ``pair``
        (``"A–B"``), ``fc`` (Fisher z of the correlation of the two networks' mean signals);
        ``edges``: ``[n_recordings, n_rois·(n_rois−1)/2]`` FC correlation features
        (:func:`bi_core.analysis.classify.connectivity_features`).
    """
    nets = list(cohort.atlas.networks)
    of = np.asarray(cohort.atlas.roi_networks)
    rows, edges, series = [], [], []
    ids = list(cohort.table["recording_id"])
    for i, rid in enumerate(ids):
        x = np.asarray(cohort.series(i), dtype=float)
        series.append(x)
        r = np.corrcoef(np.stack([x[:, of == n].mean(1) for n in nets], 1), rowvar=False)
        rows += [{"recording_id": rid, "pair": f"{a}–{b}", "fc": float(np.arctanh(np.clip(r[j, k], -0.999, 0.999)))}
                 for j, a in enumerate(nets) for k, b in enumerate(nets) if j < k]
        if len(series) == 256 or i == len(ids) - 1:     # each recording's FC on its own: chunks bound the memory
            edges.append(C.connectivity_features(C.as_series_array(series), "correlation"))
            series = []
    return pd.DataFrame(rows), np.vstack(edges)


def null_replicate(table: pd.DataFrame, tidy: pd.DataFrame, edges: np.ndarray, cv: C.CVConfig,
                   alpha: float = ALPHA) -> dict[str, float]:
    """One null cohort through both paths: each rule's decision (1.0 / 0.0) and the per-test share.

    ``table``: its recordings (one per subject); ``tidy``, ``edges``: :func:`network_fc` of them
    (``edges`` in ``table``'s order).
    """
    groups = G.Groups("diagnosis", NULL_GROUPS, NULL_GROUPS[0])
    df = tidy.merge(table, on="recording_id")
    gd = G.group_differences(df, "fc", ["pair"], covariates=G.available_covariates(table),
                             contrasts=[("AD", "CN")], alpha=alpha)
    out: dict[str, float] = {"gd_per_test": float((gd["p"] < alpha).mean()),
                             "gd_any_fdr": float((gd["q"] < alpha).any())}
    feats = [C.FeatureSet("FC correlation", edges)]
    two = C.run_classification(feats, table, C.tasks_for(groups)[0], cv)["summary"].iloc[0]
    out["auc_perm"] = float(two["auc_p_perm"] < alpha)
    out["auc_boot"] = float(two["auc_ci_low"] > two["auc_chance"])
    three = C.run_classification(feats, table, C.tasks_for(groups)[-1], cv)
    s3 = three["summary"].iloc[0]
    out["claim5"] = float(s3["balanced_accuracy_ci_low"] > s3["balanced_accuracy_chance"]
                          and s3["balanced_accuracy_p_perm"] < alpha)
    # the rule claim 5 used before: a 95 % t interval over the CV repeats' balanced accuracies
    from sklearn.metrics import balanced_accuracy_score

    per = [balanced_accuracy_score(g["y_true"], g["y_pred"]) for _, g in three["predictions"].groupby("repeat")]
    lo = t_interval(np.array(per))[1]
    out["former_claim5"] = float(np.isfinite(lo) and lo > s3["balanced_accuracy_chance"])
    return out


#: The calibrated rules: (key, path, rule, whether the book decides with it). The others are shown for comparison:
#: the bootstrap interval alone describes the uncertainty of the fitted CV's AUC (conditional on the fitted models,
#: it is no test against chance: the permutation p is), and the former claim 5 rule is the one it replaced.
RULES: tuple[tuple[str, str, str, bool], ...] = (
    ("gd_per_test", "group differences (AD−CN, network-pair FC)", "p < α, each pair", True),
    ("gd_any_fdr", "group differences (AD−CN, network-pair FC)", "any pair with BH q < α", True),
    ("auc_perm", "classification AD vs CN (FC correlation)", "label-permutation p < α", True),
    ("auc_boot", "classification AD vs CN (FC correlation)", "AUC bootstrap interval above 0.5", False),
    ("claim5", "classification CN/MCI/AD (FC correlation)", "claim 5: bootstrap interval above chance and p < α",
     True),
    ("former_claim5", "classification CN/MCI/AD (FC correlation)",
     "former claim 5: t interval over CV repeats above chance", False),
)


def _nominal(key: str, alpha: float, level: float) -> float:
    # one side of a two-sided interval for the interval rules; alpha for the tests
    return (1 - level) / 2 if key in ("auc_boot", "former_claim5") else alpha


def null_calibration(n_replicates: int = 100, n_per_group: int = 20, alpha: float = ALPHA, seed: int = 0,
                     cv: C.CVConfig | None = None, base: str = "smoke", z: float = 3.0,
                     progress: bool = False) -> pd.DataFrame:
    """Observed false-positive rate of each rule beside its nominal level, over null cohorts.

    Parameters
    ----------
    n_replicates
        Null cohorts: disjoint parts of one null cohort generated with ``seed`` (:func:`null_config`).
    n_per_group
        Subjects per group (three groups).
    cv
        Classification settings (default: the smoke preset's 3 folds × 2 repeats, 2 inner
        folds, 199 permutations, 500 bootstrap resamples).
    z
        Monte-Carlo standard errors above the nominal level that flag a rule as anti-conservative.

    Returns
    -------
    DataFrame
        One row per rule (:data:`RULES`): ``path``, ``rule``, ``book_decides`` (the book decides
        with it; the others are shown for comparison), ``nominal``, ``n_replicates``, ``rate``
        (observed), ``mc_se``, ``anti_conservative`` (rate > nominal + z · mc_se).
    """
    cv = cv or C.CVConfig(n_splits=3, n_repeats=2, inner_splits=2, Cs=(0.01, 0.1, 1.0), n_permutations=199,
                          n_bootstrap=500, seed=seed)
    cfg = null_config(int(n_per_group) * int(n_replicates), base)
    results = []
    it = range(int(n_replicates))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="null calibration", unit="cohort")
    with tempfile.TemporaryDirectory(prefix="bi-core-null-") as tmp:
        cohort = Cohort.open(generate(Path(tmp) / "null", cfg, seed=seed, progress=False) / "eval")
        tidy, edges = network_fc(cohort)
    table = cohort.table.reset_index(drop=True)
    # replicate r: the r-th block of n_per_group subjects of every group (the generator's subjects are independent)
    block = table.groupby("diagnosis", sort=False).cumcount().to_numpy() // int(n_per_group)
    for r in it:
        rows = np.flatnonzero(block == r)
        part = table.iloc[rows].reset_index(drop=True)
        results.append(null_replicate(part, tidy[tidy["recording_id"].isin(set(part["recording_id"]))], edges[rows],
                                      cv, alpha))
    res = pd.DataFrame(results)
    out = rates(res, alpha, z)
    out.attrs["replicates"] = res
    return out


def rates(replicates: pd.DataFrame, alpha: float = ALPHA, z: float = 3.0, level: float = C.LEVEL) -> pd.DataFrame:
    """The calibration table from the replicates' decisions (one column per :data:`RULES` key, one row per cohort).

    ``mc_se``: the binomial SE at the nominal level for a decision per replicate; for the
    per-test share, the SE of the replicates' shares. ``anti_conservative``: rate > nominal + z · mc_se.
    """
    rows = []
    for key, path, rule, decides in RULES:
        x = replicates[key].to_numpy(float)
        nominal = _nominal(key, alpha, level)
        n = len(x)
        se = (float(x.std(ddof=1) / math.sqrt(n)) if key == "gd_per_test" and n > 1
              else math.sqrt(nominal * (1 - nominal) / n))
        rate = float(x.mean())
        rows.append({"path": path, "rule": rule, "book_decides": decides, "nominal": nominal, "n_replicates": n,
                     "rate": rate, "mc_se": se, "anti_conservative": bool(rate > nominal + z * se)})
    return pd.DataFrame(rows)


def mixed_model_null(df: pd.DataFrame, n_permutations: int = 200, alpha: float = ALPHA, seed: int = 0,
                     z: float = 3.0, value: str = "marker", column: str = "diagnosis",
                     groups: tuple[str, ...] = NULL_GROUPS, reference: str = NULL_GROUPS[0],
                     covariates: tuple[str, ...] = ("age", "sex", "site"),
                     progress: bool = False) -> pd.DataFrame:
    """False-positive rate of the longitudinal mixed model's interaction test, by permuting the baseline group.

    The book's trajectory model (:func:`bi_core.analysis.longitudinal.marker_trajectories`:
    ``value ~ years * baseline group + covariates`` with a random intercept and slope per
    subject, the years × group interaction tested by a likelihood-ratio test) is refitted on
    the book's own longitudinal table with each subject's baseline group drawn at random
    without replacement from the subjects' groups (group sizes kept; every visit of a subject
    keeps its marker, covariates and timing). The interaction is then null by construction
    while the within-subject correlation, the visit pattern and the marker's distribution stay
    those of the book, which a generator-made null could not promise.

    Parameters
    ----------
    df
        One row per visit, as :func:`~bi_core.analysis.longitudinal.marker_trajectories` takes
        it (``subject``, ``years_from_baseline``, ``value``, the group ``column``, covariates).
    n_permutations
        Permuted tables fitted (each: one REML and two ML fits).

    Returns
    -------
    DataFrame
        One row in the layout of :func:`rates` (``path``, ``rule``, ``book_decides``,
        ``nominal``, ``n_replicates``, ``rate``, ``mc_se``, ``anti_conservative``) plus
        ``n_fallback`` (fits that fell back to a random intercept) and ``n_unconverged`` (LRTs
        with a non-converged ML fit); ``attrs["replicates"]`` holds each permutation's p.
    """
    bcol = L.baseline_column(column)
    d = L.prepare(df, value, column, groups)
    base = d.groupby("subject", sort=True)[bcol].first()
    rng = np.random.default_rng(seed)
    it = range(int(n_permutations))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="mixed-model null", unit="permutation")
    rows = []
    for _ in it:
        perm = d["subject"].map(pd.Series(rng.permutation(base.to_numpy()), index=base.index))
        # the group column itself carries the permuted baseline at every visit, so prepare() re-derives the same
        dp = d.drop(columns=[bcol]).assign(**{column: perm, bcol: perm})
        res = L.marker_trajectories(dp, value, covariates, groups, reference, column)
        rows.append({"p": res["lrt"]["p"], "random_slope": res["random_effects"] == L.RANDOM_SLOPE,
                     "lrt_converged": not res["lrt"]["note"]})
    rep = pd.DataFrame(rows)
    n = len(rep)
    rate = float((rep["p"] < alpha).mean())
    se = math.sqrt(alpha * (1 - alpha) / n)
    out = pd.DataFrame([{"path": f"longitudinal mixed model ({value}, years × baseline {column})",
                         "rule": "likelihood-ratio p < α (subject-level label permutations of the book's table)",
                         "book_decides": True, "nominal": alpha, "n_replicates": n, "rate": rate, "mc_se": se,
                         "anti_conservative": bool(rate > alpha + z * se),
                         "n_fallback": int((~rep["random_slope"]).sum()),
                         "n_unconverged": int((~rep["lrt_converged"]).sum())}])
    out.attrs["replicates"] = rep
    return out


def clinical_association_null(df: pd.DataFrame, score: str, n_permutations: int = 100, alpha: float = ALPHA,
                              seed: int = 0, z: float = 3.0, value: str = "marker", column: str = "diagnosis",
                              groups: tuple[str, ...] = NULL_GROUPS,
                              covariates: tuple[str, ...] = ("age", "sex", "site"),
                              progress: bool = False) -> pd.DataFrame:
    """False-positive rate of the clinical association's two tests, by permuting marker trajectories.

    The book's association model (:func:`bi_core.analysis.longitudinal.clinical_association`:
    ``score ~ marker_within + marker_between + years + covariates``, random intercept and
    slope, each part tested by a likelihood-ratio test) is refitted on the book's own table
    with each subject's whole marker trajectory (its markers in visit order) handed to another
    subject **with the same number of visits** (a permutation within each visit-count
    stratum). Every subject keeps its scores, timing and covariates, and every trajectory its
    within-subject shape. (Permuting across visit counts would need a trajectory to be cut or
    padded; a stratum of one subject keeps its own.) The number of visits can itself go with
    both the marker and the score (in the book's cohort, subjects with 4–5 visits have a higher
    mean marker and CDR-SB), which a within-stratum permutation would keep as a between-subject
    association; so every trajectory is first shifted by its stratum's mean subject marker
    (to the overall mean). Both the within- and the between-subject association are then null
    by construction while the visit pattern stays the book's.

    Returns
    -------
    DataFrame
        One row per part (``within``, ``between``) in the layout of :func:`rates` plus
        ``n_fallback`` and ``n_unconverged`` (as :func:`mixed_model_null`) and
        ``n_fixed_subjects`` (subjects alone in their visit-count stratum, so never moved);
        ``attrs["replicates"]`` holds each permutation's p-values.
    """
    d = df.dropna(subset=[score, value]).sort_values(["subject", "years_from_baseline"], kind="stable")
    d = d.reset_index(drop=True)
    visits = d.groupby("subject", sort=True).size()
    strata = [s.index.to_numpy() for _, s in visits.groupby(visits)]
    # the visit-count strata's mean subject marker moved to the overall mean: no association rides on the stratum
    subject_mean = d.groupby("subject", sort=True)[value].mean()
    stratum_mean = subject_mean.groupby(visits).transform("mean")
    shifted = d[value].to_numpy() + d["subject"].map(subject_mean.mean() - stratum_mean).to_numpy()
    rng = np.random.default_rng(seed)
    it = range(int(n_permutations))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="clinical-association null", unit="permutation")
    rows = []
    by_subject = {s: g.index.to_numpy() for s, g in d.groupby("subject", sort=True)}
    for _ in it:
        new = shifted.copy()
        for subjects in strata:
            donors = rng.permutation(subjects)
            for subj, donor in zip(subjects, donors):
                new[by_subject[subj]] = shifted[by_subject[donor]]
        res = L.clinical_association(d.assign(**{value: new}), score, value, covariates, column, groups)
        rows.append({part: float(r["p"]) for part, r in res.set_index("part").iterrows()}
                    | {"random_slope": bool((res["random_effects"] == L.RANDOM_SLOPE).all()),
                       "lrt_converged": not res["test"].str.contains(r"\(").any()})
    rep = pd.DataFrame(rows)
    n = len(rep)
    se = math.sqrt(alpha * (1 - alpha) / n)
    out = pd.DataFrame([{"path": f"clinical association ({score} ~ marker, {part}-subject)",
                         "rule": "likelihood-ratio p < α (marker trajectories, centred per visit-count stratum, "
                                 "permuted between subjects with as many visits)",
                         "book_decides": False, "nominal": alpha, "n_replicates": n,
                         "rate": float((rep[part] < alpha).mean()), "mc_se": se,
                         "anti_conservative": bool((rep[part] < alpha).mean() > alpha + z * se),
                         "n_fallback": int((~rep["random_slope"]).sum()),
                         "n_unconverged": int((~rep["lrt_converged"]).sum()),
                         "n_fixed_subjects": int(sum(len(s) for s in strata if len(s) == 1))}
                        for part in ("within", "between")])
    out.attrs["replicates"] = rep
    return out

