"""The package's errors: one hierarchy, each kind with the exit code the ``ihs`` command returns for it.

::

    IhsError                      exit 1 (unexpected failure inside a stage)
    ├── ConfigError (ValueError)  exit 2  a run configuration is wrong: unknown key, bad type or value
    │   └── FingerprintMismatch   exit 2  a store was made from other settings or inputs than asked now
    ├── IngestError (ValueError)  exit 2  an input file is missing, unreadable or implausible
    ├── StoreError (RuntimeError) exit 2  a store is missing, unfinished, damaged or not what a stage expects
    ├── IncompleteRunError        exit 3  some tiles failed twice; the rest finished, a rerun redoes only them
    └── RunLockedError            exit 4  another ``ihs`` process holds the run directory's lock

Exit code 0 means every selected stage finished. Messages name the file or store, the variable and
the value concerned, so the user can act without reading a traceback.
"""
from __future__ import annotations

import os

#: Exit codes of the ``ihs`` command (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_LOCKED = 4


class IhsError(Exception):
    """Base of every error ihs_hpc raises on purpose."""

    exit_code = EXIT_FAILED


class ConfigError(IhsError, ValueError):
    """A run configuration names an unknown key or has a value of the wrong type."""

    exit_code = EXIT_BAD_INPUT


class FingerprintMismatch(ConfigError):
    """Existing outputs of a run directory were made from other settings, inputs or code versions.

    ``changes`` maps each store's path to its list of ``(key, old, new)`` differences.
    """

    def __init__(self, message: str, changes: dict | None = None):
        super().__init__(message)
        self.changes = changes or {}


class IngestError(IhsError, ValueError):
    """Bad input to ingest.

    Parameters
    ----------
    message : str
        What is wrong and, where possible, how to fix it.
    path, day, variable, ihs_id : optional
        The file, day (``YYYY-MM-DD``), variable and IHS id concerned; those given are prefixed to the
        message (``"CHAP_PM2.5_D1K_20150101_V4.nc: day 2015-01-01: variable 'PM2.5': ..."``).
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, path=None, day=None, variable=None, ihs_id=None):
        self.path = None if path is None else os.fspath(path)
        self.day = None if day is None else str(day)[:10]
        self.variable = variable
        self.ihs_id = ihs_id
        self.message = message
        prefix = []
        if self.path is not None:
            prefix.append(self.path)
        if self.day is not None:
            prefix.append(f"day {self.day}")
        if variable is not None:
            prefix.append(f"variable {variable!r}")
        if ihs_id is not None:
            prefix.append(f"IHS {ihs_id!r}")
        super().__init__(": ".join(prefix + [message]) if prefix else message)


class StoreError(IhsError, RuntimeError):
    """A store is missing, incomplete, damaged, or does not match what a stage expects."""

    exit_code = EXIT_BAD_INPUT


class IncompleteRunError(IhsError):
    """Tiles that failed twice, each with its error; every other tile finished and is recorded.

    ``failures`` is a list of ``(tile name, error text)``.
    """

    exit_code = EXIT_INCOMPLETE

    def __init__(self, message: str, failures=()):
        super().__init__(message)
        self.failures = list(failures)


class RunLockedError(IhsError):
    """Another process holds the lock of the run directory (``holder`` describes it)."""

    exit_code = EXIT_LOCKED

    def __init__(self, message: str, holder: dict | None = None):
        super().__init__(message)
        self.holder = holder or {}


class IngestWarning(UserWarning):
    """Something in the input was repaired or tolerated (a gap filled with NaN, a unit converted, ...)."""
