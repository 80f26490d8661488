"""The pure-ASGI audit middleware (public names).

The code lives in :mod:`auditmw.http.asgi`. This module only hands the public names on,
so that ``auditmw.asgi`` stays importable as documented; auditmw's own modules import
the homes, never this face.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.http.asgi import (
    AuditMiddleware,
)

__all__ = [
    "AuditMiddleware",
]
