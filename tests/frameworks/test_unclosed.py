"""A WSGI response that is never closed nor read to the end still gives exactly one event.

Werkzeug's test client (``buffered=False``, its default, and Flask's) neither closes
nor exhausts a response whose body the test does not read.  The event is then
finished when the response is garbage-collected, and says so with the annotation
``auditmw.response: "not_closed"``.  Whichever of close, exhaustion and collection
comes first finishes the event; the others do nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import Client
from werkzeug.wrappers import Response

from auditmw import AuditConfig, AuditWSGIMiddleware
from auditmw.contrib.flask import Audit
from auditmw.sinks import MemorySink
from auditmw.testing import make_environ
from auditmw.types import Event

NOT_CLOSED = {"auditmw.response": "not_closed"}


def config() -> AuditConfig:
    return AuditConfig(service="unclosed", sinks=[MemorySink()])


def http_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "http"]


def flask_app() -> Flask:
    app = Flask(__name__)
    app.config["AUDITMW"] = config()

    @app.get("/orders/<int:oid>")
    def order(oid: int) -> dict[str, int]:
        return {"id": oid}

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[str]:
            yield "a"
            yield "b"

        return app.response_class(chunks())

    Audit(app)
    return app


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    """A server's ``start_response`` whose ``write`` discards."""
    return lambda data: None


def plain_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class TestFlaskTestClient:
    def test_status_only_is_audited(self, audit_events: list[Event]) -> None:
        """``assert client.get(...).status_code == 200``: one event, marked not closed."""
        client = flask_app().test_client()
        for oid in range(3):
            assert client.get(f"/orders/{oid}").status_code == 200
        gc.collect()  # the verdict must not depend on when the interpreter frees it
        events = http_events(audit_events)
        assert [e["resource"]["id"] for e in events] == ["0", "1", "2"]
        assert all(e["annotations"] == NOT_CLOSED for e in events)
        assert all(e["outcome"] == "success" for e in events)
        assert all(e["request"]["route"] == "/orders/{oid}" for e in events)

    def test_body_read_is_not_marked(self, audit_events: list[Event]) -> None:
        """A body the test reads is exhausted: one event, no marker, even after collection."""
        client = flask_app().test_client()
        response = client.get("/stream")
        assert response.get_data() == b"ab"
        del response
        gc.collect()
        (event,) = http_events(audit_events)
        assert "annotations" not in event
        assert event["response"]["bytes"] == 2

    def test_closed_then_collected_once(self, audit_events: list[Event]) -> None:
        """Closed without reading: one ``aborted`` event; collection adds nothing."""
        client = flask_app().test_client()
        response = client.get("/stream")
        response.close()
        del response
        gc.collect()
        (event,) = http_events(audit_events)
        assert event["outcome"] == "aborted"
        assert "annotations" not in event


class TestWerkzeugClient:
    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda: AuditWSGIMiddleware(plain_app, config()), id="plain-wsgi"),
            pytest.param(flask_app, id="flask"),
        ],
    )
    def test_werkzeug_client_unread(
        self, make: Callable[[], Any], audit_events: list[Event]
    ) -> None:
        """werkzeug's own ``Client`` with an unread body: one event per request."""
        client = Client(make(), Response)
        for _ in range(2):
            assert client.get("/orders/1").status_code in (200, 404)
        gc.collect()
        events = http_events(audit_events)
        assert len(events) == 2
        assert all(e["annotations"] == NOT_CLOSED for e in events)


class TestPlainWSGI:
    def test_dropped_iterable_is_recorded_once(self, audit_events: list[Event]) -> None:
        """A server that drops the iterable without closing it: one annotated event."""
        shell = AuditWSGIMiddleware(plain_app, config())
        result = shell(make_environ("/x"), start_response)
        assert http_events(audit_events) == []
        del result
        gc.collect()
        (event,) = http_events(audit_events)
        assert event["annotations"] == NOT_CLOSED
        assert event["response"]["status_code"] == 200

    def test_exhausted_and_closed_then_dropped_once(self, audit_events: list[Event]) -> None:
        """A real server's sequence (iterate, close, drop): one event, no marker."""
        shell = AuditWSGIMiddleware(plain_app, config())
        result = shell(make_environ("/x"), start_response)
        assert b"".join(result) == b"hello"
        getattr(result, "close", lambda: None)()
        del result
        gc.collect()
        (event,) = http_events(audit_events)
        assert "annotations" not in event
