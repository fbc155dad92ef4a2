"""Synthetic cohorts with a known ground truth (the embedded default).

ADNI, HCP and ABCD are access-controlled, so the book runs on cohorts generated here.
Every quantity the analyses estimate has a true value written to ``ground_truth.json``.

Generative model (one recording)
--------------------------------
1. **Network latents.** ``K`` network signals follow a stable MVAR(1) process at a
   neural time step ``dt`` (≈0.25 s): ``z[t+1] = ρ z[t] + ε[t]`` with
   ``ε ~ N(0, (1-ρ²) C)``. With a common pole ``ρ`` the stationary correlation of the
   network latents is exactly the **coupling matrix** ``C``, so each coupling the
   disease changes shows up in that pair and nowhere else.
2. **Subject coupling.** ``C_subject = C_population ∘ (1 + σ Z)`` (symmetric Z) times an
   age factor (mild global weakening per decade, plus a named pair), with disease
   severity ``s ∈ [0, 1]`` weakening DMN–LIM and DAN–VAN and strengthening FPN–DMN.
3. **Haemodynamics.** Latents are convolved with nilearn's Glover HRF and sampled at the
   site's TR.
4. **ROIs.** ROI ``r`` of network ``m`` is ``α_r h_m + Σ_j β_rj h_j + γ_r e_r``: its
   network's BOLD signal (coherence ``α``; DMN coherence falls with severity), weaker
   contributions of networks coupled to ``m``, and ROI-specific BOLD-like noise ``e``
   scaled to unit total variance; then scanner white noise (site-specific), a slow drift,
   and z-scoring per ROI.

VIS is strongly coupled and coherent (highly predictable from the rest of the brain);
SUB is weakly coupled and noisy (poorly predictable): the paper's qualitative profile.

Cohorts
-------
``DIR/pretrain`` — healthy, unlabeled, four datasets with ABCD/HCP-D/HCP-YA/HCP-A-like
ages and TRs; every subject has an ``age`` and a fluid-intelligence-like score
``fluid`` tied to the FPN–DAN coupling. ``DIR/eval`` — ADNI-like CN/MCI/AD subjects with
1–5 annual visits, dropout, MCI→AD conversion, MMSE and CDR-SB derived from severity, and
two sites (TR 3.0 s and 0.607 s). ``DIR/ground_truth.json`` — the population model;
``DIR/ground_truth_recordings.tsv`` — per-recording severity and coupling values.

Test–retest runs
----------------
With ``retest_sessions = k > 1`` every evaluation visit is recorded ``k`` times the same
day (runs ``1..k`` of the session). The runs share the subject's coupling and severity;
what changes between them, besides the noise, is each network's coherence, scaled by
``1 + RETEST_COHERENCE_SD · (√s_m · trait_m + √(1 − s_m) · ε_m,run)`` with a per-subject
``trait`` and a per-run ``ε`` (both standard normal). ``s_m`` is the network's planted
within-subject stability (:data:`RETEST_STABILITY`): the true ICC of its coherence
scale, so reliability estimates can be checked against a known ordering. The scales are
in ``ground_truth_recordings.tsv`` (``coherence_scale_<NET>``), the stabilities in
``ground_truth.json`` (``retest``).

Your own group design
---------------------
``SynthConfig(groups=(GroupSpec("TD", 20, (0.0, 0.15), (8, 60)), GroupSpec("ADHD", 20,
(0.35, 0.75), (8, 60))), group_column="group", n_cn=0, n_mci=0, n_ad=0, ...)`` replaces
the ADNI-like course by one time point per subject with any labels: each group's
subjects draw a condition severity ~ U(``severity``) and an age ~ U(``age``), and the
severity acts exactly as the disease does above (the same altered pairs, the same DMN
coherence loss), so a group with higher severities differs from one with lower
severities in those places and nowhere else. The label goes to ``group_column``; no
visits, MMSE or CDR-SB are written, and the ``retest_sessions`` repeats are *sessions*
``1..k`` (``sub-S001_ses-1``, ``sub-S001_ses-2``) rather than runs.
``ground_truth.json`` lists the groups' ranges (``groups``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import atomic_dir, write_json, write_tsv
from .atlas import NetworkAtlas
from .cohort import CohortWriter
from .errors import ConfigError
from .preprocess import PreprocSpec

# In-function imports: scipy.signal loads when signals are generated; readers of the ground truth (the chapters,
# the read-out study) import this module without it.

NETWORKS: tuple[str, ...] = ("VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN", "SUB")
#: Schaefer-100 7-network ROI counts, the proportions the synthetic atlas follows.
SCHAEFER100_COUNTS: dict[str, int] = {"VIS": 17, "SMN": 14, "DAN": 15, "VAN": 12, "LIM": 5, "FPN": 13, "DMN": 24}

#: Population coupling (stationary correlation of network latents), age 40, healthy.
POPULATION_COUPLING: dict[tuple[str, str], float] = {
    ("VIS", "SMN"): 0.60, ("VIS", "DAN"): 0.55, ("SMN", "DAN"): 0.30, ("SMN", "VAN"): 0.40,
    ("DAN", "VAN"): 0.45, ("DAN", "FPN"): 0.35, ("VAN", "FPN"): 0.35, ("FPN", "DMN"): 0.30,
    ("LIM", "DMN"): 0.50, ("DAN", "DMN"): -0.20, ("VAN", "LIM"): 0.15, ("LIM", "SUB"): 0.20,
    ("DMN", "SUB"): 0.12,
}
#: Network coherence α (loading of a ROI on its own network's signal), healthy.
COHERENCE: dict[str, float] = {"VIS": 0.85, "SMN": 0.78, "DAN": 0.72, "VAN": 0.70, "LIM": 0.62, "FPN": 0.70,
                               "DMN": 0.76, "SUB": 0.50}
#: Disease effects at severity 1 (relative change of the coupling; sign = direction).
ALTERED_PAIRS: tuple[tuple[str, str, float], ...] = (("DMN", "LIM", -0.75), ("DAN", "VAN", -0.65),
                                                     ("FPN", "DMN", +0.90))
DMN_COHERENCE_CHANGE = -0.30      # relative change of DMN α at severity 1
#: Disease course of the evaluation cohort per baseline diagnosis: baseline severity
#: ~ U(baseline) (the three ranges do not overlap), yearly severity slope ~ N(slope) as
#: (mean, SD) floored at 0, baseline age ~ N(age) as (mean, SD) clipped to 55–92 years.
DISEASE_COURSE: dict[str, dict[str, tuple[float, float]]] = {
    "CN": {"baseline": (0.0, 0.12), "slope": (0.010, 0.006), "age": (73.0, 6.0)},
    "MCI": {"baseline": (0.25, 0.50), "slope": (0.050, 0.020), "age": (73.0, 7.0)},
    "AD": {"baseline": (0.55, 0.85), "slope": (0.085, 0.020), "age": (75.0, 7.0)},
}
CONVERSION_SEVERITY = 0.6         # an MCI subject whose severity reaches this is diagnosed AD from then on
AGE_GLOBAL_PER_DECADE = -0.04     # relative change of every coupling per decade from age 40
AGE_PAIR = ("DMN", "FPN")
AGE_PAIR_PER_DECADE = -0.06       # additional relative change of DMN–FPN per decade
COGNITION_PAIR = ("FPN", "DAN")   # the fluid score loads on this coupling's individual deviation
COGNITION_LOADING = 0.8           # correlation between the score and the pair's deviation (age-adjusted)
INDIVIDUAL_SD = 0.15              # relative between-subject SD of every coupling
INDIVIDUAL_SD_NAMED = 0.30        # relative SD of the couplings tied to cognition
#: Planted within-subject stability of each network's coherence across test–retest runs
#: (the true ICC of its coherence scale; used when ``retest_sessions > 1``).
RETEST_STABILITY: dict[str, float] = {"VIS": 0.9, "SMN": 0.15, "DAN": 0.7, "VAN": 0.35, "LIM": 0.5, "FPN": 0.8,
                                      "DMN": 0.05, "SUB": 0.6}
RETEST_COHERENCE_SD = 0.25        # relative SD of a network's coherence scale (between and within subjects)
#: The ``dynamic`` scenario: network pairs whose coupling alternates between two latent states,
#: as (network, network, swing when healthy, change of the swing at severity 1). In state A
#: the pair's coupling is its time-averaged value + swing, in state B − swing; the states
#: take equal time, so the time-averaged coupling (what static FC estimates) never changes.
#: Disease makes DMN–LIM and VAN–DMN alternate (VAN–DMN: positive in A, negative in B) and stops the
#: healthy alternation of LIM–FPN; chosen where the population coupling leaves room for both states
#: to be valid correlation matrices.
DYNAMIC_SWINGS: tuple[tuple[str, str, float, float], ...] = (("DMN", "LIM", 0.0, +0.55), ("VAN", "DMN", 0.0, +0.70),
                                                             ("LIM", "FPN", 0.60, -0.60))
#: The ``dynamic`` scenario's coherence α of the swing pairs' networks (replaces :data:`COHERENCE`
#: for them): high, so that a network's mean signal follows its latent and carries the state
#: coupling (at the static values the small LIM network's mean is about half ROI noise).
DYNAMIC_COHERENCE: tuple[tuple[str, float], ...] = (("VAN", 0.9), ("LIM", 0.9), ("FPN", 0.9), ("DMN", 0.9))
REGIONS_BY_NETWORK: dict[str, dict[str, float]] = {
    "VIS": {"Occipital": 0.7, "Temporal": 0.15, "Parietal": 0.15},
    "SMN": {"Central": 0.7, "Temporal": 0.2, "Cingulo-insular": 0.1},
    "DAN": {"Parietal": 0.6, "Frontal": 0.25, "Occipital": 0.15},
    "VAN": {"Cingulo-insular": 0.5, "Frontal": 0.25, "Parietal": 0.25},
    "LIM": {"Temporal": 0.5, "Frontal": 0.5},
    "FPN": {"Frontal": 0.6, "Parietal": 0.3, "Cingulo-insular": 0.1},
    "DMN": {"Frontal": 0.3, "Parietal": 0.25, "Temporal": 0.25, "Cingulo-insular": 0.2},
    "SUB": {"Subcortical": 1.0},
}
_REGION_CENTRES = {"Occipital": (20, -85, 5), "Parietal": (35, -55, 45), "Temporal": (55, -20, -12),
                   "Frontal": (35, 35, 25), "Central": (40, -20, 55), "Cingulo-insular": (25, 10, 12),
                   "Subcortical": (18, -8, 2)}


@dataclass(frozen=True)
class DatasetSpec:
    """One healthy pretraining dataset (ABCD-like, HCP-YA-like...).

    ``n_frames`` is per recording at the dataset's ``tr`` (seconds); ages in years.
    """

    name: str
    n_subjects: int
    age_range: tuple[float, float]
    tr: float
    n_frames: int


@dataclass(frozen=True)
class SiteSpec:
    """An evaluation site: TR (s), frames per recording range, scanner noise SD."""

    name: str
    tr: float
    n_frames: tuple[int, int]
    noise_sd: float
    share: float


@dataclass(frozen=True)
class GroupSpec:
    """One group of a custom evaluation design (see the module docstring, "Your own group design").

    ``label`` is written to the cohort's ``group_column``; each of its ``n_subjects``
    subjects draws a condition severity ~ U(``severity``) (in [0, 1], the generator's
    disease effects) and an age ~ U(``age``) (years), constant over its sessions.
    """

    label: str
    n_subjects: int
    severity: tuple[float, float]
    age: tuple[float, float]


@dataclass(frozen=True)
class SynthConfig:
    """Sizes of a synthetic cohort pair (a preset) — every field is overridable.

    ``pretrain`` datasets are healthy and unlabeled; the evaluation cohort has
    ``n_cn``/``n_mci``/``n_ad`` subjects followed for up to ``max_visits`` annual visits,
    continuing after each visit with probability ``1 - dropout``; ``retest_sessions``
    recordings per visit (> 1: same-day test–retest runs, see the module docstring).
    ``groups`` (with ``n_cn = n_mci = n_ad = 0``) replaces that design by one time point
    per subject with your own labels in column ``group_column`` (:class:`GroupSpec`); an
    empty ``pretrain`` writes no pretraining cohort.
    """

    name: str
    n_cortical: int
    n_subcortical: int
    pretrain: tuple[DatasetSpec, ...]
    n_cn: int
    n_mci: int
    n_ad: int
    sites: tuple[SiteSpec, ...]
    max_visits: int = 5
    dropout: float = 0.25
    pretrain_noise_sd: float = 0.35
    dt: float = 0.25
    neural_tau: float = 2.0
    total_recordings: int | None = None   # when set, pretraining sizes are scaled to hit it exactly
    retest_sessions: int = 1              # recordings per evaluation visit (> 1: test-retest runs)
    groups: tuple[GroupSpec, ...] = ()    # a custom one-time-point design instead of CN/MCI/AD
    group_column: str = "diagnosis"       # the column that holds the custom groups' labels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DynamicScenario:
    """State-dependent cross-network coupling: the ``dynamic`` scenario (``None``: the static one).

    A latent state sequence alternates between states A and B in *cycles*: each cycle
    draws one dwell time (s) from a gamma distribution (mean ``dwell_mean_s``, shape
    ``dwell_shape``) and spends it in A and then the same time in B (or B then A, a coin
    flip), starting at a random phase. Both states therefore take the same share of every
    complete cycle. In state A the couplings of ``swings`` are the subject's
    time-averaged coupling + swing, in B − swing (swing = healthy + change × severity,
    shrunk for a subject only as far as needed to keep both states valid correlation
    matrices), so disease leaves the time-averaged covariance — static FC — unchanged and
    acts only on how the coupling fluctuates. Nothing else of the static model changes
    with disease (no coupling or DMN-coherence effect); age still acts on the couplings.

    Sized so that a model-free sliding-window correlation can see the effect at the book's
    size (24 subjects per group, recordings of ≈ 8–10 min; chosen on seed 1): the swings
    are large (:data:`DYNAMIC_SWINGS`, ±0.55–0.70 at the extreme, shrunk per subject only where
    a state would stop being a valid correlation matrix), and the networks of the swing pairs are coherent
    (``coherence``: their α, replacing :data:`COHERENCE` for every subject and severity,
    so that their network-mean signals carry the state coupling rather than ROI noise;
    the time-averaged covariance is still the same at every severity). The mean dwell
    time (120 s) is well above the analysis window (:data:`bi_core.analysis.dynamic.WINDOW_S`,
    45 s), so most windows lie within one state, and the window is long enough for a
    window's correlation to be less noisy than at 30 s.
    """

    dwell_mean_s: float = 120.0
    dwell_shape: float = 4.0
    swings: tuple[tuple[str, str, float, float], ...] = DYNAMIC_SWINGS
    coherence: tuple[tuple[str, float], ...] = DYNAMIC_COHERENCE
    name: str = "dynamic"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (tuples as lists), as written to ``synth_config.json`` and the step settings."""
        d = asdict(self)
        d["swings"] = [list(s) for s in self.swings]
        d["coherence"] = [list(c) for c in self.coherence]
        return d


