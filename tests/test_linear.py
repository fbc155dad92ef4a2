"""Linear references (ridge, lagged ridge, linear occlusion) on the model's windows, and their CLI."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bi_core.analysis import linear as L
from bi_core.analysis.predictability import _Sums
from bi_core.atlas import NetworkAtlas
from bi_core.cli import main
from bi_core.cohort import Cohort, CohortWriter
from bi_core.errors import ConfigError, InputError
from bi_core.windows import TiledWindows

NETS = ["VIS"] * 3 + ["SMN"] * 3 + ["DMN"] * 4      # VIS is the planted target; SMN and DMN its sources
ATLAS = NetworkAtlas("planted", tuple(f"roi{i}" for i in range(len(NETS))), tuple(NETS))
T = 32                                              # window (frames): 640-frame recordings tile exactly
NOISE_SD = 1.0
SIGNAL_VAR = {"SMN": 0.9, "DMN": 0.6}              # variance of VIS explained by each source network (per ROI)


def _planted(path, lag=0, n_subjects=10, n_frames=640, seed=0, subjects=None):
    """VIS ROI r = a_r · (SMN, DMN ROIs at frame t − lag) + N(0, NOISE_SD²); sources white, unit variance.

    Every VIS ROI gets SIGNAL_VAR["SMN"] from the SMN ROIs and SIGNAL_VAR["DMN"] from the DMN
    ROIs, so the best linear predictor's R² (pooled over VIS ROIs) is
    ``sum(SIGNAL_VAR) / (sum(SIGNAL_VAR) + NOISE_SD²)`` = 0.6.
    """
    rng = np.random.default_rng(seed)
    smn, dmn = np.arange(3, 6), np.arange(6, 10)
    A = np.zeros((3, 10))
    for rois, var in ((smn, SIGNAL_VAR["SMN"]), (dmn, SIGNAL_VAR["DMN"])):
        a = rng.standard_normal((3, len(rois)))
        A[:, rois] = a / np.linalg.norm(a, axis=1, keepdims=True) * np.sqrt(var)
    subjects = subjects or [f"s{i:02d}" for i in range(n_subjects)]
    with CohortWriter(path, ATLAS) as w:
        for sub in subjects:
            x = rng.standard_normal((n_frames + lag, 10))
            x[lag:, :3] = x[:n_frames, :] @ A.T + NOISE_SD * rng.standard_normal((n_frames, 3))
            w.add(x[lag:], recording_id=f"sub-{sub}", subject=sub, tr=1.0)
    return Cohort.open(path)


def _theory(*sources: str) -> float:
    total = sum(SIGNAL_VAR.values())
    return sum(SIGNAL_VAR[s] for s in sources) / (total + NOISE_SD**2)


INFO = SimpleNamespace(atlas=ATLAS, window=T, target_tr=None, path="test-run")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _planted(tmp_path_factory.mktemp("planted") / "c")


def test_ridge_recovers_planted_mixing_and_its_occlusion(planted):
    pred, occ = L.linear_predictability_and_occlusion(INFO, planted, "ridge", folds=5)
    assert list(pred.columns) == ["recording_id", "subject", "session", "network", "r2", "pearson_r", "n_windows",
                                  "method"]
    assert len(pred) == 10 * 3 and set(pred["method"]) == {"ridge"} and (pred["n_windows"] == 640 // T).all()
    vis = pred[pred["network"] == "VIS"]
    assert vis["r2"].mean() == pytest.approx(_theory("SMN", "DMN"), abs=0.02)      # 0.6
    # leaving a source out loses exactly what it explained (the sources are independent)
    o = occ[occ["target"] == "VIS"].groupby("source")["linear_occlusion_delta_r2"].mean()
    assert o["SMN"] == pytest.approx(_theory("SMN"), abs=0.02) and o["DMN"] == pytest.approx(_theory("DMN"), abs=0.02)
    assert list(occ.columns) == ["recording_id", "subject", "session", "target", "source",
                                 "linear_occlusion_delta_r2", "n_windows", "method"]
    assert len(occ) == 10 * 3 * 2 and not (occ["target"] == occ["source"]).any()
    # every fit chose its penalty from the grid
    assert {p["alpha"] for p in pred.attrs["penalties"]} <= set(L.PENALTIES)
    assert pred.attrs["fit"]["mode"] == "cross-fit" and pred.attrs["fit"]["folds"] == 5


def test_penalty_sse_is_scikit_learns_ridge_at_every_penalty():
    """The eigendecomposition path gives scikit-learn's Ridge (with intercept) validation error at each penalty."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((300, 40)) + 2.0, rng.standard_normal((300, 6))
    Y += X[:, :6] * 0.5
    Xv, Yv = rng.standard_normal((80, 40)) + 2.0, rng.standard_normal((80, 6))
    fast = L.penalty_sse(X, Y, Xv, Yv, L.PENALTIES)
    slow = [float(((Ridge(alpha=a, solver="cholesky").fit(X, Y).predict(Xv) - Yv) ** 2).sum()) for a in L.PENALTIES]
    np.testing.assert_allclose(fast, slow, rtol=1e-9)
    assert int(np.argmin(fast)) == int(np.argmin(slow))


