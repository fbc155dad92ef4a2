"""Which code produced a result: digests of the ``bi_core`` sources a process loaded.

A cached result is only as fresh as the code that computed it. Every ``bi-core
reproduce`` step runs in a fresh process; when it finishes, :func:`loaded_sources` lists
every ``bi_core`` module that process imported (plus the package's data files) with a
digest of its source, and the step's stamp keeps that list. The step is up to date only
while :func:`sources_current` still finds the same digests: an edit to any module the step
actually ran re-runs it, an edit to a module it never imported does not. No list of
"relevant" modules is kept by hand. Pretraining runs record the same list in their
``summary.json`` (:func:`bi_core.runs.run_is_current` checks it), so a run reused inside a
step is content-keyed too.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

#: The ``bi_core`` package directory; recorded paths are relative to it (portable between checkouts).
PACKAGE_ROOT = Path(__file__).resolve().parent
#: Package data read by the code (atlas tables): part of every digest, since no import records their use.
DATA_DIR = "data"


def file_digest(path: Path) -> str | None:
    """SHA-256 (first 16 hex digits) of a file's bytes; ``None`` when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def snapshot() -> dict[str, str]:
    """Digests of every source and data file of the package now (call it before a step runs)."""
    out = {}
    for f in PACKAGE_ROOT.rglob("*"):
        if f.is_file() and (f.suffix == ".py" or f.parent.name == DATA_DIR) and "__pycache__" not in f.parts:
            d = file_digest(f)
            if d is not None:
                out[f.relative_to(PACKAGE_ROOT).as_posix()] = d
    return out


def loaded_sources(before: dict[str, str] | None = None) -> dict[str, str]:
    """``{path relative to the package: digest}`` of every ``bi_core`` module this process imported.

    Modules run as ``__main__`` (``python -m bi_core.reproduce``, the scheduler) are not
    listed: only what was imported under a ``bi_core.`` name. The package's data files
    are always listed. ``before`` (a :func:`snapshot` taken when the work started) gives
    the digests to record: a file edited while the step ran is then recorded as it was
    before, so the next build sees the edit and re-runs the step. Modules imported only
    in worker processes that a step starts are not seen (the steps' workers run
    functions of modules the step itself imported).
    """
    files: set[Path] = set()
    for name, mod in list(sys.modules.items()):
        if name != "bi_core" and not name.startswith("bi_core."):
            continue
        f = getattr(mod, "__file__", None)
        if f:
            files.add(Path(f).resolve())
    files.update(p.resolve() for p in (PACKAGE_ROOT / DATA_DIR).glob("*") if p.is_file())
    out: dict[str, str] = {}
    for f in files:
        try:
            rel = f.relative_to(PACKAGE_ROOT).as_posix()
        except ValueError:      # a module of another checkout: cannot be re-checked here
            continue
        d = (before or {}).get(rel) or file_digest(f)
        if d is not None:
            out[rel] = d
    return dict(sorted(out.items()))


def sources_current(recorded: dict[str, str] | None) -> bool:
    """Whether every recorded source still has its recorded digest (``False`` for nothing recorded)."""
    if not recorded:
        return False
    return all(file_digest(PACKAGE_ROOT / rel) == d for rel, d in recorded.items())


def changed_sources(recorded: dict[str, str]) -> list[str]:
    """The recorded sources whose digest differs now (edited or removed), for messages."""
    return [rel for rel, d in recorded.items() if file_digest(PACKAGE_ROOT / rel) != d]
