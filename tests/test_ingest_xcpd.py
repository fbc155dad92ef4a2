"""`bi-core ingest bids` on a lab's cohort as XCP-D and BIDS write it (issue 24, parts 1 and 2).

The fixture follows the XCP-D >= 0.7 output documentation: ``<raw>/derivatives/xcp_d`` with
``<source_entities>_space-<s>_seg-<atlas>_stat-mean_timeseries.tsv`` (``den-91k`` for fsLR),
the TR only in ``<source_entities>_space-<s>_desc-denoised_bold.json`` (or the raw dataset's
``task-rest_bold.json``), XCP-D's own atlas table (``index, label, network_label``) under
``sourcedata/atlases/tpl-<t>/``, ``dir-LR``/``dir-RL`` runs, an all-n/a low-coverage parcel,
and ``participants.tsv`` in the raw root with the user's ``group`` and ``dataset`` columns.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.errors import InputError
from bi_core.ingest import ingest_bids

MNI = "MNI152NLin6Asym"
NAMES = [f"roi{i}" for i in range(8)]
NETS = ["Vis"] * 3 + ["SomMot"] * 2 + ["Default"] * 3   # XCP-D / Schaefer long names


def _ts(seed: int, frames: int = 80) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).normal(size=(frames, 8)) + 100, columns=NAMES)


def _write(func: Path, name: str, df: pd.DataFrame, header: bool = True) -> Path:
    func.mkdir(parents=True, exist_ok=True)
    df.to_csv(func / name, sep="\t", index=False, header=header, na_rep="n/a")
    return func / name


@pytest.fixture()
def xcpd(tmp_path):
    """``tmp_path/raw`` (participants.tsv, task-rest_bold.json) and ``raw/derivatives/xcp_d``."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "participants.tsv").write_text("participant_id\tage\tsex\tgroup\tdataset\n"
                                          "sub-01\t30\tF\tcontrol\tsiteStudyA\n"
                                          "sub-02\t40\tM\tpatient\tsiteStudyB\n"
                                          "sub-03\t50\tF\tcontrol\tn/a\n")
    (raw / "task-rest_bold.json").write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": "rest"}))
    xd = raw / "derivatives" / "xcp_d"
    tpl = xd / "sourcedata" / "atlases" / f"tpl-{MNI}"
    tpl.mkdir(parents=True)
    pd.DataFrame({"index": range(1, 9), "label": NAMES, "network_label": NETS}).to_csv(
        tpl / f"tpl-{MNI}_atlas-toy_res-01_dseg.tsv", sep="\t", index=False)
    f1 = xd / "sub-01" / "func"
    for i, d in enumerate(("LR", "RL")):
        src = f"sub-01_task-rest_dir-{d}"
        _write(f1, f"{src}_space-{MNI}_seg-toy_stat-mean_timeseries.tsv", _ts(i))
        _write(f1, f"{src}_space-fsLR_seg-toy_den-91k_stat-mean_timeseries.tsv", _ts(10 + i))
        _write(f1, f"{src}_space-{MNI}_seg-toy_stat-coverage_bold.tsv", pd.DataFrame({"coverage": [1.0]}))
        (f1 / f"{src}_space-{MNI}_desc-denoised_bold.json").write_text(json.dumps({"RepetitionTime": 0.8}))
        (f1 / f"{src}_space-fsLR_den-91k_desc-denoised_bold.json").write_text(json.dumps({"RepetitionTime": 0.8}))
    f2 = xd / "sub-02" / "ses-1" / "func"        # TR from the raw dataset's task-rest_bold.json
    _write(f2, f"sub-02_ses-1_task-rest_space-{MNI}_seg-toy_stat-mean_timeseries.tsv",
           _ts(3).assign(roi6=np.nan))          # a parcel below XCP-D's coverage threshold
    f3 = xd / "sub-03" / "func"                  # headerless (nilearn masker + np.savetxt), atlas order
    _write(f3, f"sub-03_task-rest_space-{MNI}_seg-toy_stat-mean_timeseries.tsv", _ts(4), header=False)
    (f3 / f"sub-03_task-rest_space-{MNI}_desc-denoised_bold.json").write_text(json.dumps({"RepetitionTime": 1.5}))
    return xd


def test_mni_and_fslr_side_by_side_need_space_and_the_error_says_so(xcpd, tmp_path):
    with pytest.raises(InputError, match=r"both map to recording sub-01_dir-LR .*they differ in den, space: pass "
                                         r"--entity den=91k or --space"):
        ingest_bids(xcpd, "toy", tmp_path / "out", progress=False, drop_empty_rois=True)
    assert not (tmp_path / "out").exists()


