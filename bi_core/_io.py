"""Atomic file and directory writes, and the rules that keep a user's data safe.

Everything bi_core writes goes to a temporary sibling first and is renamed into place,
so an interrupted command never leaves a half-written table, checkpoint or cohort, and a
directory output is replaced whole (a re-run leaves no table of the previous run).
Temporary siblings are hidden and named after their owner
(``.NAME.bi_core-<pid>-<host>-XXXXXXXX.tmp``); a later write to the same path removes
those whose process is gone.

Inputs are read-only: :func:`refuse_overlap` refuses an output that is, contains or lies
inside an input, and a directory output carries a marker (:data:`MARKER`, its ``kind``)
so that ``--overwrite`` replaces only what bi_core wrote (:func:`check_replaceable`).
Derived caches go to :func:`user_cache_dir`, never into an input.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError

#: File bi_core writes into every directory output: ``{"format", "kind", "bi_core_version"}``.
MARKER = ".bi_core-output.json"
#: Kinds of directory output (the marker's ``kind``) and how messages name them.
KINDS: dict[str, str] = {
    "cohort": "cohort store",
    "synth": "synthetic cohort root",
    "bids": "BIDS export",
    "run": "pretraining run",
    "results": "set of analysis tables",
    "connectomes": "paired connectome set",
    "jivnet": "CM-JIVNet study",
    "book": "book artifact directory",
}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- temporary siblings
def _owner() -> str:
    """``bi_core-<pid>-<host>``: who a temporary sibling belongs to (see :func:`clean_stale`)."""
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"
    return f"bi_core-{os.getpid()}-{host}"


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.{_owner()}-"


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; give the final file the permissions a plain open() would
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # someone else's live process
        return True
    return True


def stale_siblings(path: str | os.PathLike) -> list[Path]:
    """Temporary siblings of ``path`` left by a bi_core process of this host that no longer runs."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    host = _owner().rsplit("-", 1)[1]
    pat = re.compile(re.escape(f".{path.name}.bi_core-") + r"(\d+)-" + re.escape(host) + r"-.*\.(tmp|old)$")
    found = []
    for p in path.parent.iterdir():
        m = pat.match(p.name)
        if m and not _alive(int(m.group(1))):
            found.append(p)
    return sorted(found)


def clean_stale(path: str | os.PathLike) -> None:
    """Remove the temporary siblings of ``path`` whose writer was killed (:func:`stale_siblings`)."""
    for p in stale_siblings(path):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


