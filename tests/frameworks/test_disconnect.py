"""A client that goes away is ``aborted``, not the app's ``error``, in every shell.

The disconnect is driven through the real frameworks: an ASGI ``receive`` that
yields ``http.disconnect`` mid-body, a ``send`` that fails once the peer left, a
WSGI input that ends before ``Content-Length`` or fails, and a ``write`` that
breaks.  A genuine application exception is still ``error`` and comes back
unchanged.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask
from flask import request as flask_request
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.serving import make_server

from auditmw import AuditConfig, AuditMiddleware, AuditWSGIMiddleware
from auditmw.contrib.flask import Audit
from auditmw.sinks import MemorySink
from auditmw.testing import make_environ, make_scope
from auditmw.types import Event, Message


class Boom(Exception):
    """The app's own exception."""


def http_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "http"]


def config() -> AuditConfig:
    return AuditConfig(service="upload-api", sinks=[MemorySink()])


class Order(BaseModel):
    qty: int


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/orders")
    async def create(order: Order) -> dict[str, int]:
        return {"qty": order.qty}

    @app.post("/caught")
    async def caught(request: Request) -> Response:
        try:
            await request.body()
        except ClientDisconnect:
            return PlainTextResponse("gone", status_code=400)
        return PlainTextResponse("ok")

    @app.post("/boom")
    async def boom(request: Request) -> None:
        await request.body()
        raise Boom("genuine")

    app.add_middleware(AuditMiddleware, config=config())
    return app


def starlette_app() -> Starlette:
    async def upload(request: Request) -> Response:
        return JSONResponse({"size": len(await request.body())})

    app = Starlette(routes=[Route("/upload", upload, methods=["POST"])])
    app.add_middleware(AuditMiddleware, config=config())
    return app


def run(app: Any, path: str, messages: list[Message], send: Any = None) -> list[Message]:
    """Drive one request: ``receive`` yields ``messages``, then waits forever."""
    sent: list[Message] = []
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.Event().wait()  # pragma: no cover - nothing more is asked for
        raise AssertionError

    async def collect(message: Message) -> None:
        sent.append(message)

    scope = make_scope(path, method="POST", headers={"content-type": "application/json"})
    asyncio.run(app(scope, receive, send or collect))
    return sent


HALF_THEN_GONE: list[Message] = [
    {"type": "http.request", "body": b'{"qty": ', "more_body": True},
    {"type": "http.disconnect"},
]


class TestASGIDisconnect:
    @pytest.mark.parametrize(
        ("make", "path"),
        [
            pytest.param(fastapi_app, "/upload", id="fastapi-request-body"),
            pytest.param(starlette_app, "/upload", id="starlette"),
        ],
    )
    def test_disconnect_mid_body_is_aborted(
        self, make: Callable[[], Any], path: str, audit_events: list[Event]
    ) -> None:
        """``http.disconnect`` while the body is read: aborted, ClientDisconnect re-raised."""
        with pytest.raises(ClientDisconnect):
            run(make(), path, HALF_THEN_GONE)
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["outcome_reason"] == "client_disconnected"
        assert event["severity"] == "low"
        assert event["request"]["bytes"] == len(b'{"qty": ')
        assert event["response"].get("status_code") is None

    def test_disconnect_while_fastapi_parses_model_is_aborted(
        self, audit_events: list[Event]
    ) -> None:
        """FastAPI turns the cut body into its own 4xx answer: still aborted."""
        sent = run(fastapi_app(), "/orders", HALF_THEN_GONE)
        assert 400 <= sent[0]["status"] < 500
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["outcome_reason"] == "client_disconnected"

    def test_disconnect_caught_by_app_is_still_aborted(self, audit_events: list[Event]) -> None:
        """The app catches ClientDisconnect and answers: the client never saw it."""
        sent = run(fastapi_app(), "/caught", HALF_THEN_GONE)
        assert sent[0]["status"] == 400
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["response"]["status_code"] == 400

    def test_failed_send_after_peer_left_is_aborted(self, audit_events: list[Event]) -> None:
        """The server's ``send`` raises OSError (ASGI 2.4): aborted, the error re-raised."""

        async def gone(message: Message) -> None:
            raise OSError("client disconnected")

        body: list[Message] = [{"type": "http.request", "body": b'{"qty": 1}'}]
        with pytest.raises(OSError, match="client disconnected"):
            run(fastapi_app(), "/orders", body, send=gone)
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"

    def test_genuine_exception_is_still_error(self, audit_events: list[Event]) -> None:
        """A complete body and an app exception: error, the exception unchanged."""
        body: list[Message] = [{"type": "http.request", "body": b"{}"}]
        with pytest.raises(Boom, match="genuine"):
            run(fastapi_app(), "/boom", body)
        (event,) = http_events(audit_events)
        assert event["outcome"] == "error"
        assert event["outcome_reason"] == "exception:Boom"


