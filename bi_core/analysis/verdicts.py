"""Every threshold the book states in words, in one place, and the model-to-reference ratio.

A chapter that says "nothing measurable", "a weak proxy" or "meets the bar" imports the
number behind the words from here, so the prose, the scorecard and the tests agree
(``tests/test_verdicts.py``).
"""

from __future__ import annotations

import math

#: The book's quality bar: the model's held-out R² at least this fraction of the same-frame ridge's on the
#: same subjects, windows and frames (chapters 2 and 7, the presets table).
QUALITY_BAR = 0.95
#: An R² difference below this is "nothing measurable" (a decoder that adds less to its linear path is silent;
#: a longer preset that gains less is "no better").
NEGLIGIBLE_R2 = 0.005
#: Spearman rho between two read-outs across cells: at least GOOD_PROXY_RHO "a reasonable but imperfect proxy",
#: at least WEAK_PROXY_RHO "only a weak proxy", below it "not a reliable proxy" (chapter 4's attention vs occlusion).
GOOD_PROXY_RHO = 0.5
WEAK_PROXY_RHO = 0.2


def ratio_to_reference(model: float, reference: float) -> float:
    """``model / reference`` (e.g. held-out R² of the model over the same-frame ridge's); NaN when the
    reference is not positive, where a ratio has no meaning."""
    return float(model) / float(reference) if reference > 0 and math.isfinite(reference) else math.nan


def meets_bar(ratio: float, bar: float = QUALITY_BAR) -> bool:
    """Whether a ratio to the reference meets the book's quality bar."""
    return bool(math.isfinite(ratio) and ratio >= bar)


def negligible(delta_r2: float) -> bool:
    """Whether an R² difference is below what the book calls measurable (:data:`NEGLIGIBLE_R2`)."""
    return abs(float(delta_r2)) < NEGLIGIBLE_R2


def proxy_verdict(rho: float) -> str:
    """How far one read-out stands in for another, from their Spearman rho across cells."""
    if rho >= GOOD_PROXY_RHO:
        return "a reasonable but imperfect proxy for dependency"
    if rho >= WEAK_PROXY_RHO:
        return "only a weak proxy for dependency"
    return "not a reliable proxy for dependency"