#: Scenarios of ``bi-core synth --scenario`` (``static``: the original generator, unchanged).
SCENARIOS: dict[str, DynamicScenario | None] = {"static": None, "dynamic": DynamicScenario()}


def resolve_scenario(scenario: str | DynamicScenario | None) -> DynamicScenario | None:
    """A scenario name or object → the :class:`DynamicScenario` (``None`` for ``static``)."""
    if scenario is None or isinstance(scenario, DynamicScenario):
        return scenario
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown synthetic scenario {scenario!r}; choose one of {sorted(SCENARIOS)}.")
    return SCENARIOS[scenario]


_ADNI_SITES = (SiteSpec("ADNI-A", 3.0, (140, 200), 0.30, 0.6), SiteSpec("ADNI-B", 0.607, (950, 976), 0.45, 0.4))

PRESETS: dict[str, SynthConfig] = {
    "smoke": SynthConfig(
        name="smoke", n_cortical=24, n_subcortical=2,
        pretrain=(DatasetSpec("ABCD", 4, (9, 11), 0.8, 180), DatasetSpec("HCP-D", 3, (8, 21), 0.8, 180),
                  DatasetSpec("HCP-YA", 4, (22, 35), 0.72, 200), DatasetSpec("HCP-A", 5, (36, 90), 0.8, 180)),
        n_cn=8, n_mci=8, n_ad=8,
        sites=(SiteSpec("ADNI-A", 3.0, (60, 70), 0.30, 0.5), SiteSpec("ADNI-B", 0.607, (300, 320), 0.45, 0.5)),
        max_visits=3),
    "default": SynthConfig(
        name="default", n_cortical=50, n_subcortical=4,
        pretrain=(DatasetSpec("ABCD", 40, (9, 11), 0.8, 375), DatasetSpec("HCP-D", 30, (8, 21), 0.8, 478),
                  DatasetSpec("HCP-YA", 40, (22, 35), 0.72, 600), DatasetSpec("HCP-A", 40, (36, 90), 0.8, 478)),
        n_cn=60, n_mci=50, n_ad=40, sites=_ADNI_SITES),
    "paper": SynthConfig(
        name="paper", n_cortical=400, n_subcortical=32,
        pretrain=(DatasetSpec("ABCD", 1800, (9, 11), 0.8, 383), DatasetSpec("HCP-D", 650, (8, 21), 0.8, 478),
                  DatasetSpec("HCP-YA", 1000, (22, 35), 0.72, 1200), DatasetSpec("HCP-A", 700, (36, 90), 0.8, 478)),
        n_cn=260, n_mci=220, n_ad=120, sites=_ADNI_SITES, total_recordings=5582),
}


