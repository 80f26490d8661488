"""Hostile requests: whatever bytes arrive, the log stays one valid JSON line per event."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditmw import AuditConfig, AuditMiddleware, DeliveryOptions
from auditmw.sinks import MemorySink
from auditmw.testing import make_scope
from auditmw.types import Message, Scope

SECRET = b"Bearer hunter2-secret-token"

header_bytes = st.binary(max_size=300)
header_names = st.sampled_from(
    [
        b"user-agent",
        b"host",
        b"x-request-id",
        b"traceparent",
        b"x-forwarded-for",
        b"forwarded",
        b"referer",
    ]
)


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _run(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return sent


sink = MemorySink()
app = AuditMiddleware(
    _ok,
    AuditConfig(
        service="s",
        sinks=[sink],
        trusted_proxies=["127.0.0.1"],
        record_headers=["referer", "authorization"],
        delivery=DeliveryOptions(max_wait_ms=1),
    ),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    headers=st.lists(st.tuples(header_names, header_bytes), max_size=8),
    path=st.text(max_size=300),
    query=st.binary(max_size=300),
    method=st.text(min_size=1, max_size=40),
)
def test_any_request_gives_one_valid_line(
    headers: list[tuple[bytes, bytes]], path: str, query: bytes, method: str
) -> None:
    """Arbitrary header bytes, paths, queries and methods: one JSON line, no secrets."""
    sink.clear()
    scope = make_scope(path, method=method, client=("127.0.0.1", 1))
    scope["headers"] = [*headers, (b"authorization", SECRET), (b"cookie", b"sid=" + SECRET)]
    scope["query_string"] = query
    messages = _run(app, scope)
    assert messages[0]["status"] == 200
    assert app.auditor.flush(5)
    http = [line for line in sink.lines if b'"kind":"http"' in line]
    assert len(http) == 1
    line = http[0]
    assert b"\n" not in line
    event = orjson.loads(line)
    assert event["response"]["status_code"] == 200
    assert len(event["request"]["path"]) <= 2048
    assert SECRET not in line
    assert b"hunter2" not in line
