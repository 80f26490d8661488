"""Process-wide capture hooks used by :func:`auditmw.testing.capture_events`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditmw.core.types import Event

#: Lists currently capturing events; every auditor appends each event it records.
active: list[list[Event]] = []
