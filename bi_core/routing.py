"""The routing control: a synthetic cohort whose every network is reconstructable from exactly one other.

The paper reads the decoder's cross-attention as which networks a masked network is
reconstructed *from*. That reading can only be trusted on real data if it recovers a
known routing where one exists. This cohort plants one: the networks are paired
(:data:`ROUTING`), each pair shares one latent BOLD signal and nothing else, so a masked
network can be reconstructed from its partner and from no other network. A read-out
(attention, enrichment, rollout, gradients, occlusion, FC, ...) passes the control for a
target network when its strongest source is the partner (:func:`score_routing`).

Signals: each pair's latent is AR(1) neural noise (time constant ``neural_tau``) convolved
with nilearn's Glover HRF and sampled at ``tr``; ROI ``r`` of network ``m`` is
``a_r z_pair(m)(t) + sqrt(1 - a_r²) e_r(t)`` with ROI-specific HRF-convolved noise ``e_r``
and loadings ``a_r ~ U(loading)``, then z-scored. The partner's ROIs explain a share
``≈ a²`` of a masked network's variance; every other network explains none.

Two sizes (:data:`SIZES`): ``book`` (the default book's control: the synthetic atlas of the
other cohorts) and ``lab`` (100 cortical ROIs, 10 subjects: a small lab's cohort).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_dir, write_json
from .cohort import CohortWriter
from .errors import ConfigError
from .preprocess import PreprocSpec
from .synth import _glover, synthetic_atlas

#: The planted routing: pairs of networks that share one latent signal (chosen to differ from
#: the static scenario's strongest couplings and altered pairs).
ROUTING: tuple[tuple[str, str], ...] = (("VIS", "DMN"), ("SMN", "FPN"), ("DAN", "LIM"), ("VAN", "SUB"))


@dataclass(frozen=True)
class RoutingConfig:
    """Size and signal of a routing cohort.

    Parameters
    ----------
    n_cortical, n_subcortical
        ROIs of the synthetic atlas (:func:`bi_core.synth.synthetic_atlas`).
    n_subjects, n_frames, tr
        One recording per subject of ``n_frames`` frames at ``tr`` seconds.
    loading
        Range of the ROI loadings ``a_r`` on the pair's latent.
    neural_tau
        Time constant (s) of the latents' AR(1) neural process.
    """

    name: str = "book"
    n_cortical: int = 50
    n_subcortical: int = 4
    n_subjects: int = 24
    n_frames: int = 400
    tr: float = 0.8
    loading: tuple[float, float] = (0.55, 0.85)
    neural_tau: float = 2.0

    def __post_init__(self) -> None:
        if self.n_subjects < 2:
            raise ConfigError(f"routing: n_subjects={self.n_subjects}; at least 2 are needed (one held out).")
        lo, hi = self.loading
        if not 0 < lo <= hi < 1:
            raise ConfigError(f"routing: loading={self.loading} must satisfy 0 < low <= high < 1.")


#: Routing cohort sizes: ``smoke`` (tests), ``book`` (the default book), ``lab`` (10 subjects, 100 ROIs).
SIZES: dict[str, RoutingConfig] = {
    "smoke": RoutingConfig("smoke", n_cortical=30, n_subcortical=4, n_subjects=8, n_frames=256),
    "book": RoutingConfig("book"),
    "lab": RoutingConfig("lab", n_cortical=100, n_subcortical=8, n_subjects=10, n_frames=400),
}


def partner_of(networks: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Each network's planted source (its pair partner), for the networks present."""
    out = {}
    for a, b in ROUTING:
        if a in networks and b in networks:
            out[a], out[b] = b, a
    return out


def _bold(rng: np.random.Generator, n: int, n_frames: int, tr: float, tau: float) -> np.ndarray:
    """``n`` unit-variance HRF-convolved AR(1) signals ``[n_frames, n]``."""
    from scipy.signal import fftconvolve, lfilter


    sub = max(1, math.ceil(tr / 0.2 - 1e-9))
    dt = tr / sub
    h = _glover(round(dt, 6))
    warm = len(h) + int(round(4 * tau / dt))
    steps = warm + n_frames * sub
    rho = math.exp(-dt / tau)
    z = lfilter([math.sqrt(1 - rho**2)], [1.0, -rho], rng.standard_normal((steps, n)), axis=0)
    b = fftconvolve(z, h[:, None], mode="full", axes=0)[:steps][warm::sub][:n_frames]
    return b / b.std(axis=0, keepdims=True)


