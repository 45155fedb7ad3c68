"""The ingest readers' errors, re-exported from :mod:`ihs_hpc.errors` (one package hierarchy).

Every reader raises :class:`IngestError` for bad input, with the offending file, day, variable or IHS id
both in the message (so a user sees it at once) and as attributes (so code and tests can check it).
"""
from __future__ import annotations

from ..errors import IngestError, IngestWarning

__all__ = ["IngestError", "IngestWarning"]
