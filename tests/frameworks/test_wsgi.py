"""The WSGI shell: one event per request, finished when the response iterable is closed."""

from __future__ import annotations

import io
import sys
import threading
import urllib.request
import wsgiref.util
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from auditmw import Policy, annotate
from auditmw.exceptions import ConfigurationError
from auditmw.testing import make_environ
from auditmw.wsgi import ENVIRON_KEY, AuditWSGIMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from auditmw.auditor import Auditor
    from auditmw.types import Event

Call = tuple[str, list[tuple[str, str]], Any]


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", body]


def run(
    app: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]],
    environ: WSGIEnvironment,
    *,
    consume: int | None = None,
) -> tuple[list[Call], bytes]:
    """Act like a WSGI server: call, iterate (all or ``consume`` chunks), close."""
    calls: list[Call] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        calls.append((status, headers, exc_info))
        return lambda data: None

    result = app(environ, start_response)
    chunks: list[bytes] = []
    try:
        for i, chunk in enumerate(result):
            if consume is not None and i >= consume:
                break
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return calls, b"".join(chunks)


def http_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "http"]


class TestConstruction:
    def test_requires_config_or_auditor(self) -> None:
        """Without config or auditor the error names the setting."""
        with pytest.raises(ConfigurationError) as info:
            AuditWSGIMiddleware(hello)
        assert info.value.setting == "config"


