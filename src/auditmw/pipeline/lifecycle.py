"""auditmw's own lifecycle events (``audit.started``, ``audit.sink_failed``, …).

They are built here, from the service and the policy stamp, and chained like any
other event so that the log shows when auditing started, stopped or degraded.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
import time
from typing import Any

from auditmw._version import __version__
from auditmw.core.canonical import format_time, new_event_id
from auditmw.core.event import SCHEMA_VERSION

__all__ = ["lifecycle_event"]


def lifecycle_event(
    service: dict[str, Any],
    stamp: dict[str, str],
    kind: str,
    details: dict[str, Any],
    severity: str,
) -> dict[str, Any]:
    """Build one lifecycle event of ``kind`` with ``details`` (version and pid added)."""
    now = format_time(time.time_ns())
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": new_event_id(),
        "time": now,
        "end_time": now,
        "duration_us": 0,
        "kind": kind,
        "action": kind,
        "operation": "other",
        "outcome": "success",
        "severity": severity,
        "actor": {
            "id": "auditmw",
            "type": "service",
            "auth": {"method": "none", "verified": False},
        },
        "resource": {"type": "audit"},
        "service": service,
        "policy": {**stamp, "rule": "lifecycle"},
        "details": {**details, "version": __version__, "pid": os.getpid()},
    }
