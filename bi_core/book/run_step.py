"""``python -m bi_core.book.run_step --step NAME --spec JSON``: one step of ``bi-core reproduce``, in this process.

:func:`bi_core.reproduce.reproduce` starts one such process per step that is not up to date.
It imports only the chapter module that owns the step (``module`` in the spec), runs the
step unconditionally (the scheduler decided it is needed), then writes
``OUT/logs/NAME.json`` with the ``bi_core`` sources this process loaded
(:func:`bi_core.provenance.loaded_sources`), which become the step's stamp: an edit to
another chapter's module does not re-run this step.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._io import write_json
from ..errors import BiCoreError
from ..provenance import loaded_sources, snapshot
from ..steps import BOOK_PRESETS, Context

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


def main(argv: list[str] | None = None, steps: Mapping[str, Any] | None = None) -> int:
    """Run one step; ``steps`` (name → Step) is used when the spec names no chapter module (tests)."""
    ap = argparse.ArgumentParser(prog="python -m bi_core.book.run_step",
                                 description="Run one step of `bi-core reproduce` (used internally by it).")
    ap.add_argument("--step", required=True)
    ap.add_argument("--spec", required=True,
                    help="JSON: module, preset, out, book_out, seed, quiet, related, weights, publish")
    a = ap.parse_args(argv)
    spec = json.loads(a.spec)
    before = snapshot()     # the sources as they are now: what this process runs
    if spec.get("module"):
        owned = {s.name: s for s in importlib.import_module(spec["module"]).CHAPTER.steps}
    elif steps is not None:
        owned = dict(steps)
    else:
        from . import all_steps

        owned = all_steps()
    if a.step not in owned:
        ap.error(f"unknown step {a.step!r}; choose from {sorted(owned)}")
    step = owned[a.step]
    import torch

    # fixed per step, never from the core count, so the numbers are the same on every machine
    torch.set_num_threads(step.threads)
    ctx = Context(preset=BOOK_PRESETS[spec["preset"]], out=Path(spec["out"]), book_out=Path(spec["book_out"]),
                  seed=int(spec["seed"]), quiet=bool(spec["quiet"]), related=spec.get("related"),
                  weights=spec.get("weights", "published"), publish=bool(spec.get("publish", False)))
    try:
        step.run(ctx)
    except BiCoreError as exc:
        print(f"bi-core: error: {exc}", file=sys.stderr, flush=True)
        return 2
    write_json(ctx.out / "logs" / f"{a.step}.json", {"code": loaded_sources(before)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
