"""Helpers shared by several test modules (not a test module itself)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bi_core.cohort import Cohort


def tree_digest(path: Path) -> dict[str, str]:
    """Every file, directory and link under ``path`` (hidden ones included) → its content hash / kind."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def pilot(smoke_dir: Path, out: Path, **per_group: int) -> Path:
    """A cohort of the baseline visits of the first ``n`` subjects of each diagnosis of the smoke eval cohort
    (``CN=3, AD=3``)."""
    c = Cohort.open(smoke_dir / "eval")
    t = c.table
    rows: list[int] = []
    for dx, n in per_group.items():
        first = t.index[(t["diagnosis"] == dx) & (t["visit"] == 0)]
        subjects = list(dict.fromkeys(t.loc[first, "subject"]))[:n]
        rows += [int(i) for i in first if t.loc[i, "subject"] in subjects]
    c.write_copy(out, rows=sorted(rows))
    return out