def generate_routing(out: str | Path, size: str | RoutingConfig = "book", seed: int = 0,
                     overwrite: bool = False) -> Path:
    """Write a routing cohort to ``out/cohort`` and its truth to ``out/routing_truth.json``.

    Returns ``out``. The ROI loadings and every signal depend only on ``seed`` and the size.
    """
    cfg = SIZES[size] if isinstance(size, str) else size
    if isinstance(size, str) and size not in SIZES:
        raise ConfigError(f"unknown routing size {size!r}; choose one of {sorted(SIZES)}.")
    atlas = synthetic_atlas(cfg.n_cortical, cfg.n_subcortical, name=f"routing{cfg.n_cortical}")
    nets = tuple(dict.fromkeys(atlas.roi_networks))
    partner = partner_of(nets)
    pairs = [p for p in ROUTING if p[0] in nets and p[1] in nets]
    pair_of = {n: i for i, p in enumerate(pairs) for n in p}
    roi_pair = np.array([pair_of[n] for n in atlas.roi_networks])
    rng = np.random.default_rng([seed, 5150])
    a = rng.uniform(*cfg.loading, atlas.n_rois)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        with CohortWriter(tmp / "cohort", atlas, PreprocSpec(target_tr=None, zscore=True), name=f"routing-{cfg.name}",
                          description=f"bi_core routing control ({cfg.name}, seed {seed}): networks paired "
                                      f"{', '.join('–'.join(p) for p in pairs)}") as w:
            for s, s_rng in enumerate(rng.spawn(cfg.n_subjects)):
                latent = _bold(s_rng, len(pairs), cfg.n_frames, cfg.tr, cfg.neural_tau)      # [T, n_pairs]
                noise = _bold(s_rng, atlas.n_rois, cfg.n_frames, cfg.tr, cfg.neural_tau)     # [T, R]
                x = latent[:, roi_pair] * a + noise * np.sqrt(1 - a**2)
                x = (x - x.mean(0)) / x.std(0)
                sid = f"R{s + 1:03d}"
                w.add(x.astype(np.float32), recording_id=f"sub-{sid}", subject=sid, tr=cfg.tr, dataset="routing",
                      site="routing")
        write_json(tmp / "routing_truth.json", {
            "scenario": "routing", "seed": int(seed), "config": asdict(cfg), "pairs": [list(p) for p in pairs],
            "source": partner,
            "expected_r2": {n: round(float(np.mean(a[np.asarray(atlas.roi_networks) == n] ** 2)), 4) for n in nets},
        })
    return Path(out)


def score_routing(values: pd.DataFrame, source: dict[str, str], readouts: list[str],
                  absolute: tuple[str, ...] = ("fc_correlation", "fc_partial_correlation")) -> pd.DataFrame:
    """Whether each read-out's strongest source of each target network is its planted partner.

    Parameters
    ----------
    values
        One row per (recording, ``target``, ``source``) with a column per read-out
        (e.g. the read-out study's table).
    source
        The planted source of each target (:func:`partner_of`).
    readouts
        Columns to score; the strongest source is the one with the largest mean over
        recordings (of the absolute value for the ``absolute`` read-outs).

    Returns
    -------
    pandas.DataFrame
        One row per (readout, target): ``strongest``, ``planted``, ``hit`` (bool) and
        ``margin`` (the planted source's mean minus the best other source's).
    """
    rows = []
    v = values[values["target"] != values["source"]]
    for ro in readouts:
        if ro not in v.columns:
            continue
        m = v.groupby(["target", "source"])[ro].mean()
        if ro in absolute:
            m = m.abs()
        for tgt, planted in source.items():
            if tgt not in m.index.get_level_values(0):
                continue
            s = m.loc[tgt].dropna()
            if s.empty:
                continue
            best = str(s.idxmax())
            others = s.drop(planted, errors="ignore")
            rows.append({"readout": ro, "target": tgt, "planted": planted, "strongest": best, "hit": best == planted,
                         "margin": float(s.get(planted, np.nan) - (others.max() if len(others) else np.nan))})
    return pd.DataFrame(rows, columns=["readout", "target", "planted", "strongest", "hit", "margin"])


def routing_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Hits per read-out: ``readout, hits, targets, share`` (sorted by share, then name)."""
    g = scores.groupby("readout")["hit"].agg(["sum", "count"]).rename(columns={"sum": "hits", "count": "targets"})
    g["share"] = g["hits"] / g["targets"]
    return g.reset_index().sort_values(["share", "readout"], ascending=[False, True], ignore_index=True)


__all__ = ["ROUTING", "RoutingConfig", "SIZES", "partner_of", "generate_routing", "score_routing", "routing_summary"]
