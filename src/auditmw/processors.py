"""Event processors: redaction and pseudonymisation (public names).

The code lives in :mod:`auditmw.core.processors`. This module only hands the public
names on, so that ``auditmw.processors`` stays importable as documented; auditmw's own
modules import the homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.core.processors import (
    DETECTORS,
    REDACTED,
    SECRET_HEADERS,
    SECRET_PARAMS,
    Action,
    ClientIPRedactor,
    FieldRule,
    Pseudonymizer,
    Redactor,
    is_luhn,
    is_password_key,
)

__all__ = [
    "Action",
    "ClientIPRedactor",
    "DETECTORS",
    "FieldRule",
    "Pseudonymizer",
    "REDACTED",
    "Redactor",
    "SECRET_HEADERS",
    "SECRET_PARAMS",
    "is_luhn",
    "is_password_key",
]
