"""Network predictability: how well each network is reconstructed from the rest of the brain.

For every recording and network ``m``: mask ``m`` at every time patch, reconstruct every
window that tiles the recording (at the checkpoint's TR and window length) and score the
reconstruction over ``m``'s ROIs:

- ``r2`` = 1 − SSE / SST, summed over the network's ROIs and all frames of all windows
  (SST about each ROI's mean over the recording's windows);
- ``pearson_r`` = mean over the network's ROIs of the correlation between reconstructed
  and true series.

One pass over the data: each batch of windows is read once and reconstructed under every
network mask (masks are shared by the batch, so there is no padding).
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..errors import InputError
from ..masking import network_mask
from ..windows import TiledWindows, windows_of

if TYPE_CHECKING:  # torch loads inside the functions that run the model: the table
    import torch      # helpers (e.g. with_phenotypes in a notebook) do not pay for it

META_COLUMNS = ("recording_id", "subject", "session")


@dataclass
class _Sums:
    """Running sums per (recording, *cell, ROI) for R² and Pearson r.

    ``cell`` is ``(network,)`` for predictability and ``(target, source)`` for occlusion.
    """

    sy: np.ndarray      # sums of y, ŷ, y², ŷ², yŷ, (y−ŷ)²; shape [n_rec, *cells, n_rois]
    sp: np.ndarray
    syy: np.ndarray
    spp: np.ndarray
    syp: np.ndarray
    sse: np.ndarray

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> "_Sums":
        return cls(*(np.zeros(shape) for _ in range(6)))

    def add(self, rec: np.ndarray, cell: tuple[int, ...], rois: np.ndarray, y: np.ndarray, p: np.ndarray) -> None:
        """Accumulate windows ``y``, ``p`` ``[B, len(rois), T]`` of recordings ``rec`` ``[B]``."""
        idx = (rec[:, None], *cell, rois[None, :])
        np.add.at(self.sy, idx, y.sum(-1))
        np.add.at(self.sp, idx, p.sum(-1))
        np.add.at(self.syy, idx, (y * y).sum(-1))
        np.add.at(self.spp, idx, (p * p).sum(-1))
        np.add.at(self.syp, idx, (y * p).sum(-1))
        np.add.at(self.sse, idx, ((y - p) ** 2).sum(-1))

    def scores(self, n_frames: np.ndarray, cell: tuple[int, ...], rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R² (over the ROIs pooled) and mean Pearson r per recording, ``[n_rec]`` each."""
        n = n_frames[:, None]
        get = lambda a: a[(slice(None), *cell)][:, rois]  # noqa: E731
        sy, sp, syy, spp, syp, sse = map(get, (self.sy, self.sp, self.syy, self.spp, self.syp, self.sse))
        sst = syy - sy**2 / n
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = 1.0 - sse.sum(1) / sst.sum(1)
            r = (syp - sy * sp / n) / np.sqrt(np.clip(sst, 0, None) * np.clip(spp - sp**2 / n, 0, None))
            with warnings.catch_warnings():       # a constant reconstruction (e.g. one model part alone) has no r
                warnings.simplefilter("ignore", RuntimeWarning)
                r = np.nanmean(r, axis=1)
        return r2, r


def recording_meta(tiles: TiledWindows, cohort: Cohort) -> pd.DataFrame:
    """``recording_id, subject, session`` aligned with ``tiles.recordings_set`` (one row per recording)."""
    ids = tiles.recordings_set.table["recording_id"]
    return cohort.table.set_index("recording_id").loc[ids, ["subject", "session"]].reset_index()


def _window_values(pred: torch.Tensor, target: torch.Tensor, n_rois: int) -> tuple[np.ndarray, np.ndarray]:
    """``[B, n_rois*n_patches, P]`` token values (ascending ids: ROI-major) → ``[B, n_rois, T]``."""
    B = pred.shape[0]
    return (target.float().reshape(B, n_rois, -1).cpu().numpy().astype(np.float64),
            pred.float().reshape(B, n_rois, -1).cpu().numpy().astype(np.float64))


