"""One embedding per recording: the encoder on unmasked windows, averaged over windows.

Three poolings of the encoder's token outputs ``h[r, p]`` (ROI r, time patch p):

- ``pooled`` — the mean over all tokens, ``[d]``;
- ``per_network`` — the mean over each network's tokens, ``[n_networks, d]``;
- ``temporal_sd`` — for each network, its tokens are averaged per time patch and the
  standard deviation of that network-level feature over the patches of a window is taken,
  ``[n_networks, d]`` (second-order pooling; design choice of this companion).

Why the last one: the series are z-scored, so first-order (mean) pooling averages away the
fluctuations in which subjects differ — how coherently a network's ROIs move together and
how strongly networks co-vary. A network-level feature fluctuates more over time when its
ROIs are synchronized, so its temporal SD keeps that information. On the default synthetic
cohort, mean pooling gives chance-level AD-vs-CN classification and temporal-SD pooling does
not (see the classification chapter, which scores both).

Written as a TSV (one row per recording; columns ``emb_000…``, ``<NET>_000…`` and
``<NET>_sd_000…``) that :func:`read_embeddings` reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from .._io import write_tsv
from ..cohort import Cohort
from ..errors import InputError
from ..windows import TiledWindows, windows_of
from .predictability import recording_meta

if TYPE_CHECKING:
    import torch

# In-function imports: torch loads when embed runs a model; the suite's and the chapters' table helpers import this
# module without it.


class RecordingEmbeddings(NamedTuple):
    """Embeddings of a set of recordings (rows aligned with ``table``)."""

    table: pd.DataFrame          # recording_id, subject, session, n_windows
    pooled: np.ndarray           # [n, d]
    per_network: np.ndarray      # [n, n_networks, d]
    temporal_sd: np.ndarray      # [n, n_networks, d]

    def features(self, kind: str = "temporal_sd") -> np.ndarray:
        """A ``[n, n_features]`` matrix: ``pooled``, ``per_network``, ``temporal_sd`` or ``mean_sd`` (both)."""
        n = len(self.table)
        if kind == "pooled":
            return self.pooled
        if kind == "per_network":
            return self.per_network.reshape(n, -1)
        if kind == "temporal_sd":
            return self.temporal_sd.reshape(n, -1)
        if kind == "mean_sd":
            return np.concatenate([self.per_network.reshape(n, -1), self.temporal_sd.reshape(n, -1)], axis=1)
        raise InputError(f"unknown embedding kind {kind!r}; choose pooled, per_network, temporal_sd or mean_sd.")


def embed(model: torch.nn.Module, info: Any, cohort: Cohort, batch_size: int = 64,
          device: str | torch.device = "cpu", progress: bool = False,
          recordings: list[str] | None = None, tiles: TiledWindows | None = None) -> RecordingEmbeddings:
    """Embeddings of every recording (or of ``recordings``, a list of ids) with ≥ 1 window.

    ``tiles``: the cohort's windows when a run's analyses share them (:func:`bi_core.windows.windows_of`).

    Returns
    -------
    RecordingEmbeddings
        ``table`` (``recording_id, subject, session, n_windows``), ``pooled`` ``[n, d]``,
        ``per_network`` and ``temporal_sd`` ``[n, n_networks, d]``.
    """
    import torch

    info.atlas.check_same(cohort.atlas, what=f"checkpoint {info.path} and cohort {cohort.path}")
    tiles = windows_of(info, cohort, recordings, tiles)
    n_rec = len(tiles.recordings_set)
    d, K = info.model_config.d_model, info.layout.n_networks
    pooled = np.zeros((n_rec, d))
    per_net = np.zeros((n_rec, K, d))
    per_sd = np.zeros((n_rec, K, d))
    counts = np.zeros(n_rec, dtype=int)
    rec_of_row = tiles.index["recording"].to_numpy()
    it = tiles.batches(batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=-(-len(tiles) // batch_size), desc="embeddings", unit="batch")
    model.eval()
    with torch.inference_mode():
        for x, rows in it:
            e = model.embed(x.to(device))
            rec = rec_of_row[rows]
            np.add.at(pooled, rec, e.pooled.float().cpu().numpy())
            np.add.at(per_net, rec, e.per_network.float().cpu().numpy())
            np.add.at(per_sd, rec, e.temporal_sd.float().cpu().numpy())
            np.add.at(counts, rec, 1)
    keep = np.flatnonzero(counts)
    t = recording_meta(tiles, cohort).iloc[keep]
    table = pd.DataFrame({"recording_id": t["recording_id"].to_numpy(), "subject": t["subject"].to_numpy(),
                          "session": t["session"].to_numpy(), "n_windows": counts[keep]})
    c = counts[keep].astype(float)
    return RecordingEmbeddings(table, pooled[keep] / c[:, None], per_net[keep] / c[:, None, None],
                               per_sd[keep] / c[:, None, None])


def write_embeddings(path: str | Path, emb: RecordingEmbeddings, networks: tuple[str, ...] | list[str]) -> Path:
    """Write embeddings as one TSV row per recording (atomically)."""
    d = emb.pooled.shape[1]
    cols = {f"emb_{j:03d}": emb.pooled[:, j] for j in range(d)}
    for k, net in enumerate(networks):
        cols.update({f"{net}_{j:03d}": emb.per_network[:, k, j] for j in range(d)})
    for k, net in enumerate(networks):
        cols.update({f"{net}_sd_{j:03d}": emb.temporal_sd[:, k, j] for j in range(d)})
    return write_tsv(path, pd.concat([emb.table.reset_index(drop=True), pd.DataFrame(cols)], axis=1),
                     float_format="%.6g")


def read_embeddings(path: str | Path) -> tuple[RecordingEmbeddings, list[str]]:
    """Read :func:`write_embeddings` output: ``(embeddings, networks)``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"embeddings file {p} not found; make it with `bi-core embed`.")
    df = pd.read_csv(p, sep="\t", dtype={"recording_id": str, "subject": str, "session": str})
    emb_cols = [c for c in df.columns if c.startswith("emb_")]
    if not emb_cols:
        raise InputError(f"{p} has no emb_* columns: not an embeddings table.")
    d = len(emb_cols)
    sd_nets = list(dict.fromkeys(c[: -len("_sd_000")] for c in df.columns if c[-7:-3] == "_sd_" and c[-3:].isdigit()))
    meta = df[[c for c in df.columns if not c[-3:].isdigit()]]
    n = len(df)
    per = np.stack([df[[f"{k}_{j:03d}" for j in range(d)]].to_numpy() for k in sd_nets], 1) if sd_nets else np.zeros((n, 0, d))
    sd = np.stack([df[[f"{k}_sd_{j:03d}" for j in range(d)]].to_numpy() for k in sd_nets], 1) if sd_nets else np.zeros((n, 0, d))
    return RecordingEmbeddings(meta, df[emb_cols].to_numpy(), per, sd), sd_nets
