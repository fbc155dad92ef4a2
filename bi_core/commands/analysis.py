"""Analysis commands: per-recording tables, group statistics, classification, longitudinal models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..cohort import Cohort

# In-function imports: a command's code loads only when that command runs: `bi-core --help` and the other commands
# start without torch, scikit-learn or statsmodels.

ORDER = 40
#: ``--method`` choices: the model and bi_core.analysis.linear.METHODS, spelled out so that
#: building the parser does not import numpy and scikit-learn (a test keeps them in step)
PREDICTABILITY_METHODS = ("model", "ridge", "lagged-ridge")
#: ``--out FILE.tsv`` of the per-recording tables
_TABLE_OUT = "output table (replaced atomically; it must not be, or lie inside, an input)"


def _run_cohort(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, metavar="RUN", help="run directory or checkpoint from `bi-core pretrain`")
    p.add_argument("--cohort", required=True, metavar="DIR", help="cohort on the same atlas as the run")
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass [default: %(default)s]")
    p.add_argument("--device", default="cpu", help="torch device [default: %(default)s]")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cv(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folds", type=int, default=5,
                   help="outer subject-grouped folds; a small cohort gets as many as its smallest group has subjects, "
                        "or leave-one-subject-out with fewer subjects than folds (the log and summary.json say so) "
                        "[default: %(default)s]")
    p.add_argument("--inner-folds", type=int, default=3,
                   help="inner folds that tune the classifiers' penalty C within each training fold; fewer when a "
                        "training fold's smallest group has fewer subjects, C fixed when it has one "
                        "[default: %(default)s]")
    p.add_argument("--repeats", type=int, default=5, help="repeats of the outer CV with new seeds [default: %(default)s]")
    p.add_argument("--seed", type=int, default=0, help="seed of the first repeat's folds [default: %(default)s]")
    p.add_argument("--permutations", type=int, default=1000, metavar="N",
                   help="label permutations through the whole CV for each classification's p-value (0: none; "
                        "the smallest p is 1/(N+1)) [default: %(default)s]")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="subject resamples for the intervals of AUC, balanced accuracy and their paired "
                        "differences, and for the largest-effect probability [default: %(default)s]")


def _groups(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group-column", default=None, metavar="COL",
                   help="categorical column of the cohort whose levels are compared (`bi-core info --json` lists "
                        "them) [default: diagnosis when the cohort has diagnoses]")
    p.add_argument("--reference", default=None, metavar="LEVEL",
                   help="the level every other level is compared with [default: the first of --order; CN for "
                        "CN/MCI/AD diagnoses]")
    p.add_argument("--order", default=None, metavar="L1,L2,...",
                   help="the compared levels in order (e.g. disease stage); levels left out are not compared; "
                        "figures and the all-levels classification follow it and the marker scores the last level "
                        "[default: CN,MCI,AD for ADNI diagnoses, else the reference first, the others sorted]")


def _resolve_groups(args: argparse.Namespace, table, where: str):
    from ..analysis.groupstats import resolve_groups

    order = args.order.split(",") if args.order else None
    return resolve_groups(table, args.group_column, args.reference, order, where=where)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predictability", help="per (recording, network) reconstruction R² and Pearson r",
                       description="Mask each network in turn, reconstruct every window that tiles each recording, "
                                   "and write one row per (recording, network): recording_id, subject, session, "
                                   "network, r2, pearson_r, n_windows, method. With --method ridge or lagged-ridge "
                                   "a linear reference replaces the model on exactly the same windows and frames "
                                   "(the run still sets the window length, TR and atlas; see "
                                   "bi_core/analysis/linear.py): by default cross-fitted on --cohort over "
                                   "subject-grouped folds, or fitted on --fit-cohort / --fit-subjects.")
    _run_cohort(p)
    p.add_argument("--out", required=True, metavar="FILE.tsv", help=_TABLE_OUT)
    p.add_argument("--method", choices=PREDICTABILITY_METHODS, default="model",
                   help="model: the run's reconstructions; ridge: each ROI of the masked network from every other "
                        "ROI at the same frame; lagged-ridge: the same plus the other ROIs at ±1 and ±2 frames "
                        "within the window [default: %(default)s]")
    p.add_argument("--part", choices=("model", "linear-path", "decoder"), default="model",
                   help="--method model: score the whole model or one part of it alone: linear-path (the "
                        "same-frame linear map from the visible ROIs) or decoder (encoder + cross-attention "
                        "decoder without it); method column 'model: linear path' / 'model: decoder' "
                        "[default: %(default)s]")
    p.add_argument("--fit-cohort", action="append", metavar="DIR",
                   help="ridge methods: fit on this cohort (e.g. the run's pretraining cohort; repeat for several) "
                        "and score --cohort; subjects of --cohort are left out of the fit [default: cross-fit on "
                        "--cohort]")
    p.add_argument("--fit-subjects", metavar="run|FILE",
                   help="ridge methods: fit only on these subjects (of --fit-cohort, else --cohort) and score the "
                        "other subjects of --cohort; 'run' takes the run's training split (train_subjects in "
                        "RUN/summary.json), FILE is a text file with one subject id per line")
    p.add_argument("--folds", type=int, default=5,
                   help="ridge methods, cross-fitting: subject-grouped folds [default: %(default)s]")
    p.add_argument("--seed", type=int, default=0,
                   help="ridge methods: seed of the random draw of fitting frames [default: %(default)s]")
    p.set_defaults(func=_predictability)

    p = sub.add_parser("interactions", help="per (recording, target, source) attention, enrichment, occlusion ΔR², "
                                            "source-only r, network FC",
                       description="For each masked (target) network: the share of its decoder attention on each "
                                   "source network, that share relative to the source's share of context tokens, "
                                   "the R² lost when the source is also hidden (occlusion), the correlation of the "
                                   "target's reconstruction from the source alone with the truth (source_only_r) "
                                   "and, as a model-free baseline, the correlation of the two networks' mean "
                                   "series (fc_correlation). Also writes FILE_agreement.json (how well attention "
                                   "and occlusion agree).")
    _run_cohort(p)
    p.add_argument("--out", required=True, metavar="FILE.tsv", help=_TABLE_OUT)
    p.add_argument("--no-occlusion", action="store_true", help="skip the occlusion dependency")
    p.add_argument("--occlusion-windows", type=int, default=None, metavar="N",
                   help="use the first N windows of each recording for occlusion [default: all]")
    p.set_defaults(func=_interactions)

    p = sub.add_parser("embed", help="one embedding per recording (mean-pooled and per network)",
                       description="Encoder on unmasked windows, averaged over each recording's windows; writes a TSV "
                                   "with recording_id, subject, session, n_windows, emb_000.. (mean over tokens), "
                                   "<NET>_000.. (mean per network) and <NET>_sd_000.. (per-network temporal SD) columns.")
    _run_cohort(p)
    p.add_argument("--out", required=True, metavar="FILE.tsv", help=_TABLE_OUT)
    p.set_defaults(func=_embed)

    p = sub.add_parser("groupdiff", help="each level − the reference per cell (AD−CN and MCI−CN by default; OLS with "
                                         "covariates, BH-FDR)",
                       description="Baseline visits only; per cell OLS value ~ group + age + sex + site for each "
                                   "level of the group column against the reference; Benjamini–Hochberg FDR across "
                                   "cells per contrast; adjusted Cohen's d.")
    p.add_argument("--table", required=True, metavar="FILE.tsv", help="a predictability or interactions table")
    p.add_argument("--cohort", required=True, metavar="DIR", help="the labelled cohort the table was computed on")
    _groups(p)
    p.add_argument("--value", default=None, help="column to compare [default: r2, or attention for interactions]")
    p.add_argument("--covariates", default="age,sex,site", help="comma-separated covariates [default: %(default)s]")
    p.add_argument("--alpha", type=float, default=0.05, help="FDR level [default: %(default)s]")
    p.add_argument("--ground-truth", metavar="JSON", help="score against a synthetic cohort's ground_truth.json")
    p.add_argument("--out", required=True, metavar="FILE.tsv", help=_TABLE_OUT)
    p.set_defaults(func=_groupdiff)

    p = sub.add_parser("analyze", help="the whole analysis suite (all tables of the book's chapters)",
                       description="Predictability (and its linear references), interactions, embeddings, group "
                                   "statistics, classification against FC baselines on identical folds, the summary "
                                   "marker and its mixed models; writes every table into OUT (see "
                                   "bi_core/analysis/suite.py), the book's figures for the cohort beside them (PNG) "
                                   "and a BIDS-derivative dataset_description.json. The groups are the levels of --group-column; a cohort "
                                   "without one gets the tables that need no groups and one line that says what was "
                                   "skipped and why. Small cohorts (from 2 subjects) run too: folds follow the "
                                   "subjects and groups available, and an analysis the cohort cannot support (e.g. "
                                   "classification with a group of one subject) is skipped; the log and summary.json "
                                   "('adapted', 'skipped') say which and why.")
    _run_cohort(p)
    _cv(p)
    _groups(p)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory, written whole at the end: a re-run replaces every table of the previous "
                        "run; an existing DIR must hold bi_core analysis results, and it must not be, contain or lie "
                        "inside an input")
    p.add_argument("--ground-truth", metavar="JSON", help="score recovery of a synthetic cohort's ground truth")
    p.add_argument("--occlusion-windows", type=int, default=None, metavar="N",
                   help="use the first N windows of each recording for occlusion [default: all]")
    p.add_argument("--no-fc", action="store_true", help="skip the FC correlation/tangent baselines")
    p.add_argument("--no-figures", action="store_true",
                   help="write the tables only, not the book's figures for this cohort (PNG files beside the tables: "
                        "predictability profile and linear references; with groups, predictability by group, group "
                        "differences, interaction difference maps, each classification task)")
    p.add_argument("--target", default=None, metavar="COL",
                   help="a numeric column (e.g. age): OLS association of each network's predictability with it "
                        "(covariates among age/sex/site, FDR) and its ridge prediction from every feature set on "
                        "the same subject-grouped folds (r, MAE with intervals); tables target_COL_*.tsv")
    from ..analysis.reliability import RETEST_YEARS

    p.add_argument("--retest-years", type=float, default=RETEST_YEARS, metavar="YEARS",
                   help="sessions/runs of a subject at most this long after its first recording (or without "
                        "years_from_baseline) are test-retest repeats: reliability.tsv gives their ICC(3,1) "
                        "[default: %(default)s]")
    p.add_argument("--fit-cohort", action="append", metavar="DIR",
                   help="fit the linear references (predictability_linear.tsv, linear_occlusion_delta_r2) on this "
                        "cohort, e.g. the run's pretraining cohort; repeat for several [default: cross-fit on the "
                        "baseline visits of --cohort over subject-grouped folds]")
    p.set_defaults(func=_analyze)


def _refuse_overlap(args: argparse.Namespace, *options: str) -> None:
    """Refuse an --out that is, contains or lies inside an input (``options``: attribute names of ``args``)."""
    from .._io import refuse_overlap
    from ..runs import run_dir

    inputs = {f"--{o.replace('_', '-')}": getattr(args, o, None) for o in options}
    if getattr(args, "run", None):
        inputs["--run"] = run_dir(args.run)
    if inputs.get("--fit-subjects") == "run":
        del inputs["--fit-subjects"]
    refuse_overlap(args.out, inputs)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse, in one line, option values that would fail deep inside a command or give empty tables."""
    import torch

    from ..errors import ConfigError

    for opt, least, what in (("batch_size", 1, "window per forward pass"),
                             ("occlusion_windows", 1, "window per recording, or leave the option out for all"),
                             ("seed", 0, "(a seed is a non-negative integer)"),
                             ("retest_years", 0, "(years after the first recording)")):
        v = getattr(args, opt, None)
        if v is not None and v < least:
            raise ConfigError(f"--{opt.replace('_', '-')} {v:g}: give at least {least} {what}.")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise ConfigError(f"--device {args.device!r} is not a torch device; use cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: no CUDA GPU is available here; use --device cpu.")