class TestRequest:
    def test_records_one_event_with_request_fields(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """Method, path, query, status, byte counts and the Audit-Id header are recorded."""
        app = AuditWSGIMiddleware(hello, auditor=make_auditor())
        environ = make_environ(
            "/orders/7", method="POST", query_string="a=1&token=s3cret", body=b"abc"
        )
        calls, body = run(app, environ)
        (event,) = http_events(audit_events)
        assert body == b"hello abc"
        assert event["request"]["method"] == "POST"
        assert event["request"]["path"] == "/orders/7"
        assert event["request"]["query"] == "a=1&token=[REDACTED]"
        assert event["request"]["bytes"] == 3
        assert event["request"]["host"] == "testserver"
        assert event["request"]["protocol"] == "HTTP/1.1"
        assert event["response"] == {"status_code": 200, "bytes": 9}
        assert event["outcome"] == "success"
        assert event["operation"] == "create"
        assert event["source"] == {"ip": "127.0.0.1", "port": 50000}
        assert ("Audit-Id", event["event_id"]) in calls[0][1]

    def test_audit_id_header_can_be_renamed_or_disabled(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """``audit_id_header`` renames the response header; ``None`` leaves headers alone."""
        renamed = AuditWSGIMiddleware(hello, auditor=make_auditor(audit_id_header="X-Audit"))
        calls, _ = run(renamed, make_environ())
        assert [k for k, _ in calls[0][1]] == ["Content-Type", "X-Audit"]
        off = AuditWSGIMiddleware(hello, auditor=make_auditor(audit_id_header=None))
        calls, _ = run(off, make_environ())
        assert calls[0][1] == [("Content-Type", "text/plain")]
        assert len(http_events(audit_events)) == 2

    def test_headers_come_from_environ(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """HTTP_* keys and CONTENT_TYPE become lower-case dash header names."""
        auditor = make_auditor(record_headers=["content-type", "x-tenant", "authorization"])
        environ = make_environ(
            headers={
                "Content-Type": "text/csv",
                "X-Tenant": "t1",
                "Authorization": "Bearer secret",
                "User-Agent": "probe/1",
            }
        )
        run(AuditWSGIMiddleware(hello, auditor=auditor), environ)
        (event,) = http_events(audit_events)
        assert event["request"]["headers"] == {"content-type": "text/csv", "x-tenant": "t1"}
        assert event["source"]["user_agent"] == "probe/1"
        assert "secret" not in repr(event)

    @pytest.mark.parametrize(
        ("trusted", "expected_ip"),
        [
            pytest.param(["10.0.0.1"], "203.0.113.7", id="trusted-proxy"),
            pytest.param([], "10.0.0.1", id="untrusted-peer"),
        ],
    )
    def test_client_ip_uses_proxy_trust(
        self,
        make_auditor: Callable[..., Auditor],
        audit_events: list[Event],
        trusted: list[str],
        expected_ip: str,
    ) -> None:
        """``X-Forwarded-For`` is believed only from a trusted ``REMOTE_ADDR``."""
        auditor = make_auditor(trusted_proxies=trusted)
        environ = make_environ(headers={"X-Forwarded-For": "203.0.113.7"}, remote_addr="10.0.0.1")
        run(AuditWSGIMiddleware(hello, auditor=auditor), environ)
        (event,) = http_events(audit_events)
        assert event["source"]["ip"] == expected_ip
        assert event["source"]["forwarded_for"] == "203.0.113.7"

    def test_non_utf8_path_is_escaped(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """Raw bytes in PATH_INFO are decoded as UTF-8, undecodable bytes escaped."""
        environ = make_environ("/caf\xc3\xa9/\xff")
        run(AuditWSGIMiddleware(hello, auditor=make_auditor()), environ)
        (event,) = http_events(audit_events)
        assert event["request"]["path"] == "/café/\\xff"

    def test_exchange_is_exposed_to_adapters(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """An inner app can set route and path params through the namespaced environ key."""

        def routed(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            exchange = environ[ENVIRON_KEY]
            exchange.route = "/orders/{order_id}"
            exchange.path_params = {"order_id": "7"}
            start_response("204 No Content", [])
            return []

        run(AuditWSGIMiddleware(routed, auditor=make_auditor()), make_environ("/orders/7"))
        (event,) = http_events(audit_events)
        assert event["request"]["route"] == "/orders/{order_id}"
        assert event["resource"] == {"type": "orders", "id": "7", "route_params": {"order_id": "7"}}

    def test_write_callable_bytes_are_counted(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """Bytes sent through the legacy ``write`` callable count as response bytes."""

        def legacy(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            write = start_response("200 OK", [])
            write(b"12345")
            return [b"67"]

        run(AuditWSGIMiddleware(legacy, auditor=make_auditor()), make_environ())
        (event,) = http_events(audit_events)
        assert event["response"]["bytes"] == 7


class RawInput:
    """A server input stream without ``readinto`` (as PEP 3333 allows)."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._buffer.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._buffer.readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._buffer)


def read_all(stream: Any) -> None:
    stream.read()


def read_lines(stream: Any) -> None:
    stream.readline()
    stream.readlines()


def iterate(stream: Any) -> None:
    for _ in stream:
        pass


def read_into(stream: Any) -> None:
    buffer = bytearray(100)
    stream.readinto(buffer)


class TestRequestBody:
    @pytest.mark.parametrize(
        "reader",
        [
            pytest.param(read_all, id="read"),
            pytest.param(read_lines, id="readline-readlines"),
            pytest.param(iterate, id="iterate"),
            pytest.param(read_into, id="readinto-fallback"),
        ],
    )
    def test_every_way_of_reading_is_counted(
        self,
        make_auditor: Callable[..., Auditor],
        audit_events: list[Event],
        reader: Callable[[Any], None],
    ) -> None:
        """Bytes read through any method of ``wsgi.input`` count as request bytes."""

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            reader(environ["wsgi.input"])
            start_response("204 No Content", [])
            return []

        environ = make_environ(method="POST")
        environ["wsgi.input"] = RawInput(b"line one\nline two\n")
        run(AuditWSGIMiddleware(app, auditor=make_auditor()), environ)
        (event,) = http_events(audit_events)
        assert event["request"]["bytes"] == 18

    def test_other_input_attributes_pass_through(
        self, make_auditor: Callable[..., Auditor]
    ) -> None:
        """Server-specific attributes of ``wsgi.input`` stay reachable."""
        seen: list[object] = []

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            seen.append(environ["wsgi.input"].getvalue())
            start_response("200 OK", [])
            return []

        run(AuditWSGIMiddleware(app, auditor=make_auditor()), make_environ(body=b"xyz"))
        assert seen == [b"xyz"]


class TestBodies:
    def test_bodies_captured_at_request_response_level(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """Bodies are copied as the app reads and the server pulls; the app sees them whole."""
        seen: list[bytes] = []

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
            seen.append(environ["wsgi.input"].read())
            start_response("200 OK", [("Content-Type", "application/json")])
            yield b'{"ok": '
            yield b"true}"

        auditor = make_auditor(policy=Policy({"default_level": "request_response"}))
        environ = make_environ(
            method="POST", body=b'{"password": "hunter2", "qty": 2}',
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        _, body = run(AuditWSGIMiddleware(app, auditor=auditor), environ)
        (event,) = http_events(audit_events)
        assert seen == [b'{"password": "hunter2", "qty": 2}']
        assert body == b'{"ok": true}'
        assert event["request"]["body"]["json"]["qty"] == 2
        assert "hunter2" not in repr(event)
        assert event["response"]["body"]["json"] == {"ok": True}

    def test_metadata_level_captures_nothing(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """At the default level no body is recorded."""
        environ = make_environ(method="POST", body=b"abc")
        run(AuditWSGIMiddleware(hello, auditor=make_auditor()), environ)
        (event,) = http_events(audit_events)
        assert "body" not in event["request"]
        assert "body" not in event["response"]


class TestStreaming:
    def test_event_is_finished_on_close_not_on_start_response(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """Nothing is recorded before the last chunk was pulled; then the stream is whole."""
        steps: list[str] = []

        def stream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
            start_response("200 OK", [])
            for i in range(3):
                steps.append(f"chunk{i}")
                yield b"x" * 10
            annotate(chunks="3")

        app = AuditWSGIMiddleware(stream, auditor=make_auditor())
        result = iter(app(make_environ(), lambda s, h, e=None: lambda d: None))
        assert [next(result) for _ in range(3)] == [b"x" * 10] * 3
        assert http_events(audit_events) == []
        assert list(result) == []
        result.close()  # type: ignore[attr-defined]
        (event,) = http_events(audit_events)
        assert event["response"]["bytes"] == 30
        assert event["outcome"] == "success"
        assert event["annotations"] == {"chunks": "3"}

    def test_generator_closed_early_is_aborted(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """A client gone mid-stream (iterable closed before exhaustion) records ``aborted``."""
        closed: list[bool] = []

        def stream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
            start_response("200 OK", [])
            try:
                while True:
                    yield b"tick"
            finally:
                closed.append(True)

        run(AuditWSGIMiddleware(stream, auditor=make_auditor()), make_environ(), consume=2)
        (event,) = http_events(audit_events)
        assert closed == [True]
        assert event["outcome"] == "aborted"
        assert event["response"]["bytes"] == 12  # the third chunk was pulled, then dropped

    def test_file_wrapper_object_is_returned_unchanged(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event], tmp_path: Path
    ) -> None:
        """The server's own ``wsgi.file_wrapper`` object reaches the server (sendfile stays)."""
        data = tmp_path / "report.bin"
        data.write_bytes(b"z" * 5000)
        files: list[Any] = []

        def send(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            handle = data.open("rb")
            files.append(handle)
            wrapper: Iterable[bytes] = environ["wsgi.file_wrapper"](handle, 1024)
            return wrapper

        environ = make_environ()
        environ["wsgi.file_wrapper"] = wsgiref.util.FileWrapper
        app = AuditWSGIMiddleware(send, auditor=make_auditor())
        result = app(environ, lambda s, h, e=None: lambda d: None)
        assert type(result) is wsgiref.util.FileWrapper
        assert http_events(audit_events) == []
        assert b"".join(result) == b"z" * 5000
        result.close()
        assert files[0].closed
        (event,) = http_events(audit_events)
        assert event["response"] == {"status_code": 200, "bytes": 5000}


class TestExceptions:
    def test_exception_from_app_call_is_recorded_and_reraised(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """The very exception object propagates; the event says ``exception:ValueError``."""
        boom = ValueError("secret detail")

        def failing(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            raise boom

        with pytest.raises(ValueError, match="secret detail") as info:
            run(AuditWSGIMiddleware(failing, auditor=make_auditor()), make_environ())
        assert info.value is boom
        (event,) = http_events(audit_events)
        assert event["outcome"] == "error"
        assert event["outcome_reason"] == "exception:ValueError"
        assert event["response"]["status_code"] == 500
        assert "secret detail" not in repr(event)

    def test_exception_while_iterating_is_recorded_once(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """An error mid-stream is recorded once, re-raised, and close() adds nothing."""

        def stream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
            start_response("200 OK", [])
            yield b"ok"
            raise KeyError("gone")

        with pytest.raises(KeyError):
            run(AuditWSGIMiddleware(stream, auditor=make_auditor()), make_environ())
        (event,) = http_events(audit_events)
        assert event["outcome_reason"] == "exception:KeyError"
        assert event["response"]["status_code"] == 200
        assert event["response"]["bytes"] == 2

    def test_base_exception_is_recorded_as_aborted(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """A worker being stopped mid-request records ``aborted`` and still propagates."""

        def stopped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            raise SystemExit(1)

        with pytest.raises(SystemExit):
            run(AuditWSGIMiddleware(stopped, auditor=make_auditor()), make_environ())
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"

    def test_start_response_recalled_with_exc_info(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """An error page sent with ``exc_info`` replaces the status and keeps the Audit-Id."""

        def recovering(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response("200 OK", [])
            try:
                raise RuntimeError("late")
            except RuntimeError:
                start_response("500 Internal Server Error", [], sys.exc_info())
            return [b"error page"]

        calls, _ = run(AuditWSGIMiddleware(recovering, auditor=make_auditor()), make_environ())
        (event,) = http_events(audit_events)
        assert [c[0] for c in calls] == ["200 OK", "500 Internal Server Error"]
        assert calls[1][2] is not None
        assert calls[1][2][0] is RuntimeError
        assert calls[1][1] == [("Audit-Id", event["event_id"])]
        assert event["response"]["status_code"] == 500
        assert event["outcome"] == "error"

    def test_annotate_in_app_and_context_reset_after(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """``annotate`` works inside the app and does nothing once the request is over."""

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            annotate(resource_id="42", ticket="T-1")
            start_response("200 OK", [])
            return [b""]

        run(AuditWSGIMiddleware(app, auditor=make_auditor()), make_environ("/things"))
        assert annotate(ticket="late") is False
        (event,) = http_events(audit_events)
        assert event["annotations"] == {"ticket": "T-1"}
        assert event["resource"]["id"] == "42"


class TestRealServer:
    def test_wsgiref_server_in_a_thread(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """Under wsgiref's real HTTP server the client sees the header and one event is built."""

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        app = AuditWSGIMiddleware(hello, auditor=make_auditor())
        server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            port = server.server_address[1]
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/ping?x=1", data=b"data", method="PUT"
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read()
                audit_id = response.headers["Audit-Id"]
        finally:
            server.shutdown()
            server.server_close()
        (event,) = http_events(audit_events)
        assert body == b"hello data"
        assert audit_id == event["event_id"]
        assert event["request"]["bytes"] == 4
        assert event["request"]["host"] == f"127.0.0.1:{port}"
        assert event["source"]["ip"] == "127.0.0.1"
        assert event["response"]["bytes"] == 10
