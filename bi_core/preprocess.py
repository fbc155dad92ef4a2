"""Time-series preprocessing before tokenizing: cleaning, TR harmonization, z-scoring, windows.

All functions take a recording as ``x`` with shape ``[n_frames, n_rois]`` (time first,
the nilearn convention) and a repetition time ``tr`` in seconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from .errors import ConfigError, InputError


@dataclass(frozen=True)
class PreprocSpec:
    """What was done to a recording before it reached the model.

    Parameters
    ----------
    target_tr
        Repetition time (s) every recording is resampled to; ``None`` keeps native TRs.
    detrend
        Remove linear trends (nilearn.signal.clean).
    high_pass, low_pass
        Butterworth cut-offs in Hz (nilearn.signal.clean); ``None`` disables.
    zscore
        Standardize each ROI of each recording to mean 0, SD 1 (always on for training).
    """

    target_tr: float | None = None
    detrend: bool = False
    high_pass: float | None = None
    low_pass: float | None = None
    zscore: bool = True

    def __post_init__(self) -> None:
        if self.target_tr is not None and not (0.05 <= float(self.target_tr) <= 20):
            raise ConfigError(f"target_tr={self.target_tr} s is outside the plausible range 0.05–20 s.")
        for nm in ("high_pass", "low_pass"):
            v = getattr(self, nm)
            if v is not None and v <= 0:
                raise ConfigError(f"{nm}={v} Hz must be positive or None.")
        if self.high_pass and self.low_pass and self.high_pass >= self.low_pass:
            raise ConfigError(f"high_pass ({self.high_pass} Hz) must be below low_pass ({self.low_pass} Hz).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """Stable short hash of the spec (stored in checkpoints and cache names)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def then(self, other: "PreprocSpec") -> "PreprocSpec":
        """The spec of data preprocessed with ``self`` and then with ``other``."""
        return PreprocSpec(
            target_tr=other.target_tr if other.target_tr is not None else self.target_tr,
            detrend=self.detrend or other.detrend,
            high_pass=other.high_pass or self.high_pass,
            low_pass=other.low_pass or self.low_pass,
            zscore=self.zscore or other.zscore,
        )


