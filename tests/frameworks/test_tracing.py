"""Trace correlation with the real OpenTelemetry SDK and its ASGI, WSGI, Flask and Django
instrumentation, with OpenTelemetry outside auditmw and inside it where both orders exist.

Each test builds its own tracer provider (never the global one) with an in-memory
exporter, and compares the event's ``trace`` with the server span the SDK exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OTelASGI
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OTelWSGI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware, AuditWSGIMiddleware
from auditmw.contrib.flask import Audit
from auditmw.sinks import MemorySink
from tests.frameworks import django_app

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from starlette.websockets import WebSocket

    from auditmw.types import Event

INBOUND_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INBOUND = f"00-{INBOUND_TRACE}-00f067aa0ba902b7-01"


class Tracing:
    """A private SDK tracer provider with an in-memory exporter."""

    def __init__(self, sampled: bool = True) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=None if sampled else ALWAYS_OFF)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.seen: list[tuple[str, str]] = []  # the span the app saw, as hex ids

    def server_span(self) -> ReadableSpan:
        (span,) = [s for s in self.exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
        return span

    def expected(self) -> dict[str, str]:
        ctx = self.server_span().get_span_context()
        assert ctx is not None
        return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}

    def note(self) -> None:
        """Called by the app: remember the span active in the view."""
        ctx = trace.get_current_span().get_span_context()
        self.seen.append((f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"))


@pytest.fixture
def tracing() -> Tracing:
    return Tracing()


def http_event(events: list[Event]) -> Event:
    (event,) = [e for e in events if e["kind"] in ("http", "websocket")]
    return event


def config(sink: MemorySink) -> AuditConfig:
    return AuditConfig(service="trace-test", sinks=[sink])


# -- ASGI (Starlette) ---------------------------------------------------------------


def starlette_app(tracing: Tracing) -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        tracing.note()
        return PlainTextResponse("hi")

    async def quiet(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    async def boom(request: Request) -> PlainTextResponse:
        raise ValueError("boom")

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    return Starlette(
        routes=[
            Route("/hello", hello),
            Route("/quiet", quiet),
            Route("/boom", boom),
            WebSocketRoute("/ws", socket),
        ]
    )


def otel_outside(app: Starlette, sink: MemorySink, tracing: Tracing) -> Any:
    return OTelASGI(AuditMiddleware(app, config(sink)), tracer_provider=tracing.provider)


def otel_inside(app: Starlette, sink: MemorySink, tracing: Tracing) -> Any:
    return AuditMiddleware(OTelASGI(app, tracer_provider=tracing.provider), config(sink))


ASGI_ORDERS = [
    pytest.param(otel_outside, id="otel-outside"),
    pytest.param(otel_inside, id="otel-inside"),
]


def asgi_get(stack: Any, path: str, **headers: str) -> int:
    with TestClient(stack, raise_server_exceptions=False) as client:
        status: int = client.get(path, headers=headers).status_code
    return status


class TestASGI:
    @pytest.mark.parametrize("wrap", ASGI_ORDERS)
    def test_span_without_inbound_header(
        self, wrap: Any, tracing: Tracing, audit_events: list[Event]
    ) -> None:
        """With no ``traceparent``, the event carries the server span's trace and span ids."""
        sink = MemorySink()
        assert asgi_get(wrap(starlette_app(tracing), sink, tracing), "/hello") == 200
        assert http_event(audit_events)["trace"] == tracing.expected()

    @pytest.mark.parametrize("wrap", ASGI_ORDERS)
    def test_span_continues_inbound_trace(
        self, wrap: Any, tracing: Tracing, audit_events: list[Event]
    ) -> None:
        """An inbound ``traceparent`` gives the trace id; the span id is the server span's."""
        sink = MemorySink()
        asgi_get(wrap(starlette_app(tracing), sink, tracing), "/hello", traceparent=INBOUND)
        event_trace = http_event(audit_events)["trace"]
        assert event_trace == tracing.expected()
        assert event_trace["trace_id"] == INBOUND_TRACE

    @pytest.mark.parametrize("wrap", ASGI_ORDERS)
    def test_sampled_out_span_is_recorded(self, wrap: Any, audit_events: list[Event]) -> None:
        """A non-recording (sampled-out) span still has valid ids, and they are recorded."""
        tracing, sink = Tracing(sampled=False), MemorySink()
        asgi_get(wrap(starlette_app(tracing), sink, tracing), "/hello")
        assert tracing.exporter.get_finished_spans() == ()
        ((trace_id, span_id),) = tracing.seen
        assert http_event(audit_events)["trace"] == {"trace_id": trace_id, "span_id": span_id}

    @pytest.mark.parametrize("wrap", ASGI_ORDERS)
    def test_app_error_keeps_the_trace(
        self, wrap: Any, tracing: Tracing, audit_events: list[Event]
    ) -> None:
        """A view that raises still has its span's ids on the ``error`` event."""
        sink = MemorySink()
        assert asgi_get(wrap(starlette_app(tracing), sink, tracing), "/boom") == 500
        event = http_event(audit_events)
        assert event["outcome"] == "error"
        assert event["trace"] == tracing.expected()

    @pytest.mark.parametrize("wrap", ASGI_ORDERS)
    def test_websocket(self, wrap: Any, tracing: Tracing, audit_events: list[Event]) -> None:
        """A WebSocket session's event carries its server span's ids."""
        sink = MemorySink()
        with (
            TestClient(wrap(starlette_app(tracing), sink, tracing)) as client,
            client.websocket_connect("/ws") as ws,
        ):
            assert ws.receive_text() == "hi"
        assert http_event(audit_events)["trace"] == tracing.expected()

    def test_broken_span_never_reaches_the_app(
        self, tracing: Tracing, audit_events: list[Event]
    ) -> None:
        """A span whose context cannot be read: the app runs, the header still counts."""

        class BrokenSpan(trace.NonRecordingSpan):
            def get_span_context(self) -> trace.SpanContext:
                raise RuntimeError("broken tracer")

        inner = AuditMiddleware(starlette_app(tracing), config(MemorySink()))

        async def with_broken_span(scope: Any, receive: Any, send: Any) -> None:
            with trace.use_span(BrokenSpan(trace.INVALID_SPAN_CONTEXT)):
                await inner(scope, receive, send)

        assert asgi_get(with_broken_span, "/quiet", traceparent=INBOUND) == 200
        assert http_event(audit_events)["trace"]["trace_id"] == INBOUND_TRACE

    def test_no_span_uses_traceparent(self, tracing: Tracing, audit_events: list[Event]) -> None:
        """Without a span (OpenTelemetry importable, not in the stack) the header counts."""
        sink = MemorySink()
        asgi_get(
            AuditMiddleware(starlette_app(tracing), config(sink)), "/hello", traceparent=INBOUND
        )
        assert http_event(audit_events)["trace"] == {
            "trace_id": INBOUND_TRACE,
            "span_id": "00f067aa0ba902b7",
        }

    def test_no_span_no_header_no_trace(self, tracing: Tracing, audit_events: list[Event]) -> None:
        """No span and no header: no ``trace`` (an invalid span context means none)."""
        sink = MemorySink()
        asgi_get(AuditMiddleware(starlette_app(tracing), config(sink)), "/hello")
        assert "trace" not in http_event(audit_events)


