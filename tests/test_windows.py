"""Window datasets: random crops (deterministic, memmap-exact), split by subject, tiles."""

import numpy as np
import pytest

from bi_core.cohort import Cohort, CohortWriter
from bi_core.errors import CompatibilityError, ConfigError, InputError
from bi_core.preprocess import PreprocSpec
from bi_core.windows import RandomCrops, RecordingSet, TiledWindows, fixed_windows


def _cohort(path, atlas, lengths, tr=1.0, subjects=None, seed=0):
    rng = np.random.default_rng(seed)
    with CohortWriter(path, atlas, PreprocSpec()) as w:
        for i, n in enumerate(lengths):
            sub = subjects[i] if subjects else f"s{i}"
            w.add(rng.standard_normal((n, atlas.n_rois)), recording_id=f"sub-{sub}_run-{i}", subject=sub, tr=tr)
    return Cohort.open(path)


@pytest.fixture()
def two_cohorts(tmp_path, small_atlas):
    a = _cohort(tmp_path / "a", small_atlas, [100, 64, 40], subjects=["1", "1", "2"])
    b = _cohort(tmp_path / "b", small_atlas, [130, 70], subjects=["3", "4"], seed=1)
    return a, b


def test_crops_are_memmap_slices_roi_major(two_cohorts):
    a, b = two_cohorts
    rs = RecordingSet([a, b])
    assert len(rs) == 5 and list(rs.table["cohort"]) == [0, 0, 0, 1, 1]
    crops = RandomCrops(rs, 32, seed=3)
    assert crops.windows_per_epoch == 100 // 32 + 64 // 32 + 40 // 32 + 130 // 32 + 70 // 32  # = 12
    rec, starts = crops.plan(0)
    assert np.bincount(rec, minlength=5).tolist() == [3, 2, 1, 4, 2]
    x = rs.read(rec[:4], starts[:4], 32)
    assert x.dtype == np.float32 and x.shape == (4, 8, 32)
    for k in range(4):
        row = rs.table.iloc[rec[k]]
        src = (a, b)[row["cohort"]].series(int(row["row"]))
        np.testing.assert_array_equal(x[k], np.asarray(src[starts[k]: starts[k] + 32]).T)
        assert 0 <= starts[k] <= row["n_frames"] - 32


def test_crops_deterministic_from_seed_and_epoch(two_cohorts):
    rs = RecordingSet(list(two_cohorts))
    c1, c2 = RandomCrops(rs, 32, seed=3), RandomCrops(rs, 32, seed=3)
    for e in (0, 5):
        np.testing.assert_array_equal(np.concatenate(c1.plan(e)), np.concatenate(c2.plan(e)))
    assert not np.array_equal(np.concatenate(c1.plan(0)), np.concatenate(c1.plan(1)))
    assert not np.array_equal(np.concatenate(c1.plan(0)), np.concatenate(RandomCrops(rs, 32, seed=4).plan(0)))
    full = list(c1.batches(2, 4))
    resumed = list(c2.batches(2, 4, start_step=1))
    assert len(full) == c1.steps_per_epoch(4) == 3 and len(resumed) == 2
    np.testing.assert_array_equal(full[1], resumed[0])
    with pytest.raises(ConfigError, match="larger than an epoch"):
        c1.steps_per_epoch(64)


def test_split_by_subject_is_deterministic_and_disjoint(tmp_path, small_atlas):
    subs = [f"{i // 2}" for i in range(20)]  # 10 subjects, 2 recordings each
    c = _cohort(tmp_path / "c", small_atlas, [40] * 20, subjects=subs)
    rs = RecordingSet([c])
    tr, va = rs.split_by_subject(0.2, seed=0)
    assert set(tr.subjects).isdisjoint(va.subjects) and len(va.subjects) == 2 and len(va) == 4
    tr2, va2 = rs.split_by_subject(0.2, seed=0)
    assert list(va2.table["recording_id"]) == list(va.table["recording_id"])
    picks = {tuple(rs.split_by_subject(0.2, seed=s)[1].subjects) for s in range(6)}
    assert len(picks) > 1
    assert rs.split_by_subject(0.0, seed=0)[1] is None
    one = RecordingSet([c]).subset(np.array(rs.table["subject"] == "0"))
    with pytest.raises(ConfigError, match="at least 2 subjects"):
        one.split_by_subject(0.2, seed=0)


def test_short_recordings_are_dropped_and_too_short_is_an_error(two_cohorts):
    rs = RecordingSet(list(two_cohorts))
    assert len(rs.at_least(64)) == 4 and len(rs.at_least(100)) == 2
    with pytest.raises(InputError, match="no recording .* has 200 frames"):
        RandomCrops(rs, 200)


def test_mixed_atlases_are_refused(tmp_path, small_atlas):
    from bi_core.atlas import NetworkAtlas

    a = _cohort(tmp_path / "a", small_atlas, [40])
    other = NetworkAtlas("other", small_atlas.roi_names, ("VIS",) * 8)
    b = _cohort(tmp_path / "b", other, [40])
    with pytest.raises(CompatibilityError, match="different atlases"):
        RecordingSet([a, b])


