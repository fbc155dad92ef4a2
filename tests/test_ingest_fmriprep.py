"""`bi-core ingest fmriprep`: tiny fMRIPrep-like NIfTI + confounds written by the tests (offline)."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bi_core.cli import main
from bi_core.errors import ConfigError, InputError
from bi_core.ingest import ingest_fmriprep
from bi_core.preprocess import PreprocSpec

N_VOL = 80
TR = 0.8
AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])
# label values (the table's index) are not 1..n and the table rows are not in index order
INDEX = {40: ("dmn_a", "DMN"), 10: ("vis_a", "VIS"), 30: ("smn_a", "SMN"), 20: ("vis_b", "VIS")}
FREQ = {10: 0.05, 20: 0.09, 30: 0.13, 40: 0.17}  # Hz: one oscillation per ROI
PREFIX = "sub-{s}_ses-1_task-rest_run-1"


def _labels() -> np.ndarray:
    lab = np.zeros((6, 6, 6), dtype=np.int16)
    lab[:3, :3, 1:5], lab[3:, :3, 1:5], lab[:3, 3:, 1:5], lab[3:, 3:, 1:5] = 10, 20, 30, 40
    return lab


def _bold(seed: int, n_vol: int = N_VOL) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_vol) * TR
    lab = _labels()
    data = 1000 + rng.normal(0, 1, size=(*lab.shape, n_vol))
    for v, f in FREQ.items():
        data[lab == v] += 20 * np.sin(2 * np.pi * f * t + seed)
    return data.astype(np.float32)


def _confounds(seed: int, n_vol: int = N_VOL) -> tuple[pd.DataFrame, dict]:
    """Every column the four strategies need: motion (24), wm/csf (8), FD, DVARS, aCompCor, cosines."""
    rng = np.random.default_rng(100 + seed)
    cols: dict[str, np.ndarray] = {}
    for base in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf", "white_matter"):
        x = rng.normal(0, 0.1, n_vol)
        d = np.r_[np.nan, np.diff(x)]
        cols.update({base: x, f"{base}_derivative1": d, f"{base}_power2": x**2, f"{base}_derivative1_power2": d**2})
    fd = np.full(n_vol, 0.1)
    fd[40:42] = 0.9  # two high-motion volumes: scrubbed by the "scrubbing" strategy
    cols.update({"framewise_displacement": np.r_[np.nan, fd[1:]], "std_dvars": np.r_[np.nan, np.ones(n_vol - 1)]})
    for i in range(3):
        cols[f"a_comp_cor_{i:02d}"] = rng.normal(size=n_vol)
    t = np.arange(n_vol)
    for i in range(2):
        cols[f"cosine{i:02d}"] = np.cos(np.pi * (i + 1) * (t + 0.5) / n_vol)
    steady = np.zeros(n_vol)
    steady[0] = 1  # one dummy volume: dropped by every strategy
    cols["non_steady_state_outlier00"] = steady
    meta = {f"a_comp_cor_{i:02d}": {"Method": "aCompCor", "Mask": "combined", "Retained": True,
                                     "VarianceExplained": 0.1} for i in range(3)}
    return pd.DataFrame(cols), meta


def _write_run(root: Path, sub: str, seed: int, desc: str = "preproc", header_tr: float = TR, sidecar: bool = False,
               space: str = "MNI152NLin2009cAsym") -> Path:
    func = root / f"sub-{sub}" / "ses-1" / "func"
    func.mkdir(parents=True, exist_ok=True)
    prefix = PREFIX.format(s=sub)
    img = nib.Nifti1Image(_bold(seed), AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = header_tr
    path = func / f"{prefix}_space-{space}_desc-{desc}_bold.nii.gz"
    nib.save(img, path)
    if sidecar:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps({"RepetitionTime": TR}))
    conf, meta = _confounds(seed)
    conf.to_csv(func / f"{prefix}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    (func / f"{prefix}_desc-confounds_timeseries.json").write_text(json.dumps(meta))
    return path


@pytest.fixture()
def fmriprep(tmp_path):
    """Two subjects' fMRIPrep runs, a label image, an atlas table and participants.tsv."""
    root = tmp_path / "fmriprep"
    _write_run(root, "01", 1)
    _write_run(root, "02", 2, header_tr=0.0, sidecar=True)  # TR only in the JSON sidecar
    nib.save(nib.Nifti1Image(_labels(), AFFINE), tmp_path / "labels.nii.gz")
    rows = [{"index": k, "name": n, "network": net} for k, (n, net) in INDEX.items()]
    pd.DataFrame(rows).to_csv(tmp_path / "atlas-tiny_dseg.tsv", sep="\t", index=False)
    (root / "participants.tsv").write_text("participant_id\tage\tdx\nsub-01\t71\tCN\nsub-02\t74\tAD\n")
    return root


