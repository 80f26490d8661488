"""OpenTelemetry log record exporter (OTLP/JSON encoding).

``export`` returns one ``LogRecord`` as OTLP/JSON: 64-bit integers are decimal
strings, trace and span ids are hex strings, attributes are ``KeyValue`` lists.
Attributes follow the HTTP server semantic conventions (``http.request.method``,
``url.path``, ``client.address``, ...) plus ``auditmw.*`` for the audit vocabulary.
The body is a ``stringValue`` holding the canonical JSON of the whole event (the
exact bytes the ``auditmw`` format stores), so nothing is lost and a collector can
still verify the integrity chain; building it costs one ``orjson`` call, where a
nested ``kvlistValue`` cost ~20x canonical serialization (``benchmarks/bench_formats.py``).
:func:`to_otlp_request` wraps records into an ``ExportLogsServiceRequest`` body.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from auditmw.core.canonical import dumps
from auditmw.formats._common import PRODUCT_NAME, PRODUCT_VERSION, http_version, split_host, time_us

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from auditmw.core.types import Event

__all__ = ["any_value", "export", "to_otlp_request", "to_otlp_request_bytes"]

# SeverityNumber: INFO 9, INFO4 12, WARN 13, ERROR 17 (logs data model).
_SEVERITY: Final = {"info": 9, "low": 12, "medium": 13, "high": 17}
_SCOPE: Final = {"name": PRODUCT_NAME, "version": PRODUCT_VERSION}
# (canonical field path, semantic-convention attribute) copied when present.
_SOURCE_ATTRS: Final = (
    ("ip", "client.address"),
    ("port", "client.port"),
    ("user_agent", "user_agent.original"),
)
_REQUEST_ATTRS: Final = (
    ("method", "http.request.method"),
    ("path", "url.path"),
    ("query", "url.query"),
    ("scheme", "url.scheme"),
    ("route", "http.route"),
    ("bytes", "http.request.body.size"),
)
_ACTOR_ATTRS: Final = (
    ("id", "user.id"),
    ("name", "user.name"),
    ("email", "user.email"),
    ("session_id", "session.id"),
    ("type", "auditmw.actor.type"),
    ("tenant_id", "auditmw.actor.tenant_id"),
    ("client_id", "auditmw.actor.client_id"),
)


def any_value(value: Any) -> dict[str, Any]:
    """Return ``value`` (a JSON value without floats) as an OTLP/JSON ``AnyValue``.

    Args:
        value: a string, integer, boolean, ``None``, list or string-keyed dict.

    Raises:
        TypeError: ``value`` holds a type JSON events never contain (e.g. a float).

    .. versionadded:: 0.1.0
    """
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        # OTLP/JSON writes 64-bit integers as decimal strings.
        return {"intValue": str(value)}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [_kv(k, v) for k, v in value.items()]}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if value is None:
        return {}
    raise TypeError(f"cannot encode {type(value).__name__} as an OTLP AnyValue")


def _kv(key: str, value: Any) -> dict[str, Any]:
    # Fast path: most attribute values are strings.
    if type(value) is str:
        return {"key": key, "value": {"stringValue": value}}
    return {"key": key, "value": any_value(value)}


def export(event: Event) -> dict[str, Any]:
    """Return ``event`` as one OTLP/JSON ``LogRecord``.

    Args:
        event: a canonical auditmw event (schema_version "1.0").

    Raises:
        KeyError: a required canonical field is missing.

    .. versionadded:: 0.1.0
    """
    kind = event["kind"]
    event_name = f"auditmw.{kind}"
    attrs: list[dict[str, Any]] = [
        _kv("event.name", event_name),
        _kv("log.record.uid", event["event_id"]),
        _kv("auditmw.action", event["action"]),
        _kv("auditmw.operation", event["operation"]),
        _kv("auditmw.outcome", event["outcome"]),
        _kv("auditmw.resource.type", event["resource"]["type"]),
    ]
    resource = event["resource"]
    if "id" in resource:
        attrs.append(_kv("auditmw.resource.id", resource["id"]))
    if "outcome_reason" in event:
        attrs.append(_kv("auditmw.outcome_reason", event["outcome_reason"]))
        if event["outcome"] in ("error", "failure"):
            attrs.append(_kv("error.type", event["outcome_reason"]))
    _actor(attrs, event["actor"])
    if "source" in event:
        _copy(attrs, event["source"], _SOURCE_ATTRS)
    if "request" in event:
        _request(attrs, event)
    integrity = event.get("integrity")
    if integrity is not None and "seq" in integrity:
        attrs.append(_kv("auditmw.integrity.seq", integrity["seq"]))
    record: dict[str, Any] = {
        "timeUnixNano": str(time_us(event["time"]) * 1000),
        "observedTimeUnixNano": str(time_us(event["end_time"]) * 1000),
        "severityNumber": _SEVERITY.get(event["severity"], 17),
        "severityText": event["severity"],
        "eventName": event_name,
        "body": {"stringValue": dumps(event).decode()},
        "attributes": attrs,
    }
    trace = event.get("trace")
    if trace is not None:
        record["traceId"] = trace["trace_id"]
        record["spanId"] = trace["span_id"]
    return record


def _copy(attrs: list[dict[str, Any]], obj: dict[str, Any], names: Iterable[Any]) -> None:
    for ours, theirs in names:
        if ours in obj:
            attrs.append(_kv(theirs, obj[ours]))


def _actor(attrs: list[dict[str, Any]], actor: dict[str, Any]) -> None:
    if "id" in actor:
        attrs.append(_kv("enduser.id", actor["id"]))
    _copy(attrs, actor, _ACTOR_ATTRS)
    if "roles" in actor:
        attrs.append(_kv("enduser.role", ",".join(actor["roles"])))
        attrs.append(_kv("user.roles", actor["roles"]))
    if "scopes" in actor:
        attrs.append(_kv("enduser.scope", " ".join(actor["scopes"])))
    attrs.append(_kv("auditmw.auth.method", actor["auth"]["method"]))
    attrs.append(_kv("auditmw.auth.verified", actor["auth"]["verified"]))


def _request(attrs: list[dict[str, Any]], event: Event) -> None:
    request = event["request"]
    _copy(attrs, request, _REQUEST_ATTRS)
    host, port = split_host(request["host"])
    attrs.append(_kv("server.address", host))
    if port is not None:
        attrs.append(_kv("server.port", port))
    protocol, _, _version = request["protocol"].partition("/")
    attrs.append(_kv("network.protocol.name", protocol.lower()))
    attrs.append(_kv("network.protocol.version", http_version(request["protocol"])))
    for name, value in request.get("headers", {}).items():
        # Semantic conventions type request/response headers as string arrays.
        attrs.append(_kv(f"http.request.header.{name}", [value]))
    response = event.get("response")
    if response is not None:
        attrs.append(_kv("http.response.status_code", response["status_code"]))
        attrs.append(_kv("http.response.body.size", response["bytes"]))
        for name, value in response.get("headers", {}).items():
            attrs.append(_kv(f"http.response.header.{name}", [value]))


def to_otlp_request(
    events: Iterable[Event], resource_attrs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build an OTLP/JSON ``ExportLogsServiceRequest`` body from canonical events.

    Events are grouped by their ``service``; each group's resource carries
    ``service.name``, ``service.version``, ``service.instance.id`` and
    ``deployment.environment.name``, then ``resource_attrs`` (which win on conflict).

    Args:
        events: canonical auditmw events.
        resource_attrs: extra resource attributes (strings, integers, booleans).

    Raises:
        KeyError: an event lacks a required canonical field.

    .. versionadded:: 0.1.0
    """
    groups: dict[tuple[Any, ...], tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for event in events:
        service = event["service"]
        key = tuple(sorted(service.items()))
        if key not in groups:
            groups[key] = (_resource(service, resource_attrs), [])
        groups[key][1].append(export(event))
    return {
        "resourceLogs": [
            {"resource": resource, "scopeLogs": [{"scope": dict(_SCOPE), "logRecords": records}]}
            for resource, records in groups.values()
        ]
    }


def to_otlp_request_bytes(
    records: Sequence[bytes],
    service: Mapping[str, Any],
    resource_attrs: Mapping[str, Any] | None = None,
) -> bytes:
    """Build an OTLP/JSON ``ExportLogsServiceRequest`` body from stored ``otel`` records.

    The records are spliced in unchanged, so the collector receives exactly the bytes
    the integrity chain covers, without parsing them again.  All records share one
    resource, built from ``service`` as in :func:`to_otlp_request`.

    Args:
        records: ``LogRecord`` JSON documents as stored by a sink whose format is
            ``"otel"`` (``Batch.lines``).
        service: the canonical ``service`` object of the events
            (``batch.events[0]["service"]``).
        resource_attrs: extra resource attributes (strings, integers, booleans).

    Raises:
        KeyError: ``service`` has no ``name``.

    .. versionadded:: 0.1.0
    """
    resource = dumps(_resource(service, resource_attrs))
    head = b'{"resourceLogs":[{"resource":%b,"scopeLogs":[{"scope":%b,"logRecords":['
    return head % (resource, dumps(_SCOPE)) + b",".join(records) + b"]}]}]}"


def _resource(service: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"service.name": service["name"]}
    for ours, theirs in (
        ("version", "service.version"),
        ("instance", "service.instance.id"),
        ("environment", "deployment.environment.name"),
    ):
        if ours in service:
            attrs[theirs] = service[ours]
    if extra:
        attrs.update(extra)
    return {"attributes": [_kv(k, v) for k, v in attrs.items()]}
