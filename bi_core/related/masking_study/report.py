"""Statistics and text of the masking-study chapter: summaries over seeds, paired differences, conclusions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ...numfmt import format_number
from ...stats import t_interval
from .config import METRICS, REFERENCE, StudyConfig

# ---------------------------------------------------------------------- summaries
def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD, min, max and count over seeds per (strategy, metric).

    Rows with no seed (references such as FC correlation) are kept with ``n_seeds = 0``.
    """
    rows = []
    for (metric, strat), g in metrics.groupby(["metric", "strategy"], sort=False):
        v = g["value"].astype(float)
        ok = v.dropna()
        label, higher = METRICS.get(metric, (metric, True))
        rows.append({"metric": metric, "strategy": strat, "mean": ok.mean() if len(ok) else np.nan,
                     "sd": ok.std(ddof=1) if len(ok) > 1 else np.nan, "min": ok.min() if len(ok) else np.nan,
                     "max": ok.max() if len(ok) else np.nan, "n_seeds": int(g["seed"].notna().sum()),
                     "n_missing": int(v.isna().sum()), "higher_is_better": higher, "label": label})
    return pd.DataFrame(rows)


def paired_differences(metrics: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Same-seed differences ``strategy − reference`` per metric, with a t-interval over seeds.

    ``reference_better`` counts the seeds in which the reference is better (by the metric's
    direction); NaN pairs are skipped.
    """
    m = metrics[metrics["seed"].notna()]
    wide = m.pivot_table(index=["metric", "seed"], columns="strategy", values="value", aggfunc="mean", dropna=False)
    rows = []
    if reference not in wide.columns:
        return pd.DataFrame(rows)
    for metric in wide.index.get_level_values(0).unique():
        g = wide.loc[metric]
        higher = METRICS.get(metric, (metric, True))[1]
        for s in g.columns:
            if s == reference:
                continue
            d = (g[s] - g[reference]).dropna()
            n = len(d)
            mean, lo, hi = t_interval(d.to_numpy())
            sd = float(d.std(ddof=1)) if n > 1 else np.nan
            ref_better = int(((d < 0) if higher else (d > 0)).sum())
            rows.append({"metric": metric, "strategy": s, "reference": reference, "mean_diff": mean, "sd_diff": sd,
                         "ci_low": lo, "ci_high": hi, "n_seeds": n, "reference_better": ref_better,
                         "higher_is_better": higher})
    return pd.DataFrame(rows)


def conclusions(summary: pd.DataFrame, paired: pd.DataFrame, cfg: StudyConfig | None = None) -> dict[str, Any]:
    """Plain-language conclusions computed from the tables (nothing hard-coded about the outcome).

    A difference to network masking counts as *consistent* when the same-seed difference
    has the same sign in every seed and its 95 % t-interval excludes zero; otherwise it is
    *within the seed spread*.

    Returns
    -------
    dict
        ``per_metric`` (metric → sentence), ``network_better`` / ``network_worse`` /
        ``undecided`` (metric lists), ``verdict`` (one paragraph), ``region_vs_random``
        (seed 002's comparison, ``atlas_region`` against ``random`` masking, on AD vs CN AUC).
    """
    per_metric: dict[str, str] = {}
    better, worse, undecided = [], [], []
    s = summary[summary["n_seeds"] > 0]
    for metric in [m for m in METRICS if m in set(s["metric"])]:
        g = s[s["metric"] == metric].set_index("strategy")
        label, higher = METRICS[metric]
        if g["mean"].notna().sum() == 0:
            per_metric[metric] = f"{label}: no finite values."
            undecided.append(metric)
            continue
        best = g["mean"].idxmax() if higher else g["mean"].idxmin()
        tie = bool(np.nanmax(g["mean"]) - np.nanmin(g["mean"]) < 1e-12)
        pm = paired[paired["metric"] == metric]
        n = int(pm["n_seeds"].max()) if len(pm) else 0

        def consistent(r: pd.Series) -> bool:
            return bool(r["n_seeds"] >= 2 and np.isfinite(r["ci_low"]) and (r["ci_low"] > 0 or r["ci_high"] < 0)
                        and r["reference_better"] in (0, r["n_seeds"]))

        cons = pm[pm.apply(consistent, axis=1)] if len(pm) else pm
        ref_wins = [r["strategy"] for _, r in cons.iterrows() if r["reference_better"] == r["n_seeds"]]
        ref_loses = [r["strategy"] for _, r in cons.iterrows() if r["reference_better"] == 0]
        others = [x for x in g.index if x != REFERENCE]
        if others and len(ref_wins) == len(others):
            better.append(metric)
        elif ref_loses:
            worse.append(metric)
        else:
            undecided.append(metric)
        ref = g.loc[REFERENCE] if REFERENCE in g.index else None
        if tie:
            txt = f"{label}: every strategy gives {format_number(g.loc[best, 'mean'])} (mean over seeds)"
        else:
            txt = (f"{label}: best mean with {best} masking ({format_number(g.loc[best, 'mean'])} ± "
                   f"{format_number(g.loc[best, 'sd'])} SD over {int(g.loc[best, 'n_seeds'])} seeds)")
        if ref is not None and best != REFERENCE and not tie:
            txt += f"; network masking {format_number(ref['mean'])} ± {format_number(ref['sd'])}"
        if ref_wins:
            txt += f"; network masking consistently better than {', '.join(ref_wins)}"
        if ref_loses:
            txt += f"; network masking consistently worse than {', '.join(ref_loses)}"
        if not ref_wins and not ref_loses:
            txt += f"; no difference to network masking is consistent over the {n} seeds"
        per_metric[metric] = txt + "."
    labels = lambda ms: ", ".join(METRICS[m][0] for m in ms) or "none"
    verdict = (f"Network masking (the paper's choice) was consistently better than every other strategy on "
               f"{len(better)} of {len(per_metric)} measures ({labels(better)}), consistently worse than at least one "
               f"alternative on {len(worse)} ({labels(worse)}), and neither on the remaining {len(undecided)} "
               f"({labels(undecided)}): there, at least one alternative is within the seed spread of network "
               "masking (consistent means: the same sign in every seed and a 95 % interval over seeds that "
               "excludes zero).")
    if cfg is not None and cfg.name in ("smoke", "default"):
        verdict += (f" This is the reduced-compute '{cfg.name}' study ({cfg.model_size} model, {cfg.epochs} epochs); "
                    "run the 'full' preset before drawing conclusions about the strategies themselves.")
    # seed 002's comparison: individual atlas regions (atlas_region, not the coarse lobe_group) vs random tokens
    rr = paired[(paired["metric"] == "auc_ad_cn") & (paired["strategy"].isin(["atlas_region", "random"]))]
    region_vs_random = "not computed (needs atlas_region and random masking, and AD/CN labels on the held-out data)."
    sa = summary[(summary["metric"] == "auc_ad_cn")].set_index("strategy")
    if {"atlas_region", "random"} <= set(sa.index) and len(rr) == 2:
        diff = sa.loc["atlas_region", "mean"] - sa.loc["random", "mean"]
        region_vs_random = (f"AD vs CN AUC: atlas-region masking {format_number(sa.loc['atlas_region', 'mean'])} vs random "
                            f"{format_number(sa.loc['random', 'mean'])} (difference {diff:+.3f}; seed SDs "
                            f"{format_number(sa.loc['atlas_region', 'sd'])} and {format_number(sa.loc['random', 'sd'])}).")
    return {"per_metric": per_metric, "network_better": better, "network_worse": worse, "undecided": undecided,
            "verdict": verdict, "region_vs_random": region_vs_random}


# ---------------------------------------------------------------------- reading back
TABLES = ("mask_fractions", "runs", "reconstruction", "predictability", "interactions", "groundtruth",
          "classification", "metrics", "summary", "paired")


def load_study(out: str | Path) -> dict[str, Any]:
    """Read a finished study directory: every table (DataFrames) and ``summary`` (``summary.json``).

    Raises
    ------
    InputError
        When ``out`` holds no finished study (``summary.json`` is written last).
    """
    out = Path(out)
    f = out / "summary.json"
    if not f.is_file():
        raise InputError(f"{out} holds no finished masking study (no summary.json); run "
                         "`bi-core related masking-study --cohorts SYNTH --out DIR`.")
    res: dict[str, Any] = {"json": json.loads(f.read_text())}
    for name in TABLES:
        p = out / f"{name}.tsv"
        if not p.is_file():
            raise InputError(f"{p} is missing; the study directory is incomplete — run the study again.")
        res[name] = pd.read_csv(p, sep="\t", na_values=["n/a"])
    return res
