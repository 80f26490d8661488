"""Durable mode in the ASGI shell: the response end waits for the commit, or fails closed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from auditmw.asgi import AuditMiddleware
from auditmw.config import AuditConfig, DeliveryOptions
from auditmw.exceptions import DeliveryTimeoutError, SinkUnavailableError
from auditmw.sinks.file import FileSink
from auditmw.testing import make_scope

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from auditmw.sinks.base import Batch
    from auditmw.types import AnySink, ASGIApp, Message, Receive, Scope, Send


class DownSink:
    """A sink whose store is unreachable."""

    format = "auditmw"

    def emit(self, batch: Batch) -> None:
        raise SinkUnavailableError("store down")

    def close(self) -> None:
        """Nothing to release."""


async def plain_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


async def streaming_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    await send({"type": "http.response.body", "body": b"end"})


async def call(app: AuditMiddleware, sent: list[Message], on_send: object = None) -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        if callable(on_send):
            on_send(message)
        sent.append(message)

    await app(make_scope("/orders/1"), receive, send)


@pytest.fixture
def middlewares() -> Iterator[list[AuditMiddleware]]:
    made: list[AuditMiddleware] = []
    yield made
    for middleware in made:
        middleware.auditor.close(5)


def durable(
    app: ASGIApp, sink: AnySink, made: list[AuditMiddleware], timeout: float = 5.0
) -> AuditMiddleware:
    options = DeliveryOptions(mode="durable", durable_timeout=timeout, retry_initial=0.05)
    middleware = AuditMiddleware(app, AuditConfig("svc", sinks=[sink], delivery=options))
    made.append(middleware)
    return middleware


class TestDurableASGI:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_final_message_waits_for_the_fsync(
        self, tmp_path: Path, middlewares: list[AuditMiddleware], backend: str
    ) -> None:
        """When the client gets the end of the response, its event is already in the file."""
        path = tmp_path / "audit.jsonl"
        app = durable(plain_app, FileSink(path), middlewares)
        on_disk: list[bool] = []

        def check(message: Message) -> None:
            if message["type"] == "http.response.start":
                audit_id = dict(message["headers"])[b"audit-id"].decode()
                on_disk.append(audit_id in path.read_text())

        sent: list[Message] = []
        anyio.run(call, app, sent, check, backend=backend)
        assert on_disk == [True]
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]

    def test_fails_closed_with_503_before_the_response_started(
        self, middlewares: list[AuditMiddleware]
    ) -> None:
        """Storage down: the client gets 503 with Retry-After instead of an unaudited 200."""
        app = durable(plain_app, DownSink(), middlewares, timeout=0.2)
        sent: list[Message] = []
        anyio.run(call, app, sent)
        assert sent[0]["status"] == 503
        headers = dict(sent[0]["headers"])
        assert headers[b"retry-after"] == b"1"
        assert b"audit-id" not in headers
        assert sent[1]["body"] == b"audit storage unavailable\n"

    def test_aborts_a_started_stream(self, middlewares: list[AuditMiddleware]) -> None:
        """Storage down after the stream started: the last chunk is withheld and the call raises."""
        app = durable(streaming_app, DownSink(), middlewares, timeout=0.2)
        sent: list[Message] = []
        with pytest.raises(DeliveryTimeoutError):
            anyio.run(call, app, sent)
        assert [m.get("body") for m in sent] == [None, b"part"]
        assert sent[0]["status"] == 200
