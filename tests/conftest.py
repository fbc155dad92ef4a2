"""Shared fixtures: small cohorts written by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: see bi_core.cli.main


#: The one test module that reads the session's smoke book (:func:`smoke_book`). ``make test`` runs on two workers
#: with ``--dist loadfile`` (pytest-xdist), which sends a module's tests to one worker, so the book is built once.
#: (xdist's ``loadgroup`` marks would allow other modules, but with pytest 9 xdist 3.8 cannot tag their node ids.)
BOOK_TESTS = "test_book.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test outside :data:`BOOK_TESTS` that reads the smoke book: on two workers it would build a second one."""
    stray = [i.nodeid for i in items if "smoke_book" in getattr(i, "fixturenames", ()) and i.path.name != BOOK_TESTS]
    if stray:
        raise pytest.UsageError(f"tests outside tests/{BOOK_TESTS} read the smoke book (move them there, so that "
                                f"`make test` builds it once): {stray}")


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


@pytest.fixture(scope="module")
def shared_kernel(tmp_path_factory: pytest.TempPathFactory):
    """One Python kernel for a module's notebook runs (``run_notebook(..., kernel=shared_kernel)``): a chapter's
    kernel start and imports are seconds before its first line runs. ``run_notebook`` clears the namespace
    before each chapter; the book itself runs every chapter in a new kernel."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    yield km
    km.shutdown_kernel(now=True)


@pytest.fixture(scope="session")
def smoke_book_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's one smoke book lives: its artifacts in ``art/``, its HTML in ``_build/html``.

    Under pytest-xdist it is one directory beside the workers' own (``getbasetemp().parent``, which is new for
    every session), shared by them: :func:`smoke_art` builds its first two steps once for both workers."""
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None
    root = tmp_path_factory.getbasetemp().parent if shared else tmp_path_factory.getbasetemp()
    d = root / "smoke-book"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def smoke_art(smoke_book_dir: Path) -> Path:
    """The smoke book's artifact directory with its first two steps done (``reproduce --steps pretrain``):
    ``synth/`` (the smoke synthetic cohorts, seed 0) and ``runs/pretrain`` (the smoke run), each with its step
    stamp. Every test that needs smoke data or the smoke model reads these, and :func:`smoke_book` builds the
    rest of the book on them (its synth and pretrain steps are up to date), so the session makes them once:
    the first worker to ask builds them under a lock, the other waits and reads them (tests only read them)."""
    import fcntl

    from bi_core.cli import main

    art = smoke_book_dir / "art"
    with open(smoke_book_dir / ".smoke-art.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (art / "runs" / "pretrain" / "step-stamp.json").is_file():
            assert main(["reproduce", "--preset", "smoke", "--out", str(art), "--steps", "pretrain", "--quiet"]) == 0
            # a fresh build runs every step it needs (tests/test_steps.py checks what a rebuild skips)
            skipped = json.loads((art / "timings.json").read_text())["skipped"]
            assert skipped == {"synth": False, "pretrain": False}
    return art


@pytest.fixture(scope="session")
def smoke_book(smoke_art: Path, smoke_book_dir: Path) -> Path:
    """The whole smoke book, built once per session (``reproduce --preset smoke``; minutes): every step,
    notebook and the HTML. Returns the directory holding ``art/`` and ``_build/html``. Tests only read it."""
    from bi_core.cli import main

    assert main(["reproduce", "--preset", "smoke", "--out", str(smoke_art), "--book-out", str(smoke_book_dir),
                 "--quiet"]) == 0
    return smoke_book_dir


@pytest.fixture(scope="session")
def smoke_dir(smoke_art: Path) -> Path:
    """The smoke synthetic cohorts (pretrain, eval, ground truth): the smoke book's ``synth`` step."""
    return smoke_art / "synth"


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
def smoke_run(smoke_art: Path) -> Path:
    """A tiny model pretrained (seconds) on the smoke pretraining cohort: the smoke book's ``pretrain`` step
    (``preset("smoke")``, seed 0, CPU)."""
    return smoke_art / "runs" / "pretrain"


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
