"""The book, one module per chapter.

Each chapter module (``bi_core/book/chNN_<name>.py``, and ``reproducibility.py``) defines
``CHAPTER``, a :class:`Chapter`: its notebook, the part of the book it belongs to, the
papermill parameters it receives, the steps it reads, and the steps it owns (each a
:class:`bi_core.steps.Step` with its settings, sizes per book preset and dependencies). The
modules are discovered (:func:`chapters`), so a new chapter is: its module, its analysis and
figure code, its notebook, its test — and its line in ``_toc.yml``, which
``tests/test_book.py`` checks against the modules.

A step runs in its own process (forked from a launcher that has imported the heavy libraries
and no ``bi_core`` module, :mod:`bi_core.book.zygote`) that imports only its chapter's module
(:mod:`bi_core.book.run_step`), so its stamp (the ``bi_core`` sources it loaded,
:func:`bi_core.provenance.loaded_sources`) depends on that chapter's code, not on every
chapter's. This package's ``__init__`` stays light for that reason: it imports no chapter
until :func:`chapters` is called.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:     # annotations only: importing steps here would load it before a chapter asks for it
    from ..steps import Context, Step

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Held-out ratio to ridge of every measured training preset (``bench/bench_presets.py``; chapters 2 and 7)
PRESETS_TABLE = REPO_ROOT / "bench" / "results" / "presets.tsv"
#: The decoder ablation (as first built, the book's decoder, the linear path), per cohort and seed (chapter 2)
ABLATION_TABLE = REPO_ROOT / "bench" / "results" / "decoder_ablation.tsv"
#: The page that reads every step's timing: it runs after every other step and notebook.
LAST = "reproducibility"


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its notebook, where it sits, what it receives, reads and owns.

    Parameters
    ----------
    notebook
        ``notebooks/<notebook>.ipynb``.
    part
        The ``_toc.yml`` part caption it is listed under.
    params
        ``ctx → papermill parameters`` (paths into the build's artifact directory).
    reads
        Steps whose outputs the notebook reads: it runs as soon as they are done. ``None``:
        after every step and notebook (the reproducibility page).
    steps
        The steps this chapter owns (:class:`bi_core.steps.Step`).
    """

    notebook: str
    part: str
    params: Callable[["Context"], dict[str, Any]]
    reads: tuple[str, ...] | None = ()
    steps: tuple["Step", ...] = ()


def chapter_modules() -> list[str]:
    """The chapter modules' names (``chNN_*`` in name order, then ``reproducibility``)."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("ch"))
    return [*names, LAST]


def chapters() -> list[Chapter]:
    """Every chapter, in the order of :func:`chapter_modules` (imports every chapter module)."""
    return [importlib.import_module(f"{__name__}.{m}").CHAPTER for m in chapter_modules()]


def step_modules() -> dict[str, str]:
    """Step name → the module that owns it (``bi_core.book.chNN_...``)."""
    out: dict[str, str] = {}
    for m in chapter_modules():
        for s in importlib.import_module(f"{__name__}.{m}").CHAPTER.steps:
            if s.name in out:
                raise ValueError(f"step {s.name!r} is declared by both {out[s.name]} and {__name__}.{m}")
            out[s.name] = f"{__name__}.{m}"
    return out


def all_steps() -> dict[str, "Step"]:
    """Every step of every chapter, in launch priority (:attr:`bi_core.steps.Step.priority`: longest chains first)."""
    steps = [s for c in chapters() for s in c.steps]
    step_modules()        # refuses a step declared twice
    return {s.name: s for s in sorted(steps, key=lambda s: s.priority)}
