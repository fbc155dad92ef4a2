"""Dataclass configs that load from and save to YAML.

Every config in bi_core is a dataclass; :func:`load_config` builds one from a YAML file
(unknown keys are an error that lists the accepted ones) and :func:`dump_config` writes
the resolved config next to a run. Preset registries are dicts of frozen config instances,
read with :func:`pick_preset`.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from collections.abc import Mapping
from typing import Any, TypeVar

import yaml

from ._io import read_text, write_text
from .errors import ConfigError

T = TypeVar("T")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass (possibly nested) as plain dict/list values."""
    d = dataclasses.asdict(cfg)
    return _plain(d)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def config_from_dict(cls: type[T], d: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclass fields."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(d).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; accepted keys: {sorted(fields)}.")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in d.items():
        tp = hints.get(k)
        sub = _dataclass_in(tp)
        if sub is not None and isinstance(v, dict):
            v = config_from_dict(sub, v, where=f"{where}.{k}")
        elif _is_tuple(tp) and isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    for a in typing.get_args(tp):
        if dataclasses.is_dataclass(a):
            return a
    return None


def _is_tuple(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is tuple for a in typing.get_args(tp))
    return False


def load_config(cls: type[T], path: str | os.PathLike) -> T:
    """Read a YAML file into dataclass ``cls``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found.")
    try:
        d = yaml.safe_load(read_text(p)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    return config_from_dict(cls, d, where=str(p))


def dump_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write a dataclass config as YAML (atomically)."""
    return write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def pick_preset(presets: Mapping[str, T], name: str, what: str, **overrides: Any) -> T:
    """Preset ``name`` of the registry ``presets`` (frozen dataclasses) with field ``overrides``.

    Overrides that are ``None`` are ignored (unset command-line options); ``what`` names the
    registry in the error for an unknown name.
    """
    if name not in presets:
        raise ConfigError(f"unknown {what} preset {name!r}; choose one of {sorted(presets)}.")
    return dataclasses.replace(presets[name], **{k: v for k, v in overrides.items() if v is not None})
