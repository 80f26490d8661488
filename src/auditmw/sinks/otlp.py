"""Send events as OpenTelemetry logs over OTLP/HTTP JSON (``pip install 'auditmw[otlp]'``).

Each event becomes one log record posted to ``<endpoint>/v1/logs``: the body is
the stored event (the exact bytes the integrity chain covers, as a string) and the
attributes follow the OpenTelemetry HTTP semantic conventions
(``http.request.method``, ``http.route``, ``http.response.status_code``,
``url.path``, ``client.address``, ``user_agent.original``, ``enduser.id``) plus
``audit.*`` keys.  A ``partialSuccess`` answer with rejected records is recorded as
a failure and not retried (the collector said those records are invalid);
429/5xx are retried.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from auditmw import __version__
from auditmw.exceptions import SinkError, SinkUnavailableError
from auditmw.sinks.http import _Poster

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping

    from auditmw.sinks.base import Batch
    from auditmw.types import Event

__all__ = ["OTLPSink"]

_SEVERITY = {"info": (9, "INFO"), "low": (9, "INFO"), "medium": (13, "WARN"), "high": (17, "ERROR")}
# (attribute, path in the canonical event)
_ATTRIBUTES = (
    ("audit.event_id", ("event_id",)),
    ("audit.kind", ("kind",)),
    ("audit.action", ("action",)),
    ("audit.outcome", ("outcome",)),
    ("enduser.id", ("actor", "id")),
    ("http.request.method", ("request", "method")),
    ("http.route", ("request", "route")),
    ("url.path", ("request", "path")),
    ("url.scheme", ("request", "scheme")),
    ("http.response.status_code", ("response", "status_code")),
    ("client.address", ("source", "ip")),
    ("user_agent.original", ("source", "user_agent")),
)


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP/JSON encodes 64-bit integers as strings
    return {"stringValue": str(value)}


def _nanos(stamp: str) -> str:
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return str((int(when.timestamp()) * 1_000_000 + when.microsecond) * 1000)


def _record(event: Event, line: bytes) -> dict[str, Any]:
    attributes = []
    for key, path in _ATTRIBUTES:
        value: Any = event
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            attributes.append({"key": key, "value": _value(value)})
    number, text = _SEVERITY.get(event.get("severity", "info"), (9, "INFO"))
    record: dict[str, Any] = {
        "timeUnixNano": _nanos(event["time"]),
        "observedTimeUnixNano": _nanos(event.get("end_time") or event["time"]),
        "severityNumber": number,
        "severityText": text,
        "eventName": f"auditmw.{event.get('kind', 'http')}",
        "body": {"stringValue": line.decode("utf-8")},
        "attributes": attributes,
    }
    trace = event.get("trace")
    if trace:
        record["traceId"], record["spanId"] = trace["trace_id"], trace["span_id"]
    return record


def _request(batch: Batch, resource: Mapping[str, str]) -> dict[str, Any]:
    # TODO(formats.otel issue): use auditmw.formats.otel.to_otlp_request once it lands.
    attributes = [{"key": k, "value": _value(v)} for k, v in resource.items()]
    records = [_record(e, line) for e, line in zip(batch.events, batch.lines, strict=True)]
    scope = {"name": "auditmw", "version": __version__}
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": attributes},
                "scopeLogs": [{"scope": scope, "logRecords": records}],
            }
        ]
    }


class OTLPSink:
    """Posts each batch to an OTLP/HTTP logs endpoint as JSON.

    Args:
        endpoint: the collector base URL (``http://collector:4318``); ``/v1/logs`` is added.
        service_name: the ``service.name`` resource attribute.
        resource: more resource attributes (``deployment.environment.name`` …).
        format: the stored format of the log body.
        auth: an ``Authorization`` header value; never logged.
        headers: extra request headers.
        timeout: seconds for connect, read and write.
        verify: ``True``, a CA bundle path, or an :class:`ssl.SSLContext`.
        cert: a client certificate for mutual TLS.
        delivery_mode: overrides ``DeliveryOptions.mode`` for this sink.

    Raises:
        MissingDependencyError: httpx is not installed.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        endpoint: str,
        *,
        service_name: str,
        resource: Mapping[str, str] | None = None,
        format: str = "auditmw",
        auth: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        verify: bool | str | ssl.SSLContext = True,
        cert: str | tuple[str, str] | None = None,
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        self.url = endpoint.rstrip("/") + "/v1/logs"
        self.format = format
        self.delivery_mode = delivery_mode
        self._resource = {"service.name": service_name, **(resource or {})}
        all_headers = {**(headers or {}), **({"authorization": auth} if auth else {})}
        self._poster = _Poster("OTLPSink", all_headers, timeout, verify, cert)

    def emit(self, batch: Batch) -> None:
        """Export the batch.

        Raises:
            SinkError: the collector rejected records (``retryable=False``).
            SinkUnavailableError: the collector is unreachable or answered 429/5xx.
        """
        if not batch:
            return
        body = orjson.dumps(_request(batch, self._resource))
        response = self._poster.post(self.url, body, "application/json")
        try:
            answer = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError as exc:
            raise SinkUnavailableError("OTLPSink: unreadable response") from exc
        partial = answer.get("partialSuccess") or {}
        rejected = int(partial.get("rejectedLogRecords") or 0)
        if rejected:
            message = str(partial.get("errorMessage", ""))[:200]
            raise SinkError(
                f"OTLPSink: collector rejected {rejected} records: {message}", retryable=False
            )

    def close(self) -> None:
        """Close the connection pool."""
        self._poster.close()

    def __repr__(self) -> str:
        return f"OTLPSink({self.url!r})"
