"""The WSGI audit middleware (public names).

The code lives in :mod:`auditmw.http.wsgi`. This module only hands the public names on,
so that ``auditmw.wsgi`` stays importable as documented; auditmw's own modules import
the homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.http.wsgi import (
    ENVIRON_KEY,
    NOT_CLOSED_KEY,
    AuditWSGIMiddleware,
)

__all__ = [
    "AuditWSGIMiddleware",
    "ENVIRON_KEY",
    "NOT_CLOSED_KEY",
]
