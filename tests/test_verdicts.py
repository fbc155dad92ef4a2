"""The thresholds the book states in words (bi_core.analysis.verdicts) and where they are used."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bi_core.analysis import verdicts as V

ROOT = Path(__file__).resolve().parents[1]


def test_thresholds_and_helpers():
    assert V.ratio_to_reference(0.475, 0.5) == 0.95 and V.meets_bar(0.95) and not V.meets_bar(0.949)
    assert math.isnan(V.ratio_to_reference(0.3, 0.0)) and not V.meets_bar(math.nan)
    assert V.negligible(0.0049) and not V.negligible(-0.005)
    assert V.proxy_verdict(0.5).startswith("a reasonable") and V.proxy_verdict(0.2).startswith("only a weak")
    assert V.proxy_verdict(0.19).startswith("not a reliable")


def test_no_notebook_types_a_stated_threshold():
    """The chapters import the thresholds; none of them is typed into a notebook's code."""
    typed = ("0.005", "rho >= 0.5", "rho >= 0.2", "QUALITY_BAR = ")
    for f in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for c in json.loads(f.read_text())["cells"]:
            if c["cell_type"] == "code":
                src = "".join(c["source"])
                assert not any(t in src for t in typed), f"{f.name} types a threshold: use bi_core.analysis.verdicts"
