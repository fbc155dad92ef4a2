"""Your cohort, your labels: phenotypes as data, any group column, unlabelled cohorts, test–retest reliability."""

from __future__ import annotations

import json
import re
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


def _write_bids(root: Path, atlas, seed: int = 0, labels: tuple[str, str] | None = ("control", "ADHD")) -> Path:
    """A BIDS-derivatives tree: 2 groups x N_PER_GROUP subjects, two sessions each (no diagnosis if ``labels`` is None).

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
        group = f"{labels[i % 2]}\t" if labels else ""
        loading = rng.uniform(0.3, 0.9, atlas.n_networks)  # the subject's trait
        rows.append(f"sub-{sub}\t{group}{rng.uniform(8, 12):.1f}\t{'MF'[i % 3 % 2]}\t{rng.integers(1, 4)}\t"
                    f"{'right' if i % 4 else 'left'}")
        for ses in ("1", "2"):
            z = rng.standard_normal((FRAMES, atlas.n_networks))
            z = np.cumsum(z, 0) * 0.3 + z  # slow network signals
            x = z[:, ni] * loading[ni] + rng.standard_normal((FRAMES, atlas.n_rois))
            path = root / f"sub-{sub}" / f"ses-{ses}" / "func" / (
                f"sub-{sub}_ses-{ses}_task-rest_atlas-{atlas.name}_timeseries.tsv")
            path.parent.mkdir(parents=True)
            pd.DataFrame(x, columns=list(atlas.roi_names)).to_csv(path, sep="\t", index=False)
    (root / "participants.tsv").write_text(f"participant_id\t{'diagnosis' + chr(9) if labels else ''}age\tsex\t"
                                           "scanner_code\thandedness\n" + "\n".join(rows) + "\n")
    return root


def _ingest(tmp_path_factory, smoke_dir, name: str, **kw) -> Path:
    atlas = Cohort.open(smoke_dir / "eval").atlas  # the smoke synthetic atlas, so the smoke run reads the cohort
    root = _write_bids(tmp_path_factory.mktemp("bids") / name, atlas, **kw)
    out = root.parent / "cohort"
    ingest_bids(root, atlas.name, out, progress=False)
    return out


@pytest.fixture(scope="module")
def adhd_cohort(tmp_path_factory, smoke_dir) -> Path:
    """ADHD/control subjects, two sessions each."""
    return _ingest(tmp_path_factory, smoke_dir, "adhd")


@pytest.fixture(scope="module")
def unlabelled_cohort(tmp_path_factory, smoke_dir) -> Path:
    """The same design without a diagnosis column."""
    return _ingest(tmp_path_factory, smoke_dir, "unlabelled", labels=None)


def _analyze(run: Path, cohort: Path, out: Path, *extra: str) -> int:
    return main(["analyze", "--run", str(run), "--cohort", str(cohort), "--out", str(out), "--folds", "2",
                 "--repeats", "1", "--quiet", *extra])


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


# ---------------------------------------------------------------------- 2. any group column
def test_analyze_adhd_vs_control_end_to_end(adhd_cohort, smoke_run, tmp_path, capsys):
    out = tmp_path / "suite"
    assert _analyze(smoke_run, adhd_cohort, out, "--group-column", "diagnosis", "--reference", "control") == 0
    printed = capsys.readouterr().out
    assert "groups: diagnosis, control < ADHD, reference control" in printed
    gp = pd.read_csv(out / "groupdiff_predictability.tsv", sep="\t")
    assert set(gp["contrast"]) == {"ADHD-control"} and gp["n_group"].eq(N_PER_GROUP).all()
    gi = pd.read_csv(out / "groupdiff_interactions.tsv", sep="\t")
    assert set(gi["contrast"]) == {"ADHD-control"}
    s = pd.read_csv(out / "classification_adhd_control_summary.tsv", sep="\t")
    assert {"BrainInterNet embedding", "FC correlation", "FC tangent"} <= set(s["feature_set"])
    pred = pd.read_csv(out / "classification_adhd_control_predictions.tsv", sep="\t")
    folds = pred.groupby("feature_set").apply(lambda g: tuple(g.sort_values("sample")["fold"]), include_groups=False)
    assert folds.nunique() == 1, "every feature set must use the same folds"
    assert {"p_control", "p_ADHD"} <= set(pred.columns)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groups"] == {"column": "diagnosis", "reference": "control", "order": ["control", "ADHD"],
                                 "contrasts": ["ADHD-control"]}
    assert "longitudinal models" in summary["skipped"]  # two sessions on one day are no follow-up
    assert (out / "marker.tsv").is_file()


def test_groups_resolve_from_the_cohort_levels():
    from bi_core.analysis.groupstats import Groups, resolve_groups

    t = pd.DataFrame({"subject": list("abcdef"), "diagnosis": ["AD", "CN", "MCI", "CN", "AD", np.nan],
                      "arm": ["drug", "placebo", "drug", "placebo", "x", "x"], "age": np.arange(6.0)})
    assert resolve_groups(t) == Groups()  # CN < MCI < AD, reference CN
    assert resolve_groups(t).contrasts == (("AD", "CN"), ("MCI", "CN"))
    g = resolve_groups(t, "arm", "placebo")
    assert g.order == ("placebo", "drug", "x") and g.contrasts == (("x", "placebo"), ("drug", "placebo"))
    assert resolve_groups(t, "arm", order=["placebo", "drug"]).reference == "placebo"
    assert resolve_groups(t.drop(columns="diagnosis")) is None


def test_figures_use_the_cohorts_own_levels():
    import matplotlib.pyplot as plt

    from bi_core.figures import group_colors
    from bi_core.figures import predictability as FP

    rng = np.random.default_rng(0)
    df = pd.DataFrame([{"network": n, "r2": rng.normal(), "group": g} for n in ("VIS", "DMN")
                       for g in ("control", "ADHD") for _ in range(4)])
    ax = FP.by_group(df, ["VIS", "DMN"], column="group", order=["control", "ADHD"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["control", "ADHD"]
    diff = pd.DataFrame([{"network": n, "contrast": "ADHD-control", "estimate": 0.1, "ci_low": 0.0, "ci_high": 0.2,
                          "significant": n == "DMN"} for n in ("VIS", "DMN")])
    ax = FP.effect_sizes(diff, ["VIS", "DMN"])
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"ADHD-control (q < .05)", "ADHD-control (n.s.)"}
    assert group_colors(["CN", "ADHD", "AD"])["CN"] == "#2a9d8f" and len(set(group_colors(list("abc")).values())) == 3
    plt.close("all")


# ---------------------------------------------------------------------- 3. unlabelled cohorts
def test_unlabelled_cohort_gets_the_tables_that_need_no_groups(unlabelled_cohort, smoke_run, tmp_path, capsys):
    out = tmp_path / "suite"
    assert _analyze(smoke_run, unlabelled_cohort, out) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    skipped = [line for line in printed if line.startswith("skipped")]
    assert len(skipped) == 1 and "has no diagnoses" in skipped[0] and "--group-column" in skipped[0]
    for name in ("predictability.tsv", "interactions.tsv", "embeddings.tsv"):
        assert (out / name).is_file(), name
    assert not list(out.glob("groupdiff_*")) and not list(out.glob("classification_*"))


# ---------------------------------------------------------------------- 4. bad input
@pytest.mark.parametrize("extra, message", [
    (["--group-column", "dx"], r"--group-column 'dx' is not a column of cohort .*categorical columns are "
                               r"\[.*'diagnosis'.*'handedness'.*\]"),
    (["--reference", "CN"], r"--reference 'CN' is not a level of column 'diagnosis' .*levels are \['ADHD', 'control'\]"),
    ([], r"column 'diagnosis' of cohort .* has levels \['ADHD', 'control'\]; say which one is the reference with "
         r"--reference LEVEL"),
    (["--order", "control,ADHD,autism"], r"--order control,ADHD,autism: level\(s\) \['autism'\] not in column"),
    (["--group-column", "age"], r"--group-column 'age' is numeric with \d+ distinct values .*analyse it with --target"),
])
def test_bad_group_options_are_one_line_errors(adhd_cohort, smoke_run, tmp_path, capsys, extra, message):
    out = tmp_path / "suite"
    assert _analyze(smoke_run, adhd_cohort, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("bi-core: error:") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not out.exists(), "a refused analysis writes nothing"


def test_a_group_smaller_than_the_folds_skips_its_classification(adhd_cohort, smoke_run, tmp_path, capsys):
    out = tmp_path / "suite"
    assert _analyze(smoke_run, adhd_cohort, out, "--reference", "control", "--folds", "7", "--no-fc") == 0
    printed = capsys.readouterr().out
    assert re.search(r"skipped classification adhd_control \(control vs ADHD\): too few subjects for 7-fold CV: the "
                     r"smallest class has 6 subjects \(\{'control': 6, 'ADHD': 6\}\); lower n_splits \(--folds\)",
                     printed), printed
    assert (out / "groupdiff_predictability.tsv").is_file() and not list(out.glob("classification_*"))
