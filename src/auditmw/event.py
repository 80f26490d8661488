"""The canonical audit event and the records it is built from (public names).

The code lives in :mod:`auditmw.core.event`. This module only hands the public names on,
so that ``auditmw.event`` stays importable as documented; auditmw's own modules import
the homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.core.event import (
    ANONYMOUS,
    LIFECYCLE_KINDS,
    OPERATIONS,
    SCHEMA_VERSION,
    SEVERITIES,
    Actor,
    ActorType,
    AuthInfo,
    AuthMethod,
    Exchange,
    Headers,
    Operation,
    Outcome,
    Severity,
    anonymous,
    is_lifecycle,
    outcome_for_status,
)

__all__ = [
    "ANONYMOUS",
    "Actor",
    "ActorType",
    "AuthInfo",
    "AuthMethod",
    "Exchange",
    "Headers",
    "LIFECYCLE_KINDS",
    "OPERATIONS",
    "Operation",
    "Outcome",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "Severity",
    "anonymous",
    "is_lifecycle",
    "outcome_for_status",
]