def _load(args: argparse.Namespace):
    from ..cohort import Cohort
    from ..runs import load_model

    _check_options(args)
    _refuse_overlap(args, "cohort", "fit_cohort", "fit_subjects")
    cohort = Cohort.open(args.cohort)
    model, info = load_model(args.run, cohort=cohort, device=args.device)
    return model, info, cohort


def _fit_subjects(spec: str, run: str) -> list[str]:
    """Subject ids from ``--fit-subjects``: ``run`` (RUN/summary.json's training split) or a text file."""
    from ..errors import InputError

    if spec == "run":
        f = Path(run) / "summary.json" if Path(run).is_dir() else Path(run).parent / "summary.json"
        try:
            return [str(s) for s in json.loads(f.read_text())["train_subjects"]]
        except (OSError, ValueError, KeyError):
            raise InputError(f"--fit-subjects run: {f} does not list train_subjects (a finished run of this "
                             "bi_core writes them); pass a file with one subject per line instead.") from None
    from .._io import read_text

    try:
        subjects = [ln.strip() for ln in read_text(spec).splitlines() if ln.strip()]
    except OSError as exc:
        raise InputError(f"--fit-subjects: cannot read {spec} ({exc.strerror}); give 'run' or a text file with "
                         "one subject id per line.") from None
    if not subjects:
        raise InputError(f"--fit-subjects: {spec} lists no subject.")
    return subjects


