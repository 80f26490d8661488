"""A light structural check of canonical events against ``schema/event.schema.json``.

``jsonschema`` is not a runtime dependency, so the rules of the published schema are
restated here as tables; the test suite checks that both agree on real and broken
events.  Unknown top-level members are allowed (extensions), as in the JSON Schema.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["KINDS", "validate_event"]

KINDS: Final = frozenset(
    {
        "http", "websocket", "auth", "audit.started", "audit.stopped", "audit.policy_loaded",
        "audit.events_dropped", "audit.sink_failed", "audit.sink_recovered", "audit.checkpoint",
    }
)  # fmt: skip
_ENUMS: Final[dict[str, frozenset[str]]] = {
    "kind": KINDS,
    "operation": frozenset({"create", "read", "update", "delete", "login", "logout", "other"}),
    "outcome": frozenset({"success", "denied", "failure", "error", "aborted"}),
    "severity": frozenset({"info", "low", "medium", "high"}),
    "actor.type": frozenset({"user", "service", "api_key", "anonymous"}),
    "actor.auth.method": frozenset({"jwt", "api_key", "session", "basic", "none"}),
}
_REQUIRED: Final = {
    "": ("schema_version", "event_id", "time", "kind", "action", "operation", "outcome", "actor"),
    "actor": ("id", "type"),
    "actor.auth": ("method", "verified"),
}
_STRINGS: Final = [
    "event_id",
    "action",
    "outcome_reason",
    "actor.id",
    "actor.name",
    "actor.email",
    "actor.tenant_id",
    "actor.client_id",
    "actor.session_id",
    "actor.auth.issuer",
    "actor.auth.key_id",
    "actor.auth.error",
    "source.ip",
    "source.user_agent",
    "source.forwarded_for",
    "request.id",
    "request.method",
    "request.path",
    "request.route",
    "request.query",
    "request.scheme",
    "request.host",
    "request.protocol",
    "resource.type",
    "resource.id",
    "service.name",
    "policy.id",
    "policy.hash",
    "policy.rule",
]
_OBJECTS: Final = [
    "actor",
    "actor.auth",
    "source",
    "request",
    "response",
    "resource",
    "service",
    "trace",
    "policy",
    "annotations",
    "details",
    "websocket",
    "integrity",
    "request.headers",
    "request.body",
    "response.headers",
    "response.body",
    "resource.route_params",
]
_INTS: Final = {  # path: (minimum, maximum)
    "duration_us": (0, None),
    "source.port": (0, 65535),
    "request.bytes": (0, None),
    "response.bytes": (0, None),
    "response.status_code": (100, 599),
}
_STRING_LISTS: Final = ("actor.roles", "actor.scopes", "redactions", "truncated")
_STRING_MAPS: Final = ("request.headers", "response.headers", "resource.route_params")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_ABSENT = object()


def _at(event: Any, path: str) -> Any:
    value = event
    for part in path.split(".") if path else ():
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def validate_event(event: Any) -> list[str]:
    """Return the schema violations of ``event`` (an empty list when it conforms).

    Args:
        event: a parsed canonical event.

    .. versionadded:: 0.1.0
    """
    if not isinstance(event, dict):
        return ["/: not an object"]
    errors: list[str] = []
    for path in _OBJECTS:
        value = _at(event, path)
        if value is not _ABSENT and not isinstance(value, dict):
            errors.append(f"/{path.replace('.', '/')}: not an object")
    for parent, names in _REQUIRED.items():
        holder = _at(event, parent)
        if isinstance(holder, dict):
            errors.extend(
                f"/{(parent + '.' + n).strip('.').replace('.', '/')}: required"
                for n in names
                if n not in holder
            )
    if event.get("schema_version", "1.0") != "1.0":
        errors.append("/schema_version: must be '1.0'")
    errors.extend(_check_values(event))
    return errors


def _check_values(event: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for path in _STRINGS:
        value = _at(event, path)
        if value is not _ABSENT and not isinstance(value, str):
            errors.append(f"/{path.replace('.', '/')}: not a string")
    if isinstance(event.get("action"), str) and not event["action"]:
        errors.append("/action: empty")
    for path, allowed in _ENUMS.items():
        value = _at(event, path)
        if value is not _ABSENT and value not in allowed:
            errors.append(f"/{path.replace('.', '/')}: {value!r} is not one of {sorted(allowed)}")
    for path, (low, high) in _INTS.items():
        value = _at(event, path)
        if value is _ABSENT:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"/{path.replace('.', '/')}: not an integer")
        elif value < low or (high is not None and value > high):
            errors.append(f"/{path.replace('.', '/')}: {value} out of range")
    for path in _STRING_LISTS:
        value = _at(event, path)
        if value is not _ABSENT and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            errors.append(f"/{path.replace('.', '/')}: not a list of strings")
    for path in _STRING_MAPS:
        value = _at(event, path)
        if isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
            errors.append(f"/{path.replace('.', '/')}: values must be strings")
    verified = _at(event, "actor.auth.verified")
    if verified is not _ABSENT and not isinstance(verified, bool):
        errors.append("/actor/auth/verified: not a boolean")
    event_id = event.get("event_id")
    if isinstance(event_id, str) and not _UUID.match(event_id):
        errors.append("/event_id: not a UUID")
    for name in ("time", "end_time"):
        value = event.get(name, _ABSENT)
        if value is not _ABSENT and not (isinstance(value, str) and _TIME.match(value)):
            errors.append(f"/{name}: not an RFC 3339 time")
    return errors
