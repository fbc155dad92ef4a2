"""Shared fixtures: small cohorts written by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: see bi_core.cli.main


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Derived caches (TR-resampled cohorts, bi_core._io.user_cache_dir) go to a session directory, not ~/.cache."""
    d = tmp_path_factory.mktemp("user-cache")
    os.environ["BI_CORE_CACHE_DIR"] = str(d)     # subprocesses started by the tests inherit it
    return d


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matmuls: one thread is as fast and immune to CPU contention on shared runners."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke synthetic cohorts (pretrain, eval, ground truth), generated once per session."""
    from bi_core.synth import generate

    out = tmp_path_factory.mktemp("synth") / "smoke"
    generate(out, "smoke", seed=0, progress=False)
    return out


@pytest.fixture()
def small_atlas():
    from bi_core.atlas import NetworkAtlas

    nets = ["VIS"] * 3 + ["SMN"] * 2 + ["DMN"] * 3
    names = [f"roi{i}" for i in range(len(nets))]
    regions = ["Occ", "Occ", "Par", "Cen", "Cen", "Fro", "Par", "Tem"]
    return NetworkAtlas("toy", tuple(names), tuple(nets), roi_regions=tuple(regions))


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def smoke_run(smoke_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model pretrained (seconds) on the smoke pretraining cohort."""
    from bi_core.runs import preset
    from bi_core.train import pretrain

    out = tmp_path_factory.mktemp("runs") / "smoke"
    pretrain([smoke_dir / "pretrain"], preset("smoke"), out, device="cpu", progress=False)
    return out


@pytest.fixture(scope="session")
def smoke_linear_run(smoke_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke run of the linear-path ablation (``model.linear_path: true``; chapter 2), for its part-by-part scores."""
    from dataclasses import replace

    from bi_core.runs import preset
    from bi_core.train import pretrain

    cfg = preset("smoke")
    out = tmp_path_factory.mktemp("runs") / "smoke-linear"
    pretrain([smoke_dir / "pretrain"], replace(cfg, model=replace(cfg.model, linear_path=True)), out, device="cpu",
             progress=False)
    return out
