"""Score analyses of synthetic cohorts against the generator's ``ground_truth.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import read_text
from ..cohort import Cohort
from ..errors import InputError
from ..synth import implied_dependency
from .groupstats import baseline_rows


def load_ground_truth(path: str | Path) -> dict[str, Any]:
    """Read ``ground_truth.json`` written by ``bi-core synth``."""
    p = Path(path)
    if p.is_dir():
        p = p / "ground_truth.json"
    if not p.is_file():
        raise InputError(f"{p} not found: ground-truth scoring needs a synthetic cohort made by `bi-core synth`.")
    return json.loads(read_text(p))


def true_altered_pairs(truth: dict[str, Any]) -> dict[frozenset[str], int]:
    """Unordered altered network pairs → sign of the change (−1 weakened, +1 strengthened)."""
    return {frozenset(p["pair"]): int(p["sign"]) for p in truth["disease"]["altered_pairs"]}


def score_interaction_changes(diff: pd.DataFrame, truth: dict[str, Any], contrast: str = "AD-CN",
                              measure: str | None = None) -> dict[str, Any]:
    """Precision, recall and sign agreement of significant interaction changes.

    A network pair counts as *found* when at least one of its two directed cells
    (target ← source, source ← target) is FDR-significant for ``contrast``; its sign is the
    sign of the estimate of its most significant cell. Found pairs are compared with the
    generator's altered pairs.

    Parameters
    ----------
    diff
        Output of :func:`bi_core.analysis.groupstats.group_differences` on an interaction
        table (cells ``target``, ``source``; optionally a ``measure`` column).
    measure
        Restrict to rows of this measure when ``diff`` has a ``measure`` column.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``sign_agreement`` (share of true positives whose sign
        matches), ``found`` / ``true`` / ``true_positives`` (pair lists) and counts.
    """
    d = diff[diff["contrast"] == contrast]
    if d.empty:
        raise InputError(f"no rows for contrast {contrast!r} in the group differences (contrasts present: "
                         f"{sorted(diff['contrast'].unique()) if 'contrast' in diff else []}).")
    if measure is not None and "measure" in d:
        d = d[d["measure"] == measure]
    # a measure with no estimable cell (e.g. occlusion_share when every target's R² is
    # below its floor on a barely trained model) finds nothing: recall 0, precision NaN
    estimable = not d.empty
    truth_pairs = true_altered_pairs(truth)
    sig = d[d["significant"].fillna(False).astype(bool)]
    found: dict[frozenset[str], int] = {}
    for pair, g in (sig.groupby(sig.apply(lambda r: frozenset((r["target"], r["source"])), axis=1))
                    if not sig.empty else ()):
        best = g.loc[g["q"].idxmin()]
        found[pair] = int(np.sign(best["estimate"]))
    tp = [p for p in found if p in truth_pairs]
    precision = len(tp) / len(found) if found else float("nan")
    recall = len(tp) / len(truth_pairs) if truth_pairs else float("nan")
    sign = float(np.mean([found[p] == truth_pairs[p] for p in tp])) if tp else float("nan")
    fmt = lambda ps: sorted("–".join(sorted(p)) for p in ps)  # noqa: E731
    return {"contrast": contrast, "measure": measure, "precision": precision, "recall": recall,
            "sign_agreement": sign, "estimable": estimable, "n_found": len(found), "n_true": len(truth_pairs), "n_true_positives": len(tp),
            "found": fmt(found), "true": fmt(truth_pairs), "true_positives": fmt(tp),
            "false_positives": fmt(p for p in found if p not in truth_pairs),
            "missed": fmt(p for p in truth_pairs if p not in found)}


def score_dmn_drop(diff: pd.DataFrame, contrast: str = "AD-CN", network: str = "DMN") -> dict[str, Any]:
    """Whether the DMN predictability drop of the generator is found (significant and negative)."""
    row = diff[(diff["contrast"] == contrast) & (diff["network"] == network)]
    if row.empty:
        raise InputError(f"no {network} row for contrast {contrast!r} in the predictability differences.")
    r = row.iloc[0]
    return {"contrast": contrast, "network": network, "estimate": float(r["estimate"]), "q": float(r["q"]),
            "cohens_d": float(r["cohens_d"]), "found": bool(r["significant"] and r["estimate"] < 0)}


def implied_changes(synth_dir: str | Path, atlas: Any, contrast: str = "AD-CN") -> dict[str, np.ndarray]:
    """Generator-implied change of linear predictability and occlusion between two groups.

    Uses each group's mean baseline severity and age and the mean scanner noise of the
    cohort (``ground_truth_recordings.tsv`` and the recordings table of ``synth_dir/eval``),
    and :func:`bi_core.synth.implied_dependency`. Returns ``[K, K]`` matrices
    ``delta_r2`` and ``share`` (group − reference) and ``[K]`` ``r2_full``.
    """
    synth_dir = Path(synth_dir)
    truth = load_ground_truth(synth_dir)
    rec = pd.read_csv(synth_dir / "ground_truth_recordings.tsv", sep="\t")
    ev = Cohort.open(synth_dir / "eval").table
    ev = ev[baseline_rows(ev)].merge(rec[["recording_id", "severity"]], on="recording_id")
    noise = {s["name"]: s["noise_sd"] for s in truth["sites"]}
    ev["noise_sd"] = ev["site"].map(noise)
    grp, ref = contrast.split("-")
    out = {}
    res = {}
    for g in (grp, ref):
        d = ev[ev["diagnosis"] == g]
        if d.empty:
            raise InputError(f"no baseline {g} recordings in {synth_dir / 'eval'}.")
        res[g] = implied_dependency(atlas, float(d["severity"].mean()), float(d["age"].mean()),
                                    float(d["noise_sd"].mean()))
    for k in ("delta_r2", "share", "r2_full"):
        out[k] = res[grp][k] - res[ref][k]
    return out


def agreement_with_implied(diff: pd.DataFrame, implied: np.ndarray, networks: Any, contrast: str, measure: str,
                           value: str = "estimate") -> float:
    """Spearman correlation, over target × source cells, of observed and generator-implied changes."""
    from scipy.stats import spearmanr

    d = diff[(diff["contrast"] == contrast) & (diff["measure"] == measure)]
    M = d.pivot_table(index="target", columns="source", values=value).reindex(index=list(networks),
                                                                             columns=list(networks)).to_numpy(float)
    ok = np.isfinite(M) & np.isfinite(implied)
    return float(spearmanr(M[ok], implied[ok]).statistic) if ok.sum() > 3 else float("nan")