# ---------------------------------------------------------------------- atlas
def _largest_remainder(weights: dict[str, float], total: int, minimum: int = 0) -> dict[str, int]:
    """Integer shares of ``total`` proportional to ``weights`` (Hamilton's method), each ≥ ``minimum``."""
    keys = list(weights)
    w = np.array([weights[k] for k in keys], float)
    raw = w / w.sum() * total
    base = np.floor(raw).astype(int)
    order = np.argsort(-(raw - base), kind="stable")
    base[order[: total - base.sum()]] += 1
    while (base < minimum).any():  # lift small groups by taking from the largest
        base[int(np.argmin(base))] += 1
        base[int(np.argmax(base))] -= 1
    return {k: int(b) for k, b in zip(keys, base)}


def synthetic_atlas(n_cortical: int, n_subcortical: int, name: str | None = None) -> NetworkAtlas:
    """The synthetic atlas: Schaefer-100 network proportions scaled to ``n_cortical`` ROIs.

    Each ROI gets a lobe-like ``region`` (fixed shares per network, so regions cut across
    networks) and display-only pseudo-MNI coordinates (region centre, alternating
    hemispheres, deterministic jitter).
    """
    if n_cortical < 2 * len(SCHAEFER100_COUNTS):
        raise ConfigError(f"n_cortical={n_cortical} is too small: need at least 2 ROIs for each of the 7 networks (14).")
    counts = _largest_remainder({k: float(v) for k, v in SCHAEFER100_COUNTS.items()}, n_cortical, minimum=2)
    if n_subcortical:
        counts["SUB"] = int(n_subcortical)
    rng = np.random.default_rng(20180517)  # fixed: the atlas must not depend on the cohort seed
    names, nets, regions, coords = [], [], [], []
    for net, n in counts.items():
        reg_counts = _largest_remainder(REGIONS_BY_NETWORK[net], n)
        regs = [r for r, c in reg_counts.items() for _ in range(c)]
        for i, reg in enumerate(regs):
            hemi = "LH" if i % 2 == 0 else "RH"
            names.append(f"{hemi}_{net}_{i + 1:02d}")
            nets.append(net)
            regions.append(reg)
            cx, cy, cz = _REGION_CENTRES[reg]
            jitter = rng.normal(0, 8, 3)
            coords.append(((-1 if hemi == "LH" else 1) * abs(cx + jitter[0]), cy + jitter[1], cz + jitter[2]))
    return NetworkAtlas(name=name or f"synth{n_cortical}x7", roi_names=tuple(names), roi_networks=tuple(nets),
                        roi_regions=tuple(regions), coords=np.round(np.array(coords), 1))


# ---------------------------------------------------------------------- couplings
def coupling_matrix(pairs: dict[tuple[str, str], float] | None = None, networks: tuple[str, ...] = NETWORKS) -> np.ndarray:
    """Symmetric ``[K, K]`` coupling matrix with unit diagonal from a pair dictionary."""
    pairs = POPULATION_COUPLING if pairs is None else pairs
    k = {n: i for i, n in enumerate(networks)}
    C = np.eye(len(networks))
    for (a, b), v in pairs.items():
        if a in k and b in k:
            C[k[a], k[b]] = C[k[b], k[a]] = v
    return C


def _nearest_correlation(C: np.ndarray, floor: float = 0.02) -> np.ndarray:
    """Clip eigenvalues at ``floor`` and rescale to unit diagonal (keeps C a valid correlation)."""
    w, V = np.linalg.eigh((C + C.T) / 2)
    if w.min() >= floor:
        return C
    A = (V * np.maximum(w, floor)) @ V.T
    d = np.sqrt(np.diag(A))
    return A / np.outer(d, d)


def subject_coupling(severity: float, age: float, deviation: np.ndarray, networks: tuple[str, ...] = NETWORKS) -> np.ndarray:
    """Coupling matrix of one subject at one visit.

    Parameters
    ----------
    severity
        Disease severity in [0, 1] (0 = healthy).
    age
        Age in years (the age effect is relative to 40).
    deviation
        ``[K, K]`` symmetric relative individual deviations (0 = population value).
    """
    C = coupling_matrix(networks=networks)
    off = ~np.eye(len(networks), dtype=bool)
    C[off] = C[off] * (1.0 + deviation[off])
    decades = (age - 40.0) / 10.0
    C[off] *= max(0.5, 1.0 + AGE_GLOBAL_PER_DECADE * decades)
    k = {n: i for i, n in enumerate(networks)}
    a, b = k[AGE_PAIR[0]], k[AGE_PAIR[1]]
    f = max(0.3, 1.0 + AGE_PAIR_PER_DECADE * decades)
    C[a, b] *= f
    C[b, a] *= f
    for na, nb, rel in ALTERED_PAIRS:
        a, b = k[na], k[nb]
        f = 1.0 + rel * float(severity)
        C[a, b] *= f
        C[b, a] *= f
    return _nearest_correlation(C)


