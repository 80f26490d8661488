"""Publish events to a NATS JetStream stream (``pip install 'auditmw[nats]'``).

Each event is one message on ``subject`` whose payload is the stored event and
whose ``Nats-Msg-Id`` header is the ``event_id``: JetStream drops a replayed
duplicate inside the stream's duplicate window, so retries and spool replays store
each event once.  :meth:`NATSSink.aemit` returns only when JetStream acknowledged
every message of the batch (stored, and replicated per the stream's settings).
Messages are published in order and their acknowledgements awaited together.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from auditmw.exceptions import SinkError, SinkTimeoutError, SinkUnavailableError
from auditmw.sinks.base import require

if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence

    from auditmw.sinks.base import Batch

__all__ = ["NATSSink"]


async def _quiet(exc: Exception) -> None:
    """nats-py reports connection errors here; the delivery thread records them instead."""


class NATSSink:
    """Publishes each batch to JetStream and waits for the acknowledgements.

    Args:
        servers: NATS server URL(s).
        subject: the subject events are published on.
        stream: the JetStream stream expected to store ``subject``; with
            ``create_stream=True`` it is created when missing.
        create_stream: create ``stream`` (file storage, ``subjects=[subject]``).
        duplicate_window: seconds JetStream remembers message ids (new streams only).
        format: the stored format of the payload.
        timeout: seconds for connecting and for the acknowledgements of a batch.
        tls: a TLS client context.
        user: user name; ``password`` and ``token`` are never logged.
        password: password.
        token: an auth token.
        delivery_mode: overrides ``DeliveryOptions.mode`` for this sink.

    Raises:
        MissingDependencyError: nats-py is not installed.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        subject: str = "audit.events",
        stream: str | None = None,
        create_stream: bool = False,
        duplicate_window: float = 120.0,
        format: str = "auditmw",
        timeout: float = 5.0,
        tls: ssl.SSLContext | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        delivery_mode: Literal["async", "durable"] | None = None,
    ) -> None:
        self._nats = require("nats", extra="nats", feature="NATSSink")
        require("nats.js", extra="nats", feature="NATSSink")
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.subject = subject
        self.stream = stream
        self.format = format
        self.delivery_mode = delivery_mode
        self._create = create_stream
        self._window = duplicate_window
        self._timeout = timeout
        self._auth: dict[str, Any] = {
            "tls": tls,
            "user": user,
            "password": password,
            "token": token,
        }
        self._nc: Any = None
        self._js: Any = None

    async def _connect(self) -> Any:
        if self._nc is not None and self._nc.is_connected:
            return self._js
        await self._disconnect()
        options = {k: v for k, v in self._auth.items() if v is not None}
        self._nc = await self._nats.connect(
            self.servers,
            connect_timeout=max(1, int(self._timeout)),
            allow_reconnect=False,  # the delivery thread retries (and spools) instead
            max_reconnect_attempts=1,  # 0 would mean "forever" in nats-py
            reconnect_time_wait=0.1,
            error_cb=_quiet,
            **options,
        )
        self._js = self._nc.jetstream(timeout=self._timeout)
        if self._create and self.stream:
            await self._ensure_stream()
        return self._js

    async def _ensure_stream(self) -> None:
        errors = self._nats.js.errors
        try:
            await self._js.stream_info(self.stream)
        except errors.NotFoundError:
            await self._js.add_stream(
                name=self.stream, subjects=[self.subject], duplicate_window=self._window
            )

    async def aemit(self, batch: Batch) -> None:
        """Publish the batch; returns once JetStream acknowledged every message.

        Raises:
            SinkUnavailableError: the server cannot be reached or the connection broke.
            SinkTimeoutError: acknowledgements did not arrive within ``timeout``.
            SinkError: JetStream refused the messages (``retryable=False``).
        """
        if not batch:
            return
        errors = self._nats.errors
        try:
            js = await asyncio.wait_for(self._connect(), self._timeout + 1)
        except (TimeoutError, errors.Error, OSError) as exc:
            await self._disconnect()
            raise SinkUnavailableError(f"NATSSink: cannot connect ({type(exc).__name__})") from exc
        try:
            await asyncio.wait_for(self._publish(js, batch), self._timeout)
        except TimeoutError as exc:
            await self._disconnect()
            raise SinkTimeoutError(f"NATSSink: no acknowledgement within {self._timeout}s") from exc
        except self._nats.js.errors.APIError as exc:
            code = getattr(exc, "code", 0) or 0
            if code >= 500 or code == 503:
                raise SinkUnavailableError(f"NATSSink: JetStream error {code}") from exc
            raise SinkError(f"NATSSink: JetStream refused ({code})", retryable=False) from exc
        except (errors.Error, OSError) as exc:
            await self._disconnect()
            raise SinkUnavailableError(f"NATSSink: {type(exc).__name__}") from exc

    async def _publish(self, js: Any, batch: Batch) -> None:
        futures = []
        try:
            for event, line in zip(batch.events, batch.lines, strict=True):
                headers = {"Nats-Msg-Id": event["event_id"]}
                futures.append(await js.publish_async(self.subject, line, headers=headers))
            await self._nc.flush(timeout=max(1, int(self._timeout)))
            await asyncio.gather(*futures)
        finally:
            for future in futures:
                future.cancel()  # frees the publisher's slots if we gave up waiting

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), 2)
            except Exception:  # noqa: S110 - the connection is being discarded anyway
                pass

    async def aclose(self) -> None:
        """Close the connection."""
        await self._disconnect()

    def __repr__(self) -> str:
        return f"NATSSink(subject={self.subject!r}, stream={self.stream!r})"
