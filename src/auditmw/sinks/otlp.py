"""Send events as OpenTelemetry logs over OTLP/HTTP JSON (``pip install 'auditmw[otlp]'``).

The sink's stream is stored in the ``otel`` format (:mod:`auditmw.formats.otel`):
each record is one OTLP/JSON ``LogRecord`` whose attributes follow the
OpenTelemetry HTTP semantic conventions and whose body is the canonical event.
A batch is posted to ``<endpoint>/v1/logs`` with the stored records spliced in
unchanged, so the collector receives exactly the bytes the integrity chain covers.

A ``partialSuccess`` answer with rejected records is recorded as a failure and not
retried (the collector said those records are invalid); 429/5xx are retried.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import orjson

from auditmw.exceptions import SinkError, SinkUnavailableError
from auditmw.formats.otel import to_otlp_request_bytes
from auditmw.sinks.http import _Poster

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping

    from auditmw.sinks.base import Batch

__all__ = ["OTLPSink"]


class OTLPSink:
    """Posts each batch to an OTLP/HTTP logs endpoint as JSON.

    Args:
        endpoint: the collector base URL (``http://collector:4318``); ``/v1/logs`` is added.
        service_name: overrides the ``service.name`` resource attribute (by default
            the events' ``service.name``).
        resource: more resource attributes (``deployment.environment.name`` …).
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

    format = "otel"

    def __init__(
        self,
        endpoint: str,
        *,
        service_name: str | None = None,
        resource: Mapping[str, Any] | None = None,
        auth: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        verify: bool | str | ssl.SSLContext = True,
        cert: str | tuple[str, str] | None = None,
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        self.url = endpoint.rstrip("/") + "/v1/logs"
        self.delivery_mode = delivery_mode
        extra = dict(resource or {})
        if service_name is not None:
            extra["service.name"] = service_name
        self._resource = extra
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
        body = to_otlp_request_bytes(batch.lines, batch.events[0]["service"], self._resource)
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