def swing_matrix(severity: float, scenario: DynamicScenario, networks: tuple[str, ...] = NETWORKS) -> np.ndarray:
    """Symmetric ``[K, K]`` state swing at ``severity`` (zero diagonal): state A adds it, state B subtracts it."""
    k = {n: i for i, n in enumerate(networks)}
    S = np.zeros((len(networks), len(networks)))
    for a, b, healthy, change in scenario.swings:
        if a in k and b in k:
            S[k[a], k[b]] = S[k[b], k[a]] = healthy + change * float(severity)
    return S


def state_couplings(C: np.ndarray, severity: float, scenario: DynamicScenario,
                    networks: tuple[str, ...] = NETWORKS, floor: float = 0.02) -> tuple[np.ndarray, np.ndarray, float]:
    """The two states' coupling matrices of a subject whose time-averaged coupling is ``C``.

    Returns ``(C_A, C_B, factor)`` with ``C_A = C + f S``, ``C_B = C − f S`` (``S`` from
    :func:`swing_matrix`), so ``(C_A + C_B) / 2 = C`` exactly. ``f`` (the returned
    ``factor``, 1 unless needed) is shrunk in steps of 5 % until both have eigenvalues
    ≥ ``floor``: a subject's swing is never large enough to need clipping, which would move
    the average.
    """
    S = swing_matrix(severity, scenario, networks)
    f = 1.0
    while f > 0 and min(np.linalg.eigvalsh(C + f * S).min(), np.linalg.eigvalsh(C - f * S).min()) < floor:
        f = round(f - 0.05, 10)
    f = max(f, 0.0)
    return C + f * S, C - f * S, f


def state_sequence(rng: np.random.Generator, n_steps: int, dt: float, scenario: DynamicScenario) -> np.ndarray:
    """Latent state per neural time step ``[n_steps]`` (bool: ``True`` = state B).

    Cycles of one gamma-distributed dwell time (s) in each state, in random order, from a
    random phase (see :class:`DynamicScenario`).
    """
    parts: list[np.ndarray] = []
    total = 0
    while not parts or total < n_steps + len(parts[0]):
        d = max(1, int(round(rng.gamma(scenario.dwell_shape, scenario.dwell_mean_s / scenario.dwell_shape) / dt)))
        first = bool(rng.random() < 0.5)
        parts.append(np.repeat([first, not first], d))
        total += 2 * d
    start = int(rng.integers(0, len(parts[0])))   # a random phase within the first cycle
    return np.concatenate(parts)[start:start + n_steps]


# ---------------------------------------------------------------------- signals
def _glover(dt: float) -> np.ndarray:
    from nilearn.glm.first_level import glover_hrf

    h = glover_hrf(t_r=dt, oversampling=1, time_length=32.0)
    return h / np.abs(h).sum()


class _Simulator:
    """Generates recordings for one atlas (HRF and ROI loadings cached)."""

    def __init__(self, atlas: NetworkAtlas, cfg: SynthConfig) -> None:
        self.atlas = atlas
        self.cfg = cfg
        self.nets = tuple(n for n in NETWORKS if n in atlas.networks)
        self.K = len(self.nets)
        self.net_of_roi = np.array([self.nets.index(n) for n in atlas.roi_networks])
        self._hrf: dict[float, np.ndarray] = {}
        rng = np.random.default_rng(777)  # fixed ROI-level structure for the atlas
        C0 = coupling_matrix(networks=self.nets)
        R = atlas.n_rois
        self.alpha0 = np.array([COHERENCE[self.nets[m]] for m in self.net_of_roi]) * rng.uniform(0.9, 1.05, R)
        self.beta = np.zeros((R, self.K))
        for r in range(R):
            m = self.net_of_roi[r]
            for j in range(self.K):
                if j != m and abs(C0[m, j]) >= 0.3:
                    self.beta[r, j] = np.sign(C0[m, j]) * rng.uniform(0.0, 0.15)
        self.is_dmn = np.array([self.nets[m] == "DMN" for m in self.net_of_roi])

    def coherence_factor(self, scenario: DynamicScenario) -> np.ndarray:
        """``[n_rois]`` factor that turns the static coherence α into ``scenario.coherence`` (1 elsewhere)."""
        new = dict(scenario.coherence)
        return np.array([new.get(self.nets[m], COHERENCE[self.nets[m]]) / COHERENCE[self.nets[m]]
                         for m in self.net_of_roi])

    def hrf(self, dt: float) -> np.ndarray:
        if dt not in self._hrf:
            self._hrf[dt] = _glover(dt)
        return self._hrf[dt]

    def recording(self, rng: np.random.Generator, tr: float, n_frames: int, C: np.ndarray, severity: float,
                  noise_sd: float, coherence_scale: np.ndarray | None = None,
                  states: tuple[np.ndarray, np.ndarray, DynamicScenario] | None = None) -> np.ndarray:
        """One z-scored recording ``[n_frames, n_rois]`` (float32).

        ``coherence_scale`` (``[K]``, optional) multiplies each network's coherence α (test–retest runs).
        ``states`` (the dynamic scenario): ``(C_A, C_B, scenario)``; the innovations of the
        network latents are coupled by ``C_A`` or ``C_B`` according to a state sequence
        drawn first from ``rng`` (:func:`state_sequence`); ``C`` is their average.
        """
        cfg = self.cfg
        sub = max(1, math.ceil(tr / cfg.dt - 1e-9))
        dt = tr / sub
        h = self.hrf(round(dt, 6))
        warm = len(h) + int(round(4 * cfg.neural_tau / dt))
        n_steps = warm + n_frames * sub
        rho = math.exp(-dt / cfg.neural_tau)
        L = np.linalg.cholesky(C)
        R = self.atlas.n_rois
        state = None if states is None else state_sequence(rng, n_steps, dt, states[2])
        # network latents (MVAR with coupled innovations) and ROI-specific latents
        white = rng.standard_normal((n_steps, self.K + R))
        if state is None:
            white[:, : self.K] = white[:, : self.K] @ L.T
        else:
            # equal time in both states: the innovations' time-averaged covariance is C
            w = white[:, : self.K]
            white[:, : self.K] = np.where(state[:, None], w @ np.linalg.cholesky(states[1]).T,
                                          w @ np.linalg.cholesky(states[0]).T)
        from scipy.signal import fftconvolve, lfilter

        z = lfilter([math.sqrt(1 - rho**2)], [1.0, -rho], white, axis=0)
        bold = fftconvolve(z, h[:, None], mode="full", axes=0)[:n_steps]
        bold = bold[warm::sub][:n_frames]
        bold /= bold.std(axis=0, keepdims=True)  # unit-variance BOLD per latent
        hnet, e = bold[:, : self.K], bold[:, self.K:]
        alpha = self.alpha0 * np.where(self.is_dmn, 1.0 + DMN_COHERENCE_CHANGE * severity, 1.0)
        if states is not None and states[2].coherence:
            alpha = alpha * self.coherence_factor(states[2])
        if coherence_scale is not None:
            alpha = alpha * coherence_scale[self.net_of_roi]
        # variance of the structured part: a_r^T C a_r with a_r = alpha e_m + beta_r
        A = self.beta.copy()
        A[np.arange(R), self.net_of_roi] += alpha
        structured_var = np.einsum("rk,kl,rl->r", A, C, A)
        gamma = np.sqrt(np.clip(1.0 - structured_var, 0.05, None))
        x = hnet @ A.T + e * gamma
        x += noise_sd * rng.standard_normal(x.shape)
        t = np.linspace(-1, 1, n_frames)[:, None]
        x += rng.normal(0, 0.15, (1, R)) * t + rng.normal(0, 0.1, (1, R)) * np.cos(np.pi * (t + 1) / 2)
        x = (x - x.mean(0)) / x.std(0)
        return x.astype(np.float32)


