"""Data commands: ``info`` and ``synth``."""

from __future__ import annotations

import argparse
import json

# In-function imports: a command's code loads only when that command runs: `bi-core --help` and the other commands
# start without torch, scikit-learn or statsmodels.

ORDER = 10


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarize a cohort store",
                       description="Print a summary of a cohort store (recordings, subjects, atlas, TRs, diagnoses).")
    p.add_argument("cohort", metavar="DIR", help="cohort directory (written by `bi-core synth` or `bi-core ingest`)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    p.set_defaults(func=_info)

    p = sub.add_parser("synth", help="generate synthetic cohorts with a known ground truth",
                       description="Write OUT/pretrain (healthy, unlabeled; ABCD/HCP-like), OUT/eval (ADNI-like "
                                   "CN/MCI/AD, longitudinal) and OUT/ground_truth.json. The same preset and seed "
                                   "give byte-identical files.")
    from ..synth import PRESETS, SCENARIOS

    p.add_argument("--preset", default="smoke", choices=sorted(PRESETS),
                   help="size: smoke (seconds), default (the book), paper (5,582 recordings, 432 ROIs) "
                        "[default: %(default)s]")
    p.add_argument("--seed", type=int, default=0, help="random seed [default: %(default)s]")
    p.add_argument("--scenario", default="static", choices=list(SCENARIOS),
                   help="static: disease changes couplings and DMN coherence (what static FC measures); dynamic: "
                        "disease changes only how named couplings alternate between latent states, the "
                        "time-averaged covariance stays the same [default: %(default)s]")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it holds synthetic cohorts written by bi_core (any other non-empty directory "
                        "is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth)


def _info(args: argparse.Namespace) -> int:
    from ..cohort import Cohort

    c = Cohort.open(args.cohort)
    print(json.dumps(c.info(), indent=2) if args.json else c.summary())
    return 0


def _synth(args: argparse.Namespace) -> int:
    from ..synth import generate

    out = generate(args.out, preset=args.preset, seed=args.seed, overwrite=args.overwrite, progress=not args.quiet,
                   scenario=args.scenario)
    print(f"wrote {out}/pretrain, {out}/eval and {out}/ground_truth.json (preset {args.preset}, seed {args.seed}, "
          f"scenario {args.scenario})")
    return 0
