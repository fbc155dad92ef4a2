"""Helpers for the book's notebooks: parameter validation and glue.

A notebook run by papermill with a wrong or missing artifact should stop at its first
cell with a message that names the parameter, the path and how to make it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InputError


def require_path(value: Any, parameter: str, made_by: str, kind: str = "file") -> Path:
    """Check that a parameter points at an existing file or directory.

    Parameters
    ----------
    value
        The parameter's value.
    parameter
        Its name in the notebook's ``parameters`` cell.
    made_by
        The command that creates the artifact (shown in the error).
    kind
        ``"file"`` or ``"dir"``.
    """
    if value is None or str(value) == "":
        raise InputError(f"parameter {parameter!r} is empty; pass it with papermill (-p {parameter} PATH). "
                         f"It is made by `{made_by}`.")
    p = Path(str(value))
    ok = p.is_file() if kind == "file" else p.is_dir()
    if not ok:
        raise InputError(f"parameter {parameter}={str(p)!r}: no such {kind}. Create it with `{made_by}` "
                         f"(or run `bi-core reproduce`).")
    return p


def require_cohort(value: Any, parameter: str, made_by: str = "bi-core synth --out DIR",
                   need_diagnosis: bool = False):
    """Open a cohort store named by a parameter, with a clear error if it is not one."""
    from .cohort import Cohort

    p = require_path(value, parameter, made_by, kind="dir")
    if not (p / "cohort.json").is_file():
        raise InputError(f"parameter {parameter}={str(p)!r} is not a cohort store (no cohort.json); "
                         f"create it with `{made_by}`.")
    c = Cohort.open(p)
    if need_diagnosis and c.table["diagnosis"].notna().sum() == 0:
        raise InputError(f"parameter {parameter}={str(p)!r}: the cohort has no diagnoses; this chapter needs a "
                         "labelled (CN/MCI/AD) cohort.")
    return c


def glue(name: str, value: Any, display: bool = False) -> Any:
    """``myst_nb.glue`` (a no-op outside a notebook kernel), returning ``value``."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - myst_nb comes with jupyter-book
        return value
    _glue(name, value, display=display)
    return value


def optional_json(value: Any, parameter: str) -> dict | None:
    """Read a JSON file named by an optional parameter (``""``/``"none"``/``None`` → ``None``)."""
    import json

    if value is None or str(value).strip().lower() in ("", "none", "null"):
        return None
    p = Path(str(value))
    if not p.is_file():
        raise InputError(f"parameter {parameter}={str(p)!r}: no such file (pass 'none' when there is no ground truth).")
    return json.loads(p.read_text())
