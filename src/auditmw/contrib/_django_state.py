"""Settings translation and exchange building shared by the Django middleware and signals.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings

from auditmw.auditor import Auditor
from auditmw.config.options import AuditConfig
from auditmw.contrib._settings import config_from_mapping
from auditmw.core.event import Headers
from auditmw.exceptions import ConfigurationError
from auditmw.http.environ import new_environ_exchange

if TYPE_CHECKING:
    from django.http import HttpRequest

    from auditmw.core.event import Exchange

__all__ = ["current_state", "new_request_exchange"]

_ADAPTER_KEYS = ("enabled", "config", "pseudonym_key", "record_usernames")


class _State:
    """Everything built once from one ``settings.AUDITMW`` value."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        config = options.get("config")
        if not isinstance(config, AuditConfig):
            rest = {k: v for k, v in options.items() if k not in _ADAPTER_KEYS}
            config = config_from_mapping(rest, setting="AUDITMW")
        self.auditor = Auditor(config)
        self.record_usernames = bool(options.get("record_usernames", False))
        self._key = options.get("pseudonym_key")

    def pseudonym(self, username: str) -> str:
        key = self._key
        if key is None:
            secret = str(settings.SECRET_KEY).encode("utf-8")
            key = hmac.new(secret, b"auditmw.pseudonym", hashlib.sha256).digest()
        raw = key.encode("utf-8") if isinstance(key, str) else key
        digest = hmac.new(raw, username.encode("utf-8", "backslashreplace"), hashlib.sha256)
        return "hmac-sha256:" + digest.hexdigest()


_lock = threading.Lock()
_cache: tuple[object, _State | None] | None = None


def _build_state(options: object) -> _State | None:
    if options is None or not isinstance(options, Mapping):
        raise ConfigurationError(
            "settings.AUDITMW must be a dict, e.g. AUDITMW = {'service': 'orders-api'}",
            setting="AUDITMW",
        )
    return _State(options) if options.get("enabled", True) else None


def current_state() -> _State | None:
    """The state for the current ``settings.AUDITMW`` (rebuilt when the setting changes)."""
    global _cache
    options = getattr(settings, "AUDITMW", None)
    cached = _cache
    if cached is not None and cached[0] is options:
        return cached[1]
    with _lock:
        if _cache is None or _cache[0] is not options:
            _cache = (options, _build_state(options))
        return _cache[1]


def new_request_exchange(auditor: Auditor, request: HttpRequest) -> Exchange:
    scope = getattr(request, "scope", None)
    if scope is None:  # WSGI: META is the environ
        meta = request.META
        try:
            return new_environ_exchange(auditor, meta, request)
        except UnicodeError:
            # Django's test client puts the decoded path (any character) in PATH_INFO,
            # where WSGI has Latin-1 text: use the path Django decoded instead.
            fixed = {**meta, "SCRIPT_NAME": "", "PATH_INFO": _path_bytes(request)}
            return new_environ_exchange(auditor, fixed, request)
    query: bytes | str = scope.get("query_string", b"")
    if isinstance(query, bytes):  # Django's AsyncClient passes str; servers pass bytes
        query = query.decode("latin-1")
    return auditor.new_exchange(
        "http",
        scope.get("method", "GET"),
        scope.get("path", ""),
        Headers(scope.get("headers")),
        query=query,
        scheme=scope.get("scheme", "http"),
        http_version=scope.get("http_version", "1.1"),
        client=scope.get("client"),
        request_object=request,
    )


def _path_bytes(request: HttpRequest) -> str:
    """``request.path`` as WSGI text: its UTF-8 bytes, one character per byte."""
    return request.path.encode("utf-8", "backslashreplace").decode("latin-1")