def predictability(model: torch.nn.Module, info: Any, cohort: Cohort, batch_size: int = 64,
                   device: str | torch.device = "cpu", progress: bool = False,
                   recordings: list[str] | None = None, part: str = "model",
                   tiles: TiledWindows | None = None) -> pd.DataFrame:
    """Per (recording, network) reconstruction R² and Pearson r.

    Parameters
    ----------
    model, info
        From :func:`bi_core.runs.load_model` (checked against the cohort's atlas there).
    cohort
        Any cohort on the checkpoint's atlas (resampled to the checkpoint's TR).
    batch_size
        Windows per forward pass.
    recordings
        Restrict to these recording ids (default: every recording of the cohort).
    part
        ``"model"`` (the default), or one part of it alone: ``"linear path"`` or ``"decoder"``
        (:meth:`bi_core.model.BrainInterNet.reconstruct`).
    tiles
        The cohort's windows when a run's analyses share them (:func:`bi_core.windows.windows_of`).

    Returns
    -------
    DataFrame
        ``recording_id, subject, session, network, r2, pearson_r, n_windows``; recordings
        shorter than one window are left out (listed in ``df.attrs["skipped"]``).
    """
    import torch


    info.atlas.check_same(cohort.atlas, what=f"checkpoint {info.path} and cohort {cohort.path}")
    layout = info.layout
    tiles = windows_of(info, cohort, recordings, tiles)
    K = layout.n_networks
    rois = [layout.rois_of_networks([k]) for k in range(K)]
    n_rec = len(tiles.recordings_set)
    sums = _Sums.zeros((n_rec, K, layout.n_rois))
    frames = np.zeros(n_rec)
    counts = np.zeros(n_rec, dtype=int)
    rec_of_row = tiles.index["recording"].to_numpy()
    it = tiles.batches(batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=-(-len(tiles) // batch_size), desc="predictability", unit="batch")
    model.eval()
    with torch.inference_mode():
        for x, rows in it:
            x = x.to(device)
            rec = rec_of_row[rows]
            np.add.at(frames, rec, info.window)
            np.add.at(counts, rec, 1)
            for k in range(K):
                mask = network_mask(layout, k, batch_size=len(rows)).to(device)
                if part == "model":
                    out = model(x, mask)
                    pred, target = out.pred, out.target
                else:
                    pred, target = model.reconstruct(x, mask, part), model.forward_target(x, mask)
                y, p = _window_values(pred, target, len(rois[k]))
                sums.add(rec, (k,), rois[k], y, p)
    out = _predictability_table(sums, frames, counts, rois, recording_meta(tiles, cohort), info.atlas.networks)
    out.attrs["skipped"] = list(tiles.skipped)
    return out


def _predictability_table(sums: _Sums, frames: np.ndarray, counts: np.ndarray, rois: list[np.ndarray],
                          table: pd.DataFrame, networks: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Tidy per (recording, network) table from the running sums (recordings with windows only)."""
    rows_out = []
    for k, net in enumerate(networks):
        r2, r = sums.scores(frames, (k,), rois[k])
        for i in np.flatnonzero(counts):
            rows_out.append({"recording_id": table["recording_id"].iloc[i], "subject": table["subject"].iloc[i],
                             "session": table["session"].iloc[i], "network": net, "r2": float(r2[i]),
                             "pearson_r": float(r[i]), "n_windows": int(counts[i])})
    out = pd.DataFrame(rows_out, columns=["recording_id", "subject", "session", "network", "r2", "pearson_r",
                                          "n_windows"])
    order = {n: i for i, n in enumerate(networks)}
    return out.sort_values(["recording_id", "network"], key=lambda s: s.map(order) if s.name == "network" else s,
                           kind="stable").reset_index(drop=True)


#: The phenotypes :func:`with_phenotypes` joins by default.
PHENOTYPES: tuple[str, ...] = ("dataset", "site", "diagnosis", "age", "sex", "years_from_baseline", "mmse", "cdr_sb",
                               "baseline_dx", "visit", "converter")


def with_phenotypes(table: pd.DataFrame, cohort: Cohort, columns: tuple[str, ...] = PHENOTYPES) -> pd.DataFrame:
    """Join recording phenotypes (diagnosis, age, sex, site...; any ``columns``) onto a per-recording table."""
    cols = ["recording_id"] + [c for c in dict.fromkeys(columns) if c in cohort.table and c not in table]
    return table.merge(cohort.table[cols], on="recording_id", how="left")


def reconstruct_window(model: torch.nn.Module, info: Any, cohort: Cohort, recording_id: str, network: str,
                       window: int = 0, device: str | torch.device = "cpu") -> dict[str, Any]:
    """True and reconstructed series of one masked network in one window (for figures).

    Returns
    -------
    dict
        ``true`` and ``pred`` ``[n_rois_in_network, T]``, ``roi_names``, ``tr`` (s),
        ``r2`` of the window.
    """
    import torch


    tiles = windows_of(info, cohort, [recording_id])
    if window >= len(tiles):

        raise InputError(f"recording {recording_id} has {len(tiles)} window(s); window {window} does not exist.")
    k = info.atlas.networks.index(network)
    rois = info.layout.rois_of_networks([k])
    with torch.inference_mode():
        out = model(torch.from_numpy(tiles[window][None]).to(device), network_mask(info.layout, network).to(device))
    y, p = _window_values(out.pred, out.target, len(rois))
    sst = ((y[0] - y[0].mean(1, keepdims=True)) ** 2).sum()
    return {"true": y[0], "pred": p[0], "roi_names": [info.atlas.roi_names[r] for r in rois],
            "tr": info.target_tr or float(cohort.table.set_index("recording_id").loc[recording_id, "tr"]),
            "r2": float(1 - ((y[0] - p[0]) ** 2).sum() / sst)}