# ---------------------------------------------------------------------- files
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` only if the block succeeds.

    Examples
    --------
    >>> with atomic_path("table.tsv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp, sep="\\t")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = _tmp_sibling(path, path.suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """:func:`atomic_path` for files that belong together (a table and its summary).

    Yields one temporary path per file; only if the block succeeds are they renamed into
    place, back to back, so a failure before that leaves every previous file as it was.
    """
    finals = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for path in finals:
            path.parent.mkdir(parents=True, exist_ok=True)
            clean_stale(path)
            tmps.append(_tmp_sibling(path, path.suffix))
        yield list(tmps)
        for tmp in tmps:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        for tmp, path in zip(tmps, finals):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8, ``\\n`` line endings)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as sorted, indented JSON atomically (stable bytes for a given object)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_tsv(path: str | os.PathLike, df: Any, float_format: str | None = "%.6g") -> Path:
    """Write a pandas DataFrame as a tab-separated table atomically (no index column)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format=float_format, na_rep="n/a", lineterminator="\n")
    return Path(path)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__} to JSON")


# ---------------------------------------------------------------------- reading user files
def not_utf8(path: str | os.PathLike, exc: UnicodeDecodeError) -> InputError:
    """The one-line error for a text input that is not UTF-8 (e.g. a Latin-1 or UTF-16 spreadsheet export)."""
    if exc.object[:2] in _UTF16_BOMS:
        how = "it is UTF-16, as spreadsheets save 'Unicode text'"
    else:
        byte = exc.object[exc.start]
        how = f"it has the byte 0x{byte:02x}, {chr(byte)!r} in Latin-1"
    return InputError(f"{path} is not UTF-8 text ({how}); open it in an editor or spreadsheet and save it as UTF-8.")


def looks_binary(exc: UnicodeDecodeError) -> bool:
    """Whether undecodable input is binary (NUL bytes: e.g. compressed), not text in another encoding."""
    return b"\x00" in exc.object[:4096] and exc.object[:2] not in _UTF16_BOMS


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_text(path: str | os.PathLike) -> str:
    """The text of ``path`` decoded as UTF-8; :class:`InputError` (:func:`not_utf8`) when it is not."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None


# ---------------------------------------------------------------------- what a directory holds
def _json_file(p: Path) -> dict[str, Any]:
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _text(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return ""


def _names(p: Path) -> set[str]:
    try:
        return {q.name for q in p.iterdir()}
    except OSError:
        return set()


#: Directories written before the marker existed, recognised by the files only bi_core writes
#: there (backward compatibility: such a directory can still be replaced with --overwrite).
_LEGACY: dict[str, Callable[[Path, set[str]], bool]] = {
    "cohort": lambda p, n: _json_file(p / "cohort.json").get("format") == "bi_core-cohort",
    "synth": lambda p, n: "ground_truth.json" in n and all(
        _json_file(p / d / "cohort.json").get("format") == "bi_core-cohort" for d in ("pretrain", "eval")),
    "bids": lambda p, n: "bi_core" in json.dumps(_json_file(p / "dataset_description.json").get("GeneratedBy", "")),
    "run": lambda p, n: {"config.yaml", "metrics.jsonl"} <= n and bool({"checkpoint.pt", "best.pt"} & n)
    and "target_tr:" in _text(p / "config.yaml"),
    "results": lambda p, n: {"summary.json", "timings.json", "predictability.tsv"} <= n,
    "connectomes": lambda p, n: {"connectomes.npz", "subjects.tsv"} <= n,
    "jivnet": lambda p, n: {"summary.json", "reconstruction.tsv", "config.yaml"} <= n,
    "book": lambda p, n: {"timings.json", "logs"} <= n and "steps" in _json_file(p / "timings.json"),
}


def output_kind(path: str | os.PathLike) -> str | None:
    """The kind of bi_core output directory ``path`` holds (its marker, else recognised by its files), or ``None``."""
    p = Path(path)
    names = _names(p)
    if MARKER in names:
        kind = _json_file(p / MARKER).get("kind")
        if isinstance(kind, str):
            return kind
    return next((k for k, known in _LEGACY.items() if known(p, names)), None)


def check_replaceable(path: str | os.PathLike, kind: str, overwrite: bool) -> None:
    """Refuse (:class:`InputError`) to write ``path`` unless it is absent, empty, or (with ``overwrite``) a ``kind``.

    Called before a long computation, so that it fails before the work and not after.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{p} exists and is not a directory; choose another output path.")
    if not p.is_dir() or not any(p.iterdir()):
        return
    what = KINDS.get(kind, kind)
    have = output_kind(p)
    if have != kind:
        held = f"it holds a {KINDS.get(have, have)}" if have else f"no {MARKER} marker"
        raise InputError(f"refusing to replace {p}: it does not hold a {what} written by bi_core ({held}); remove "
                         "it yourself or choose another output directory.")
    if not overwrite:
        raise InputError(f"output directory {p} already exists and holds a {what}; pass --overwrite to replace it, "
                         "or choose another output directory.")


def refuse_overlap(out: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike] | None],
                   option: str = "--out") -> None:
    """Refuse an output path that is, contains or lies inside one of the command's inputs.

    Parameters
    ----------
    out
        The output file or directory (need not exist).
    inputs
        Option name (as the user typed it: ``ROOT``, ``--cohort``) → input path(s); ``None`` is skipped.
    option
        The output's option name, for the message.

    Symlinks are resolved, so ``out`` cannot reach an input through a link.
    """
    o = Path(out).resolve()
    for name, value in inputs.items():
        paths = [] if value is None else [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for v in paths:
            i = Path(v).resolve()
            rel = "is" if o == i else "contains" if o in i.parents else "lies inside" if i in o.parents else None
            if rel:
                raise InputError(f"{option} {out} {rel} the input {name} {v}; bi_core never writes into its inputs: "
                                 f"give {option} a path outside it.")


# ---------------------------------------------------------------------- directories
def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def staging_dir(path: str | os.PathLike) -> Path:
    """A new hidden temporary sibling of ``path`` to build a directory output in (see :func:`publish`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def adopt_stale(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Take over ``tmp``, a stale temporary sibling of ``path``: rename it to one this process owns.

    (So that :func:`clean_stale` of another writer does not remove it while this process works in it.)
    """
    path = Path(path)
    new = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent))
    os.replace(tmp, new)        # onto the new, empty directory
    return new


def write_marker(directory: str | os.PathLike, kind: str) -> None:
    """Mark ``directory`` as a ``kind`` output of bi_core (what ``--overwrite`` may replace).

    A cohort, synthetic root, run or set of results also gets its BIDS-derivative
    ``dataset_description.json`` (:func:`write_dataset_description`) unless it has one.
    """
    write_json(Path(directory) / MARKER, {"format": "bi_core-output", "kind": kind, "bi_core_version": __version__})
    if kind in DERIVATIVE_KINDS and not (Path(directory) / DATASET_DESCRIPTION).exists():
        write_dataset_description(directory, kind)


# ---------------------------------------------------------------------- BIDS derivatives
#: Kinds of directory output that are BIDS derivative datasets (:func:`write_dataset_description`).
DERIVATIVE_KINDS = ("cohort", "synth", "run", "results")
#: The BIDS file that describes a dataset.
DATASET_DESCRIPTION = "dataset_description.json"
#: BIDS version the descriptions follow.
BIDS_VERSION = "1.9.0"
#: What the outputs written now derive from: ``command`` (the bi-core command line, as typed) and
#: ``sources`` (input directories); set with :func:`derived`.
_DERIVED: dict[str, Any] = {"command": None, "sources": ()}


@contextlib.contextmanager
def derived(command: Sequence[str] | None = None,
            sources: Sequence[str | os.PathLike] = ()) -> Iterator[None]:
    """Within the block, every ``dataset_description.json`` names ``command`` and ``sources``.

    Parameters
    ----------
    command
        The command line that runs (``["bi-core", "analyze", ...]``); ``None`` keeps the outer one.
    sources
        Input directories (cohorts, runs, a BIDS root) added to the outer block's: the ``SourceDatasets``.

    Examples
    --------
    >>> with derived(sources=[cohort_dir]):  # doctest: +SKIP
    ...     pretrain([cohort_dir], cfg, out)
    """
    before = dict(_DERIVED)
    if command is not None:
        _DERIVED["command"] = [str(a) for a in command]
    _DERIVED["sources"] = (*before["sources"], *(Path(s) for s in sources if s is not None))
    try:
        yield
    finally:
        _DERIVED.update(before)


def dataset_description(name: str | None, kind: str = "results", sources: Sequence[str | os.PathLike] = (),
                        command: Sequence[str] | None = None) -> dict[str, Any]:
    """The BIDS-derivative ``dataset_description.json`` of a bi_core output called ``name`` (``None``: unnamed).

    ``Name`` is ``"<name> (<kind>)"``, or ``"bi_core <kind>"`` without a name: never the
    output's path, so the same output written in two places has the same bytes (what
    ``tests/test_synth.py`` checks of the synthetic cohorts).

    ``GeneratedBy`` names bi_core, its version and (``Description``) the command line (no
    ``CodeURL``: the package names no public repository); ``SourceDatasets`` gives each source directory as a ``file://`` URL (with its BIDS
    ``Name`` when it has a description of its own).
    """
    gen: dict[str, Any] = {"Name": "bi_core", "Version": __version__}
    if command:
        gen["Description"] = "command: " + " ".join(_quote(a) for a in command)
    what = KINDS.get(kind, kind)
    desc: dict[str, Any] = {"Name": f"{name} ({what})" if name else f"bi_core {what}", "BIDSVersion": BIDS_VERSION,
                            "DatasetType": "derivative", "GeneratedBy": [gen]}
    found = []
    for s in dict.fromkeys(Path(s).resolve() for s in sources):
        entry = {"URL": s.as_uri()}
        if (d := _json_file(s / DATASET_DESCRIPTION if s.is_dir() else s.parent / DATASET_DESCRIPTION)).get("Name"):
            entry["Name"] = str(d["Name"])
        found.append(entry)
    if found:
        desc["SourceDatasets"] = found
    return desc


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(str(arg))


def write_dataset_description(directory: str | os.PathLike, kind: str = "results", name: str | None = None) -> Path:
    """Write ``directory``'s ``dataset_description.json`` (:func:`dataset_description`, atomically).

    The command line and sources are those of the enclosing :func:`derived` block; ``name``
    defaults to the name in the directory's ``cohort.json`` (a cohort store), else none.
    """
    d = Path(directory)
    name = name or _json_file(d / "cohort.json").get("name")
    return write_json(d / DATASET_DESCRIPTION, dataset_description(name or None, kind, _DERIVED["sources"],
                                                                   _DERIVED["command"]))


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move the finished directory ``tmp`` to ``path``, replacing what was there in one step.

    Where the file system can swap two directories atomically (Linux), a kill at any moment
    leaves either the previous or the new directory at ``path``; elsewhere the previous one
    is renamed aside first (a kill between the two renames leaves it in a ``.old`` sibling).
    """
    tmp, path = Path(tmp), Path(path)
    if path.exists() and _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)      # now the previous output
        return
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), suffix=".old", dir=path.parent))
        os.replace(path, old / "d")
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False, kind: str | None = None) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``path`` on success.

    Parameters
    ----------
    path
        Final directory.
    overwrite
        Replace an existing directory at ``path``. Without it an existing non-empty
        directory is an error, so a command never silently mixes two outputs.
    kind
        What the directory is (a key of :data:`KINDS`): written into it as :data:`MARKER`,
        and with ``overwrite`` only a directory of the same kind is replaced
        (:func:`check_replaceable`). ``None`` for directories inside an output bi_core
        already owns (no marker, no check).
    """
    path = Path(path)
    if kind is not None:
        check_replaceable(path, kind, overwrite)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a directory; choose another output path.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InputError(f"output directory {path} already exists and is not empty; "
                         "remove it or pass --overwrite.")
    tmp = staging_dir(path)
    try:
        yield tmp
        if kind is not None:
            write_marker(tmp, kind)
        publish(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- caches
def user_cache_dir() -> Path:
    """Where bi_core keeps derived caches (TR-resampled cohorts), never inside an input.

    ``$BI_CORE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/bi_core``, else ``~/.cache/bi_core``.
    Everything in it can be deleted at any time; bi_core re-creates what it needs.
    """
    if os.environ.get("BI_CORE_CACHE_DIR"):
        return Path(os.environ["BI_CORE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "bi_core"
