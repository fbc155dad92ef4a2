import json

import numpy as np
import pytest

from bi_core._io import user_cache_dir
from bi_core.cohort import Cohort, CohortWriter, open_cohorts
from bi_core.errors import InputError
from bi_core.preprocess import PreprocSpec


def _write(path, atlas, n=3, frames=100, tr=0.8, **kw):
    rng = np.random.default_rng(0)
    with CohortWriter(path, atlas, PreprocSpec(), **kw) as w:
        for i in range(n):
            w.add(rng.normal(size=(frames + 10 * i, atlas.n_rois)), recording_id=f"sub-{i}_ses-1", subject=str(i),
                  session="1", tr=tr, dataset="toy", site="A", diagnosis=["CN", "mci", "Dementia"][i % 3],
                  age=60 + i, sex="f")
    return Cohort.open(path)


def test_roundtrip_memmap_and_table(tmp_path, small_atlas):
    c = _write(tmp_path / "c", small_atlas)
    assert len(c) == 3
    assert isinstance(c.data, np.memmap)
    assert c.series(1).shape == (110, small_atlas.n_rois)
    assert c.series("sub-2_ses-1").dtype == np.float32
    assert list(c.table["diagnosis"]) == ["CN", "MCI", "AD"]
    assert list(c.table["sex"]) == ["F"] * 3
    assert c.atlas == small_atlas
    w = c.window(2, 5, 20)
    np.testing.assert_array_equal(w, c.series(2)[5:25])
    info = c.info()
    assert info["n_recordings"] == 3 and info["n_subjects"] == 3 and info["n_rois"] == 8
    assert info["networks"] == {"VIS": 3, "SMN": 2, "DMN": 3}
    assert info["tr"] == [0.8]
    assert info["diagnosis_counts"] == {"CN": 1, "MCI": 1, "AD": 1}
    json.dumps(info)
    assert "3 from 3 subjects" in c.summary()


def test_series_written_exactly(tmp_path, small_atlas):
    x = np.random.default_rng(3).normal(size=(50, 8)).astype(np.float32)
    with CohortWriter(tmp_path / "c", small_atlas) as w:
        w.add(x, recording_id="r", subject="s", tr=2.0)
    np.testing.assert_array_equal(Cohort.open(tmp_path / "c").series(0), x)


def test_failed_write_leaves_nothing(tmp_path, small_atlas):
    out = tmp_path / "c"
    with pytest.raises(InputError, match="duplicate recording id"):
        with CohortWriter(out, small_atlas) as w:
            x = np.random.default_rng(0).normal(size=(40, 8))
            w.add(x, recording_id="r1", subject="s", tr=1.0)
            w.add(x, recording_id="r1", subject="s", tr=1.0)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_refusals(tmp_path, small_atlas):
    x = np.random.default_rng(0).normal(size=(40, 8))
    cases = [
        (dict(series=x, tr=None), "missing or invalid repetition time"),
        (dict(series=x[:, :5], tr=1.0), "5 ROI columns but atlas 'toy' has 8 ROIs"),
        (dict(series=x[:10], tr=1.0), "10 frames is shorter than one window"),
        (dict(series=x, tr=1.0, n_frames=3), r"phenotype column\(s\) \['n_frames'\] clash"),
        (dict(series=x, tr=1.0, sex="X"), "unknown sex value"),
        (dict(series=x, tr=1.0, age="old"), "age='old' is not a number"),
    ]
    for kw, msg in cases:
        with pytest.raises(InputError, match=msg):
            with CohortWriter(tmp_path / "c", small_atlas, min_frames=32) as w:
                w.add(recording_id="rec-7", subject="7", **kw)
        assert not (tmp_path / "c").exists()


def test_existing_output_needs_overwrite(tmp_path, small_atlas):
    _write(tmp_path / "c", small_atlas)
    with pytest.raises(InputError, match="already exists"):
        _write(tmp_path / "c", small_atlas)
    c = _write(tmp_path / "c", small_atlas, n=2, overwrite=True)
    assert len(c) == 2


def test_open_refuses_truncated_series(tmp_path, small_atlas):
    c = _write(tmp_path / "c", small_atlas)
    f = c.path / "timeseries.f32"
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(InputError, match="incomplete or corrupted"):
        Cohort.open(c.path)
    with pytest.raises(InputError, match="not a bi_core cohort"):
        Cohort.open(tmp_path)


def test_subset_and_harmonized_cache(tmp_path, small_atlas):
    c = _write(tmp_path / "c", small_atlas, tr=0.75)
    s = c.subset(c.table["diagnosis"] != "CN")
    assert len(s) == 2 and s.series(0).shape == c.series(1).shape
    h = c.harmonized(1.5)
    assert list(h.table["n_frames"]) == [50, 55, 60]
    assert h.table["tr"].eq(1.5).all()
    np.testing.assert_allclose(np.asarray(h.series(0)).std(0), 1, atol=1e-5)
    assert not (c.path / ".cache").exists()       # never into the cohort: the user cache (tests: conftest.py)
    assert user_cache_dir() in h.path.parents
    h2 = c.harmonized(1.5)
    assert h2.path == h.path  # reused, not rebuilt
    assert c.harmonized(0.75) is c and c.harmonized(None) is c


def test_open_cohorts_requires_same_atlas(tmp_path, small_atlas):
    from bi_core.atlas import NetworkAtlas
    from bi_core.errors import CompatibilityError

    _write(tmp_path / "a", small_atlas)
    other = NetworkAtlas("other", small_atlas.roi_names, ("VIS",) * 8)
    _write(tmp_path / "b", other)
    with pytest.raises(CompatibilityError, match="different atlases"):
        open_cohorts([tmp_path / "a", tmp_path / "b"])