def test_xcpd_cohort_as_written(xcpd, tmp_path):
    c = ingest_bids(xcpd, "toy", tmp_path / "out", space=MNI, drop_empty_rois=True, progress=False)
    t = c.table.set_index("recording_id")
    assert list(t.index) == ["sub-01_dir-LR", "sub-01_dir-RL", "sub-02_ses-1", "sub-03"]
    # TR: the denoised BOLD sidecar (sub-01, sub-03), the raw dataset's task-rest_bold.json (sub-02)
    assert list(t["tr"]) == [0.8, 0.8, 2.0, 1.5]
    # participants.tsv from the raw root; the user's column and labels kept; dataset from its column
    assert list(t["group"]) == ["control", "control", "patient", "control"]
    assert list(t["dataset"]) == ["siteStudyA", "siteStudyA", "siteStudyB", "xcp_d"]
    assert t["diagnosis"].isna().all()
    # XCP-D's table (label, network_label) read; the all-n/a parcel dropped and reported
    assert c.atlas.roi_names == tuple(n for n in NAMES if n != "roi6")
    assert c.atlas.roi_networks[:3] == ("VIS",) * 3
    meta = json.loads((c.path / "cohort.json").read_text())["ingest"]
    assert meta["dropped_rois"]["rois"] == ["roi6"]
    assert meta["dropped_rois"]["recordings"] == {"roi6": ["sub-02_ses-1"]}
    assert meta["space"] == MNI and "participants" not in meta
    # the headerless file is read in the atlas order: its z-scored roi0 is the written roi0
    x = _ts(4)["roi0"].to_numpy()
    np.testing.assert_allclose(c.series("sub-03")[:, 0], (x - x.mean()) / x.std(), atol=1e-5)
    from bi_core.analysis.groupstats import resolve_groups

    g = resolve_groups(c.table, "group", "control")
    assert g.reference == "control" and set(g.order) == {"control", "patient"}


def test_empty_parcel_without_the_option_names_it(xcpd, tmp_path):
    with pytest.raises(InputError, match=r"1 constant ROI\(s\) \['roi6'\] .*pass --drop-empty-rois"):
        ingest_bids(xcpd, "toy", tmp_path / "out", space=MNI, progress=False)


def test_entity_filter_older_atlas_location_and_given_phenotypes(xcpd, tmp_path):
    # XCP-D 0.7-0.10 kept its tables in atlases/atlas-<name>/
    src = next((xcpd / "sourcedata").rglob("*_dseg.tsv"))
    old = xcpd / "atlases" / "atlas-toy"
    old.mkdir(parents=True)
    src.rename(old / "atlas-toy_space-MNI152NLin6Asym_dseg.tsv")
    pheno = tmp_path / "pheno.tsv"
    pheno.write_text("participant_id\tarm\nsub-01\tplacebo\n")
    c = ingest_bids(xcpd, "toy", tmp_path / "out", space="fsLR", entities={"dir": "LR"}, phenotypes=pheno,
                    progress=False)
    assert list(c.table["recording_id"]) == ["sub-01_dir-LR"] and list(c.table["arm"]) == ["placebo"]
    assert list(c.table["dataset"]) == ["xcp_d"]


def test_headerless_with_roi_names_and_the_cli_prints_what_it_mapped(xcpd, tmp_path, capsys):
    f = next(xcpd.rglob("sub-03_*_timeseries.tsv"))
    _ts(4)[NAMES[::-1]].to_csv(f, sep="\t", index=False, header=False)   # columns in reverse atlas order
    (xcpd.parent.parent / "participants.tsv").write_text("participant_id\tGender\tgroup\nsub-03\tfemale\tcontrol\n")
    names = tmp_path / "names.txt"
    names.write_text("\n".join(NAMES[::-1]) + "\n")
    out = tmp_path / "out"
    rc = main(["ingest", "bids", str(xcpd), "--atlas", "toy", "--space", MNI, "--entity", "sub=03", "--roi-names",
               str(names), "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "column 'Gender' is stored as 'sex'" in printed and "'female' as 'F'" in printed
    c = Cohort.open(out)
    x = _ts(4)["roi0"].to_numpy()
    np.testing.assert_allclose(c.series("sub-03")[:, 0], (x - x.mean()) / x.std(), atol=1e-5)
    assert list(c.table["group"]) == ["control"] and list(c.table["sex"]) == ["F"]
    # a wrong count of names is one clear line
    names.write_text("roi0,roi1\n")
    assert main(["ingest", "bids", str(xcpd), "--atlas", "toy", "--space", MNI, "--entity", "sub=03",
                 "--roi-names", "roi0,roi1", "--out", str(tmp_path / "o2"), "--quiet"]) == 2
    assert "no header row and 8 columns, but --roi-names gives 2 names" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "bids", "--help"])
    text = capsys.readouterr().out
    for opt in ("--space", "--desc", "--entity", "--phenotypes", "--roi-names", "--drop-empty-rois", "network_label",
                "sourcedata/atlases", "desc-denoised_bold.json", "derivatives/<pipeline>", "dir-<l>"):
        assert opt in text, opt
