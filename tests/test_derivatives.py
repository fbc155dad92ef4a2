"""Outputs as BIDS derivatives (issue 24, part 4).

Every cohort, run and results directory carries a BIDS-derivative ``dataset_description.json``
(GeneratedBy: bi_core, its version and the command line; SourceDatasets: the inputs); the
analysis tables name subjects and sessions the BIDS way (``participant_id``, ``session_id``)
beside ``subject``/``session``; ``analyze`` writes the book's figures beside its tables
unless ``--no-figures``. The lab study is written as XCP-D writes it (see
``tests/test_ingest_xcpd.py``): ``<raw>/derivatives/xcp_d``, the atlas table under
``sourcedata/atlases/``, the TR in the raw root's ``task-rest_bold.json`` and
``participants.tsv`` in the raw root with ``group`` (patient/control), ``site`` and ``age``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core._io import MARKER, dataset_description, derived, write_dataset_description
from bi_core.analysis.suite import bids_ids
from bi_core.cli import main

from _util import pilot

MNI = "MNI152NLin6Asym"
NETS = ["Vis"] * 3 + ["SomMot"] * 3 + ["Default"] * 3 + ["DorsAttn"] * 3
NAMES = [f"roi{i:02d}" for i in range(len(NETS))]


def write_lab_study(raw: Path, n_per_group: int = 4, frames: int = 160, sessions: int = 1, seed: int = 0) -> Path:
    """A BIDS study with an XCP-D derivatives folder: ``n_per_group`` controls and patients (coupled networks,
    the patients' Default network less coupled to the others), ``site`` and ``age`` columns.

    Returns ``raw/derivatives/xcp_d``.
    """
    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True)
    (raw / "dataset_description.json").write_text(json.dumps({"Name": "lab study", "BIDSVersion": "1.9.0"}))
    (raw / "task-rest_bold.json").write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": "rest"}))
    subs = [f"{i + 1:02d}" for i in range(2 * n_per_group)]
    groups = ["control", "patient"] * n_per_group
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in subs], "age": rng.uniform(20, 80, len(subs)).round(1),
                  "sex": rng.choice(["F", "M"], len(subs)), "group": groups,
                  "site": ["siteA"] * n_per_group + ["siteB"] * n_per_group}).to_csv(raw / "participants.tsv", sep="\t",
                                                                                      index=False)
    xd = raw / "derivatives" / "xcp_d"
    tpl = xd / "sourcedata" / "atlases" / f"tpl-{MNI}"
    tpl.mkdir(parents=True)
    (xd / "dataset_description.json").write_text(json.dumps({
        "Name": "XCP-D output", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "xcp_d", "Version": "0.10.0"}]}))
    pd.DataFrame({"index": range(1, len(NAMES) + 1), "label": NAMES, "network_label": NETS}).to_csv(
        tpl / f"tpl-{MNI}_atlas-lab_res-01_dseg.tsv", sep="\t", index=False)
    nets = list(dict.fromkeys(NETS))
    k = np.array([nets.index(n) for n in NETS])
    for s, g in zip(subs, groups):
        for ses in range(1, sessions + 1):
            # one shared slow signal drives every network; the patients' Default network follows it less
            shared = np.convolve(rng.standard_normal(frames + 8), np.ones(8) / 8, "valid")[:frames]
            load = np.where(np.array(nets) == "Default", 0.3 if g == "patient" else 0.9, 0.8)
            own = np.stack([np.convolve(rng.standard_normal(frames + 4), np.ones(4) / 4, "valid")[:frames]
                            for _ in nets], 1)
            latent = shared[:, None] * load + own
            x = latent[:, k] + 0.5 * rng.standard_normal((frames, len(NAMES))) + 100
            func = xd / f"sub-{s}" / (f"ses-{ses}" if sessions > 1 else "") / "func"
            func.mkdir(parents=True, exist_ok=True)
            stem = f"sub-{s}" + (f"_ses-{ses}" if sessions > 1 else "") + "_task-rest"
            pd.DataFrame(x, columns=NAMES).to_csv(func / f"{stem}_space-{MNI}_seg-lab_stat-mean_timeseries.tsv",
                                                  sep="\t", index=False)
    return xd


def _description(d: Path) -> dict:
    return json.loads((d / "dataset_description.json").read_text())


def _is_derivative_of(d: Path, *sources: Path, command: str | None = None) -> dict:
    desc = _description(d)
    assert desc["DatasetType"] == "derivative" and desc["BIDSVersion"]
    gen = desc["GeneratedBy"][0]
    from bi_core import __version__

    assert gen["Name"] == "bi_core" and gen["Version"] == __version__
    if command is not None:
        assert gen["Description"].startswith(f"command: bi-core {command}")
    urls = [s["URL"] for s in desc.get("SourceDatasets", [])]
    for s in sources:
        assert s.resolve().as_uri() in urls
    assert (d / MARKER).is_file()      # the marker stays: --overwrite reads it
    return desc


# ---------------------------------------------------------------------- the pieces
def test_description_names_its_kind_and_sources_never_its_path(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "dataset_description.json").write_text(json.dumps({"Name": "the input"}))
    staging = tmp_path / ".cohort.bi_core-123-host-abcd1234.tmp"
    staging.mkdir()
    with derived(command=["bi-core", "ingest", "bids", "my dir"], sources=[src]):
        with derived(sources=[src, tmp_path / "other"]):       # nested: sources add up, without repeats
            write_dataset_description(staging, "cohort")
        inner = _description(staging)
        write_dataset_description(staging, "run")
    assert inner["Name"] == "bi_core cohort store"
    assert inner["GeneratedBy"][0]["Description"] == "command: bi-core ingest bids 'my dir'"
    assert inner["SourceDatasets"] == [{"URL": src.resolve().as_uri(), "Name": "the input"},
                                       {"URL": (tmp_path / "other").resolve().as_uri()}]
    assert _description(staging)["Name"] == "bi_core pretraining run"
    (staging / "cohort.json").write_text(json.dumps({"name": "lab study"}))
    write_dataset_description(staging, "cohort")
    assert _description(staging)["Name"] == "lab study (cohort store)"
    # outside a command: no command line, no sources
    plain = dataset_description("x")
    assert "Description" not in plain["GeneratedBy"][0] and "SourceDatasets" not in plain


def test_bids_ids_sit_beside_subject_and_session():
    df = pd.DataFrame({"recording_id": ["a", "b", "c"], "subject": ["01", "sub-02", "03"],
                       "session": ["1", "", None], "r2": [0.1, 0.2, 0.3]})
    out = bids_ids(df)
    assert list(out.columns) == ["recording_id", "subject", "participant_id", "session", "session_id", "r2"]
    assert out["participant_id"].tolist() == ["sub-01", "sub-02", "sub-03"]
    assert out["session_id"].tolist() == ["ses-1", "n/a", "n/a"]
    assert list(bids_ids(out).columns) == list(out.columns)           # idempotent
    assert list(bids_ids(df[["recording_id", "r2"]]).columns) == ["recording_id", "r2"]


def test_synthetic_cohorts_are_derivatives(smoke_dir):
    for d in (smoke_dir, smoke_dir / "pretrain", smoke_dir / "eval"):
        _is_derivative_of(d)
    assert _description(smoke_dir / "eval")["Name"] == "synthetic-eval (cohort store)"
    assert _description(smoke_dir)["Name"] == "bi_core synthetic cohort root"


# ---------------------------------------------------------------------- the commands
def test_ingest_pretrain_analyze_write_derivatives(tmp_path, capsys, one_thread):
    xd = write_lab_study(tmp_path / "raw", n_per_group=2, frames=120)
    cohort, run, res = tmp_path / "cohort", tmp_path / "run", tmp_path / "results"
    assert main(["ingest", "bids", str(xd), "--atlas", "lab", "--out", str(cohort), "--quiet"]) == 0
    _is_derivative_of(cohort, xd, tmp_path / "raw", command="ingest bids")
    assert main(["pretrain", "--cohort", str(cohort), "--preset", "smoke", "--out", str(run), "--quiet"]) == 0
    _is_derivative_of(run, cohort, command="pretrain")
    assert main(["analyze", "--run", str(run), "--cohort", str(cohort), "--out", str(res), "--repeats", "1",
                 "--occlusion-windows", "1", "--quiet", "--no-figures", "--permutations", "19", "--bootstrap", "50"]) == 0
    capsys.readouterr()
    _is_derivative_of(res, run, cohort, command="analyze")
    pred = pd.read_csv(res / "predictability.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert (pred["participant_id"] == "sub-" + pred["subject"]).all() and (pred["session_id"] == "n/a").all()
    assert not list(res.glob("*.png"))
    assert "figures" not in json.loads((res / "summary.json").read_text())


def test_analyze_writes_the_figures_of_its_groups(smoke_dir, smoke_run, tmp_path, capsys, one_thread):
    cohort = pilot(smoke_dir, tmp_path / "six", CN=3, AD=3)
    res = tmp_path / "results"
    assert main(["analyze", "--run", str(smoke_run), "--cohort", str(cohort), "--out", str(res), "--repeats", "1",
                 "--occlusion-windows", "1", "--quiet", "--group-column", "diagnosis", "--target", "age",
                 "--permutations", "19", "--bootstrap", "50"]) == 0
    capsys.readouterr()
    s = json.loads((res / "summary.json").read_text())
    assert s["figures"] == ["predictability_profile.png", "predictability_vs_linear.png", "predictability_by_group.png",
                            "groupdiff_predictability.png", "groupdiff_interactions.png", "classification_ad_cn.png"]
    for f in s["figures"]:
        assert (res / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every table with subjects names them the BIDS way, the numbers as written
    for name in ("predictability.tsv", "interactions.tsv", "embeddings.tsv", "classification_ad_cn_predictions.tsv",
                 "target_age_predictions.tsv"):
        t = pd.read_csv(res / name, sep="\t", dtype=str, keep_default_na=False)
        assert (t["participant_id"] == "sub-" + t["subject"]).all(), name
        assert list(t.columns).index("participant_id") == list(t.columns).index("subject") + 1
    e = pd.read_csv(res / "embeddings.tsv", sep="\t")
    assert (e["session_id"] == "ses-" + e["session"].astype(str)).all()


@pytest.mark.parametrize("kind", ["cohort", "run"])
def test_an_output_with_a_description_is_still_recognised_by_its_marker(tmp_path, kind):
    from bi_core._io import output_kind, write_marker

    d = tmp_path / "out"
    d.mkdir()
    write_marker(d, kind)
    assert output_kind(d) == kind and _description(d)["Name"] == f"bi_core {'cohort store' if kind == 'cohort' else 'pretraining run'}"


def test_a_bids_export_names_the_cohort_it_comes_from(smoke_dir, tmp_path):
    from bi_core.cohort import Cohort
    from bi_core.ingest import export_bids

    src = pilot(smoke_dir, tmp_path / "two", CN=1, AD=1)
    c = Cohort.open(src)
    export_bids(c, tmp_path / "bids")
    desc = _is_derivative_of(tmp_path / "bids", src)
    assert desc["Name"] == desc["SourceDatasets"][0]["Name"].replace("cohort store", "BIDS export") == f"{c.name} (BIDS export)"


def test_a_run_trained_through_the_api_names_its_cohorts(smoke_dir, tmp_path):
    """pretrain() called directly (as bi-core reproduce does) still lists its cohorts as SourceDatasets."""
    from bi_core.runs import preset
    from bi_core.train import pretrain

    pretrain([smoke_dir / "pretrain"], preset("smoke"), tmp_path / "run", device="cpu", progress=False,
             stop_after_epochs=1)
    _is_derivative_of(tmp_path / "run", smoke_dir / "pretrain")
