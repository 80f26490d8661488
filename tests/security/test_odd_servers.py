"""Scopes and environs that no compliant server sends never raise into the app.

Each case runs the real shell around a tiny app: the app's response goes out as it
would without auditmw, and the request is either recorded or its failure is recorded
as ``audit.internal_error`` (never silently lost).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from auditmw import AuditConfig, AuditMiddleware, AuditWSGIMiddleware
from auditmw.sinks import MemorySink
from auditmw.testing import make_environ

if TYPE_CHECKING:
    from collections.abc import Iterable

    from auditmw.types import Event, Message

BASE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/orders/1",
    "query_string": b"",
    "headers": [(b"host", b"api.example.com")],
    "scheme": "http",
    "http_version": "1.1",
    "client": ("10.0.0.1", 5000),
    "root_path": "",
}


def _recorded(events: list[Event]) -> list[str]:
    return [e["kind"] for e in events if e["kind"] in ("http", "audit.internal_error")]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"query_string": "a=1"}, id="query-as-str"),
        pytest.param({"query_string": None}, id="query-none"),
        pytest.param({"root_path": None}, id="root-path-none"),
        pytest.param({"path": "/caf\u00e9\ud800"}, id="path-lone-surrogate"),
        pytest.param({"path": None}, id="path-none"),
        pytest.param({"headers": None}, id="headers-none"),
        pytest.param({"headers": [("host", "text")]}, id="headers-as-str"),
        pytest.param({"headers": [(b"a", b"b", b"c")]}, id="header-triple"),
        pytest.param({"method": None}, id="method-none"),
        pytest.param({"client": "somewhere"}, id="client-str"),
        pytest.param({"http_version": None, "scheme": None}, id="version-scheme-none"),
        pytest.param({"route": object(), "path_params": 5}, id="odd-route-params"),
    ],
)
def test_odd_asgi_scope(change: dict[str, Any]) -> None:
    """The app answers unchanged; the request is recorded, or the failure is."""
    sink = MemorySink()
    sent: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = AuditMiddleware(app, AuditConfig(service="odd", sinks=[sink]))
    asyncio.run(middleware({**BASE, **change}, receive, send))
    middleware.auditor.close()
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"ok"
    assert _recorded(sink.events)


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _serve_wsgi(environ: dict[str, Any]) -> tuple[bytes, list[Event]]:
    sink = MemorySink()
    middleware = AuditWSGIMiddleware(_wsgi_app, AuditConfig(service="odd", sinks=[sink]))

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    result = middleware(environ, start_response)
    body = b"".join(result)
    getattr(result, "close", lambda: None)()
    middleware.auditor.close()
    return body, sink.events


def test_wsgi_path_that_is_text_not_latin1() -> None:
    """A PATH_INFO holding real text (not Latin-1 bytes) is recorded as that text."""
    environ = make_environ("/x")
    environ["PATH_INFO"] = "/caf\u20ac\ud800"
    body, events = _serve_wsgi(environ)
    assert body == b"ok"
    (event,) = [e for e in events if e["kind"] == "http"]
    assert event["request"]["path"] == "/caf\u20ac\\ud800"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"REQUEST_METHOD": None}, id="method-none"),
        pytest.param({"QUERY_STRING": 5}, id="query-int"),
        pytest.param({"SERVER_PORT": None, "wsgi.url_scheme": None}, id="port-scheme-none"),
        pytest.param({"CONTENT_LENGTH": "many"}, id="content-length-word"),
        pytest.param({"HTTP_USER_AGENT": "\u20ac\udcff"}, id="header-text"),
    ],
)
def test_odd_wsgi_environ(change: dict[str, Any]) -> None:
    """The app answers unchanged; the request is recorded, or the failure is."""
    environ = {**make_environ("/orders/1"), **change}
    body, events = _serve_wsgi(environ)
    assert body == b"ok"
    assert _recorded(events)
