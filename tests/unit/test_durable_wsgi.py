"""Durable mode in the WSGI shell under a real wsgiref server: hold the last chunk or fail closed."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from auditmw.config import AuditConfig, DeliveryOptions
from auditmw.exceptions import SinkUnavailableError
from auditmw.sinks.file import FileSink
from auditmw.wsgi import AuditWSGIMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from auditmw.sinks.base import Batch
    from auditmw.types import AnySink


class DownSink:
    """A sink whose store is unreachable."""

    format = "auditmw"

    def emit(self, batch: Batch) -> None:
        raise SinkUnavailableError("store down")

    def close(self) -> None:
        """Nothing to release."""


def one_chunk(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return [b"done"]


def two_chunks(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "8")])
    return [b"part", b"rest"]


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def serve() -> Iterator[Callable[[WSGIApplication, AnySink, float], str]]:
    """Serve an app behind a durable AuditWSGIMiddleware on a wsgiref server in a thread."""
    running: list[tuple[WSGIServer, AuditWSGIMiddleware]] = []

    def start(app: WSGIApplication, sink: AnySink, timeout: float) -> str:
        options = DeliveryOptions(mode="durable", durable_timeout=timeout, max_wait_ms=10_000)
        middleware = AuditWSGIMiddleware(app, AuditConfig("svc", sinks=[sink], delivery=options))
        server = make_server("127.0.0.1", 0, middleware, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append((server, middleware))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, middleware in running:
        server.shutdown()
        server.server_close()
        middleware.auditor.close(5)


class TestDurableWSGI:
    def test_event_is_on_disk_when_the_response_ends(
        self, tmp_path: Path, serve: Callable[[WSGIApplication, AnySink, float], str]
    ) -> None:
        """The response completes only after its event was written and fsync'd."""
        path = tmp_path / "audit.jsonl"
        url = serve(two_chunks, FileSink(path), 5.0)
        response = httpx.get(url + "/orders/1")
        assert response.text == "partrest"
        # max_wait_ms=10 s: only the durable commit can have written it by now.
        assert response.headers["audit-id"] in path.read_text()

    def test_fails_closed_with_503_before_the_body(
        self, serve: Callable[[WSGIApplication, AnySink, float], str]
    ) -> None:
        """Storage down and no body byte sent: the response is replaced by a 503."""
        url = serve(one_chunk, DownSink(), 0.2)
        response = httpx.get(url + "/orders/1")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "audit-id" not in response.headers
        assert response.text == "audit storage unavailable\n"

    def test_aborts_a_body_under_way(
        self, serve: Callable[[WSGIApplication, AnySink, float], str]
    ) -> None:
        """Storage down after the first chunk left: the connection ends before the last one."""
        url = serve(two_chunks, DownSink(), 0.2)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url + "/orders/1")
