"""Checkpoints: atomic writes, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and JSON-able values (str, int, float, bool,
lists, dicts) — no pickled classes — so loading it never executes code. Writes go to a
temporary file that is renamed into place: a run killed while saving keeps its previous
checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ._io import atomic_path
from .errors import InputError


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically save ``payload`` (tensors, state dicts and JSON-able metadata)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InputError(f"{path} is not a readable bi_core checkpoint ({type(exc).__name__}: {exc}).") from exc


def rng_state() -> dict[str, Any]:
    """CPU (and CUDA, when present) RNG states as tensors, for exact resumption."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
