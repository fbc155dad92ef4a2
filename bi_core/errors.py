"""Exceptions that carry a message meant for the user.

The CLI prints a :class:`BiCoreError` as one line (``bi-core: error: ...``) and exits
with status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class BiCoreError(Exception):
    """Base class for errors whose message is written for the user."""


class InputError(BiCoreError, ValueError):
    """Bad input data: names the file or recording and what was expected."""


class ConfigError(BiCoreError, ValueError):
    """An invalid configuration value, with the accepted values or range."""


class CompatibilityError(BiCoreError, ValueError):
    """Artifacts that do not belong together (e.g. a checkpoint and a cohort on another atlas)."""