def _predictability(args: argparse.Namespace) -> int:
    from .._io import write_tsv
    from ..errors import ConfigError

    if args.method != "model" and args.part != "model":
        raise ConfigError("--part scores a part of the model; use it with --method model.")
    if args.method == "model" and (args.fit_cohort or args.fit_subjects):
        raise ConfigError("--fit-cohort and --fit-subjects choose what a linear reference is fitted on; use them "
                          "with --method ridge or lagged-ridge.")
    model, info, cohort = _load(args)
    if args.method == "model":
        from ..analysis.predictability import predictability

        part = args.part.replace("-", " ")                    # bi_core.model.PARTS spelling
        df = predictability(model, info, cohort, batch_size=args.batch_size, device=args.device,
                            progress=not args.quiet, part=part)
        df = df.assign(method="model" if part == "model" else f"model: {part}")
    else:
        from ..analysis.linear import linear_predictability
        from ..cohort import Cohort

        fit = [Cohort.open(d) for d in args.fit_cohort] if args.fit_cohort else None
        subjects = _fit_subjects(args.fit_subjects, args.run) if args.fit_subjects else None
        df = linear_predictability(info, cohort, args.method, fit_cohort=fit, train_subjects=subjects,
                                   folds=args.folds, seed=args.seed, progress=not args.quiet)
    write_tsv(args.out, df)
    means = df.groupby("network")["r2"].mean().reindex(info.atlas.networks)
    what = args.method if args.part == "model" else f"model: {args.part.replace('-', ' ')}"
    print(f"wrote {args.out} ({what}): {df['recording_id'].nunique()} recordings x {len(means)} networks; "
          "mean R² " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    return 0


def _interactions(args: argparse.Namespace) -> int:
    from .._io import atomic_paths, write_json, write_tsv
    from ..analysis.interactions import add_network_fc, agreement, interactions

    model, info, cohort = _load(args)
    df = interactions(model, info, cohort, occlusion=not args.no_occlusion, occlusion_windows=args.occlusion_windows,
                      batch_size=args.batch_size, device=args.device, progress=not args.quiet)
    df = add_network_fc(df, cohort)
    out = Path(args.out)
    agreement_file = out.with_name(out.stem + "_agreement.json")
    agree = None if args.no_occlusion else {m: agreement(df, info.atlas.networks, attention=m)
                                            for m in ("attention", "enrichment")}
    # both files are computed before either is written, then renamed back to back: a kill leaves the previous pair
    if agree is None:
        write_tsv(out, df)
        agreement_file.unlink(missing_ok=True)      # an earlier run's, about another table
    else:
        with atomic_paths(out, agreement_file) as (tmp_table, tmp_agreement):
            write_tsv(tmp_table, df)
            write_json(tmp_agreement, agree)
    print(f"wrote {args.out}: {len(df)} rows")
    if agree is not None:
        a = agree["enrichment"]
        print(f"attention vs occlusion: Spearman of group matrices {a['spearman_group_matrices']:.2f}, "
              f"median per recording {a['spearman_per_recording_median']:.2f}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from ..analysis.embeddings import embed, write_embeddings

    model, info, cohort = _load(args)
    emb = embed(model, info, cohort, batch_size=args.batch_size, device=args.device, progress=not args.quiet)
    write_embeddings(args.out, emb, info.atlas.networks)
    print(f"wrote {args.out}: {len(emb.table)} recordings x {emb.pooled.shape[1]} dimensions "
          "(pooled, per network, per-network temporal SD)")
    return 0


def _groupdiff(args: argparse.Namespace) -> int:
    import pandas as pd

    from .._io import write_tsv
    from ..analysis import groundtruth as GT
    from ..analysis.groupstats import as_labels, baseline_rows, group_differences
    from ..analysis.predictability import PHENOTYPES, with_phenotypes
    from ..cohort import Cohort
    from .._io import not_utf8
    from ..errors import InputError

    _refuse_overlap(args, "table", "cohort", "ground_truth")
    cohort = Cohort.open(args.cohort)
    try:
        df = pd.read_csv(args.table, sep="\t", dtype={"recording_id": str, "subject": str, "session": str})
    except UnicodeDecodeError as exc:
        raise not_utf8(args.table, exc) from None
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{args.table} could not be read as a TSV table: {exc}") from None
    cells = ["network"] if "network" in df else ["target", "source"] if {"target", "source"} <= set(df) else None
    if cells is None:
        raise InputError(f"{args.table}: expected a 'network' column (predictability) or 'target' and 'source' "
                         "columns (interactions).")
    value = args.value or ("r2" if cells == ["network"] else "attention")
    if value not in df:
        raise InputError(f"{args.table} has no column {value!r}; columns: {list(df.columns)}.")
    groups = _resolve_groups(args, cohort.table, f"cohort {cohort.path}")
    if groups is None:
        raise InputError(f"groupdiff needs diagnoses, but cohort {cohort.path} has none; choose the group column "
                         "with --group-column COL.")
    cohort.table[groups.column] = as_labels(cohort.table[groups.column])
    base = set(cohort.table.loc[baseline_rows(cohort.table), "recording_id"])
    d = with_phenotypes(df[df["recording_id"].isin(base)], cohort, (*PHENOTYPES, groups.column))
    d = d[d[groups.column].isin(groups.order)]
    out = group_differences(d, value, cells, covariates=[c for c in args.covariates.split(",") if c], alpha=args.alpha,
                            contrasts=groups.contrasts, column=groups.column)
    write_tsv(args.out, out)
    sig = out[out["significant"]]
    print(f"wrote {args.out}: {int(sig.shape[0])} significant cell(s) at FDR {args.alpha}")
    if args.ground_truth:
        truth = GT.load_ground_truth(args.ground_truth)
        if cells == ["network"]:
            print(json.dumps(GT.score_dmn_drop(out), indent=2))
        else:
            print(json.dumps(GT.score_interaction_changes(out, truth), indent=2))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from ..analysis.classify import CVConfig
    from ..analysis.suite import run_suite

    from ..errors import ConfigError

    for opt, v in (("--folds", args.folds), ("--inner-folds", args.inner_folds), ("--repeats", args.repeats)):
        if v < (1 if opt == "--repeats" else 2):
            raise ConfigError(f"{opt} {v}: cross-validation needs at least {1 if opt == '--repeats' else 2}.")
    if args.permutations < 0:
        raise ConfigError(f"--permutations {args.permutations}: give 0 (no permutation test) or more.")
    if args.bootstrap < 10:
        raise ConfigError(f"--bootstrap {args.bootstrap}: an interval needs at least 10 resamples (2,000 is usual).")
    _check_options(args)
    cv = CVConfig(n_splits=args.folds, n_repeats=args.repeats, seed=args.seed, inner_splits=args.inner_folds,
                  n_permutations=args.permutations, n_bootstrap=args.bootstrap)
    s = run_suite(args.run, args.cohort, args.out, cv,
                  ground_truth=args.ground_truth, occlusion_windows=args.occlusion_windows, batch_size=args.batch_size,
                  device=args.device, fc_baselines=not args.no_fc, progress=not args.quiet,
                  group_column=args.group_column, reference=args.reference,
                  order=args.order.split(",") if args.order else None, retest_years=args.retest_years,
                  target=args.target, linear_fit_cohort=args.fit_cohort,
                  figures=None if args.no_figures else write_figures)
    g = s["groups"]
    print(f"wrote the analysis tables to {args.out}"
          + (f" (groups: {g['column']}, {' < '.join(g['order'])}, reference {g['reference']})" if g else "")
          + f"; timings (s): {s['timings']}")
    for what, how in s["adapted"].items():
        print(f"adapted {what} to this cohort: {how}")
    for what, why in s["skipped"].items():
        print(f"skipped {what}: {why}")
    return 0


#: Resolution of the PNG figures ``analyze`` writes (dots per inch).
FIGURE_DPI = 150


def write_figures(out: Path, summary: dict[str, Any], cohort: Cohort) -> list[str]:
    """The book's figures for the cohort of an analysis, as PNG files beside its tables (``bi-core analyze``).

    ``predictability_profile.png`` (baseline visits) and, where the tables exist,
    ``predictability_vs_linear.png``; with groups ``predictability_by_group.png``,
    ``groupdiff_predictability.png``, ``groupdiff_interactions.png`` (adjusted Cohen's d of
    the attention enrichment) and ``classification_<task>.png`` per task (ROC and AUC for two
    classes, balanced accuracy and the embedding's confusion matrix for more). The groups
    are those of ``summary`` (``column``, ``reference``, ``order``).

    Returns
    -------
    list of str
        The file names written, in order.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    from .._io import atomic_path
    from ..analysis.classify import confusion, roc_curves, tasks_for
    from ..analysis.groupstats import Groups, baseline_rows
    from ..analysis.predictability import with_phenotypes
    from ..figures import classification as FC
    from ..figures import interactions as FI
    from ..figures import predictability as FP
    from ..figures import set_style

    out = Path(out)
    set_style()
    written: list[str] = []

    def read(name: str) -> pd.DataFrame | None:
        return pd.read_csv(out / name, sep="\t") if (out / name).is_file() else None

    def save(fig, name: str) -> None:
        fig.tight_layout()
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=FIGURE_DPI, format="png")
        plt.close(fig)
        written.append(name)

    atlas = cohort.atlas
    g = summary.get("groups")
    cols = ("recording_id", *([g["column"]] if g else []))
    base_ids = set(cohort.table.loc[baseline_rows(cohort.table), "recording_id"])
    pred = read("predictability.tsv")
    pb = with_phenotypes(pred[pred["recording_id"].isin(base_ids)], cohort, cols[1:])
    means = pb.groupby("network")["r2"].mean().sort_values(ascending=False)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    FP.profile(pb, atlas.colors, ax=ax, order=list(means.index), title="predictability (baseline visits)")
    save(fig, "predictability_profile.png")
    lin = read("predictability_linear.tsv")
    if lin is not None:
        lb = lin[lin["recording_id"].isin(base_ids)]
        ref = pd.DataFrame({"model": means, **{m.replace("-", " "): lb[lb["method"] == m].groupby("network")["r2"].mean()
                                               for m in dict.fromkeys(lb["method"])}}).reindex(list(means.index))
        fig, ax = plt.subplots(figsize=(8, 3.6))
        FP.versus_reference(ref, ax=ax, title="the model beside its linear references")
        save(fig, "predictability_vs_linear.png")
    if not g:
        return written
    groups = Groups(g["column"], tuple(g["order"]), g["reference"])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    FP.by_group(pb, atlas.networks, ax=ax, column=groups.column, order=groups.order,
                title=f"predictability by {groups.column}")
    save(fig, "predictability_by_group.png")
    diff = read("groupdiff_predictability.tsv")
    if diff is not None:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        FP.effect_sizes(diff, atlas.networks, ax=ax, title=f"difference from {groups.reference} (adjusted)")
        save(fig, "groupdiff_predictability.png")
    idiff = read("groupdiff_interactions.tsv")
    if idiff is not None and (idiff["measure"] == "enrichment").any():
        save(FI.difference_maps(idiff, atlas.networks, atlas.colors, "enrichment"), "groupdiff_interactions.png")
    for task in tasks_for(groups):
        s, p = read(f"classification_{task.name}_summary.tsv"), read(f"classification_{task.name}_predictions.tsv")
        if s is None or p is None:
            continue
        what = " vs ".join(task.classes)
        if len(task.classes) == 2:
            fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1, 1.1]})
            FC.roc(roc_curves(p), s, ax=axes[0], title=f"{what}: mean ROC over CV repeats")
            FC.metric_bars(s, "auc", ax=axes[1], title=f"{what}: AUC (mean and interval over repeats)")
        else:
            fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8), gridspec_kw={"width_ratios": [1.3, 1]})
            FC.metric_bars(s, "balanced_accuracy", ax=axes[0], title=f"{what}: balanced accuracy")
            axes[0].axvline(1 / len(task.classes), color="0.5", ls=":", lw=1)
            FC.confusion_matrix(confusion(p, task.classes, "BrainInterNet embedding"), ax=axes[1],
                                title="embeddings: confusion (row-normalized)")
        save(fig, f"classification_{task.name}.png")
    return written