def _run(root: Path, out: Path, **kw):
    return ingest_fmriprep(root, root.parent / "labels.nii.gz", root.parent / "atlas-tiny_dseg.tsv", out,
                           progress=False, **kw)


def _no_output(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary output left behind"


# ---------------------------------------------------------------------- happy paths
@pytest.mark.parametrize("strategy,n_frames", [("simple", 79), ("scrubbing", 77), ("compcor", 79)])
def test_parcellates_in_atlas_order_with_denoising(fmriprep, tmp_path, strategy, n_frames):
    c = _run(fmriprep, tmp_path / "out", strategy=strategy)
    assert c.atlas.roi_names == ("vis_a", "vis_b", "smn_a", "dmn_a")  # sorted by index
    assert list(c.table["recording_id"]) == ["sub-01_ses-1_run-1", "sub-02_ses-1_run-1"]
    assert list(c.table["tr"]) == [TR, TR]  # header pixdim[4] for sub-01, JSON sidecar for sub-02
    assert list(c.table["n_frames"]) == [n_frames, n_frames]  # censored volumes are dropped
    assert list(c.table["dx"]) == ["CN", "AD"] and list(c.table["age"]) == [71, 74]  # the user's `dx` keeps its name
    x = np.asarray(c.series(0))
    np.testing.assert_allclose(x.std(0), 1, atol=1e-4)
    # each column carries its own ROI's oscillation: the label → column mapping is right
    keep = np.setdiff1d(np.arange(1, N_VOL), [40, 41]) if strategy == "scrubbing" else np.arange(1, N_VOL)
    refs = np.stack([np.sin(2 * np.pi * FREQ[v] * keep * TR + 1) for v in sorted(INDEX)], axis=1)
    r = np.corrcoef(x.T, refs.T)[:4, 4:]  # [column, reference]
    assert (np.argmax(np.abs(r), axis=1) == np.arange(4)).all() and (np.abs(np.diag(r)) > 0.6).all()
    meta = json.loads((c.path / "cohort.json").read_text())
    assert meta["ingest"]["strategy"] == strategy and meta["preprocessing"]["zscore"] is True


def test_ica_aroma_uses_the_aroma_images(fmriprep, tmp_path):
    for sub, seed in (("01", 1), ("02", 2)):
        _write_run(fmriprep, sub, seed, desc="smoothAROMAnonaggr", space="MNI152NLin6Asym")
    c = _run(fmriprep, tmp_path / "out", strategy="ica_aroma")
    assert len(c) == 2 and list(c.table["n_frames"]) == [79, 79]


def test_tr_harmonization_and_band_pass_are_recorded(fmriprep, tmp_path):
    spec = PreprocSpec(target_tr=1.6, detrend=True, high_pass=0.01)
    c = _run(fmriprep, tmp_path / "out", spec=spec, min_frames=32)
    assert list(c.table["n_frames"]) == [40, 40]  # 79 frames x 0.8 s at 1.6 s (rounded)
    assert c.table["tr"].eq(1.6).all()
    assert c.preprocessing == PreprocSpec(target_tr=1.6, detrend=True, high_pass=0.01, zscore=True)


def test_space_selects_one_output_space(fmriprep, tmp_path):
    _write_run(fmriprep, "01", 1, space="T1w")
    with pytest.raises(InputError, match=r"both map to recording sub-01_ses-1_run-1 .*pass --space"):
        _run(fmriprep, tmp_path / "out")
    _no_output(tmp_path)
    assert len(_run(fmriprep, tmp_path / "out", space="MNI152NLin2009cAsym")) == 2


def test_cli_happy_path(fmriprep, tmp_path, capsys):
    rc = main(["ingest", "fmriprep", str(fmriprep), "--atlas-img", str(tmp_path / "labels.nii.gz"), "--atlas",
               str(tmp_path / "atlas-tiny_dseg.tsv"), "--strategy", "simple", "--out", str(tmp_path / "out"),
               "--quiet"])
    assert rc == 0 and "2 recordings from 2 subjects" in capsys.readouterr().out


# ---------------------------------------------------------------------- refusals
def _func(root: Path, sub: str = "02") -> Path:
    return root / f"sub-{sub}" / "ses-1" / "func"


def _corrupt_nifti(root):
    p = next(_func(root).glob("*_bold.nii.gz"))
    p.write_bytes(b"this is not a nifti file" * 10)


def _missing_tr(root):
    next(_func(root).glob("*_bold.json")).unlink()


def _bad_confounds_json(root):
    next(_func(root).glob("*_desc-confounds_timeseries.json")).write_text("{not json")


def _missing_confounds(root):
    next(_func(root).glob("*_desc-confounds_timeseries.tsv")).unlink()


def _missing_columns(root):
    p = next(_func(root).glob("*_desc-confounds_timeseries.tsv"))
    pd.read_csv(p, sep="\t").drop(columns=["csf", "white_matter"]).to_csv(p, sep="\t", index=False)


def _short_confounds(root):
    p = next(_func(root).glob("*_desc-confounds_timeseries.tsv"))
    pd.read_csv(p, sep="\t").iloc[:50].to_csv(p, sep="\t", index=False, na_rep="n/a")


def _short_run(root):
    img_path = next(_func(root).glob("*_bold.nii.gz"))
    img = nib.load(img_path)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., :50], AFFINE, img.header), img_path)
    p = next(_func(root).glob("*_desc-confounds_timeseries.tsv"))
    pd.read_csv(p, sep="\t").iloc[:50].to_csv(p, sep="\t", index=False, na_rep="n/a")


