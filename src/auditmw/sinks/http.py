"""POST batches of events to an HTTP endpoint with httpx (``pip install 'auditmw[http]'``).

Shapes: ``ndjson`` (one event per line), ``json`` (a JSON array), ``elasticsearch``
(the ``_bulk`` API, ``create`` actions with ``_id`` = ``event_id`` so a replayed
event is not stored twice) and ``splunk`` (HTTP Event Collector).  Every shape
embeds the stored bytes of each event unchanged, so the integrity chain verifies
on the receiving side.

Responses 429 and 5xx are retried by the delivery thread (honouring
``Retry-After``); any other 4xx means the receiver refuses the batch, which is
recorded as a failure and not retried.  The ``auth`` value is sent as a header and
never appears in logs, errors or ``repr``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from auditmw.exceptions import (
    ConfigurationError,
    SinkError,
    SinkThrottledError,
    SinkTimeoutError,
    SinkUnavailableError,
)
from auditmw.sinks.base import require

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping

    import httpx

    from auditmw.sinks.base import Batch

__all__ = ["HTTPSink"]

Shape = Literal["ndjson", "json", "elasticsearch", "splunk"]
_CONTENT_TYPES = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "elasticsearch": "application/x-ndjson",
    "splunk": "application/json",
}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _epoch(stamp: str) -> bytes:
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return f"{int(when.timestamp())}.{when.microsecond:06d}".encode()


class _Poster:
    """An httpx client with auditmw's error mapping; shared by the HTTP and OTLP sinks."""

    def __init__(
        self,
        name: str,
        headers: Mapping[str, str],
        timeout: float,
        verify: bool | str | ssl.SSLContext,
        cert: str | tuple[str, str] | None,
    ) -> None:
        self.httpx = require("httpx", extra="http", feature=name)
        self._name = name
        self._options: dict[str, Any] = {
            "headers": dict(headers),
            "timeout": timeout,
            "verify": verify,
            "cert": cert,
        }
        self._client: httpx.Client | None = None

    def post(self, url: str, content: bytes, content_type: str) -> httpx.Response:
        if self._client is None:
            self._client = self.httpx.Client(**self._options)
        try:
            response = self._client.post(
                url, content=content, headers={"content-type": content_type}
            )
        except self.httpx.TimeoutException as exc:
            raise SinkTimeoutError(f"{self._name}: no answer in time") from exc
        except self.httpx.HTTPError as exc:
            raise SinkUnavailableError(f"{self._name}: {type(exc).__name__}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            wait = _retry_after(response.headers.get("retry-after"))
            raise SinkThrottledError(f"{self._name}: HTTP {status}", retry_after=wait)
        if status >= 400:
            raise SinkError(f"{self._name}: HTTP {status} refused the batch", retryable=False)
        return response

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class HTTPSink:
    """Sends each batch as one HTTP POST.

    Args:
        url: the endpoint (for Elasticsearch: ``https://host:9200/_bulk``; for Splunk:
            ``https://host:8088/services/collector/event``).
        shape: ``"ndjson"``, ``"json"``, ``"elasticsearch"`` or ``"splunk"``.
        format: the stored format of each event.
        auth: the ``Authorization`` header value (``"Bearer …"``, ``"ApiKey …"``,
            ``"Splunk <token>"``); never logged.
        headers: extra request headers.
        index: the Elasticsearch index (``elasticsearch`` shape).
        sourcetype: the Splunk sourcetype (``splunk`` shape).
        timeout: seconds for connect, read and write.
        verify: ``True``, a CA bundle path, or an :class:`ssl.SSLContext`.
        cert: a client certificate (path, or ``(cert, key)`` paths) for mutual TLS.
        delivery_mode: overrides ``DeliveryOptions.mode`` for this sink.

    Raises:
        ConfigurationError: the shape is unknown or ``index`` is missing.
        MissingDependencyError: httpx is not installed.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url: str,
        *,
        shape: Shape = "ndjson",
        format: str = "auditmw",
        auth: str | None = None,
        headers: Mapping[str, str] | None = None,
        index: str | None = None,
        sourcetype: str = "auditmw",
        timeout: float = 5.0,
        verify: bool | str | ssl.SSLContext = True,
        cert: str | tuple[str, str] | None = None,
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        encoders: dict[str, Callable[[Batch], bytes]] = {
            "ndjson": self._ndjson,
            "json": self._json,
            "elasticsearch": self._bulk,
            "splunk": self._splunk,
        }
        if shape not in encoders:
            raise ConfigurationError(
                f"HTTPSink shape must be one of {', '.join(encoders)}, got {shape!r}",
                setting="shape",
            )
        if shape == "elasticsearch" and not index:
            raise ConfigurationError(
                "HTTPSink(shape='elasticsearch') needs index=", setting="index"
            )
        self.url = url
        self.shape = shape
        self.format = format
        self.delivery_mode = delivery_mode
        self._index = index
        self._sourcetype = orjson.dumps(sourcetype)
        self._encode = encoders[shape]
        all_headers = {**(headers or {}), **({"authorization": auth} if auth else {})}
        self._poster = _Poster("HTTPSink", all_headers, timeout, verify, cert)

    def emit(self, batch: Batch) -> None:
        """POST the batch.

        Raises:
            SinkThrottledError: 429/5xx (retried, honouring ``Retry-After``).
            SinkError: another 4xx (``retryable=False``) or a refused bulk item.
            SinkUnavailableError, SinkTimeoutError: the endpoint is unreachable or slow.
        """
        if not batch:
            return
        response = self._poster.post(self.url, self._encode(batch), _CONTENT_TYPES[self.shape])
        if self.shape == "elasticsearch":
            self._check_bulk(response)

    def _ndjson(self, batch: Batch) -> bytes:
        return batch.payload()

    def _json(self, batch: Batch) -> bytes:
        return b"[" + b",".join(batch.lines) + b"]"

    def _bulk(self, batch: Batch) -> bytes:
        parts = []
        for event, line in zip(batch.events, batch.lines, strict=True):
            action = {"create": {"_index": self._index, "_id": event["event_id"]}}
            parts += [orjson.dumps(action), line]
        return b"\n".join(parts) + b"\n"

    def _splunk(self, batch: Batch) -> bytes:
        return b"".join(
            b'{"time":%s,"sourcetype":%s,"event":%s}'
            % (_epoch(event["time"]), self._sourcetype, line)
            for event, line in zip(batch.events, batch.lines, strict=True)
        )

    @staticmethod
    def _check_bulk(response: httpx.Response) -> None:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise SinkUnavailableError("HTTPSink: unreadable _bulk response") from exc
        if not body.get("errors"):
            return
        # 409 = this _id exists already: a replayed duplicate, which is what we want.
        statuses = [next(iter(item.values())).get("status", 0) for item in body.get("items", [])]
        failed = [s for s in statuses if s != 409 and s >= 300]
        if any(s == 429 or s >= 500 for s in failed):
            raise SinkThrottledError(f"HTTPSink: {len(failed)} bulk items failed, retrying")
        if failed:
            raise SinkError(f"HTTPSink: {len(failed)} bulk items refused", retryable=False)

    def close(self) -> None:
        """Close the connection pool."""
        self._poster.close()

    def __repr__(self) -> str:
        return f"HTTPSink({self.url!r}, shape={self.shape!r}, format={self.format!r})"
