"""Canonical JSON, event ids and timestamps (public names).

The code lives in :mod:`auditmw.core.canonical`. This module only hands the public names
on, so that ``auditmw.canonical`` stays importable as documented; auditmw's own modules
import the homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.core.canonical import (
    MAX_DEPTH,
    MAX_KEY,
    MAX_LISTED,
    TRUNCATED,
    dumps,
    format_time,
    list_changes,
    loads,
    new_event_id,
    sanitize,
    valid_text,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_KEY",
    "MAX_LISTED",
    "TRUNCATED",
    "dumps",
    "format_time",
    "list_changes",
    "loads",
    "new_event_id",
    "sanitize",
    "valid_text",
]