def _constant_roi(root):
    # (NaN voxels cannot reach the series: nilearn's masker zeroes non-finite voxels; an
    # empty/constant parcel is what such data become)
    img_path = next(_func(root).glob("*_bold.nii.gz"))
    img = nib.load(img_path)
    data = np.asarray(img.dataobj).copy()
    data[_labels() == 40] = 1000.0
    nib.save(nib.Nifti1Image(data, AFFINE, img.header), img_path)


def _unknown_sex(root):
    (root / "participants.tsv").write_text("participant_id\tage\tsex\tdx\nsub-01\t71\tF\tCN\nsub-02\t74\tX\tSCD\n")


def _no_recordings(root):
    for p in root.glob("sub-*/ses-*/func/*_bold.nii.gz"):
        p.rename(p.with_name(p.name.replace("task-rest", "task-motor")))


REFUSALS = {
    "corrupt_nifti": (_corrupt_nifti, "sub-02_ses-1_task-rest_run-1_space", r"BOLD image .* could not be read as "
                                                                            r"NIfTI .*re-create or remove it"),
    "missing_tr": (_missing_tr, "sub-02_ses-1", r"missing repetition time: pixdim\[4\] in the NIfTI header is 0 and "
                                                r"no JSON sidecar has RepetitionTime; add"),
    "bad_confounds_json": (_bad_confounds_json, "sub-02_ses-1", r"could not load its confounds sub-02_ses-1_task-rest_"
                                                                r"run-1_desc-confounds_timeseries.tsv \(\+ .json\) for "
                                                                r"the 'simple' strategy \(Expecting property name"),
    "missing_confounds": (_missing_confounds, "sub-02_ses-1", r"could not load its confounds .*Could not find "
                                                              r"associated confound file"),
    "missing_columns": (_missing_columns, "sub-02_ses-1", r"could not load its confounds .*missing.*wm_csf.*"
                                                          r"needs the 24 motion columns .*csf, white_matter — use the "
                                                          r"files fMRIPrep wrote .*or choose another --strategy"),
    "confounds_length": (_short_confounds, "sub-02_ses-1", r"its confounds sub-02_ses-1_task-rest_run-1_desc-"
                                                           r"confounds_timeseries.tsv have 50 rows but the image has "
                                                           r"80 volumes"),
    "too_short": (_short_run, "sub-02_ses-1", r"49 frames is shorter than one window \(64 frames"),
    "constant_roi": (_constant_roi, "sub-02_ses-1", r"1 constant ROI\(s\) \['dmn_a'\]"),
    "unknown_sex": (_unknown_sex, "participants.tsv", r"\(sub-02\): unknown sex value 'X'; expected M/F"),
    "no_recordings": (_no_recordings, "fmriprep", r"no recordings found under .*_task-rest.*_desc-preproc_bold.nii.gz"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_input_is_refused_and_nothing_written(fmriprep, tmp_path, case):
    mutate, names, pattern = REFUSALS[case]
    mutate(fmriprep)
    with pytest.raises(InputError, match=pattern) as err:
        _run(fmriprep, tmp_path / "out")
    assert names in str(err.value) and "\n" not in str(err.value)
    _no_output(tmp_path)


def test_label_image_must_match_the_atlas_table(fmriprep, tmp_path):
    lab = _labels()
    lab[lab == 40] = 50
    nib.save(nib.Nifti1Image(lab, AFFINE), tmp_path / "labels.nii.gz")
    with pytest.raises(InputError, match=r"labels.nii.gz does not match atlas table .*atlas-tiny_dseg.tsv: atlas ROIs "
                                         r"without voxels \['dmn_a \(40\)'\]; label values not in the table \[50\]"):
        _run(fmriprep, tmp_path / "out")
    (tmp_path / "labels.nii.gz").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"atlas label image .*labels.nii.gz could not be read as NIfTI"):
        _run(fmriprep, tmp_path / "out")
    _no_output(tmp_path)


def test_atlas_table_missing(fmriprep, tmp_path):
    with pytest.raises(InputError, match=r"atlas table .*atlas-nope_dseg.tsv not found"):
        ingest_fmriprep(fmriprep, tmp_path / "labels.nii.gz", tmp_path / "atlas-nope_dseg.tsv", tmp_path / "out")
    with pytest.raises(InputError, match=r"atlas table for 'nope' not found .*fmriprep/atlas-nope_dseg.tsv"):
        ingest_fmriprep(fmriprep, tmp_path / "labels.nii.gz", "nope", tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown denoising strategy"):
        _run(fmriprep, tmp_path / "out", strategy="aggressive")
    _no_output(tmp_path)


@pytest.mark.parametrize("case", ["corrupt_nifti", "missing_columns"])
def test_cli_refusal_is_one_line_exit_2(fmriprep, tmp_path, capsys, case):
    REFUSALS[case][0](fmriprep)
    rc = main(["ingest", "fmriprep", str(fmriprep), "--atlas-img", str(tmp_path / "labels.nii.gz"), "--atlas",
               str(tmp_path / "atlas-tiny_dseg.tsv"), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("bi-core: error:") and err.count("\n") == 1 and "Traceback" not in err
    _no_output(tmp_path)
