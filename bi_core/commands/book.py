"""``bi-core reproduce``: cohorts → pretraining → analyses → notebooks → HTML book."""

from __future__ import annotations

import argparse

from ..steps import BOOK_PRESETS, STEPS   # light: no torch

# In-function imports: a command's code loads only when that command runs: `bi-core --help` and the other commands
# start without torch, scikit-learn or statsmodels.

ORDER = 90


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="rebuild every artifact and the HTML book",
                       description="Synthesize the cohorts, pretrain, compute the analysis tables, execute every "
                                   "notebook with papermill and build the Jupyter Book. A step is skipped on a re-run "
                                   "only when its settings, its inputs and every bi_core source file its process "
                                   "loaded are unchanged (the stamp OUT/.../step-stamp.json), so the book never shows "
                                   "numbers from old code; independent steps run in parallel (--jobs).")
    p.add_argument("--preset", default="default", choices=list(BOOK_PRESETS),
                   help="smoke: tiny cohorts, minutes; default: the book on 2 CPU cores with the published weights "
                        "(weights/default/; each step's time is in the reproducibility chapter); full: the published "
                        "book, the synthetic model trained up to 4x as long and 5 CV repeats "
                        "[default: %(default)s]")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="artifact directory (cohorts, runs, tables, executed notebooks) [default: artifacts/PRESET]")
    p.add_argument("--book-out", metavar="DIR", default=".",
                   help="where _build/html is written [default: the current directory]")
    p.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    p.add_argument("--no-build", action="store_true", help="stop after executing the notebooks")
    p.add_argument("--notebook", action="append", metavar="NAME",
                   help="execute only this notebook, after only the steps it reads (repeatable; implies "
                        "--no-build): one chapter's artifacts in minutes, e.g. before running it in a launched "
                        "notebook (binder/README.md)")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="steps and notebooks run at once; each step is a fresh one-thread process, so the numbers "
                        "do not depend on N (with N > 1, step output goes to OUT/logs/STEP.log) [default: %(default)s]")
    p.add_argument("--quiet", action="store_true", help="no progress bars inside steps")
    p.add_argument("--steps", nargs="+", metavar="STEP", choices=list(STEPS), default=None,
                   help="run only these steps and the steps they read from, then stop (no notebooks, no book); "
                        f"steps: {', '.join(STEPS)}")
    p.add_argument("--related-preset", choices=("smoke", "default", "full"), default=None,
                   help="size of the related-methods chapters' studies (masking study, LMAE -> RWMOE -> SSM): "
                        "'full' trains the small model for 40 epochs with every strategy and 5 seeds, about two "
                        "hours on a 2-core CPU, kept in OUT/related/*-full [default: the book preset's own]")
    p.add_argument("--retrain", action="store_true",
                   help="train the pretraining runs (and the routing control's model) from scratch; by default the weights published in the "
                        "repository (weights/PRESET/) are installed when the current code reproduces their held-out "
                        "loss to 1e-5, and the runs are trained otherwise (the step's log says which)")
    p.add_argument("--publish-weights", action="store_true",
                   help="retrain the pretraining runs (and the routing control's model) and write their bundles (weights, snapshots, manifest) to "
                        "weights/PRESET/ for committing (make weights)")
    p.set_defaults(func=_reproduce)


def _reproduce(args: argparse.Namespace) -> int:
    from ..reproduce import reproduce

    reproduce(preset=args.preset, out=args.out, book_out=args.book_out, seed=args.seed, build=not args.no_build,
              quiet=args.quiet, only_notebooks=args.notebook, jobs=args.jobs,
              related=args.related_preset, steps=args.steps, retrain=args.retrain,
              publish_weights=args.publish_weights)
    return 0