def test_ridge_fit_is_scikit_learns_ridge():
    """RidgeFit (the references' refits, without scikit-learn's per-call checks) is scikit-learn's
    Ridge(alpha, solver="cholesky"): its coefficients, intercepts and predictions."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((250, 30)) * 3.0 + 1.5, rng.standard_normal((250, 5))
    Y += X[:, :5] * 0.3
    Xv = rng.standard_normal((40, 30))
    for alpha in (L.PENALTIES[0], 1.0, L.PENALTIES[-1]):
        ours, theirs = L.RidgeFit.fit(X, Y, float(alpha)), Ridge(alpha=float(alpha), solver="cholesky").fit(X, Y)
        np.testing.assert_allclose(ours.coef, theirs.coef_, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.intercept, theirs.intercept_, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.predict(Xv), theirs.predict(Xv), rtol=1e-12, atol=1e-12)
    model, alpha = L._fit_ridge(X, Y, np.repeat(np.arange(10), 25))
    assert alpha in L.PENALTIES and isinstance(model, L.RidgeFit)


def test_lagged_ridge_sees_lags_within_the_window(tmp_path):
    cohort = _planted(tmp_path / "lagged", lag=1)
    r = L.linear_predictability(INFO, cohort, "ridge", folds=5)
    lr = L.linear_predictability(INFO, cohort, "lagged-ridge", folds=5)
    same_frame = r.loc[r["network"] == "VIS", "r2"].mean()
    lagged = lr.loc[lr["network"] == "VIS", "r2"].mean()
    assert abs(same_frame) < 0.02          # white sources: the same frame says nothing
    # the first frame of each window has no frame t−1 in the window (its lag-1 copy repeats the
    # edge frame): its error has variance 2·signal + noise instead of noise
    s, n = sum(SIGNAL_VAR.values()), NOISE_SD**2
    expected = 1 - ((T - 1) * n + 2 * s + n) / (T * (s + n))
    assert lagged == pytest.approx(expected, abs=0.015) and expected < _theory("SMN", "DMN") - 0.03


def test_cross_fit_never_fits_on_the_scored_subject(planted, monkeypatch):
    log = []
    fit, add = L._fit_ridge, _Sums.add

    def spy_fit(X, Y, subjects, alpha=None):
        log.append(("fit", set(subjects), alpha is None))
        return fit(X, Y, subjects, alpha)

    subject_of = TiledWindows(planted, T, target_tr=None).recordings_set.table["subject"].to_numpy()

    def spy_add(self, rec, *a, **kw):
        log.append(("score", set(subject_of[rec]), None))
        return add(self, rec, *a, **kw)

    monkeypatch.setattr(L, "_fit_ridge", spy_fit)
    monkeypatch.setattr(_Sums, "add", spy_add)
    pred, _ = L.linear_predictability_and_occlusion(INFO, planted, "lagged-ridge", folds=4)
    fitted, scored = None, set()
    for kind, subjects, full in log:
        if kind == "fit" and full:
            fitted = subjects
        elif kind == "fit":
            assert subjects == fitted            # occlusion refits use the same frames
        else:
            assert fitted and not subjects & fitted, (subjects, fitted)
            assert len(fitted | subjects) == 10  # ... and every other subject is fitted on
            scored |= subjects
    assert scored == set(pred["subject"]) and len(pred) == 10 * 3


def test_fit_cohort_and_training_subjects(planted, tmp_path):
    # another cohort whose subject s03 shares a label with a scored subject: left out of the fit
    other = _planted(tmp_path / "other", seed=1, subjects=["p1", "p2", "p3", "s03"])
    pred = L.linear_predictability(INFO, planted, "ridge", fit_cohort=other)
    assert pred.attrs["fit"]["mode"] == "fit cohort" and pred.attrs["fit"]["left_out_subjects"] == ["s03"]
    assert pred.attrs["fit"]["n_fit_subjects"] == 3 and pred["recording_id"].nunique() == 10
    # the mixing differs between the cohorts (other seed): R² well below the within-cohort 0.6
    assert pred.loc[pred["network"] == "VIS", "r2"].mean() < 0.3
    # training subjects of the same cohort: the rest is scored
    train = [f"s{i:02d}" for i in range(7)]
    pred = L.linear_predictability(INFO, planted, "ridge", train_subjects=train)
    assert sorted(pred["subject"].unique()) == ["s07", "s08", "s09"]
    assert pred.loc[pred["network"] == "VIS", "r2"].mean() == pytest.approx(_theory("SMN", "DMN"), abs=0.03)
    with pytest.raises(InputError, match="training subject.*no window"):
        L.linear_predictability(INFO, planted, "ridge", train_subjects=["s01", "nobody"])
    # more folds than subjects: leave-one-subject-out, said in the fit's description
    loso = L.linear_predictability(INFO, planted, "ridge", folds=11)
    assert loso.attrs["fit"]["folds"] == 10 and loso.attrs["fit"]["note"].startswith("leave-one-subject-out")
    with pytest.raises(InputError, match="needs at least 2 folds, got 1"):
        L.linear_predictability(INFO, planted, "ridge", folds=1)
    with pytest.raises(ConfigError, match="unknown linear reference method 'lasso'"):
        L.linear_predictability(INFO, planted, "lasso")


def test_module_imports_without_torch_or_sklearn():
    code = ("import sys\nimport bi_core.analysis.linear\nimport bi_core.commands.analysis\n"
            "print('torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    from bi_core.commands.analysis import PREDICTABILITY_METHODS

    assert PREDICTABILITY_METHODS == ("model", *L.METHODS)


def test_cli_method_fit_cohort_and_errors(smoke_dir, smoke_run, tmp_path, capsys):
    ev, pre, out = str(smoke_dir / "eval"), str(smoke_dir / "pretrain"), tmp_path / "p.tsv"
    base = ["predictability", "--run", str(smoke_run), "--out", str(out), "--quiet"]
    assert main(base + ["--cohort", ev, "--method", "ridge", "--folds", "3"]) == 0
    df = pd.read_csv(out, sep="\t")
    assert set(df["method"]) == {"ridge"} and df["recording_id"].nunique() == len(Cohort.open(ev))
    assert "(ridge)" in capsys.readouterr().out
    # fit on the pretraining cohort; and on the run's training split, scoring its validation subjects
    assert main(base + ["--cohort", ev, "--method", "lagged-ridge", "--fit-cohort", pre]) == 0
    assert set(pd.read_csv(out, sep="\t")["method"]) == {"lagged-ridge"}
    assert main(base + ["--cohort", pre, "--method", "ridge", "--fit-subjects", "run"]) == 0
    val = json.loads((smoke_run / "summary.json").read_text())["val_subjects"]
    assert sorted(pd.read_csv(out, sep="\t", dtype={"subject": str})["subject"].unique()) == val
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(base + ["--cohort", ev, "--method", "lasso"])
    assert "invalid choice: 'lasso'" in capsys.readouterr().err
    assert main(base + ["--cohort", ev, "--method", "ridge", "--fit-cohort", str(tmp_path / "nope")]) == 2
    assert "nope is not a bi_core cohort" in capsys.readouterr().err
    assert main(base + ["--cohort", ev, "--fit-cohort", pre]) == 2
    assert "use them with --method ridge or lagged-ridge" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n")
    assert main(base + ["--cohort", ev, "--method", "ridge", "--fit-subjects", str(tmp_path / "empty.txt")]) == 2
    assert "lists no subject" in capsys.readouterr().err


def test_cli_scores_the_model_part_by_part(smoke_dir, smoke_linear_run, tmp_path, capsys):
    """``--part`` on the linear-path ablation: the linear path alone and the decoder alone."""
    ev, out = str(smoke_dir / "eval"), tmp_path / "p.tsv"
    base = ["predictability", "--run", str(smoke_linear_run), "--cohort", ev, "--quiet"]
    tables = {}
    for part in ("model", "linear-path", "decoder"):
        assert main(base + ["--part", part, "--out", str(out)]) == 0
        part = part.replace("-", " ")
        tables[part] = pd.read_csv(out, sep="\t")
        assert set(tables[part]["method"]) == {"model" if part == "model" else f"model: {part}"}
    assert "(model: linear path)" in capsys.readouterr().out
    for t in tables.values():
        assert len(t) == len(tables["model"]) and t["r2"].notna().all()
    # different predictions: the parts are not the model (a trained linear path is not zero)
    assert not np.allclose(tables["linear path"]["r2"], tables["model"]["r2"])
    assert main(base + ["--part", "decoder", "--method", "ridge", "--out", str(out)]) == 2
    assert "use it with --method model" in capsys.readouterr().err
