"""Single fields of an event: cleaned, capped and redacted before they are recorded.

Request data is attacker-controlled: header values are decoded without failing,
strings are capped (and the cap recorded in ``truncated``), query parameters that
carry secrets are redacted, bodies and annotations are made serializable, and the
resource type is derived from the route template.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import unquote_plus

from auditmw.core.canonical import list_changes, sanitize, valid_text
from auditmw.core.processors import REDACTED, SECRET_PARAMS

__all__ = [
    "PROTOCOLS",
    "REQUEST_ID_RE",
    "WS_NORMAL",
    "copy_annotations",
    "ascii_key",
    "cap",
    "clean_body",
    "escape",
    "header_text",
    "redact_query",
    "resource_from_route",
    "trace_context",
]

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:/+=\-]{1,128}")
_TRACEPARENT_RE = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_TYPE_RE = re.compile(r"[^a-z0-9_\-]+")
WS_NORMAL = frozenset({None, 1000, 1001, 1005})
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
PROTOCOLS: Final = {v: f"HTTP/{v}" for v in ("1.0", "1.1", "2", "2.0", "3")}


# Make text valid UTF-8: lone surrogates (undecodable bytes) become ``\\udXXX`` escapes.
escape = valid_text


def ascii_key(key: object) -> str:
    """Event keys are ASCII, which keeps sorted orjson output equal to RFC 8785."""
    text = str(key)
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode("ascii")


def header_text(value: str) -> str:
    """Decode a Latin-1 header value as UTF-8 where possible, escaping the rest."""
    if value.isascii():
        return value
    return value.encode("latin-1", "replace").decode("utf-8", "backslashreplace")


def clean_body(body: dict[str, Any], pointer: str, truncated: list[str]) -> dict[str, Any]:
    """Make a parsed body serializable (a client chooses its nesting, numbers, strings)."""
    for part in ("json", "form"):
        if part in body:
            changed: list[str] = []
            body[part] = sanitize(body[part], f"{pointer}/{part}", changed)
            truncated.extend(list_changes(changed, f"{pointer}/{part}"))
    return body


def copy_annotations(labels: dict[str, str], truncated: list[str]) -> dict[str, Any]:
    """Copy the annotations; only unusual ones (not ASCII strings) pay for sanitizing."""
    for key, value in labels.items():
        if not (key.__class__ is str and value.__class__ is str and value.isascii()):
            return sanitize(labels, "/annotations", truncated)  # type: ignore[no-any-return]
    return dict(labels)


def resource_from_route(route: str) -> tuple[str, str | None]:
    """Derive ``(type, id_param)`` from a route template like ``/orders/{order_id}``."""
    segments = [s for s in route.split("/") if s]
    rtype, id_param = "", None
    for i, segment in enumerate(segments):
        if segment.startswith("{"):
            continue
        following = segments[i + 1] if i + 1 < len(segments) else ""
        if following.startswith("{"):
            rtype, id_param = segment, following.strip("{}").split(":", 1)[0]
        elif id_param is None:
            rtype = segment
    clean = _TYPE_RE.sub("_", rtype.lower()).strip("_") if rtype else "root"
    return clean or "root", id_param


def trace_context(traceparent: str | None) -> dict[str, str] | None:
    if not traceparent:
        return None
    match = _TRACEPARENT_RE.fullmatch(traceparent.strip()[:55])
    if match is None:
        return None
    trace_id, span_id = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return {"trace_id": trace_id, "span_id": span_id}


def cap(value: str, limit: int, pointer: str, truncated: list[str]) -> str:
    if len(value) <= limit:
        return value
    truncated.append(pointer)
    return value[:limit]


def redact_query(query: str, redactions: list[str]) -> str:
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, value = part.partition("=")
        key = unquote_plus(name).lower()
        if value and (key in SECRET_PARAMS or _JWT_RE.search(unquote_plus(value))):
            parts[i] = f"{name}{sep}{REDACTED}"
            redactions.append("/request/query/" + key.replace("~", "~0").replace("/", "~1"))
            changed = True
    return "&".join(parts) if changed else query
