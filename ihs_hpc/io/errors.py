"""The one error type of the ingest readers: a :class:`ValueError` that names what was wrong where.

Every reader raises :class:`IngestError` for bad input, with the offending file, day, variable or IHS id
both in the message (so a user sees it at once) and as attributes (so code and tests can check it).
"""
from __future__ import annotations

import os


class IngestError(ValueError):
    """Bad input to ingest.

    Parameters
    ----------
    message : str
        What is wrong and, where possible, how to fix it.
    path, day, variable, ihs_id : optional
        The file, day (``YYYY-MM-DD``), variable and IHS id concerned; those given are prefixed to the
        message (``"CHAP_PM2.5_D1K_20150101_V4.nc: day 2015-01-01: variable 'PM2.5': ..."``).
    """

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


class IngestWarning(UserWarning):
    """Something in the input was repaired or tolerated (a gap filled with NaN, a unit converted, ...)."""
