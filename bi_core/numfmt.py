"""The book's one number formatter: every number a chapter, a table or a study's conclusions prints.

At the bottom of the package (no ``bi_core`` import) so that the notebooks' helpers
(:mod:`bi_core.nbutils`), the scorecard (:mod:`bi_core.analysis.claims`) and the related
studies' reports (:mod:`bi_core.related.masking_study.report`) format alike.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def format_number(v: Any, digits: int = 3) -> str:
    """``v`` with about ``digits`` significant digits: ``0.898``, ``12.3``, ``1,234``, ``2.7e-24``; integers as is."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}" if abs(int(v)) >= 10_000 else str(int(v))
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return "–" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag < -3:
        return f"{x:.{max(digits - 2, 0)}e}".replace("e-0", "e-")
    if mag >= digits:
        return f"{x:,.0f}"
    return f"{x:.{max(digits - 1 - mag, 0)}f}"