def check_series(x: np.ndarray, name: str, roi_names: tuple[str, ...] | None = None) -> np.ndarray:
    """Validate one recording and return it as float32 ``[n_frames, n_rois]``.

    Raises
    ------
    InputError
        On a non-2D array, fewer than 2 frames, NaN/inf values or a constant ROI, naming
        the recording and the offending ROI/frames.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise InputError(f"{name}: expected a 2D time series [frames, ROIs], got shape {list(x.shape)}.")
    if x.shape[0] < 2:
        # before the variance check: a single frame would be reported as every ROI constant
        raise InputError(f"{name}: {x.shape[0]} frame(s); a time series has one row per frame and needs many "
                         "frames: export the whole recording, or drop this one.")
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"{name}: time series values must be numeric, got dtype {x.dtype}.")
    x = x.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        rows, cols = np.nonzero(~finite)
        roi = roi_names[cols[0]] if roi_names is not None else f"column {cols[0]}"
        raise InputError(f"{name}: {int((~finite).sum())} NaN/inf values (first at frame {rows[0]}, ROI {roi}); "
                         "remove or interpolate them before ingesting.")
    sd = x.std(axis=0)
    const = np.flatnonzero(sd <= 1e-8 * max(1.0, float(np.abs(x).max(initial=0.0))))
    if const.size:
        which = [roi_names[i] if roi_names is not None else f"column {i}" for i in const[:5]]
        raise InputError(f"{name}: {const.size} constant ROI(s) {which} (zero variance: empty or masked-out "
                         "parcels); drop them from the atlas or fix the parcellation.")
    return x


def clean(x: np.ndarray, tr: float, detrend: bool = False, high_pass: float | None = None,
          low_pass: float | None = None, confounds: np.ndarray | None = None, name: str = "recording") -> np.ndarray:
    """Detrend / band-pass / regress confounds with :func:`nilearn.signal.clean`.

    Parameters
    ----------
    x
        ``[n_frames, n_rois]`` signals.
    tr
        Repetition time in seconds.

    Raises
    ------
    InputError
        A cut-off at or above the Nyquist frequency ``0.5 / tr`` Hz, which nilearn would
        silently lower to it: a high-pass there removes the whole signal, a low-pass there
        is not the filter that was asked for.
    """
    if not (detrend or high_pass or low_pass or confounds is not None):
        return x
    nyquist = 0.5 / tr
    if high_pass and high_pass >= nyquist:
        raise InputError(f"{name}: the high-pass cut-off {high_pass:g} Hz is at or above the Nyquist frequency "
                         f"{nyquist:g} Hz of TR {tr:g} s and would remove the whole signal; give a cut-off below "
                         f"{nyquist:g} Hz (resting-state analyses use about 0.01 Hz).")
    if low_pass and low_pass >= nyquist:
        raise InputError(f"{name}: the low-pass cut-off {low_pass:g} Hz is at or above the Nyquist frequency "
                         f"{nyquist:g} Hz of TR {tr:g} s, where no such filter exists; give a cut-off below "
                         f"{nyquist:g} Hz or no --low-pass.")
    from nilearn import signal

    return signal.clean(x, detrend=detrend, standardize=None, high_pass=high_pass, low_pass=low_pass,
                        t_r=tr, confounds=confounds)


def resample_tr(x: np.ndarray, tr: float, target_tr: float | None, max_denominator: int = 200) -> np.ndarray:
    """Resample ``[n_frames, n_rois]`` signals from ``tr`` to ``target_tr`` seconds.

    Polyphase resampling (:func:`scipy.signal.resample_poly`) with the TR ratio
    approximated by a fraction: it low-pass filters before decimating (no aliasing when
    going from 0.6 s to 1.5 s) and pads with a line fit, so recording edges do not ring
    as they do with FFT resampling. ``target_tr=None`` or an equal TR returns ``x``.
    """
    if target_tr is None or abs(tr - target_tr) < 1e-6 * target_tr:
        return x
    from scipy.signal import resample_poly

    frac = Fraction(tr / target_tr).limit_denominator(max_denominator)
    up, down = frac.numerator, frac.denominator
    y = resample_poly(np.asarray(x, dtype=np.float64), up, down, axis=0, padtype="line")
    n_out = int(round(x.shape[0] * tr / target_tr))
    return y[:n_out]


def zscore(x: np.ndarray, name: str = "recording") -> np.ndarray:
    """Standardize each ROI (column) to mean 0 and SD 1."""
    mu = x.mean(axis=0, keepdims=True)
    sd = x.std(axis=0, keepdims=True)
    if (sd <= 0).any():
        raise InputError(f"{name}: a ROI became constant after preprocessing; cannot z-score.")
    return (x - mu) / sd


def preprocess(x: np.ndarray, tr: float, spec: PreprocSpec, name: str = "recording") -> tuple[np.ndarray, float]:
    """Apply ``spec`` (clean → resample → z-score) and return ``(x', tr')`` as float32."""
    y = clean(x, tr, detrend=spec.detrend, high_pass=spec.high_pass, low_pass=spec.low_pass, name=name)
    y = resample_tr(y, tr, spec.target_tr)
    new_tr = float(spec.target_tr) if spec.target_tr is not None else float(tr)
    if spec.zscore:
        y = zscore(y, name)
    return y.astype(np.float32), new_tr


# ---------------------------------------------------------------------- windows
def tile_starts(n_frames: int, window: int, stride: int | None = None) -> np.ndarray:
    """Start frames of windows that tile a recording (analysis mode).

    Windows step by ``stride`` (default: ``window``, no overlap); when the recording
    length is not a multiple, one last window is aligned to the end, so every frame is
    covered at least once and no window is padded.

    Returns
    -------
    ndarray of int, ``[n_windows]``; empty when the recording is shorter than a window.
    """
    if window <= 0:
        raise ConfigError(f"window length must be positive, got {window}.")
    stride = window if stride is None else int(stride)
    if stride <= 0:
        raise ConfigError(f"stride must be positive, got {stride}.")
    if n_frames < window:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, n_frames - window + 1, stride, dtype=np.int64)
    if starts[-1] + window < n_frames:
        starts = np.append(starts, n_frames - window)
    return starts


def random_starts(rng: np.random.Generator, n_frames: np.ndarray | int, window: int) -> np.ndarray:
    """Uniform random crop starts (training mode), one per entry of ``n_frames``."""
    n = np.atleast_1d(np.asarray(n_frames, dtype=np.int64))
    if (n < window).any():
        raise InputError(f"a recording is shorter ({int(n.min())} frames) than the window ({window} frames).")
    return (rng.random(n.shape) * (n - window + 1)).astype(np.int64)
