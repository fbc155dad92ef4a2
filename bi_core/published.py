"""Published weights: trained runs shipped with the repository, verified against the current code.

Training the book's models to their ceiling takes longer than a book build on 2 CPU cores
(``bench/README.md``), so the repository ships the trained weights of the default book's
pretraining runs under ``weights/<book preset>/<run>/`` (a *bundle*):

``best.pt``            the weights the analyses load (float32, no optimizer state)
``snapshots/``         the learning-curve snapshots, stored in float16 (halves their size;
                       the curve's last point is ``best.pt`` itself, in float32)
``metrics.jsonl``      the run's per-epoch log (train and held-out loss)
``summary.json``       the run's summary, ``config.yaml`` its config
``manifest.json``      how the bundle was made and how to check it: the command, config,
                       seed, config hash (config + atlas + preprocessing + cohort digests),
                       code version, machine, training time, the learning curve, and the
                       held-out loss of ``best.pt`` on its recorded validation windows

A bundle is *valid for the current code* when its config hash equals the hash of the
config and cohorts the step would train on, its files match their recorded SHA-256, and
``best.pt``, loaded and evaluated by the current code on the recorded windows and masks,
reproduces the manifest's held-out loss to :data:`TOLERANCE` (:func:`verify`). A change to
the model, the masking, the windows or the preprocessing that alters what the weights
compute therefore invalidates them, and ``bi-core reproduce`` retrains (and says so in one
line); a change that does not alter it (a comment, a refactor) keeps them.

``bi-core reproduce --retrain`` (``make book RETRAIN=1``) always trains from scratch;
``bi-core reproduce --publish-weights`` (``make weights``) retrains and writes the bundles.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import atomic_dir, refuse_overlap, write_json
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import InputError
from .masking import MaskSampler, TokenLayout
from .provenance import cpu_model
from .runs import load_model, run_config_hash, snapshot_files
from .train import _deterministic, _Dist, evaluate, prepare_data

# In-function imports: the training loop (.train) loads only when a bundle is missing or invalid and a run must be
# trained.

#: The repository's published bundles: ``weights/<book preset>/<run path under OUT/runs>``.
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: Largest |held-out loss difference| for which published weights count as reproduced by the current code.
TOLERANCE = 1e-5
FORMAT = "bi_core-published-weights"
VERSION = 1
_COPIED = ("best.pt", "metrics.jsonl", "summary.json", "config.yaml")


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`: ``ok`` and a one-line ``reason`` a log can print."""

    ok: bool
    reason: str
    loss: float | None = None
    expected: float | None = None


def bundle_path(preset: str, run_name: str, root: str | Path | None = None) -> Path:
    """Where the bundle of run ``run_name`` (e.g. ``pretrain``, ``real-hcp/fold-0``) of book preset ``preset`` lives."""
    return Path(root or WEIGHTS_DIR) / preset / run_name


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=WEIGHTS_DIR.parent, capture_output=True, text=True,
                           timeout=10, check=False)
    except OSError:
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def _evaluate(best: Path, cohort_paths: Sequence[str | Path],
              windows: list[dict[str, Any]] | None = None) -> tuple[float, list[dict[str, Any]]]:
    """Held-out loss of the weights ``best`` with the run's seeded masks, and the windows it was computed on.

    ``windows`` (``recording_id``, ``start``): the recorded windows to score; ``None``: the
    run's own validation windows, as the current code cuts them (what :func:`publish` records).
    """
    model, info = load_model(best)
    cfg = info.train_config
    data = prepare_data(cohort_paths, cfg)
    if data.val is None or not len(data.val_rec):
        raise InputError(f"{best}: the cohorts hold none of the run's held-out subjects; only a run with "
                         "validation subjects can be published or verified.")
    ids = data.val.table["recording_id"].astype(str).to_numpy()
    if windows is None:
        windows = [{"recording_id": ids[r], "start": int(s)} for r, s in zip(data.val_rec, data.val_start)]
    else:
        pos = {rid: i for i, rid in enumerate(ids)}
        missing = sorted({w["recording_id"] for w in windows} - set(pos))
        if missing:
            raise InputError(f"{best}: held-out recording(s) {missing[:3]} are not in the cohorts' validation split.")
        data = replace(data, val_rec=np.array([pos[w["recording_id"]] for w in windows], np.int64),
                       val_start=np.array([w["start"] for w in windows], np.int64))
    sampler = MaskSampler(TokenLayout.from_atlas(data.atlas, cfg.model.n_patches), replace(cfg.mask, per_sample=True))
    dist = _Dist()
    with _deterministic(dist.device):
        loss, _ = evaluate(model, data, sampler, cfg, dist)
    return float(loss), windows