def _symmetric_deviation(rng: np.random.Generator, nets: tuple[str, ...]) -> np.ndarray:
    K = len(nets)
    Z = rng.standard_normal((K, K))
    Z = np.triu(Z, 1)
    Z = Z + Z.T
    sd = np.full((K, K), INDIVIDUAL_SD)
    a, b = nets.index(COGNITION_PAIR[0]), nets.index(COGNITION_PAIR[1])
    sd[a, b] = sd[b, a] = INDIVIDUAL_SD_NAMED
    return np.clip(Z * sd, -0.6, 0.6)


# ---------------------------------------------------------------------- cohorts
def _check_groups(cfg: SynthConfig) -> None:
    """A custom group design is complete and unambiguous (one-line errors naming the setting)."""
    if not cfg.groups:
        return
    if cfg.n_cn or cfg.n_mci or cfg.n_ad:
        raise ConfigError(f"SynthConfig {cfg.name!r} sets both groups and n_cn/n_mci/n_ad; the groups replace the "
                          "ADNI-like design, so set n_cn = n_mci = n_ad = 0.")
    labels = [g.label for g in cfg.groups]
    if len(set(labels)) != len(labels) or not all(labels):
        raise ConfigError(f"SynthConfig {cfg.name!r}: group labels {labels} must be non-empty and distinct.")
    for g in cfg.groups:
        lo, hi = g.severity
        if g.n_subjects < 1 or not 0 <= lo <= hi <= 1 or g.age[0] > g.age[1]:
            raise ConfigError(f"SynthConfig {cfg.name!r}, group {g.label!r}: needs n_subjects >= 1, "
                              f"0 <= severity low <= high <= 1 and age low <= high (got {g}).")


