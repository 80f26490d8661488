"""auditmw: audit-ready access logs for ASGI and WSGI applications."""

from __future__ import annotations

__version__ = "0.1.0"
