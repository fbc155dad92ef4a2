"""Is there more than a same-frame linear map to learn? Nonlinear regressors against ridge.

The book's model, with its linear path, reaches the same-frame ridge on held-out subjects
and its cross-attention decoder adds nothing measurable beyond that path (chapter 2). This
checks whether anything *could*: on exactly the windows of a run's split (training subjects
→ held-out subjects, the model's window length and TR), each network's ROIs are predicted
from every ROI outside the network at the same frame by

- ``ridge``: :class:`sklearn.linear_model.RidgeCV` (the book's reference form),
- ``kernel ridge (RBF)``: a Nystroem RBF feature map (``--components``, gamma = 1 / n_features)
  followed by RidgeCV,
- ``MLP``: :class:`sklearn.neural_network.MLPRegressor` (two hidden layers of 128, early stopping),

and scored with the book's R² (1 − SSE/SST pooled over the network's ROIs, per recording,
then the mean over recordings and networks). Training frames are a seeded sample
(``--max-frames``); the held-out subjects' frames are all scored.

Usage::

    python bench/bench_ceiling.py --run artifacts/default/runs/real-hcp/fold-0 --cohort artifacts/default/real/hcp \\
        --out bench/results/ceiling_hcp.tsv
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def frames(cohort, info, subjects, keep):
    """Frames ``[n, n_rois]`` of the windows of ``subjects`` (book tiling) and their recording ids."""
    from bi_core.analysis.linear import _Windows      # the windows the ridge reference reads
    from bi_core.windows import TiledWindows

    t = cohort.table
    ids = [r for r, s in zip(t["recording_id"], t["subject"].astype(str)) if (s in subjects) == keep]
    tiles = TiledWindows(cohort, info.window, target_tr=info.target_tr, recordings=ids)
    w = _Windows.read(tiles)                                                           # x [N, R, T]
    rec_ids = np.asarray(tiles.recordings_set.table["recording_id"].astype(str))[w.rec]
    return w.x.transpose(0, 2, 1).reshape(-1, w.x.shape[1]).astype(np.float64), np.repeat(rec_ids, w.x.shape[2])


def r2_by_recording(y, p, rec):
    out = []
    for r in np.unique(rec):
        m = rec == r
        yy, pp = y[m], p[m]
        out.append(1 - ((yy - pp) ** 2).sum() / ((yy - yy.mean(0)) ** 2).sum())
    return float(np.mean(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run directory (its summary.json gives the split)")
    ap.add_argument("--cohort", required=True, help="the cohort the run trained on")
    ap.add_argument("--max-frames", type=int, default=20000, help="training frames sampled [default: %(default)s]")
    ap.add_argument("--components", type=int, default=1000, help="Nystroem components [default: %(default)s]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="output TSV")
    a = ap.parse_args()

    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import RidgeCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline

    from bi_core.cohort import Cohort
    from bi_core.runs import load_model

    cohort = Cohort.open(a.cohort)
    _, info = load_model(a.run, cohort=cohort)
    train = {str(s) for s in json.loads((Path(a.run) / "summary.json").read_text())["train_subjects"]}
    Xtr, _ = frames(cohort, info, train, True)
    Xte, rec = frames(cohort, info, train, False)
    rng = np.random.default_rng(a.seed)
    Xtr = Xtr[rng.choice(len(Xtr), min(a.max_frames, len(Xtr)), replace=False)]
    net = np.asarray(info.atlas.network_index)
    alphas = np.logspace(-2, 4, 13)
    rows = []
    for k, name in enumerate(info.atlas.networks):
        tgt, src = np.flatnonzero(net == k), np.flatnonzero(net != k)
        if not len(tgt):
            continue
        models = {"ridge": RidgeCV(alphas=alphas),
                  "kernel ridge (RBF)": make_pipeline(Nystroem(gamma=1.0 / len(src), n_components=a.components,
                                                               random_state=a.seed), RidgeCV(alphas=alphas)),
                  "MLP": MLPRegressor(hidden_layer_sizes=(128, 128), early_stopping=True, alpha=1e-3,
                                      max_iter=200, random_state=a.seed)}
        for method, m in models.items():
            t0 = time.perf_counter()
            m.fit(Xtr[:, src], Xtr[:, tgt])
            p = m.predict(Xte[:, src]).reshape(len(Xte), -1)
            rows.append({"network": name, "method": method, "r2": r2_by_recording(Xte[:, tgt], p, rec),
                         "fit_s": round(time.perf_counter() - t0, 1)})
            print(f"{name:>5s} {method:>20s} R² {rows[-1]['r2']:.3f} ({rows[-1]['fit_s']} s)", flush=True)
    out = pd.DataFrame(rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(a.out, sep="\t", index=False, float_format="%.4f")
    print(out.groupby("method", sort=False)["r2"].mean().round(3).to_string())


if __name__ == "__main__":
    main()
