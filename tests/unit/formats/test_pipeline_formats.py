"""Events built by the real middleware, stored by sinks in each format, pass the schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware
from auditmw.canonical import loads
from auditmw.config import DeliveryOptions, ServiceInfo
from auditmw.sinks import MemorySink

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request
    from starlette.websockets import WebSocket

    Checker = Callable[[dict[str, Any]], list[str]]

FORMATS = ("auditmw", "ocsf", "ecs", "otel", "cloudevents")


async def order(request: Request) -> Response:
    if request.path_params["order_id"] == 0:
        raise RuntimeError("boom")
    return JSONResponse({"id": request.path_params["order_id"]})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def _run_app(sinks: list[MemorySink]) -> None:
    config = AuditConfig(
        service=ServiceInfo(name="orders-api", version="1.2.3", environment="test"),
        sinks=sinks,
        delivery=DeliveryOptions(max_wait_ms=5),
    )
    app = Starlette(
        routes=[
            Route("/orders/{order_id:int}", order, methods=["GET", "PUT", "DELETE", "POST"]),
            WebSocketRoute("/ws", echo),
        ],
        middleware=[Middleware(AuditMiddleware, config=config)],
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/orders/42?expand=items", headers={"user-agent": "pytest"})
        client.put("/orders/42", json={"qty": 2})
        client.post("/orders/42")
        client.delete("/orders/42")
        client.get("/orders/0")
        client.get("/missing")
        client.patch("/orders/42")
        with client.websocket_connect("/ws") as ws:
            ws.send_text("hi")
            ws.receive_text()


@pytest.fixture(scope="module")
def stored() -> dict[str, list[bytes]]:
    """Drive a real app once; return the lines each format's sink stored."""
    sinks = [MemorySink(format=fmt) for fmt in FORMATS]
    _run_app(sinks)
    return {sink.format: list(sink.lines) for sink in sinks}


class TestPipelineOutput:
    def test_every_format_stored_every_event(self, stored: dict[str, list[bytes]]) -> None:
        """Each sink stored one record per event, lifecycle records included."""
        canonical = [loads(line) for line in stored["auditmw"]]
        kinds = {event["kind"] for event in canonical}
        assert {"http", "websocket", "audit.started", "audit.stopped"} <= kinds
        assert {len(lines) for lines in stored.values()} == {len(canonical)}

    def test_ocsf(self, stored: dict[str, list[bytes]], ocsf_check: Checker) -> None:
        """The OCSF records validate against OCSF 1.8.0."""
        for line in stored["ocsf"]:
            assert ocsf_check(loads(line)) == []

    def test_ecs(self, stored: dict[str, list[bytes]], ecs_check: Checker) -> None:
        """The ECS records use only ECS 9.4 fields and values."""
        for line in stored["ecs"]:
            assert ecs_check(loads(line)) == []

    def test_otel(
        self, stored: dict[str, list[bytes]], otlp_parse: Callable[[dict[str, Any]], Any]
    ) -> None:
        """The OTel records wrap into a valid ExportLogsServiceRequest."""
        records = [loads(line) for line in stored["otel"]]
        body = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": records}]}]}
        message = otlp_parse(body)
        assert len(message.resource_logs[0].scope_logs[0].log_records) == len(records)

    def test_cloudevents(self, stored: dict[str, list[bytes]], cloudevents_check: Checker) -> None:
        """The CloudEvents records validate against the CloudEvents 1.0 schema."""
        for line in stored["cloudevents"]:
            assert cloudevents_check(loads(line)) == []
