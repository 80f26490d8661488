"""``auditmw policy check --connect``: reach each built sink without writing to it.

A file sink's directory must exist (or be creatable) and be writable; a network
sink's server must accept a connection (TCP; PostgreSQL also logs in).  Nothing is
written: the check must never put a stray record into an audit trail.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["reach"]

_TIMEOUT_S: Final = 5.0
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "nats": 4222, "tls": 4222}


def reach(sink: Any) -> str:
    """Return how ``sink`` was reached (``"not checked"`` for local streams).

    Raises:
        OSError: the destination cannot be reached (the message says which).

    .. versionadded:: 0.2.0
    """
    if isinstance(getattr(sink, "path", None), Path):
        return _directory(sink.path, bool(getattr(sink, "_create_dir", False)))
    if isinstance(getattr(sink, "url", None), str):
        return _tcp_url(sink.url)
    if isinstance(getattr(sink, "servers", None), list):
        return ", ".join(_tcp_url(server) for server in sink.servers)
    if isinstance(getattr(sink, "host", None), str):
        if getattr(sink, "transport", "tcp") == "udp":
            return "not checked (UDP has no connection)"
        return _tcp(sink.host, int(sink.port))
    if isinstance(getattr(sink, "_dsn", None), str):
        return _postgres(sink._dsn)
    return "not checked (local)"


def _directory(path: Path, create: bool) -> str:
    directory = path.parent
    while create and not directory.exists() and directory != directory.parent:
        directory = directory.parent  # created on first write: the nearest existing one counts
    if not directory.is_dir():
        raise OSError(f"directory {str(directory)!r} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(f"directory {str(directory)!r} is not writable by this user")
    return f"directory {str(directory)!r} is writable"


def _tcp_url(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    return _tcp(parts.hostname or "localhost", port)


def _tcp(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=_TIMEOUT_S):
            pass
    except OSError as exc:
        raise OSError(f"cannot connect to {host}:{port} ({exc.strerror or exc})") from exc
    return f"connected to {host}:{port}"


def _postgres(dsn: str) -> str:
    from auditmw.core.optional import require

    psycopg = require("psycopg", extra="postgres", feature="the PostgreSQL sink")
    try:
        with psycopg.connect(dsn, connect_timeout=int(_TIMEOUT_S)) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise OSError(f"cannot log in to PostgreSQL ({type(exc).__name__})") from exc
    return "logged in to PostgreSQL"