def publish(run: str | Path, cohort_paths: Sequence[str | Path], dest: str | Path, *, command: str,
            preset: str, note: str | None = None) -> Path:
    """Write the bundle of the finished run ``run`` (trained on ``cohort_paths``) to ``dest``.

    The manifest records the held-out loss of ``best.pt`` as the current code computes it on
    the run's validation windows, and checks that it equals the loss the run logged for
    that epoch (to :data:`TOLERANCE`), so a bundle is never written from weights the code
    here cannot reproduce.

    Returns
    -------
    Path
        ``dest``.
    """
    run, dest = Path(run), Path(dest)
    refuse_overlap(dest, {"run": run, "--cohort": cohort_paths}, option="bundle")
    summary = json.loads((run / "summary.json").read_text())
    if summary.get("status") != "finished":
        raise InputError(f"{run} is not a finished run (summary status {summary.get('status')!r}).")
    loss, windows = _evaluate(run / "best.pt", cohort_paths)
    best_ck = load_checkpoint(run / "best.pt", map_location="cpu")
    logged = best_ck.get("val_loss")
    if logged is None or abs(loss - float(logged)) > TOLERANCE:
        raise InputError(f"{run}: best.pt's held-out loss is {loss:.7f} with this code but {logged} in its log; "
                         "the run was trained by other code. Retrain it before publishing.")
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(dest, overwrite=True) as tmp:
        for name in _COPIED:
            shutil.copy2(run / name, tmp / name)
        for _, f in snapshot_files(run):
            (tmp / "snapshots").mkdir(exist_ok=True)
            ck = load_checkpoint(f, map_location="cpu")
            ck["model"] = {k: (v.half() if torch.is_floating_point(v) else v) for k, v in ck["model"].items()}
            ck["published_float16"] = True
            save_checkpoint(tmp / "snapshots" / f.name, ck)
        files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        write_json(tmp / "manifest.json", {
            "format": FORMAT, "version": VERSION, "preset": preset, "run": run.name,
            "command": command, "note": note,
            "train_config": best_ck["train_config"], "seed": best_ck["train_config"]["seed"], "config_hash": summary.get("config_hash"),
            "cohorts": best_ck.get("cohorts"),
            "code": {"bi_core_version": best_ck.get("bi_core_version"), "git_commit": _git_commit(),
                     "sources": summary.get("code")},
            "machine": {"description": f"{cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}",
                        "platform": platform.platform(), "python": sys.version.split()[0],
                        "torch": torch.__version__, "device": summary.get("device")},
            "training_time_s": summary.get("train_time_s"),
            "val_subjects": summary.get("val_subjects"), "train_subjects": summary.get("train_subjects"),
            "learning_curve": [{k: m.get(k) for k in ("epoch", "step", "train_loss", "val_loss", "val_zero_loss")}
                               for m in metrics],
            "held_out": {"val_loss": loss, "logged_val_loss": float(logged), "best_epoch": summary.get("best_epoch"),
                         "n_windows": len(windows), "windows": windows, "tolerance": TOLERANCE},
            "snapshots_float16": True,
            "files": files,
        })
    return dest