class _ShortInput(io.BytesIO):
    """A server's input stream whose client sent only part of ``Content-Length``."""


class _FailingInput:
    """A server's input stream whose socket broke."""

    def read(self, *args: Any) -> bytes:
        raise ConnectionResetError("peer reset")

    def readline(self, *args: Any) -> bytes:
        raise ConnectionResetError("peer reset")


def upload_environ(stream: Any, length: int) -> dict[str, Any]:
    environ = make_environ("/upload", method="POST", headers={"content-type": "text/plain"})
    environ["wsgi.input"] = stream
    environ["CONTENT_LENGTH"] = str(length)
    return environ


def wsgi_call(app: Any, environ: dict[str, Any]) -> tuple[list[str], bytes]:
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return statuses, body


def flask_app() -> Flask:
    app = Flask(__name__)
    app.config["AUDITMW"] = config()

    @app.post("/upload")
    def upload() -> str:
        return str(len(flask_request.get_data()))

    @app.post("/boom")
    def boom() -> str:
        flask_request.get_data()
        raise Boom("genuine")

    Audit(app)
    return app


class TestWSGIDisconnect:
    def test_short_body_under_flask_is_aborted(self, audit_events: list[Event]) -> None:
        """Input ends before Content-Length: werkzeug answers 400, the event says aborted."""
        statuses, _ = wsgi_call(flask_app(), upload_environ(_ShortInput(b"half"), 100))
        assert statuses[0].startswith("400")
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["outcome_reason"] == "client_disconnected"
        assert event["request"]["bytes"] == 4

    def test_broken_input_in_plain_wsgi_is_aborted(self, audit_events: list[Event]) -> None:
        """The server's input raises: the app's error is re-raised, the event says aborted."""

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            environ["wsgi.input"].read(100)
            start_response("200 OK", [])
            return [b"ok"]

        shell = AuditWSGIMiddleware(app, config())
        with pytest.raises(ConnectionResetError):
            wsgi_call(shell, upload_environ(_FailingInput(), 100))
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"

    def test_broken_pipe_on_write_is_aborted(self, audit_events: list[Event]) -> None:
        """``write()`` raises BrokenPipeError: aborted, the error re-raised unchanged."""

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [])(b"first")
            return []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            def write(data: bytes) -> None:
                raise BrokenPipeError("client gone")

            return write

        shell = AuditWSGIMiddleware(app, config())
        with pytest.raises(BrokenPipeError):
            shell(make_environ("/"), start_response)
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"

    def test_genuine_flask_exception_is_still_error(self, audit_events: list[Event]) -> None:
        """A complete body and a view exception: error with its type."""
        app = flask_app()
        environ = upload_environ(io.BytesIO(b"abcd"), 4)
        environ["PATH_INFO"] = "/boom"
        statuses, _ = wsgi_call(app, environ)
        assert statuses[0].startswith("500")
        (event,) = http_events(audit_events)
        assert event["outcome"] == "error"
        assert event["outcome_reason"] == "exception:Boom"


class TestRealWSGIServer:
    def test_half_upload_to_werkzeug_server_is_aborted(self, audit_events: list[Event]) -> None:
        """A real socket sends half the body to werkzeug's server and ends its upload: aborted.

        The client reads the whole 400 answer, so only the cut upload says the client left.
        """
        server = make_server("127.0.0.1", 0, flask_app(), threaded=False)
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", server.server_port), timeout=60) as sock:
                sock.sendall(
                    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100
                )
                sock.shutdown(socket.SHUT_WR)  # the upload ends here; the client still reads
                reply = b"".join(iter(lambda: sock.recv(65536), b""))
            assert reply.split(b" ", 2)[1] == b"400"  # werkzeug: the body ended early
            thread.join(60)  # a hang guard: handle_request returns once the request is done
            assert not thread.is_alive()
        finally:
            server.server_close()
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["outcome_reason"] == "client_disconnected"
        assert event["request"]["bytes"] == 100