# -- WSGI (Flask) -------------------------------------------------------------------


def flask_app(tracing: Tracing) -> Flask:
    app = Flask("traced")

    @app.get("/hello")
    def hello() -> str:
        tracing.note()
        return "hi"

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("boom")

    return app


def wsgi_outside(app: Flask, sink: MemorySink, tracing: Tracing) -> None:
    Audit(app, config(sink))
    app.wsgi_app = OTelWSGI(app.wsgi_app, tracer_provider=tracing.provider)  # type: ignore[method-assign]


def wsgi_inside(app: Flask, sink: MemorySink, tracing: Tracing) -> None:
    app.wsgi_app = OTelWSGI(app.wsgi_app, tracer_provider=tracing.provider)  # type: ignore[method-assign]
    Audit(app, config(sink))


def flask_otel_first(app: Flask, sink: MemorySink, tracing: Tracing) -> None:
    FlaskInstrumentor().instrument_app(app, tracer_provider=tracing.provider)  # type: ignore[no-untyped-call]
    Audit(app, config(sink))


def flask_audit_first(app: Flask, sink: MemorySink, tracing: Tracing) -> None:
    Audit(app, config(sink))
    FlaskInstrumentor().instrument_app(app, tracer_provider=tracing.provider)  # type: ignore[no-untyped-call]


FLASK_SETUPS = [
    pytest.param(wsgi_outside, id="wsgi-otel-outside"),
    pytest.param(wsgi_inside, id="wsgi-otel-inside"),
    pytest.param(flask_otel_first, id="flask-instrumentor-first"),
    pytest.param(flask_audit_first, id="flask-instrumentor-last"),
]