def verify(bundle: str | Path, cohort_paths: Sequence[str | Path], cfg: Any) -> Verification:
    """Whether ``bundle`` holds valid weights for training ``cfg`` on ``cohort_paths`` with the current code.

    Valid: same config hash (config, atlas, preprocessing, cohort contents), files as
    recorded, and the held-out loss of ``best.pt`` recomputed now within :data:`TOLERANCE`
    of the manifest's. Never raises for an invalid bundle: ``ok`` is False and ``reason`` says why.
    """
    bundle = Path(bundle)
    mf = bundle / "manifest.json"
    if not mf.is_file():
        return Verification(False, f"no published weights at {bundle}")
    try:
        m = json.loads(mf.read_text())
    except json.JSONDecodeError as exc:
        return Verification(False, f"{mf} is not valid JSON ({exc})")
    if m.get("format") != FORMAT or int(m.get("version", 0)) > VERSION:
        return Verification(False, f"{mf} is not a bundle this bi_core reads")
    want = run_config_hash(cohort_paths, cfg)
    if m.get("config_hash") != want:
        return Verification(False, f"published weights at {bundle} were trained with another config or data "
                                   f"(config hash {m.get('config_hash')} vs {want})")
    for name, digest in m.get("files", {}).items():
        f = bundle / name
        if not f.is_file() or _sha256(f) != digest:
            return Verification(False, f"{f} is missing or differs from its manifest")
    expected = float(m["held_out"]["val_loss"])
    try:
        loss, _ = _evaluate(bundle / "best.pt", cohort_paths, m["held_out"]["windows"])
    except (InputError, KeyError, RuntimeError) as exc:   # e.g. a changed architecture: state_dict mismatch
        return Verification(False, f"the current code cannot load or evaluate {bundle / 'best.pt'} ({exc})".splitlines()[0])
    if not abs(loss - expected) <= TOLERANCE:
        return Verification(False, f"the current code computes held-out loss {loss:.7f} with the published weights "
                                   f"at {bundle}, the manifest {expected:.7f} (tolerance {TOLERANCE:g})",
                            loss, expected)
    return Verification(True, f"published weights {bundle} verified against the current code: held-out loss "
                              f"{loss:.7f} vs manifest {expected:.7f} on {m['held_out']['n_windows']} recorded windows",
                        loss, expected)


def install(bundle: str | Path, out: str | Path, verification: Verification) -> Path:
    """Write the run directory ``out`` from a verified ``bundle`` (whole or not at all).

    ``summary.json`` gains a ``published`` entry (bundle, manifest commit, verified loss), so
    every later reader can tell the run was installed, not trained here.
    """
    bundle, out = Path(bundle), Path(out)
    m = json.loads((bundle / "manifest.json").read_text())
    refuse_overlap(out, {"bundle": bundle})
    with atomic_dir(out, overwrite=True, kind="run") as tmp:
        for name in ("best.pt", "metrics.jsonl", "config.yaml", "manifest.json"):
            shutil.copy2(bundle / name, tmp / name)
        if (bundle / "snapshots").is_dir():     # a run trained without snapshots has none (and git keeps no empty dir)
            shutil.copytree(bundle / "snapshots", tmp / "snapshots")
        s = json.loads((bundle / "summary.json").read_text())
        s["published"] = {"bundle": str(bundle), "git_commit": m.get("code", {}).get("git_commit"),
                          "verified_val_loss": verification.loss, "manifest_val_loss": verification.expected,
                          "snapshots_float16": True}
        write_json(tmp / "summary.json", s)
    return out


def install_or_train(bundle: str | Path, cohort_paths: Sequence[str | Path], cfg: Any, out: str | Path, *,
                     name: str, weights: str = "published", publish_as: tuple[str, str] | None = None,
                     progress: bool = True) -> dict[str, Any]:
    """The run ``out`` of ``cfg`` on ``cohort_paths``: installed from ``bundle`` when valid, else trained here.

    The one path every book step that reads a model takes (chapter 2's ``pretrain`` and
    ``pretrain-real``, chapter 4's ``routing``). ``weights``: ``"published"`` installs a bundle that
    :func:`verify` accepts and otherwise trains, saying why in one line; ``"retrain"`` always trains.
    Training runs on CPU, so the book's numbers do not depend on whether a GPU is present.
    ``publish_as``: ``(book preset, command)`` — write the bundle of a run trained here.
    ``name`` labels the log lines. Returns the run's ``summary.json``.
    """
    from .train import pretrain

    out = Path(out)
    if weights == "published":
        v = verify(bundle, cohort_paths, cfg)
        if v.ok:
            install(bundle, out, v)
            print(f"{name}: {v.reason}", flush=True)
            return json.loads((out / "summary.json").read_text())
        print(f"{name}: {v.reason}; training it instead (`bi-core reproduce --retrain` always trains).", flush=True)
    summary = pretrain(cohort_paths, cfg, out, overwrite=True, device="cpu", progress=progress)
    if publish_as is not None:
        dest = publish(out, cohort_paths, bundle, preset=publish_as[0], command=publish_as[1])
        print(f"{name}: published to {dest}", flush=True)
    return summary