def test_tr_harmonization_before_windowing(tmp_path, small_atlas):
    fast = _cohort(tmp_path / "fast", small_atlas, [300], tr=0.75)
    slow = _cohort(tmp_path / "slow", small_atlas, [60], tr=3.0, seed=2)
    tiles = TiledWindows([fast, slow], 30, target_tr=1.5, cache_dir=tmp_path / "cache")
    assert tiles.recordings_set.table["tr"].tolist() == [1.5, 1.5]
    assert tiles.recordings_set.n_frames.tolist() == [150, 120]
    native = TiledWindows(fast, 30, target_tr=None)
    assert native.recordings_set.table["tr"].tolist() == [0.75]
    assert not (tmp_path / "fast" / ".cache").exists()  # the cache went where we asked


def test_tiled_windows_cover_recordings_and_map_back(two_cohorts):
    a, _ = two_cohorts
    tiles = TiledWindows(a, 32, target_tr=None)
    assert tiles.skipped == []
    assert tiles.index.groupby("recording_id").size().to_dict() == {"sub-1_run-0": 4, "sub-1_run-1": 2,
                                                                     "sub-2_run-2": 2}
    seen = []
    for x, rows in tiles.batches(3):
        assert x.dtype.is_floating_point and x.shape[1:] == (8, 32) and x.shape[0] == len(rows)
        for k, r in enumerate(rows):
            row = tiles.index.iloc[r]
            src = np.asarray(a.series(row["recording_id"]))
            np.testing.assert_array_equal(x[k].numpy(), src[row["start"]: row["start"] + 32].T)
            seen.append(r)
    assert seen == list(range(len(tiles)))
    np.testing.assert_array_equal(tiles[1], np.asarray(a.series(0))[32:64].T)
    few = TiledWindows(a, 64, target_tr=None, recordings=["sub-1_run-0", "sub-2_run-2"])
    assert few.skipped == ["sub-2_run-2"] and list(few.index["start"]) == [0, 36]
    with pytest.raises(InputError, match="not in"):
        TiledWindows(a, 32, target_tr=None, recordings=["nope"])


def test_a_shared_windowing_gives_the_windows_a_new_one_would(two_cohorts):
    """run_suite tiles its cohort once and each analysis reads a subset (windows_of): the same windows, in the same
    order, as tiling the cohort for those recordings; windows of another run or cohort are refused."""
    from types import SimpleNamespace

    from bi_core.windows import windows_of

    a, b = two_cohorts
    shared = TiledWindows(a, 32, target_tr=None)
    info = SimpleNamespace(window=32, target_tr=None, path="run")
    ids = ["sub-2_run-2", "sub-1_run-0"]
    for want in (ids, ["sub-1_run-1"], None):
        got, new = windows_of(info, a, want, shared), TiledWindows(a, 32, target_tr=None, recordings=want)
        assert got.index.equals(new.index) and got.skipped == new.skipped
        np.testing.assert_array_equal(next(got.batches(8))[0].numpy(), next(new.batches(8))[0].numpy())
    assert windows_of(info, a, None, shared) is shared
    assert windows_of(info, a, ids, shared).subset(["sub-1_run-0"]).index.equals(
        TiledWindows(a, 32, target_tr=None, recordings=["sub-1_run-0"]).index)
    with pytest.raises(InputError, match="reads 64 frames"):
        windows_of(SimpleNamespace(window=64, target_tr=None, path="run"), a, ids, shared)
    with pytest.raises(InputError, match="does not have"):
        windows_of(info, b, None, shared)


def test_fixed_windows_capped_and_deterministic(two_cohorts):
    rs = RecordingSet(list(two_cohorts))
    r, s = fixed_windows(rs, 32)
    assert len(r) == 4 + 2 + 2 + 5 + 3
    r2, s2 = fixed_windows(rs, 32, max_windows=5, seed=1)
    r3, s3 = fixed_windows(rs, 32, max_windows=5, seed=1)
    assert len(r2) == 5 and np.array_equal(r2, r3) and np.array_equal(s2, s3)


def test_named_validation_subjects_fix_the_split(tmp_path, small_atlas):
    subs = [f"{i // 2}" for i in range(12)]  # 6 subjects, 2 recordings each
    rs = RecordingSet([_cohort(tmp_path / "c", small_atlas, [40] * 12, subjects=subs)])
    for seed in (0, 1):     # the seed no longer picks them
        tr, va = rs.split_by_subject(0.2, seed=seed, val_subjects=("4", "1"))
        assert sorted(va.subjects) == ["1", "4"] and len(va) == 4
        assert sorted(tr.subjects) == ["0", "2", "3", "5"]
    assert rs.split_by_subject(0.0, seed=0, val_subjects=["2"])[1].subjects.tolist() == ["2"]
    with pytest.raises(ConfigError, match=r"val_subjects \['9'\] have no recording"):
        rs.split_by_subject(0.2, seed=0, val_subjects=("1", "9"))
    with pytest.raises(ConfigError, match="nothing is left to train on"):
        rs.split_by_subject(0.2, seed=0, val_subjects=tuple("012345"))
