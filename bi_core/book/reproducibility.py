"""The reproducibility page: every step's timing and the environment (it runs last), and the null calibration
(step ``null-calibration``): the book's group-difference and classification rules on cohorts with no disease
effect, each false-positive rate beside its nominal level (:mod:`bi_core.analysis.calibration`), and the longitudinal
mixed model's interaction test on the book's own marker table with permuted baseline groups (step ``null-longitudinal``)."""

from __future__ import annotations

from typing import Any

from ..steps import Context, Step
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.

#: Null cohorts, subjects per group, label permutations and bootstrap resamples per book preset. The default's
#: 60 cohorts of 20 subjects per group with the book's CV settings put a Monte-Carlo SE of 0.028 on a rate of
#: 0.05 (minutes on one core); the smoke book checks that the step runs, not the rates.
NULL_SIZES: dict[str, dict[str, int]] = {
    "smoke": {"n_replicates": 4, "n_per_group": 6, "n_permutations": 99, "n_bootstrap": 200},
    "default": {"n_replicates": 60, "n_per_group": 20, "n_permutations": 1000, "n_bootstrap": 2000},
    "full": {"n_replicates": 100, "n_per_group": 20, "n_permutations": 1000, "n_bootstrap": 2000}}


def _null_settings(c: Context) -> dict[str, Any]:
    p = c.preset
    return {**NULL_SIZES[p.name], "seed": c.seed, "base": p.synth, "folds": p.cv_folds, "repeats": p.cv_repeats,
            "Cs": list(p.cv_Cs), "inner_splits": p.cv_inner_splits}


def _null_calibration(ctx: Context) -> None:
    from .._io import atomic_dir, write_tsv
    from ..analysis.calibration import null_calibration
    from dataclasses import replace

    s, p = _null_settings(ctx), ctx.preset
    # the book's classification settings with the null study's (smaller) resampling counts
    cv = replace(p.cv(ctx.seed), n_permutations=s["n_permutations"], n_bootstrap=s["n_bootstrap"])
    table = null_calibration(s["n_replicates"], s["n_per_group"], seed=ctx.seed, cv=cv, base=p.synth,
                             progress=not ctx.quiet)
    with atomic_dir(ctx.out / "null-calibration", overwrite=True) as out:
        write_tsv(out / "null_calibration.tsv", table.assign(n_per_group=s["n_per_group"]))
        write_tsv(out / "null_replicates.tsv", table.attrs["replicates"])


#: Label permutations of the longitudinal table per book preset (each: one REML and two ML mixed-model fits; the
#: default's 100 put a Monte-Carlo SE of 0.022 on a rate of 0.05; about 4 s each on one core).
NULL_MIXED_PERMUTATIONS: dict[str, int] = {"smoke": 6, "default": 100, "full": 200}


#: Trajectory permutations of the clinical association per book preset. Each refits one REML and three ML mixed
#: models (each checked by restarts, Powell where L-BFGS crawls): about 10 s per permutation at the default size on
#: one core. The default's 50 give a Monte-Carlo SE of 0.031 at a rate of 0.05 (the flag needs a rate above 0.14);
#: ``full`` runs 100 (SE 0.022).
NULL_CLINICAL_PERMUTATIONS: dict[str, int] = {"smoke": 2, "default": 50, "full": 100}
#: The clinical score whose association with the marker is calibrated (chapter 6 reports cdr_sb and mmse).
NULL_CLINICAL_SCORE = "cdr_sb"


def _null_mixed_settings(c: Context) -> dict[str, Any]:
    return {"n_permutations": NULL_MIXED_PERMUTATIONS[c.preset.name], "seed": c.seed,
            "clinical_permutations": NULL_CLINICAL_PERMUTATIONS[c.preset.name], "clinical_score": NULL_CLINICAL_SCORE}


def _null_longitudinal(ctx: Context) -> None:
    """The trajectory model's years × group LRT on the analyses step's ``marker.tsv``, baseline groups permuted."""
    import pandas as pd

    from .._io import atomic_dir, write_tsv
    from ..analysis.calibration import clinical_association_null, mixed_model_null
    from ..analysis.predictability import PHENOTYPES, with_phenotypes
    from ..cohort import Cohort
    from ..errors import InputError

    s = _null_mixed_settings(ctx)
    marker_file = ctx.results / "marker.tsv"
    try:
        if not marker_file.is_file():
            raise InputError(f"the analyses wrote no {marker_file.name} (the marker was skipped on this cohort)")
        marker = pd.read_csv(marker_file, sep="\t", dtype={"recording_id": str, "subject": str})
        long_df = with_phenotypes(marker, Cohort.open(ctx.synth_dir / "eval"), (*PHENOTYPES, "diagnosis"))
        table = mixed_model_null(long_df, s["n_permutations"], seed=s["seed"], progress=not ctx.quiet)
        replicates = table.attrs["replicates"]
    except InputError as exc:       # a cohort without repeated visits: the page says why there is no row
        table, replicates = pd.DataFrame([{"path": "longitudinal mixed model", "skipped": str(exc)}]), pd.DataFrame()
    # the clinical association (score ~ marker, within and between subjects) on the same table
    try:
        if table.get("skipped") is not None:
            raise InputError(str(table["skipped"].iloc[0]))
        score = s["clinical_score"]
        if score not in long_df or long_df[score].isna().all():
            raise InputError(f"the evaluation cohort has no {score} scores")
        clinical = clinical_association_null(long_df, score, s["clinical_permutations"], seed=s["seed"],
                                             progress=not ctx.quiet)
        clinical_rep = clinical.attrs["replicates"]
    except InputError as exc:
        clinical = pd.DataFrame([{"path": "clinical association", "skipped": str(exc)}])
        clinical_rep = pd.DataFrame()
    with atomic_dir(ctx.out / "null-longitudinal", overwrite=True) as out:
        write_tsv(out / "null_mixed_model.tsv", table)
        write_tsv(out / "null_mixed_model_replicates.tsv", replicates)
        write_tsv(out / "null_clinical_association.tsv", clinical)
        write_tsv(out / "null_clinical_association_replicates.tsv", clinical_rep)


CHAPTER = Chapter(
    "reproducibility", part="Reproducibility and references",
    params=lambda c: {"timings_file": str(c.out / "timings.json"),
                      "calibration_file": str(c.out / "null-calibration" / "null_calibration.tsv"),
                      "mixed_null_file": str(c.out / "null-longitudinal" / "null_mixed_model.tsv"),
                      "clinical_null_file": str(c.out / "null-longitudinal" / "null_clinical_association.tsv"),
                      "preset": c.preset.name, "seed": c.seed},
    reads=None,
    steps=(Step("null-calibration", _null_calibration, lambda c: c.out / "null-calibration", settings=_null_settings,
                priority=15),
           Step("null-longitudinal", _null_longitudinal, lambda c: c.out / "null-longitudinal",
                deps=("analyses", "synth"), settings=_null_mixed_settings, priority=30)))
