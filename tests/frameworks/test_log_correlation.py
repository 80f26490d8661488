"""The app's own log lines carry the request's audit id, wherever the app logs from."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import structlog
from flask import Flask, stream_with_context
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware
from auditmw.contrib.flask import Audit
from auditmw.logs import AuditIdFilter, add_audit_id, current_audit_id
from auditmw.sinks import MemorySink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, MutableMapping

APP_LOG = logging.getLogger("tests.app")


class Collect(logging.Handler):
    """A handler keeping ``(message, audit_id)`` of each record, filtered by AuditIdFilter."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(AuditIdFilter())
        self.seen: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.getMessage(), record.__dict__["audit_id"]))


@pytest.fixture
def collected() -> Iterator[Collect]:
    handler = Collect()
    APP_LOG.addHandler(handler)
    APP_LOG.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        APP_LOG.removeHandler(handler)


def config() -> AuditConfig:
    return AuditConfig(service="logs-test", sinks=[MemorySink()])


def starlette_app() -> Starlette:
    async def in_async(request: Request) -> Response:
        APP_LOG.info("async handler")
        return PlainTextResponse("ok")

    def in_thread(request: Request) -> Response:  # Starlette runs it in its threadpool
        APP_LOG.info("threadpool handler")
        return PlainTextResponse("ok")

    async def with_task(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(APP_LOG.info, "background"))

    async def streamed(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for i in range(3):
                APP_LOG.info("chunk %d", i)
                yield b"x"

        return StreamingResponse(body())

    def sync_streamed(request: Request) -> Response:
        def body() -> Iterator[bytes]:  # iterated in the threadpool
            APP_LOG.info("sync chunk")
            yield b"x"

        return StreamingResponse(body())

    routes = [
        Route("/async", in_async),
        Route("/thread", in_thread),
        Route("/task", with_task),
        Route("/stream", streamed),
        Route("/sync-stream", sync_streamed),
    ]
    return Starlette(routes=routes)


class TestStarlette:
    """Every place a Starlette app runs code sees the id of the request's audit event."""

    @pytest.mark.parametrize(
        ("path", "messages"),
        [
            pytest.param("/async", ["async handler"], id="async-handler"),
            pytest.param("/thread", ["threadpool handler"], id="threadpool-handler"),
            pytest.param("/task", ["background"], id="background-task"),
            pytest.param("/stream", ["chunk 0", "chunk 1", "chunk 2"], id="async-stream"),
            pytest.param("/sync-stream", ["sync chunk"], id="sync-stream"),
        ],
    )
    def test_log_lines_carry_audit_id(
        self, collected: Collect, path: str, messages: list[str]
    ) -> None:
        """Each record written while serving ``path`` has the response's ``Audit-Id``."""
        middleware = AuditMiddleware(starlette_app(), config())
        with TestClient(middleware) as client:
            first = client.get(path)
            second = client.get(path)
        ids = [first.headers["audit-id"], second.headers["audit-id"]]
        assert ids[0] != ids[1]
        assert collected.seen == [(m, ids[0]) for m in messages] + [(m, ids[1]) for m in messages]

    def test_outside_request_default(self, collected: Collect) -> None:
        """Outside a request the filter writes its default and the accessor says None."""
        APP_LOG.info("startup")
        assert collected.seen == [("startup", "-")]
        assert current_audit_id() is None

    def test_explicit_extra_wins(self, collected: Collect) -> None:
        """An ``audit_id`` passed in ``extra=`` is kept as it is."""
        APP_LOG.info("replayed", extra={"audit_id": "given"})
        assert collected.seen == [("replayed", "given")]


class TestFlask:
    """The Flask extension's requests, streamed bodies included."""

    def test_view_and_stream(self, collected: Collect) -> None:
        """The view and a ``stream_with_context`` generator both see the request's id."""
        app = Flask("logs")

        @app.get("/view")
        def view() -> str:
            APP_LOG.info("view")
            return "ok"

        @app.get("/stream")
        def stream() -> Any:
            def body() -> Iterator[str]:
                APP_LOG.info("flask chunk")
                yield "x"

            return app.response_class(stream_with_context(body()))

        Audit(app, config=config())
        client = app.test_client()
        view_response = client.get("/view")
        stream_response = client.get("/stream")
        assert stream_response.get_data() == b"x"
        assert collected.seen == [
            ("view", view_response.headers["Audit-Id"]),
            ("flask chunk", stream_response.headers["Audit-Id"]),
        ]


class TestStructlog:
    """``add_audit_id`` in a structlog chain."""

    def test_processor_adds_id_in_request_only(self) -> None:
        """Inside a request the event dict gets ``audit_id``; outside it is left alone."""
        seen: list[MutableMapping[str, Any]] = []

        def keep(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
            seen.append(dict(event_dict))
            return ""

        log = structlog.wrap_logger(
            structlog.ReturnLogger(),
            processors=[add_audit_id, keep],
            cache_logger_on_first_use=False,
        )

        async def handler(request: Request) -> Response:
            log.info("in request")
            return PlainTextResponse("ok")

        middleware = AuditMiddleware(Starlette(routes=[Route("/", handler)]), config())
        with TestClient(middleware) as client:
            response = client.get("/")
        log.info("outside")
        assert seen == [
            {"event": "in request", "audit_id": response.headers["audit-id"]},
            {"event": "outside"},
        ]

    def test_bound_value_wins(self) -> None:
        """A value already bound under ``audit_id`` is not replaced."""
        event = add_audit_id(None, "info", {"event": "x", "audit_id": "bound"})
        assert event == {"event": "x", "audit_id": "bound"}


class TestExample:
    """``examples/log_correlation.py`` runs, and its log lines join its audit events."""

    def test_example_log_lines_match_events(self) -> None:
        """Every log line of a request names the event_id of that request's audit event."""
        example = Path(__file__).resolve().parents[2] / "examples" / "log_correlation.py"
        done = subprocess.run(
            [sys.executable, str(example)], capture_output=True, text=True, timeout=60, check=True
        )
        lines = done.stdout.splitlines()
        events = {
            e["request"]["path"]: e["event_id"]
            for e in map(orjson.loads, (line for line in lines if line.startswith("{")))
            if e["kind"] == "http"
        }
        ids = [re.search(r"audit_id='?([0-9a-f-]{36})", line) for line in lines]
        logged = [m.group(1) for m in ids if m is not None]
        first, second = events["/orders/1/pay"], events["/orders/2/pay"]
        assert logged == [first] * 3 + [second] * 3
        assert f"response Audit-Id={first}" in lines
