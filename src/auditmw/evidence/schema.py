"""A light structural check of canonical events against ``schema/event.schema.json``.

``jsonschema`` is not a runtime dependency, so the rules of the published schema are
restated here as a tree of checks; the test suite checks that both agree on real and
broken events.  Unknown members are allowed (extensions), as in the JSON Schema.
The check walks only the members an event has, so it costs a few microseconds.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from auditmw.core.event import LIFECYCLE_KINDS

__all__ = ["KINDS", "TIME", "validate_event"]

#: Every ``kind`` auditmw writes: requests, authentication, its lifecycle, checkpoints.
KINDS: Final = frozenset({"http", "websocket", "auth", "audit.checkpoint"} | LIFECYCLE_KINDS)
TIME: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

#: A check returns an error message, or None when the value is fine.
Checker = Callable[[Any], str | None]


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "not a string"


def _nonempty(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "not a non-empty string"


def _pattern(regex: re.Pattern[str], what: str) -> Checker:
    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and regex.match(value) else f"not {what}"

    return check


def _enum(*allowed: str) -> Checker:
    options = frozenset(allowed)

    def check(value: Any) -> str | None:
        if isinstance(value, str) and value in options:
            return None
        return f"{value!r} is not one of {sorted(options)}"

    return check


def _integer(low: int, high: int | None = None) -> Checker:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "not an integer"
        if value < low or (high is not None and value > high):
            return f"{value} out of range"
        return None

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "not a boolean"


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "not an object"


def _strings(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return None if ok else "not a list of strings"


def _string_map(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "not an object"
    return None if all(isinstance(v, str) for v in value.values()) else "values must be strings"


def _const(expected: str) -> Checker:
    return lambda value: None if value == expected else f"must be {expected!r}"


_S = _string
_SPEC: Final[dict[str, Any]] = {
    "schema_version": _const("1.0"),
    "event_id": _pattern(_UUID, "a UUID"),
    "time": _pattern(TIME, "an RFC 3339 time"),
    "end_time": _pattern(TIME, "an RFC 3339 time"),
    "duration_us": _integer(0),
    "kind": _enum(*KINDS),
    "action": _nonempty,
    "operation": _enum("create", "read", "update", "delete", "login", "logout", "other"),
    "outcome": _enum("success", "denied", "failure", "error", "aborted"),
    "outcome_reason": _S,
    "severity": _enum("info", "low", "medium", "high"),
    "actor": {
        "id": _S, "type": _enum("user", "service", "api_key", "anonymous"), "name": _S,
        "email": _S, "roles": _strings, "scopes": _strings, "tenant_id": _S, "client_id": _S,
        "session_id": _S,
        "auth": {
            "method": _enum("jwt", "api_key", "session", "basic", "none"),
            "verified": _boolean, "issuer": _S, "key_id": _S, "error": _S,
        },
    },
    "source": {"ip": _S, "port": _integer(0, 65535), "user_agent": _S, "forwarded_for": _S},
    "request": {
        "id": _S, "method": _S, "path": _S, "route": _S, "root_path": _S, "query": _S,
        "scheme": _S, "host": _S, "protocol": _S, "bytes": _integer(0), "headers": _string_map,
        "body": _object,
    },
    "response": {
        "status_code": _integer(100, 599), "bytes": _integer(0), "headers": _string_map,
        "body": _object,
    },
    "resource": {"type": _S, "id": _S, "route_params": _string_map},
    "service": {"name": _S, "version": _S, "environment": _S, "instance": _S},
    "trace": {"trace_id": _S, "span_id": _S},
    "policy": {"id": _S, "hash": _S, "rule": _S},
    "redactions": _strings,
    "truncated": _strings,
    "annotations": _object,
    "details": _object,
    "websocket": {
        "close_code": _integer(0), "messages_received": _integer(0), "messages_sent": _integer(0),
    },
    "integrity": {
        "chain_id": _S, "seq": _integer(0), "prev": _S, "hash": _S, "mac": _S, "epoch": _integer(0),
    },
}  # fmt: skip
_REQUIRED: Final = {
    "": ("schema_version", "event_id", "time", "kind", "action", "operation", "outcome", "actor"),
    "/actor": ("id", "type"),
    "/actor/auth": ("method", "verified"),
    "/trace": ("trace_id", "span_id"),
}


def validate_event(event: Any) -> list[str]:
    """Return the schema violations of ``event`` (an empty list when it conforms).

    Args:
        event: a parsed canonical event.

    .. versionadded:: 0.1.0
    """
    if not isinstance(event, dict):
        return ["/: not an object"]
    errors: list[str] = []
    _walk(event, _SPEC, "", errors)
    return errors


def _walk(value: dict[str, Any], spec: dict[str, Any], where: str, errors: list[str]) -> None:
    required = _REQUIRED.get(where)
    if required:
        errors.extend(f"{where}/{name}: required" for name in required if name not in value)
    get = spec.get
    for key, member in value.items():
        check = get(key)
        if check is None:
            continue  # an extension member, or a free-form object's content
        if check.__class__ is dict:
            if isinstance(member, dict):
                _walk(member, check, f"{where}/{key}", errors)
            else:
                errors.append(f"{where}/{key}: not an object")
        else:
            problem = check(member)
            if problem is not None:
                errors.append(f"{where}/{key}: {problem}")
