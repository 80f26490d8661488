"""The WSGI shell's short cuts keep its behaviour: input, headers, status, response bodies."""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING, Any

import pytest

from auditmw.core.context import current_context
from auditmw.http import environ as environ_module
from auditmw.http.environ import environ_headers
from auditmw.testing import make_environ
from auditmw.wsgi import ENVIRON_KEY, AuditWSGIMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from auditmw.auditor import Auditor
    from auditmw.core.event import Exchange
    from auditmw.types import Event


def http_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "http"]


def discard(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return lambda data: None


def reference_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The headers as a walk over the environ finds them, in order (the specification)."""
    mapping: dict[str, str] = {}
    for key, value in environ.items():
        if key[:5] == "HTTP_" and key[5:]:
            mapping[key[5:].replace("_", "-").lower()] = value
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            mapping[name] = environ[key]
    return list(mapping.items())


class TestInput:
    @pytest.mark.parametrize(
        ("method", "headers", "wrapped"),
        [
            pytest.param("GET", {}, False, id="get-no-body"),
            pytest.param("HEAD", {}, False, id="head-no-body"),
            pytest.param("GET", {"Content-Length": "0"}, False, id="get-length-zero"),
            pytest.param("GET", {"Content-Length": "3"}, True, id="get-with-length"),
            pytest.param("GET", {"Transfer-Encoding": "chunked"}, True, id="get-chunked"),
            pytest.param("POST", {}, True, id="post-no-length"),
            pytest.param("DELETE", {}, True, id="delete-no-length"),
        ],
    )
    def test_input_is_wrapped_only_where_a_body_can_come(
        self,
        make_auditor: Callable[..., Auditor],
        method: str,
        headers: dict[str, str],
        wrapped: bool,
    ) -> None:
        """A GET or HEAD without Content-Length or Transfer-Encoding gets the server's own input."""
        seen: list[object] = []

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            seen.append(environ["wsgi.input"])
            start_response("204 No Content", [])
            return []

        environ = make_environ(method=method, headers=headers)
        server_input = environ["wsgi.input"]
        result = AuditWSGIMiddleware(app, auditor=make_auditor())(environ, discard)
        list(result)
        assert (seen[0] is not server_input) is wrapped

    def test_a_get_body_is_counted(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """A GET that announces a body has its bytes counted as it is read."""

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            environ["wsgi.input"].read()
            start_response("200 OK", [])
            return [b"ok"]

        environ = make_environ(body=b"abcd")
        list(AuditWSGIMiddleware(app, auditor=make_auditor())(environ, discard))
        (event,) = http_events(audit_events)
        assert event["request"]["bytes"] == 4


class TestHeaders:
    @pytest.mark.parametrize(
        "extra",
        [
            pytest.param({}, id="no-headers"),
            pytest.param({"HTTP_X_ONE": "1"}, id="one-header"),
            pytest.param({"HTTP_X_A": "first", "HTTP_X-A": "second"}, id="one-name-twice"),
            pytest.param({"HTTP_": "nameless", "HTTPX": "not-a-header"}, id="odd-keys"),
            pytest.param({"CONTENT_TYPE": "text/csv", "CONTENT_LENGTH": "0"}, id="content-keys"),
            pytest.param({"HTTP_CONTENT_TYPE": "a/b", "CONTENT_TYPE": ""}, id="empty-content-type"),
            pytest.param({"server.extra": object(), "HTTP_Z": "z"}, id="server-keys"),
        ],
    )
    def test_headers_match_a_walk_over_the_environ(self, extra: dict[str, Any]) -> None:
        """The headers and their order are what a walk over the environ finds, twice over."""
        environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "HTTP_HOST": "h", **extra}
        assert environ_headers(environ).items() == reference_headers(environ)
        again = {
            key: f"{value}-again" if isinstance(value, str) else value
            for key, value in environ.items()
        }
        assert environ_headers(again).items() == reference_headers(again)

    def test_requests_of_one_shape_keep_their_own_values(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """Two requests with the same header names each record their own values."""
        auditor = make_auditor(record_headers=["x-tenant"])
        app = AuditWSGIMiddleware(status_app("200 OK"), auditor=auditor)
        for tenant in ("t1", "t2"):
            list(app(make_environ(headers={"X-Tenant": tenant}), discard))
        assert [e["request"]["headers"] for e in http_events(audit_events)] == [
            {"x-tenant": "t1"},
            {"x-tenant": "t2"},
        ]

    def test_past_the_cache_bound_headers_are_still_read(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Once the shape cache is full, a new shape is read by the walk, and not kept."""
        monkeypatch.setattr(environ_module, "_SHAPES", {})
        for i in range(300):
            environ = {"REQUEST_METHOD": "GET", f"HTTP_X_{i}": str(i)}
            assert environ_headers(environ).items() == [(f"x-{i}", str(i))]
        assert len(environ_module._SHAPES) == 256


def status_app(status: str) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, [])
        return [b"body"]

    return app


class TestStatus:
    @pytest.mark.parametrize(
        ("status", "code"),
        [
            pytest.param("201 Created", 201, id="created"),
            pytest.param("201 Made", 201, id="own-reason"),
            pytest.param("oops", None, id="no-code"),
        ],
    )
    def test_status_code_read_once_and_again(
        self, make_auditor: Callable[..., Auditor], status: str, code: int | None
    ) -> None:
        """The code of a status line is the same the first time and the next."""
        app = AuditWSGIMiddleware(status_app(status), auditor=make_auditor())
        for _ in range(2):
            environ = make_environ()
            list(app(environ, discard))
            exchange: Exchange = environ[ENVIRON_KEY]
            assert exchange.status == code


def serve(app: Any, *, consume: int | None = None, call_iter: bool = True) -> list[bytes]:
    """Pull ``consume`` chunks (or all) from the response, then close it, as a server does."""
    result = app(make_environ(), discard)
    iterator = iter(result) if call_iter else result
    chunks: list[bytes] = []
    try:
        while consume is None or len(chunks) < consume:
            try:
                chunks.append(next(iterator))
            except StopIteration:
                break
    finally:
        result.close()
    return chunks


def list_body(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"ab", b"", b"cde"]


def tuple_body(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    return (b"ab", b"", b"cde")


def generator_body(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [])
    yield b"ab"
    yield b""
    yield b"cde"


BODIES = [
    pytest.param(list_body, id="list"),
    pytest.param(tuple_body, id="tuple"),
    pytest.param(generator_body, id="generator"),
]


class TestResponseBodies:
    @pytest.mark.parametrize("body", BODIES)
    @pytest.mark.parametrize("call_iter", [True, False], ids=["iter", "next-only"])
    def test_whole_body_is_success(
        self,
        make_auditor: Callable[..., Auditor],
        audit_events: list[Event],
        body: Any,
        call_iter: bool,
    ) -> None:
        """Read to the end, by iteration or by next() alone: every byte counted, one event."""
        chunks = serve(AuditWSGIMiddleware(body, auditor=make_auditor()), call_iter=call_iter)
        assert chunks == [b"ab", b"", b"cde"]
        (event,) = http_events(audit_events)
        assert event["outcome"] == "success"
        assert event["response"]["bytes"] == 5

    @pytest.mark.parametrize("body", BODIES)
    def test_closed_early_is_aborted(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event], body: Any
    ) -> None:
        """Closed after one chunk: aborted, with the bytes pulled so far."""
        chunks = serve(AuditWSGIMiddleware(body, auditor=make_auditor()), consume=1)
        assert chunks == [b"ab"]
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert event["response"]["bytes"] == 2

    @pytest.mark.parametrize("body", BODIES)
    def test_iterations_share_one_position(
        self, make_auditor: Callable[..., Auditor], body: Any
    ) -> None:
        """Two iterations of one response, and next(), pull from the one body, never twice."""
        result: Any = AuditWSGIMiddleware(body, auditor=make_auditor())(make_environ(), discard)
        first, second = iter(result), iter(result)
        assert [next(first), next(second), next(result)] == [b"ab", b"", b"cde"]
        assert list(first) == list(second) == []
        result.close()

    @pytest.mark.parametrize("body", BODIES)
    def test_no_request_context_between_chunks(
        self, make_auditor: Callable[..., Auditor], body: Any
    ) -> None:
        """The server's code between two chunks runs outside the request's context."""
        result: Any = AuditWSGIMiddleware(body, auditor=make_auditor())(make_environ(), discard)
        for _chunk in result:
            assert current_context() is None
        result.close()

    def test_generator_runs_in_the_request_context(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """A generator body sees its request's context at every step, its last one too."""
        ids: list[str | None] = []

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
            start_response("200 OK", [])
            for _ in range(2):
                context = current_context()
                ids.append(context.event_id if context else None)
                yield b"x"
            context = current_context()
            ids.append(context.event_id if context else None)

        serve(AuditWSGIMiddleware(app, auditor=make_auditor()))
        (event,) = http_events(audit_events)
        assert ids == [event["event_id"]] * 3

    def test_error_mid_stream_is_recorded_and_reraised(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """An exception from the body reaches the server unchanged; the event says so once."""
        boom = KeyError("gone")

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
            start_response("200 OK", [])
            yield b"ok"
            raise boom

        with pytest.raises(KeyError) as info:
            serve(AuditWSGIMiddleware(app, auditor=make_auditor()))
        assert info.value is boom
        (event,) = http_events(audit_events)
        assert event["outcome_reason"] == "exception:KeyError"
        assert event["response"]["bytes"] == 2


class TestWrite:
    def test_write_counts_and_forwards_after_a_second_start_response(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """The write callable sends through the latest start_response, every byte counted."""
        written: list[tuple[str, bytes]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return lambda data: written.append((status, data))

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response("200 OK", [])
            try:
                raise RuntimeError("late")
            except RuntimeError:
                write = start_response("500 Internal Server Error", [], sys.exc_info())
            write(b"err")
            return [b"or"]

        middleware = AuditWSGIMiddleware(app, auditor=make_auditor())
        result: Any = middleware(make_environ(), start_response)
        assert list(result) == [b"or"]
        result.close()
        assert written == [("500 Internal Server Error", b"err")]
        (event,) = http_events(audit_events)
        assert event["response"] == {"status_code": 500, "bytes": 5}

    def test_a_failed_write_is_aborted(
        self, make_auditor: Callable[..., Auditor], audit_events: list[Event]
    ) -> None:
        """A write that hits a gone client is re-raised and recorded as aborted."""

        def broken(data: bytes) -> None:
            raise BrokenPipeError

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response("200 OK", [])(b"x")
            return []

        middleware = AuditWSGIMiddleware(app, auditor=make_auditor())
        with pytest.raises(BrokenPipeError):
            middleware(make_environ(), lambda s, h, e=None: broken)
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"


def test_server_input_object_stays_reachable(make_auditor: Callable[..., Auditor]) -> None:
    """A wrapped input still passes the server's own attributes through."""
    seen: list[bytes] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ["wsgi.input"].getvalue())
        start_response("200 OK", [])
        return []

    environ = make_environ(method="POST")
    environ["wsgi.input"] = io.BytesIO(b"xyz")
    list(AuditWSGIMiddleware(app, auditor=make_auditor())(environ, discard))
    assert seen == [b"xyz"]


def test_unhashable_method_leaves_the_app_alone(
    make_auditor: Callable[..., Auditor], audit_events: list[Event]
) -> None:
    """An environ no server sends (a method that is a list) is the shell's failure, not the app's."""
    environ = make_environ()
    environ["REQUEST_METHOD"] = ["GET"]
    result = AuditWSGIMiddleware(status_app("200 OK"), auditor=make_auditor())(environ, discard)
    assert list(result) == [b"body"]
    assert [e["details"]["stage"] for e in audit_events if e["kind"] == "audit.internal_error"] == [
        "wsgi.environ"
    ]
