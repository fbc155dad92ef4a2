import numpy as np
import pytest

from bi_core.errors import ConfigError, InputError
from bi_core.preprocess import PreprocSpec, check_series, clean, preprocess, random_starts, resample_tr, tile_starts, zscore


def test_tile_starts_cover_every_frame():
    for n in (64, 65, 100, 200, 257):
        s = tile_starts(n, 64)
        covered = np.zeros(n, bool)
        for a in s:
            covered[a:a + 64] = True
        assert covered.all() and s[-1] + 64 == n and (s >= 0).all()
    assert tile_starts(63, 64).size == 0
    assert list(tile_starts(100, 32, stride=16)) == [0, 16, 32, 48, 64, 68]


def test_random_starts_in_range(rng):
    s = random_starts(rng, np.array([64, 100, 1000]), 64)
    assert s[0] == 0 and 0 <= s[1] <= 36 and 0 <= s[2] <= 936
    with pytest.raises(InputError, match="shorter"):
        random_starts(rng, 10, 64)


def test_resample_preserves_duration_and_slow_signal():
    tr = 0.72
    t = np.arange(1200) * tr
    x = np.stack([np.sin(2 * np.pi * 0.03 * t), np.cos(2 * np.pi * 0.05 * t)], 1)
    y = resample_tr(x, tr, 1.5)
    assert y.shape == (round(1200 * 0.72 / 1.5), 2)
    t2 = np.arange(len(y)) * 1.5
    ref = np.stack([np.sin(2 * np.pi * 0.03 * t2), np.cos(2 * np.pi * 0.05 * t2)], 1)
    inner = slice(10, -10)
    assert np.abs(y[inner] - ref[inner]).max() < 0.05
    assert resample_tr(x, tr, None) is x


def test_resample_downsampling_removes_aliasing():
    # 0.45 Hz is above the 1.5 s Nyquist (0.33 Hz): it must be filtered, not folded
    tr = 0.5
    t = np.arange(2000) * tr
    x = np.sin(2 * np.pi * 0.45 * t)[:, None]
    y = resample_tr(x, tr, 1.5)
    assert y[20:-20].std() < 0.1


def test_zscore_and_spec():
    x = np.random.default_rng(1).normal(3, 2, (200, 4))
    z = zscore(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-12)
    y, tr = preprocess(x, 0.8, PreprocSpec(target_tr=1.6, detrend=True))
    assert tr == 1.6 and y.dtype == np.float32 and y.shape == (100, 4)
    assert PreprocSpec().digest() != PreprocSpec(target_tr=1.5).digest()
    with pytest.raises(ConfigError):
        PreprocSpec(high_pass=0.1, low_pass=0.01)


def test_clean_uses_nilearn_bandpass():
    tr = 0.8
    t = np.arange(500) * tr
    x = (np.sin(2 * np.pi * 0.05 * t) + 3 * np.sin(2 * np.pi * 0.4 * t))[:, None]
    y = clean(x, tr, low_pass=0.1)
    assert y.std() < 1.0


def test_check_series_errors_name_the_recording():
    x = np.ones((10, 3))
    with pytest.raises(InputError, match=r"rec-1: 3 constant ROI"):
        check_series(x, "rec-1")
    x = np.random.default_rng(0).normal(size=(10, 3))
    x[4, 1] = np.nan
    with pytest.raises(InputError, match=r"rec-2: 1 NaN/inf values \(first at frame 4, ROI b\)"):
        check_series(x, "rec-2", ("a", "b", "c"))
