"""The steps of ``bi-core reproduce``: book presets, the typed context, the step and its stamp.

The steps themselves live with their chapters (:mod:`bi_core.book`: one module per chapter
declares its steps, settings, sizes, notebook and parameters).

A step is a :class:`Step`: what it runs (a function of the :class:`Context`), the steps it
reads from, the directory it writes (``home``) and the settings its result depends on.
:mod:`bi_core.reproduce` schedules them (each in its own process) and decides which are
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .provenance import sources_current

# In-function imports: .book imports this module (its chapters declare Steps), so the registry is imported when first
# read; scikit-learn (.analysis.classify) loads only when a preset's CV config is built.

#: Name of the stamp a step leaves in its home directory.
STAMP_NAME = "step-stamp.json"


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
    #: label permutations and subject bootstrap resamples of every classification (and the largest-effect
    #: bootstrap): the book's 1,000 / 2,000; the smoke book checks that they run, with fewer (its pages say how many)
    cv_permutations: int = 1000
    cv_bootstrap: int = 2000
    #: worker processes a step may start for independent fits (classification folds, the studies' runs and folds;
    #: results do not depend on it). The smoke book's fits are too small for them: a worker's start (a fresh
    #: interpreter importing torch and scikit-learn) cost more CPU than its share of the work (bench/README.md)
    workers: int = 2

    def cv(self, seed: int, **kw: Any) -> Any:
        """The :class:`~bi_core.analysis.classify.CVConfig` of this preset (``kw``: e.g. ``n_jobs``)."""
        from .analysis.classify import CVConfig

        return CVConfig(n_splits=self.cv_folds, n_repeats=self.cv_repeats, seed=seed, inner_splits=self.cv_inner_splits,
                        Cs=self.cv_Cs, n_permutations=self.cv_permutations, n_bootstrap=self.cv_bootstrap, **kw)


BOOK_PRESETS: dict[str, BookPreset] = {
    # the smoke book checks that everything runs: one CV repeat, a coarser penalty grid and occlusion on one
    # window per recording keep it to minutes
    "smoke": BookPreset("smoke", synth="smoke", pretrain="smoke", pretrain_real="smoke", related="smoke",
                        cv_repeats=1, cv_folds=3, cv_Cs=(0.01, 0.1, 1.0), cv_inner_splits=2, real_folds=2,
                        occlusion_windows=1, cv_permutations=99, cv_bootstrap=200, workers=1),
    # the whole book on 2 CPU cores, installing the published weights (weights/default/; every step's time is in the
    # reproducibility chapter). Its HCP runs are `real-full` (2,560 steps per fold): `real` (640) stays below the
    # quality bar (bench/results/presets.tsv, chapter 7)
    "default": BookPreset("default", synth="default", pretrain="default", pretrain_real="real-full", related="default",
                          cv_repeats=3, cv_folds=5, occlusion_windows=3),
    # the published book (GitHub Pages): the same cohorts, the synthetic model trained up to 4x as long, the default's
    # HCP runs, 5 CV repeats
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
    def dynamic(self) -> Path:
        """``OUT/dynamic``: the dynamic scenario's ``synth`` and ``results`` (the static layout, one level down)."""
        return self.out / "dynamic"

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
    priority
        Launch order among ready steps (lower first): the longest chains start first, so both
        workers stay busy.
    """

    name: str
    run: Callable[[Context], None]
    home: Callable[[Context], Path]
    deps: tuple[str, ...] = ()
    settings: Callable[[Context], dict[str, Any]] = lambda c: {}
    threads: int = 1
    priority: int = 50

    def stamp_file(self, ctx: Context) -> Path:
        return self.home(ctx) / STAMP_NAME

    def key(self, ctx: Context) -> dict[str, Any]:
        """What the step's result depends on besides code: its settings and its inputs' stamps."""
        return {"step": self.name, "settings": self.settings(ctx),
                "inputs": {d: stamp_digest(_registry()[d].stamp_file(ctx)) for d in self.deps}}


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


def analysis_settings(c: Context) -> dict[str, Any]:
    """The settings every analysis step's result depends on: seed, CV folds, repeats, penalties, occlusion windows."""
    p = c.preset
    return {"seed": c.seed, "folds": p.cv_folds, "repeats": p.cv_repeats, "occlusion_windows": p.occlusion_windows,
            "Cs": list(p.cv_Cs), "inner_splits": p.cv_inner_splits, "permutations": p.cv_permutations,
            "bootstrap": p.cv_bootstrap}


def dynamic_dir(ctx: Context) -> Path:
    """``OUT/dynamic`` (:attr:`Context.dynamic`)."""
    return ctx.dynamic


def _registry() -> dict[str, Step]:
    from .book import all_steps

    return all_steps()


def with_dependencies(names: list[str]) -> list[str]:
    """``names`` and every step they read from, in launch order."""
    steps = _registry()
    unknown = [n for n in names if n not in steps]
    if unknown:
        raise ConfigError(f"unknown step(s) {unknown}; choose from {list(steps)}.")
    need: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n not in need:
            need.add(n)
            todo.extend(steps[n].deps)
    return [n for n in steps if n in need]


#: Names that moved to the chapter modules (bi_core.book), still importable from here.
_MOVED = {
    "STEPS": None, "GW_ASSUMED_TR": "ch07_real_data", "real_folds": "ch07_real_data", "real_fold_run": "ch07_real_data",
    "_pretrain_real": "ch07_real_data", "_real_fold_runs": "ch07_real_data", "_pretrain": "ch02_pretraining",
    "_installed": "ch02_pretraining", "CURVE_RECORDINGS": "ch03_predictability",
    "DYNAMIC_SIZES": "ch05b_dynamic_scenario", "DYNAMIC_TASKS": "ch05b_dynamic_scenario",
    "dynamic_synth_config": "ch05b_dynamic_scenario", "ROUTING_BOOK": "ch04_interactions",
    "ADAPTING_SIZES": "ch11_adapting", "ADAPTING_GROUPS": "ch11_adapting", "ADAPTING_AGES": "ch11_adapting",
    "adapting_config": "ch11_adapting",
}


def __getattr__(name: str) -> Any:
    # lazy, so that a step's process imports only its own chapter (bi_core.book.run_step)
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _MOVED[name] is None:
        return _registry()
    import importlib

    return getattr(importlib.import_module(f"{__package__}.book.{_MOVED[name]}"), name)
