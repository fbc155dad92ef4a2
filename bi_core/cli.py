"""The ``bi-core`` command line (also ``python -m bi_core``).

Commands live in :mod:`bi_core.commands`, one module per group; each module defines
``add_parsers(subparsers)`` and imports heavy libraries (torch, nilearn) only inside its
handlers, so ``bi-core --help`` stays fast. A :class:`~bi_core.errors.BiCoreError`
is printed as one line and exits with status 2; anything else is a bug and keeps its
traceback. Output into a pipe whose reader went away (``bi-core info DIR | head -1``) ends
quietly with status 141, as a tool ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from pathlib import Path

from . import __version__, commands
from ._io import derived
from .errors import BiCoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bi-core",
        description="BrainInterNet companion: build cohorts, pretrain network-masked cross-attention models, "
                    "run the paper's analyses and reproduce the book.",
        epilog="Run `bi-core COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"bi_core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = [importlib.import_module(f"{commands.__name__}.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    for mod in sorted(mods, key=lambda m: getattr(m, "ORDER", 100)):
        mod.add_parsers(sub)
    return parser


#: Options whose values are input datasets: the ``SourceDatasets`` of what a command writes.
INPUT_OPTIONS = ("root", "cohort", "run", "fit_cohort")


def input_datasets(args: argparse.Namespace) -> list[Path]:
    """The input directories (or checkpoint files) of a parsed command line, in option order.

    A BIDS derivatives ``ROOT`` inside ``<raw>/derivatives/`` brings the raw dataset too.
    """
    found: list[Path] = []
    for opt in INPUT_OPTIONS:
        v = getattr(args, opt, None)
        for x in ([] if v is None else [v] if isinstance(v, str) else list(v)):
            p = Path(x)
            if not p.exists():
                continue
            found.append(p)
            if opt == "root" and p.resolve().parent.name == "derivatives":
                found.append(p.resolve().parent.parent)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    # On shared CPUs, OpenMP workers that spin-wait burn the time slices their partner thread
    # needs (measured: 30-100x slower training steps on a busy 2-core machine); passive
    # waiting costs little otherwise. Only effective before torch is first imported.
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        # every dataset_description.json the command writes names it and its input datasets
        with derived(command=["bi-core", *(sys.argv[1:] if argv is None else argv)], sources=input_datasets(args)):
            rc = args.func(args)
        sys.stdout.flush()      # a reader that went away shows up here, not as a traceback at exit
    except BiCoreError as exc:
        print(f"bi-core: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bi-core: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `bi-core info DIR | head -1`: stop quietly, with the status of a tool ended by SIGPIPE;
        # what is left in the buffer goes to /dev/null instead of failing again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