class TestWSGI:
    @pytest.mark.parametrize("setup", FLASK_SETUPS)
    @pytest.mark.parametrize("path", ["/hello", "/boom"])
    def test_flask_span(
        self,
        setup: Callable[[Flask, MemorySink, Tracing], None],
        path: str,
        tracing: Tracing,
        audit_events: list[Event],
    ) -> None:
        """Flask under the WSGI or Flask instrumentation, either order: the server span's ids."""
        app, sink = flask_app(tracing), MemorySink()
        setup(app, sink, tracing)
        response = app.test_client().get(path)
        response.close()
        assert http_event(audit_events)["trace"] == tracing.expected()

    @pytest.mark.parametrize("setup", FLASK_SETUPS[:2])
    def test_inbound_trace_continued(
        self,
        setup: Callable[[Flask, MemorySink, Tracing], None],
        tracing: Tracing,
        audit_events: list[Event],
    ) -> None:
        """The inbound trace id, the server span's id."""
        app, sink = flask_app(tracing), MemorySink()
        setup(app, sink, tracing)
        app.test_client().get("/hello", headers={"traceparent": INBOUND}).close()
        event_trace = http_event(audit_events)["trace"]
        assert event_trace == tracing.expected()
        assert event_trace["trace_id"] == INBOUND_TRACE

    def test_plain_wsgi_sampled_out(self, audit_events: list[Event]) -> None:
        """A bare WSGI app under a sampled-out span: the span's ids are still recorded."""
        tracing, sink = Tracing(sampled=False), MemorySink()

        def app(environ: Any, start_response: Any) -> Iterator[bytes]:
            tracing.note()
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"hi"

        stack = OTelWSGI(AuditWSGIMiddleware(app, config(sink)), tracer_provider=tracing.provider)
        from werkzeug.test import Client

        Client(stack).get("/x").close()
        ((trace_id, span_id),) = tracing.seen
        assert http_event(audit_events)["trace"] == {"trace_id": trace_id, "span_id": span_id}


# -- Django ---------------------------------------------------------------------------


@pytest.fixture
def django_tracing(tracing: Tracing) -> Iterator[Tracing]:
    """The real Django instrumentation (its middleware goes first, outside auditmw)."""
    django_app.setup()
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    instrumentor = DjangoInstrumentor()
    instrumentor.instrument(tracer_provider=tracing.provider)
    try:
        yield tracing
    finally:
        instrumentor.uninstrument()


class TestDjango:
    @pytest.mark.parametrize("path", ["/orders/7", "/boom"])
    def test_django_instrumentation(
        self, django_tracing: Tracing, audit_events: list[Event], path: str
    ) -> None:
        """Django's instrumentation wraps auditmw's middleware: the server span's ids."""
        from django.test import Client

        Client(raise_request_exception=False).get(path)
        (event,) = [e for e in audit_events if e["kind"] == "http"]
        assert event["trace"] == django_tracing.expected()

    def test_django_async(self, django_tracing: Tracing, audit_events: list[Event]) -> None:
        """Django's async handler under its instrumentation: the server span's ids."""
        from asgiref.sync import async_to_sync
        from django.test import AsyncClient

        async_to_sync(AsyncClient().get)("/orders/7")
        (event,) = [e for e in audit_events if e["kind"] == "http"]
        assert event["trace"] == django_tracing.expected()

    def test_login_event_has_the_request_trace(
        self, django_tracing: Tracing, audit_events: list[Event]
    ) -> None:
        """A login (``auth`` event from Django's signal) carries its request's span ids."""
        import uuid

        from django.contrib.auth.models import User
        from django.test import Client

        name = f"user-{uuid.uuid4().hex[:8]}"
        User.objects.create_user(name, password="pw-123456")
        Client().post("/login", {"username": name, "password": "pw-123456"})
        (login,) = [e for e in audit_events if e["kind"] == "auth"]
        (request,) = [e for e in audit_events if e["kind"] == "http"]
        assert login["trace"] == request["trace"] == django_tracing.expected()

    def test_django_under_wsgi_instrumentation(
        self, tracing: Tracing, audit_events: list[Event]
    ) -> None:
        """Django's WSGI handler under OpenTelemetry's WSGI middleware: the server span's ids."""
        django_app.setup()
        from django.core.wsgi import get_wsgi_application
        from werkzeug.test import Client

        stack = OTelWSGI(get_wsgi_application(), tracer_provider=tracing.provider)
        Client(stack).get("/orders/7", headers={"Host": "testserver"}).close()
        (event,) = [e for e in audit_events if e["kind"] == "http"]
        assert event["trace"] == tracing.expected()


# -- without OpenTelemetry ----------------------------------------------------------

WITHOUT_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
from starlette.testclient import TestClient
from auditmw import AuditConfig, AuditMiddleware
from auditmw.testing import capture_events

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

stack = AuditMiddleware(app, AuditConfig(service="no-otel"))
assert stack.auditor.pipeline.span_reader is None
with capture_events() as events:
    TestClient(stack).get("/x", headers={"traceparent": %r})
(event,) = [e for e in events if e["kind"] == "http"]
print(event["trace"]["trace_id"], "opentelemetry" in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None])
"""


def test_without_opentelemetry_the_header_counts() -> None:
    """Without ``opentelemetry-api`` the reader is off and ``traceparent`` still counts."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL % INBOUND],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [INBOUND_TRACE, "False"]
