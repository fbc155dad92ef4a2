"""One embedding per recording: the encoder on unmasked windows, averaged over windows.

``pooled`` is the mean over all tokens ``[d]``; ``per_network`` the mean over each
network's tokens ``[n_networks, d]``. Written as a TSV (one row per recording, columns
``emb_000…`` and ``<NET>_000…``) that :func:`read_embeddings` reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._io import write_tsv
from ..cohort import Cohort
from ..errors import InputError
from ..windows import TiledWindows
from .predictability import recording_meta


def embed(model: torch.nn.Module, info: Any, cohort: Cohort, batch_size: int = 64,
          device: str | torch.device = "cpu", progress: bool = False,
          recordings: list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Embeddings of every recording (or of ``recordings``, a list of ids).

    Returns
    -------
    table : DataFrame
        ``recording_id, subject, session, n_windows`` (recordings with ≥ 1 window).
    pooled : ndarray ``[n_recordings, d]``
    per_network : ndarray ``[n_recordings, n_networks, d]``
    """
    info.atlas.check_same(cohort.atlas, what=f"checkpoint {info.path} and cohort {cohort.path}")
    tiles = TiledWindows(cohort, info.window, target_tr=info.target_tr, recordings=recordings)
    n_rec = len(tiles.recordings_set)
    d, K = info.model_config.d_model, info.layout.n_networks
    pooled = np.zeros((n_rec, d))
    per_net = np.zeros((n_rec, K, d))
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
            np.add.at(counts, rec, 1)
    keep = np.flatnonzero(counts)
    t = recording_meta(tiles, cohort).iloc[keep]
    table = pd.DataFrame({"recording_id": t["recording_id"].to_numpy(), "subject": t["subject"].to_numpy(),
                          "session": t["session"].to_numpy(), "n_windows": counts[keep]})
    c = counts[keep].astype(float)
    return table, pooled[keep] / c[:, None], per_net[keep] / c[:, None, None]


def write_embeddings(path: str | Path, table: pd.DataFrame, pooled: np.ndarray, per_network: np.ndarray,
                     networks: tuple[str, ...] | list[str]) -> Path:
    """Write embeddings as one TSV row per recording (atomically)."""
    d = pooled.shape[1]
    cols = {f"emb_{j:03d}": pooled[:, j] for j in range(d)}
    for k, net in enumerate(networks):
        cols.update({f"{net}_{j:03d}": per_network[:, k, j] for j in range(d)})
    return write_tsv(path, pd.concat([table.reset_index(drop=True), pd.DataFrame(cols)], axis=1), float_format="%.6g")


def read_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """Read :func:`write_embeddings` output: ``(table, pooled [n, d], {network: [n, d]})``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"embeddings file {p} not found; make it with `bi-core embed`.")
    df = pd.read_csv(p, sep="\t", dtype={"recording_id": str, "subject": str, "session": str})
    emb_cols = [c for c in df.columns if c.startswith("emb_")]
    if not emb_cols:
        raise InputError(f"{p} has no emb_* columns: not an embeddings table.")
    nets = list(dict.fromkeys(c.rsplit("_", 1)[0] for c in df.columns
                              if c.rsplit("_", 1)[-1].isdigit() and not c.startswith("emb_")))
    per = {n: df[[c for c in df.columns if c.startswith(f"{n}_") and c.rsplit("_", 1)[-1].isdigit()]].to_numpy()
           for n in nets}
    meta = df[[c for c in df.columns if not (c.startswith("emb_") or c.rsplit("_", 1)[0] in nets)]]
    return meta, df[emb_cols].to_numpy(), per
