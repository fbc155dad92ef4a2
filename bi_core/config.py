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


#: Scalar field types a YAML value is checked against (:func:`load_config`), and how messages name them.
_SCALARS: dict[type, str] = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def _scalar(tp: Any, v: Any, where: str) -> Any:
    """``v`` as the scalar field type ``tp`` (int, float, bool, str, optionally ``| None``), else a ConfigError.

    YAML reads ``1e-3`` (no dot) as text: text that parses as the number is taken as it;
    any other mismatch names the field. Fields of other types pass unchanged.
    """
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    kinds = [a for a in args if a is not type(None)]
    if len(kinds) != 1 or kinds[0] not in _SCALARS or (v is None and len(args) > 1):
        return v
    want = kinds[0]
    if isinstance(v, want) and not (want is int and isinstance(v, bool)):
        return v
    if want is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if want in (int, float) and isinstance(v, str):
        try:
            return want(v.strip())
        except ValueError:
            pass
    null = " or null" if len(args) > 1 else ""
    raise ConfigError(f"{where}={v!r} must be {_SCALARS[want]}{null}.")


def config_from_dict(cls: type[T], d: dict[str, Any], where: str = "config", check_types: bool = False) -> T:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclass fields.

    ``check_types``: check (and where the text is a number, convert) the values of the
    scalar fields, as for a config file a user wrote (:func:`load_config`).
    """
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
            v = config_from_dict(sub, v, where=f"{where}.{k}", check_types=check_types)
        elif _is_tuple(tp) and isinstance(v, list):
            v = tuple(v)
        elif check_types:
            v = _scalar(tp, v, f"{where}: {k}")
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
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
    """Read a YAML file into dataclass ``cls``; a value of the wrong type is an error naming its key."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found.")
    try:
        d = yaml.safe_load(read_text(p)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    return config_from_dict(cls, d, where=str(p), check_types=True)


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