def _group_plan(cfg: SynthConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Subjects of a custom group design: one time point each (no signals yet)."""
    shares = np.array([s.share for s in cfg.sites], float)
    shares /= shares.sum()
    visits: list[dict[str, Any]] = []
    for g in cfg.groups:
        for _ in range(g.n_subjects):
            site = cfg.sites[int(rng.choice(len(cfg.sites), p=shares))]
            visits.append(dict(subject=f"S{len(visits) + 1:03d}", session="1", severity=float(rng.uniform(*g.severity)),
                               slope=0.0, diagnosis=g.label, age=round(float(rng.uniform(*g.age)), 2),
                               sex="F" if rng.random() < 0.5 else "M", site=site.name, tr=site.tr,
                               frames=site.n_frames, noise_sd=site.noise_sd))
    return visits


def _eval_plan(cfg: SynthConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Subjects and visits of the ADNI-like cohort (no signals yet); a custom design's subjects."""
    if cfg.groups:
        return _group_plan(cfg, rng)
    groups = [("CN", cfg.n_cn), ("MCI", cfg.n_mci), ("AD", cfg.n_ad)]
    shares = np.array([s.share for s in cfg.sites], float)
    shares /= shares.sum()
    visits: list[dict[str, Any]] = []
    n = 0
    for dx, count in groups:
        p = DISEASE_COURSE[dx]
        for _ in range(count):
            n += 1
            sid = f"E{n:04d}"
            s0 = rng.uniform(*p["baseline"])
            slope = max(0.0, rng.normal(*p["slope"]))
            age0 = float(np.clip(rng.normal(*p["age"]), 55, 92))
            sex = "F" if rng.random() < 0.5 else "M"
            site = cfg.sites[int(rng.choice(len(cfg.sites), p=shares))]
            n_vis = 1
            while n_vis < cfg.max_visits and rng.random() > cfg.dropout:
                n_vis += 1
            converted_at = None
            for v in range(n_vis):
                years = 0.0 if v == 0 else v + rng.normal(0, 0.05)
                s = float(np.clip(s0 + slope * years, 0, 1))
                dx_now = dx
                if dx == "MCI" and s >= CONVERSION_SEVERITY:
                    dx_now = "AD"
                    converted_at = converted_at if converted_at is not None else v
                mmse = float(np.clip(round(29.5 - 14 * s + rng.normal(0, 1.2)), 0, 30))
                cdr = float(np.clip(round(2 * (16 * s**1.3 + rng.normal(0, 0.6))) / 2, 0, 18))
                visits.append(dict(subject=sid, visit=v, session=f"M{12 * v:02d}", years=float(round(years, 3)),
                                   severity=s, slope=slope, baseline_dx=dx, diagnosis=dx_now,
                                   age=round(age0 + years, 2), sex=sex, site=site.name, tr=site.tr,
                                   frames=site.n_frames, noise_sd=site.noise_sd, mmse=mmse, cdr_sb=cdr))
            for vis in visits[-n_vis:]:
                vis["converter"] = int(dx == "MCI" and converted_at is not None)
    return visits


class _Draws:
    """What every recording of one :func:`generate` call shares: the simulator, the scenario, the truth rows.

    ``truths`` collects one ``ground_truth_recordings.tsv`` row per recording, in the order written.
    """

    def __init__(self, cfg: SynthConfig, dyn: DynamicScenario | None, progress_total: int | None) -> None:
        self.cfg, self.dyn = cfg, dyn
        self.atlas = synthetic_atlas(cfg.n_cortical, cfg.n_subcortical)
        self.sim = _Simulator(self.atlas, cfg)
        self.nets = self.sim.nets
        self.k = {n: i for i, n in enumerate(self.nets)}
        self.ca, self.cb = self.k[COGNITION_PAIR[0]], self.k[COGNITION_PAIR[1]]
        self.label = "" if dyn is None else f", scenario {dyn.name}"
        self.swing_pairs = [] if dyn is None else [(a, b) for a, b, _, _ in dyn.swings if a in self.k and b in self.k]
        self.truths: list[dict[str, Any]] = []
        self.pbar = None
        if progress_total is not None:
            from tqdm.auto import tqdm

            self.pbar = tqdm(total=progress_total, desc=f"synth {cfg.name}", unit="rec")

    def dynamics(self, C: np.ndarray, severity: float) -> tuple[tuple[np.ndarray, np.ndarray, DynamicScenario] | None,
                                                                 dict[str, float]]:
        """The state couplings of a recording and their truth columns (nothing in the static scenario)."""
        if self.dyn is None:
            return None, {}
        k = self.k
        CA, CB, f = state_couplings(C, severity, self.dyn, self.nets)
        return (CA, CB, self.dyn), {f"swing_{a}_{b}": round(float(CA[k[a], k[b]] - C[k[a], k[b]]), 4)
                                    for a, b in self.swing_pairs} | {"swing_factor": round(f, 4)}

    def couplings(self, C: np.ndarray) -> dict[str, float]:
        """The truth columns of a recording's coupling matrix ``C`` ``[K, K]``."""
        k = self.k
        return {f"coupling_{a}_{b}": round(float(C[k[a], k[b]]), 4) for (a, b) in _truth_pairs(self.nets)}

    def tick(self) -> None:
        if self.pbar:
            self.pbar.update()


def _synth_config(preset: str | SynthConfig) -> SynthConfig:
    """The preset's :class:`SynthConfig` (or ``preset`` itself), checked."""
    cfg = PRESETS[preset] if isinstance(preset, str) and preset in PRESETS else preset
    if not isinstance(cfg, SynthConfig):
        raise ConfigError(f"unknown synthetic preset {preset!r}; choose one of {sorted(PRESETS)}.")
    _check_groups(cfg)
    return cfg


def _pretrain_specs(cfg: SynthConfig, n_eval: int) -> list[DatasetSpec]:
    """The pretraining datasets, scaled to fill ``cfg.total_recordings`` beside ``n_eval`` evaluation visits."""
    specs = list(cfg.pretrain)
    if cfg.total_recordings is None:
        return specs
    remaining = cfg.total_recordings - n_eval
    if remaining < len(specs):
        raise ConfigError(f"total_recordings={cfg.total_recordings} leaves no room for pretraining recordings.")
    sizes = _largest_remainder({d.name: d.n_subjects for d in specs}, remaining)
    return [replace(d, n_subjects=sizes[d.name]) for d in specs]


def generate(out: str | Path, preset: str | SynthConfig = "smoke", seed: int = 0, overwrite: bool = False,
             progress: bool = True, scenario: str | DynamicScenario | None = "static") -> Path:
    """Write ``out/pretrain``, ``out/eval``, ``out/ground_truth.json`` for a preset.

    The same ``(preset, seed)`` writes byte-identical files.

    Parameters
    ----------
    out
        Output directory (created atomically).
    preset
        ``"smoke"`` (seconds), ``"default"`` (the book, a few hundred subjects),
        ``"paper"`` (5,582 recordings, Schaefer-400-like + 32 subcortical ROIs) or a
        :class:`SynthConfig`.
    seed
        Seed of every random draw.
    scenario
        ``"static"`` (disease changes couplings and DMN coherence) or ``"dynamic"`` /
        a :class:`DynamicScenario` (disease changes only state-dependent coupling swings;
        the time-averaged covariance is the same for every severity). The static
        scenario's files do not depend on this option's existence.
    """
    dyn = resolve_scenario(scenario)
    cfg = _synth_config(preset)
    # the seed streams, spawned in this order: the plan, the pretraining datasets, the evaluation visits
    # (and, with retest sessions, the subjects' coherence traits: spawned last, so the others are unchanged)
    root_ss = np.random.SeedSequence(int(seed))
    plan_ss, pre_ss, eval_ss = root_ss.spawn(3)
    eval_plan = _eval_plan(cfg, np.random.default_rng(plan_ss))
    pretrain_specs = _pretrain_specs(cfg, len(eval_plan))
    draws = _Draws(cfg, dyn, sum(d.n_subjects for d in pretrain_specs) + len(eval_plan) if progress else None)
    with atomic_dir(out, overwrite=overwrite, kind="synth") as tmp:
        spec = PreprocSpec(target_tr=None, zscore=True)
        if pretrain_specs:
            with CohortWriter(tmp / "pretrain", draws.atlas, spec, name="synthetic-pretrain",
                              description=f"bi_core synthetic healthy pretraining cohort, preset {cfg.name}, "
                                          f"seed {seed}{draws.label}") as w:
                _write_pretrain(w, draws, pretrain_specs, pre_ss)
        what = "/".join(g.label for g in cfg.groups) if cfg.groups else "ADNI-like"
        with CohortWriter(tmp / "eval", draws.atlas, spec, name="synthetic-eval",
                          description=f"bi_core synthetic {what} cohort, preset {cfg.name}, seed {seed}"
                                      f"{draws.label}") as w:
            trait_ss = root_ss.spawn(1)[0] if cfg.retest_sessions > 1 else None
            _write_eval(w, draws, eval_plan, eval_ss, trait_ss)
        if draws.pbar:
            draws.pbar.close()
        write_json(tmp / "ground_truth.json", ground_truth(cfg, seed, draws.atlas, draws.nets, scenario=dyn))
        write_tsv(tmp / "ground_truth_recordings.tsv", pd.DataFrame(draws.truths), float_format="%.6g")
        write_json(tmp / "synth_config.json", {"preset": cfg.to_dict(), "seed": int(seed),
                                               **({} if dyn is None else {"scenario": dyn.to_dict()})})
    return Path(out)


def _write_pretrain(w: CohortWriter, draws: _Draws, specs: list[DatasetSpec], pre_ss: np.random.SeedSequence) -> None:
    """The healthy pretraining recordings: one stream per dataset, one per subject within it."""
    nets, cfg = draws.nets, draws.cfg
    for d_ss, d in zip(pre_ss.spawn(len(specs)), specs):
        for s_i, s_ss in enumerate(d_ss.spawn(d.n_subjects)):
            rng = np.random.default_rng(s_ss)
            age = float(rng.uniform(*d.age_range))
            dev = _symmetric_deviation(rng, nets)
            C = subject_coupling(0.0, age, dev, nets)
            states, swing_truth = draws.dynamics(C, 0.0)
            x = draws.sim.recording(rng, d.tr, d.n_frames, C, 0.0, cfg.pretrain_noise_sd, states=states)
            # fluid score: loads on the cognition pair's individual deviation, declines after 30
            z_dev = dev[draws.ca, draws.cb] / INDIVIDUAL_SD_NAMED
            score = (COGNITION_LOADING * z_dev + math.sqrt(1 - COGNITION_LOADING**2) * rng.standard_normal())
            fluid = 100 + 15 * score - 0.25 * max(0.0, age - 30)
            sid = f"{d.name.replace('-', '')}{s_i + 1:04d}"
            rid = f"sub-{sid}_ses-1"
            w.add(x, recording_id=rid, subject=sid, session="1", tr=d.tr, dataset=d.name, site=d.name,
                  age=round(age, 2), sex="F" if rng.random() < 0.5 else "M", fluid=round(fluid, 2))
            draws.truths.append({"cohort": "pretrain", "recording_id": rid, "severity": 0.0, **draws.couplings(C),
                                 "cognition_deviation": round(float(dev[draws.ca, draws.cb]), 4), **swing_truth})
            draws.tick()


def _write_eval(w: CohortWriter, draws: _Draws, plan: list[dict[str, Any]], eval_ss: np.random.SeedSequence,
                trait_ss: np.random.SeedSequence | None) -> None:
    """The evaluation visits of ``plan``: one stream per visit (its first child: the subject's deviation, drawn at
    the subject's first visit); with ``trait_ss`` (retest sessions) one recording per session."""
    nets, dyn = draws.nets, draws.dyn
    subj_dev: dict[str, np.ndarray] = {}
    subj_trait: dict[str, np.ndarray] = {}
    for v_ss, vis in zip(eval_ss.spawn(len(plan)), plan):
        rng = np.random.default_rng(v_ss)
        if vis["subject"] not in subj_dev:
            subj_dev[vis["subject"]] = _symmetric_deviation(np.random.default_rng(v_ss.spawn(1)[0]), nets)
            if trait_ss is not None:
                subj_trait[vis["subject"]] = np.random.default_rng(trait_ss.spawn(1)[0]).standard_normal(len(nets))
        # the dynamic scenario's disease acts on the state swings only, never on the average coupling
        static_severity = vis["severity"] if dyn is None else 0.0
        C = subject_coupling(static_severity, vis["age"], subj_dev[vis["subject"]], nets)
        states, swing_truth = draws.dynamics(C, vis["severity"])
        n_frames = int(rng.integers(vis["frames"][0], vis["frames"][1] + 1))
        runs = [(rng, None, None)] if trait_ss is None else _retest_runs(v_ss, draws.cfg, nets, subj_trait[vis["subject"]])
        for run_rng, run, scale in runs:
            x = draws.sim.recording(run_rng, vis["tr"], n_frames, C, static_severity, vis["noise_sd"], scale,
                                    states=states)
            rid = _add_eval_recording(w, draws.cfg, vis, run, x)
            draws.truths.append({"cohort": "eval", "recording_id": rid, "severity": round(vis["severity"], 4),
                                 **draws.couplings(C),
                                 "cognition_deviation": round(float(subj_dev[vis["subject"]][draws.ca, draws.cb]), 4),
                                 "severity_slope": round(vis["slope"], 4), **swing_truth,
                                 **({} if scale is None else {f"coherence_scale_{n}": round(float(v), 4)
                                                              for n, v in zip(nets, scale)})})
        draws.tick()


def _retest_runs(v_ss: np.random.SeedSequence, cfg: SynthConfig, nets: tuple[str, ...], trait: np.ndarray
                 ) -> list[tuple[np.random.Generator, str | None, np.ndarray | None]]:
    """A visit's same-day sessions: each its generator, its run label and its coherence scale per network ``[K]``
    (the subject's stable ``trait`` ``[K]`` mixed with session noise by :data:`RETEST_STABILITY`)."""
    stability = np.array([RETEST_STABILITY.get(n, 0.5) for n in nets])
    runs: list[tuple[np.random.Generator, str | None, np.ndarray | None]] = []
    for r, r_ss in enumerate(v_ss.spawn(cfg.retest_sessions)):
        r_rng = np.random.default_rng(r_ss)
        z = np.sqrt(stability) * trait + np.sqrt(1 - stability) * r_rng.standard_normal(len(nets))
        runs.append((r_rng, str(r + 1), np.clip(1 + RETEST_COHERENCE_SD * z, 0.3, 1.6)))
    return runs


def _add_eval_recording(w: CohortWriter, cfg: SynthConfig, vis: dict[str, Any], run: str | None, x: np.ndarray) -> str:
    """Write one evaluation recording ``x`` ``[n_frames, n_rois]`` of visit ``vis``; returns its recording id."""
    if cfg.groups:   # one time point: the repeats are sessions, the label goes to group_column
        ses = run or vis["session"]
        rid = f"sub-{vis['subject']}_ses-{ses}"
        w.add(x, recording_id=rid, subject=vis["subject"], session=ses, tr=vis["tr"], dataset=cfg.name,
              site=vis["site"], age=vis["age"], sex=vis["sex"], **{cfg.group_column: vis["diagnosis"]})
        return rid
    rid = f"sub-{vis['subject']}_ses-{vis['session']}" + (f"_run-{run}" if run else "")
    w.add(x, recording_id=rid, subject=vis["subject"], session=vis["session"], run=run,
          tr=vis["tr"], dataset="ADNI-like", site=vis["site"], diagnosis=vis["diagnosis"],
          age=vis["age"], sex=vis["sex"], years_from_baseline=vis["years"], mmse=vis["mmse"],
          cdr_sb=vis["cdr_sb"], baseline_dx=vis["baseline_dx"], visit=vis["visit"],
          converter=vis["converter"])
    return rid


def _truth_pairs(nets: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = [(a, b) for a, b, _ in ALTERED_PAIRS] + [COGNITION_PAIR, AGE_PAIR]
    return [p for p in dict.fromkeys(pairs) if p[0] in nets and p[1] in nets]


def ground_truth(cfg: SynthConfig, seed: int, atlas: NetworkAtlas, nets: tuple[str, ...] = NETWORKS,
                 scenario: DynamicScenario | None = None) -> dict[str, Any]:
    """The population-level truth written to ``ground_truth.json``.

    With a :class:`DynamicScenario` the disease entries describe its state swings
    (:func:`dynamic_truth`); the static scenario's file has no ``scenario`` key (readers
    take its absence as ``"static"``).
    """
    C0 = subject_coupling(0.0, 40.0, np.zeros((len(nets), len(nets))), nets)
    C1 = subject_coupling(1.0, 40.0, np.zeros((len(nets), len(nets))), nets)
    Ci = np.linalg.inv(C0)
    latent_r2 = 1 - 1 / np.diag(Ci)
    truth = {
        "generator": "bi_core.synth",
        "generator_version": 1,
        "preset": cfg.name,
        "seed": int(seed),
        "networks": list(nets),
        "network_sizes": atlas.network_sizes(),
        "coupling": {"description": "stationary correlation of the network latent signals (healthy, age 40)",
                     "networks": list(nets), "matrix": np.round(C0, 4).tolist()},
        "coupling_at_severity_1": {"networks": list(nets), "matrix": np.round(C1, 4).tolist()},
        "coherence": {n: COHERENCE[n] for n in nets},
        "latent_r2_from_other_networks": {n: round(float(v), 4) for n, v in zip(nets, latent_r2)},
        "expected_predictability": {"most": "VIS", "least": "SUB"},
        "disease": {
            "altered_pairs": [{"pair": [a, b], "sign": int(np.sign(rel)), "relative_change_at_severity_1": rel}
                              for a, b, rel in ALTERED_PAIRS],
            "dmn_coherence_relative_change_at_severity_1": DMN_COHERENCE_CHANGE,
            "dmn_predictability_drop": True,
            "severity": {dx: {"baseline": list(c["baseline"]), "slope_mean": c["slope"][0], "slope_sd": c["slope"][1],
                              **({"converts_to_AD_at": CONVERSION_SEVERITY} if dx == "MCI" else {})}
                         for dx, c in DISEASE_COURSE.items()},
            "severity_slopes": {dx: c["slope"][0] for dx, c in DISEASE_COURSE.items()},
            "slope_order": sorted(DISEASE_COURSE, key=lambda dx: -DISEASE_COURSE[dx]["slope"][0]),
            "mmse": "round(29.5 - 14 s + N(0, 1.2)), clipped to 0..30",
            "cdr_sb": "round_half(16 s^1.3 + N(0, 0.6)), clipped to 0..18",
            "marker_cdr_sb_association_sign": 1,
        },
        "age": {"global_coupling_relative_change_per_decade": AGE_GLOBAL_PER_DECADE,
                "pair": list(AGE_PAIR), "pair_relative_change_per_decade": AGE_PAIR_PER_DECADE,
                "reference_age": 40},
        "cognition": {"column": "fluid", "pair": list(COGNITION_PAIR), "loading": COGNITION_LOADING,
                      "formula": "100 + 15 (loading z + sqrt(1 - loading^2) eps) - 0.25 max(0, age - 30); "
                                 "z = the pair's relative individual deviation / its SD"},
        "individual_variation": {"relative_sd": INDIVIDUAL_SD, "relative_sd_cognition_pair": INDIVIDUAL_SD_NAMED},
        "sites": [asdict(s) for s in cfg.sites],
        "pretrain_datasets": [asdict(d) for d in cfg.pretrain],
        **({} if not cfg.groups else {"groups": {
            "column": cfg.group_column,
            "levels": {g.label: {"n_subjects": g.n_subjects, "severity": list(g.severity), "age": list(g.age)}
                       for g in cfg.groups},
            "description": "one time point per subject; severity ~ U(severity) acts as 'disease' above (altered "
                           "pairs, DMN coherence), age ~ U(age) as 'age'; MMSE, CDR-SB and visits are not simulated"}}),
        **({} if cfg.retest_sessions <= 1 else {"retest": {
            "runs_per_visit": cfg.retest_sessions, "repeats_are": "sessions" if cfg.groups else "runs",
            "coherence_relative_sd": RETEST_COHERENCE_SD,
            "stability": {n: RETEST_STABILITY.get(n, 0.5) for n in nets},
            "description": "coherence scale 1 + sd (sqrt(s) trait + sqrt(1 - s) eps_run): s is the true ICC of "
                           "each network's coherence scale across a visit's runs"}}),
    }
    if cfg.groups:   # the ADNI-like disease course (groups, slopes, scores) is not part of a custom design
        for k in ("severity", "severity_slopes", "slope_order", "mmse", "cdr_sb", "marker_cdr_sb_association_sign"):
            del truth["disease"][k]
    return truth if scenario is None else dynamic_truth(truth, scenario, C0, nets)


def dynamic_truth(gt: dict[str, Any], scenario: DynamicScenario, C0: np.ndarray, nets: tuple[str, ...]) -> dict[str, Any]:
    """The static truth ``gt`` rewritten for the dynamic scenario, from the generator's own functions.

    Disease changes the state swing of :attr:`DynamicScenario.swings` (``sign`` +1: the
    pair's coupling alternates more between the states with severity, −1: less) and
    nothing else: the time-averaged coupling at severity 1, computed here from
    :func:`state_couplings`, equals the healthy one, DMN coherence does not change.
    """
    k = {n: i for i, n in enumerate(nets)}
    A0, B0, f0 = state_couplings(C0, 0.0, scenario, nets)
    A1, B1, f1 = state_couplings(C0, 1.0, scenario, nets)
    avg1 = (A1 + B1) / 2
    drift = float(np.abs(avg1 - C0).max())
    swings = []
    for a, b, healthy, change in scenario.swings:
        if a in k and b in k:
            i, j = k[a], k[b]
            swings.append({"pair": [a, b], "sign": int(np.sign(change)),
                           "swing_healthy": round(float(A0[i, j] - C0[i, j]), 4),
                           "swing_at_severity_1": round(float(A1[i, j] - C0[i, j]), 4),
                           "time_averaged_coupling": round(float(C0[i, j]), 4),
                           "state_A_coupling_at_severity_1": round(float(A1[i, j]), 4),
                           "state_B_coupling_at_severity_1": round(float(B1[i, j]), 4),
                           # the time-averaged coupling's change: what static FC can see
                           "relative_change_at_severity_1": round(float((avg1[i, j] - C0[i, j]) / C0[i, j]), 6)
                           if C0[i, j] else round(float(avg1[i, j] - C0[i, j]), 6)})
    gt = {**gt, "scenario": scenario.name, "generator_version": 2}
    gt["coupling_at_severity_1"] = {"description": "time-averaged coupling at severity 1 (the mean of the two states)",
                                    "networks": list(nets), "matrix": np.round(avg1, 4).tolist()}
    gt["dynamic"] = {
        "description": "a latent state sequence alternates between states A and B in cycles (one gamma-distributed "
                       "dwell time in each state, random order); in state A each swing pair's coupling is its "
                       "time-averaged value + swing, in state B - swing; swing = healthy + change x severity",
        "parameters": scenario.to_dict(), "state_share": 0.5,
        "swing_factor_population": {"healthy": f0, "severity_1": f1},
        "states_healthy": {"A": np.round(A0, 4).tolist(), "B": np.round(B0, 4).tolist()},
        "states_at_severity_1": {"A": np.round(A1, 4).tolist(), "B": np.round(B1, 4).tolist()},
        "swings": swings,
    }
    gt["static_fc_expectation"] = {
        "time_averaged_coupling_max_abs_change_at_severity_1": round(drift, 12),
        "group_difference": "none beyond noise: disease changes only how the swing pairs' coupling alternates "
                            "between states; the groups' mean ages differ, so the mild age effect on every coupling "
                            f"({AGE_GLOBAL_PER_DECADE:+g} relative per decade) remains",
        "dynamic_measure": "the SD over sliding windows of the swing pairs' correlation rises (sign +1) or falls "
                           "(sign -1) with severity"}
    disease = dict(gt["disease"])
    disease["altered_pairs"] = [{k_: v for k_, v in sw.items()} | {"measure": "state swing"} for sw in swings]
    disease["dmn_coherence_relative_change_at_severity_1"] = 0.0
    disease["dmn_predictability_drop"] = False
    gt["coherence"] = {n: dict(scenario.coherence).get(n, v) for n, v in gt["coherence"].items()}
    gt["disease"] = disease
    return gt


# ---------------------------------------------------------------------- implied truth
def implied_roi_correlation(atlas: NetworkAtlas, severity: float, age: float, noise_sd: float,
                            cfg: SynthConfig | None = None) -> np.ndarray:
    """Population correlation of the ROI signals ``[n_rois, n_rois]`` implied by the generator.

    Instantaneous second-order structure of step 4 of the model (drift ignored), for a
    subject with the population coupling at ``severity`` and ``age`` and scanner noise SD
    ``noise_sd``: ``Σ = A C Aᵀ + diag(γ²) + noise_sd² I``, normalized to unit diagonal as
    z-scoring does.
    """
    sim = _Simulator(atlas, cfg or PRESETS["default"])
    C = subject_coupling(severity, age, np.zeros((sim.K, sim.K)), sim.nets)
    R = atlas.n_rois
    alpha = sim.alpha0 * np.where(sim.is_dmn, 1.0 + DMN_COHERENCE_CHANGE * severity, 1.0)
    A = sim.beta.copy()
    A[np.arange(R), sim.net_of_roi] += alpha
    structured = np.einsum("rk,kl,rl->r", A, C, A)
    gamma2 = np.clip(1.0 - structured, 0.05, None)
    S = A @ C @ A.T + np.diag(gamma2 + noise_sd**2)
    d = np.sqrt(np.diag(S))
    return S / np.outer(d, d)


def implied_dependency(atlas: NetworkAtlas, severity: float, age: float, noise_sd: float) -> dict[str, np.ndarray]:
    """Linear-reconstruction analogues of predictability and occlusion implied by the generator.

    For each target network m: ``r2_full[m]`` — R² of m's ROIs (pooled) from all other
    ROIs by the best linear predictor; ``delta_r2[m, n]`` — the R² lost when network n's
    ROIs are also removed; ``share[m, n]`` — that loss as a share of ``r2_full[m]``.
    These are what an ideal (linear, instantaneous) reconstruction would measure.
    """
    S = implied_roi_correlation(atlas, severity, age, noise_sd)
    nets = atlas.networks
    idx = {n: atlas.rois_of(n) for n in nets}
    K = len(nets)

    def r2(target: np.ndarray, sources: np.ndarray) -> float:
        Smm = S[np.ix_(target, target)]
        Sms = S[np.ix_(target, sources)]
        cond = Smm - Sms @ np.linalg.solve(S[np.ix_(sources, sources)], Sms.T)
        return 1.0 - np.trace(cond) / np.trace(Smm)

    full = np.zeros(K)
    delta = np.full((K, K), np.nan)
    for i, m in enumerate(nets):
        others = np.setdiff1d(np.arange(atlas.n_rois), idx[m])
        full[i] = r2(idx[m], others)
        for j, n in enumerate(nets):
            if j != i:
                delta[i, j] = full[i] - r2(idx[m], np.setdiff1d(others, idx[n]))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = delta / full[:, None]
    return {"r2_full": full, "delta_r2": delta, "share": share}
