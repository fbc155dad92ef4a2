"""Your cohort, your labels: phenotypes as data, any group column, unlabelled cohorts, test–retest reliability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.ingest import ingest_bids

N_PER_GROUP = 6
TR = 1.5
FRAMES = 140  # two 64-frame windows of the smoke model at its 1.5 s TR


def _write_bids(root: Path, atlas, seed: int = 0, labels: tuple[str, str] = ("control", "ADHD")) -> Path:
    """A BIDS-derivatives tree: 2 groups x N_PER_GROUP subjects, two sessions each.

    Each subject has a stable network profile (its 'trait') that both sessions share, so
    the sessions agree more with each other than with other subjects.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    atlas.to_tsv(root / f"atlas-{atlas.name}_dseg.tsv")
    (root / "task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": TR}))
    ni = atlas.network_index
    rows = []
    for i in range(2 * N_PER_GROUP):
        sub = f"{i + 1:02d}"
        group = labels[i % 2]
        loading = rng.uniform(0.3, 0.9, atlas.n_networks)  # the subject's trait
        rows.append(f"sub-{sub}\t{group}\t{rng.uniform(8, 12):.1f}\t{'MF'[i % 3 % 2]}\t{rng.integers(1, 4)}\t"
                    f"{'right' if i % 4 else 'left'}")
        for ses in ("1", "2"):
            z = rng.standard_normal((FRAMES, atlas.n_networks))
            z = np.cumsum(z, 0) * 0.3 + z  # slow network signals
            x = z[:, ni] * loading[ni] + rng.standard_normal((FRAMES, atlas.n_rois))
            path = root / f"sub-{sub}" / f"ses-{ses}" / "func" / (
                f"sub-{sub}_ses-{ses}_task-rest_atlas-{atlas.name}_timeseries.tsv")
            path.parent.mkdir(parents=True)
            pd.DataFrame(x, columns=list(atlas.roi_names)).to_csv(path, sep="\t", index=False)
    (root / "participants.tsv").write_text("participant_id\tdiagnosis\tage\tsex\tscanner_code\thandedness\n"
                                           + "\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def adhd_cohort(tmp_path_factory, smoke_dir) -> Path:
    """The ADHD/control cohort on the smoke synthetic atlas (so the smoke run reads it)."""
    atlas = Cohort.open(smoke_dir / "eval").atlas
    root = _write_bids(tmp_path_factory.mktemp("bids") / "adhd", atlas)
    out = root.parent / "cohort"
    ingest_bids(root, atlas.name, out, progress=False)
    return out


# ---------------------------------------------------------------------- 1. phenotypes as data
def test_any_labels_and_every_column_are_kept(adhd_cohort, capsys):
    c = Cohort.open(adhd_cohort)
    t = c.table
    assert sorted(t["diagnosis"].unique()) == ["ADHD", "control"]  # 'control' is not renamed CN
    assert t["age"].dtype == float and t["sex"].isin(["M", "F"]).all()
    # extra columns are kept; numeric-looking codes are numbers, words are labels
    assert pd.api.types.is_numeric_dtype(t["scanner_code"]) and set(t["handedness"]) == {"left", "right"}
    assert main(["info", str(adhd_cohort), "--json"]) == 0
    cols = json.loads(capsys.readouterr().out)["phenotype_columns"]
    assert cols["diagnosis"] == {"type": "categorical", "n_missing": 0, "levels": {"ADHD": 6, "control": 6}}
    assert cols["handedness"]["type"] == "categorical" and cols["age"]["type"] == "numeric"
    assert cols["scanner_code"]["type"] == "numeric" and "levels" not in cols["age"]


def test_adni_spellings_are_normalised_only_when_all_are_adni(tmp_path, small_atlas):
    from bi_core.cohort import CohortWriter, normalize_diagnoses

    assert normalize_diagnoses(["HC", "emci", "Dementia", "n/a"])[:3] == ["CN", "MCI", "AD"]
    assert normalize_diagnoses(["control", "ADHD", None])[:2] == ["control", "ADHD"]
    x = np.random.default_rng(0).normal(size=(40, 8))
    with CohortWriter(tmp_path / "c", small_atlas, types={"code": "categorical"}) as w:
        for i, (dx, code) in enumerate([("control", "007"), ("SMC", "012"), ("control", "n/a")]):
            w.add(x, recording_id=f"r{i}", subject=str(i), tr=1.0, diagnosis=dx, code=code)
    c = Cohort.open(tmp_path / "c")
    assert list(c.table["diagnosis"]) == ["control", "SMC", "control"]
    assert list(c.table["code"].fillna("n/a")) == ["007", "012", "n/a"]  # a declared categorical keeps its codes
    assert c.phenotype_columns()["code"]["levels"] == {"007": 1, "012": 1}
