"""Which code produced a result: digests of the ``bi_core`` sources a process loaded.

A cached result is only as fresh as the code that computed it. Every ``bi-core
reproduce`` step runs in its own process (forked from a launcher that holds no ``bi_core``
module, :mod:`bi_core.book.zygote`); when it finishes, :func:`loaded_sources` lists
every ``bi_core`` module that process imported (plus the package's data files) with a
digest of its source, and the step's stamp keeps that list. The step is up to date only
while :func:`sources_current` still finds the same digests: an edit to any module the step
actually ran re-runs it, an edit to a module it never imported does not. No list of
"relevant" modules is kept by hand. Pretraining runs record the same list in their
``summary.json`` (:func:`bi_core.runs.run_is_current` checks it), so a run reused inside a
step is content-keyed too.
"""

from __future__ import annotations

import ast
import hashlib
import platform
import sys
from collections.abc import Iterable
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


def module_file(module: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """Source file of a ``bi_core`` module name (``bi_core.x.y`` → ``x/y.py`` or ``x/y/__init__.py``) under ``root``."""
    parts = module.split(".")[1:]
    base = Path(root).joinpath(*parts)
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def module_imports(f: Path, root: Path = PACKAGE_ROOT) -> set[str]:
    """Every ``bi_core`` module that the source file ``f`` imports, anywhere in it (functions included).

    Read from the syntax tree, so nothing is executed; ``from . import x`` names the
    submodule ``x`` when one exists, else the package itself. ``root`` is the package
    directory ``f`` lies in.
    """
    f = Path(f).resolve()
    st = f.stat()
    key = (f, Path(root).resolve(), st.st_mtime_ns, st.st_size)
    if key not in _IMPORTS:
        _IMPORTS[key] = frozenset(_parse_imports(f, root))
    return set(_IMPORTS[key])


#: :func:`module_imports` by (file, root, modification time, size): every pretraining run computes its
#: :func:`import_closure`, and parsing the package's sources each time was 0.44 s a run
_IMPORTS: dict[tuple[Path, Path, int, int], frozenset[str]] = {}


def _parse_imports(f: Path, root: Path) -> set[str]:
    """:func:`module_imports` read from the syntax tree of the resolved file ``f``."""
    rel = f.relative_to(Path(root).resolve()).with_suffix("").parts
    mod = ".".join(("bi_core",) + (rel[:-1] if rel[-1] == "__init__" else rel))
    pkg = mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "bi_core" or target.startswith("bi_core."):
                if node.module:
                    out.add(target)
                else:       # ``from . import x``: x is a module, or a name of the package itself
                    for a in node.names:
                        sub = f"{target}.{a.name}"
                        out.add(sub if module_file(sub, root) is not None else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name == "bi_core" or a.name.startswith("bi_core."))
    return out


def import_closure(modules: Iterable[str]) -> set[str]:
    """Package-relative paths of ``modules`` and of every ``bi_core`` module they import, transitively.

    A static over-approximation (an import inside a function that never runs still
    counts) of the code a computation can depend on; the parent packages' ``__init__``
    files are included, since importing ``bi_core.x.y`` runs them.
    """
    todo = list(modules)
    seen: set[str] = set()
    files: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))   # parent packages
        f = module_file(name)
        if f is None:
            continue
        files.add(f.relative_to(PACKAGE_ROOT).as_posix())
        todo.extend(module_imports(f) - seen)
    return files


def loaded_sources(before: dict[str, str] | None = None, within: set[str] | None = None) -> dict[str, str]:
    """``{path relative to the package: digest}`` of every ``bi_core`` module this process imported.

    Modules run as ``__main__`` (``python -m bi_core.reproduce``, the scheduler) are not
    listed: only what was imported under a ``bi_core.`` name. The package's data files
    are always listed. ``before`` (a :func:`snapshot` taken when the work started) gives
    the digests to record: a file edited while the step ran is then recorded as it was
    before, so the next build sees the edit and re-runs the step. Modules imported only
    in worker processes that a step starts are not seen (the steps' workers run
    functions of modules the step itself imported). ``within`` (package-relative paths,
    e.g. an :func:`import_closure`) keeps only those modules: a pretraining run records
    the code training can reach, not the orchestrator that happened to start it.
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
        if within is not None and rel.endswith(".py") and rel not in within:
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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the machine type: recorded beside timings and published weights."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
