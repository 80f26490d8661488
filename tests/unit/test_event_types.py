"""The published ``TypedDict`` s, the event JSON Schema and the events auditmw builds agree."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any, get_type_hints, is_typeddict

import jsonschema
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from auditmw import AuditConfig, AuditMiddleware, event_types
from auditmw.event_types import AuditEvent
from auditmw.sinks import MemorySink
from auditmw.testing import capture_events

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.websockets import WebSocket

SCHEMA: dict[str, Any] = json.loads(
    resources.files("auditmw").joinpath("schema/event.schema.json").read_text()
)

#: Each published TypedDict and where its object sits in the JSON Schema.
LAYOUT: list[tuple[Any, tuple[str, ...]]] = [
    (event_types.AuditEvent, ()),
    (event_types.ActorDict, ("actor",)),
    (event_types.AuthDict, ("actor", "auth")),
    (event_types.SourceDict, ("source",)),
    (event_types.RequestDict, ("request",)),
    (event_types.ResponseDict, ("response",)),
    (event_types.ResourceDict, ("resource",)),
    (event_types.ServiceDict, ("service",)),
    (event_types.TraceDict, ("trace",)),
    (event_types.PolicyDict, ("policy",)),
    (event_types.WebSocketDict, ("websocket",)),
    (event_types.IntegrityDict, ("integrity",)),
]
PARTS = [pytest.param(typed, path, id=typed.__name__) for typed, path in LAYOUT]


def schema_at(path: tuple[str, ...]) -> dict[str, Any]:
    node = SCHEMA
    for name in path:
        node = node["properties"][name]
    return node


class TestAgreement:
    @pytest.mark.parametrize(("typed", "path"), PARTS)
    def test_same_keys_and_required_sets(self, typed: Any, path: tuple[str, ...]) -> None:
        """Each TypedDict has the schema object's members, and requires exactly its ``required``."""
        node = schema_at(path)
        assert set(typed.__annotations__) == set(node["properties"])
        assert set(typed.__required_keys__) == set(node.get("required", ()))

    def test_every_structured_member_is_published(self) -> None:
        """Every schema member with its own ``properties`` has a TypedDict, nested ones too."""
        published = {path for _, path in LAYOUT}

        def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
            if "properties" in node:
                assert path in published, path
                for name, child in node["properties"].items():
                    walk(child, (*path, name))

        walk(SCHEMA, ())

    @pytest.mark.parametrize(("typed", "path"), PARTS)
    def test_nested_members_use_the_published_parts(
        self, typed: Any, path: tuple[str, ...]
    ) -> None:
        """A member that is itself a published object is typed with that part's TypedDict."""
        hints = get_type_hints(typed)
        parts = {path: part for part, path in LAYOUT}
        for name in schema_at(path)["properties"]:
            child = parts.get((*path, name))
            if child is not None:
                assert hints[name] is child, name
            else:
                assert not is_typeddict(hints[name]), name


def check_typed(value: dict[str, Any], typed: Any, where: str) -> None:
    """Every key of ``value`` is declared by ``typed``; typed children are checked too."""
    hints = get_type_hints(typed)
    extra = set(value) - set(hints)
    assert not extra, f"{where}: members not in {typed.__name__}: {sorted(extra)}"
    missing = set(typed.__required_keys__) - set(value)
    assert not missing, f"{where}: required members missing: {sorted(missing)}"
    for name, member in value.items():
        if is_typeddict(hints[name]):
            check_typed(member, hints[name], f"{where}/{name}")


def app() -> Starlette:
    async def order(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", status_code=201)

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    return Starlette(
        routes=[Route("/orders/{oid}", order, methods=["POST"]), WebSocketRoute("/ws", socket)]
    )


class TestRealEvents:
    def test_built_events_fit_the_types_and_the_schema(self) -> None:
        """HTTP, WebSocket, traced and lifecycle events: every member is typed and valid."""
        stack = AuditMiddleware(
            app(),
            AuditConfig(service="typed", sinks=[MemorySink()], record_headers=["content-type"]),
        )
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        with capture_events() as events, TestClient(stack, root_path="/api") as client:
            client.post("/orders/7?x=1", json={"a": 1}, headers={"traceparent": traceparent})
            with client.websocket_connect("/ws"):
                pass
        kinds = {e["kind"] for e in events}
        assert {"http", "websocket", "audit.started", "audit.policy_loaded"} <= kinds
        assert any("trace" in e for e in events)
        validator = jsonschema.Draft202012Validator(SCHEMA)
        for event in events:
            plain: dict[str, Any] = dict(event)
            check_typed(plain, AuditEvent, event["kind"])
            assert list(validator.iter_errors(plain)) == []

    def test_chained_events_fit_the_types(self, tmp_path: Any) -> None:
        """Stored events with ``integrity`` (chain and MAC) fit :class:`IntegrityDict`."""
        from auditmw.config import DeliveryOptions
        from auditmw.integrity import IntegrityOptions
        from auditmw.sinks import FileSink

        path = tmp_path / "audit.jsonl"
        config = AuditConfig(
            service="typed",
            sinks=[FileSink(path)],
            delivery=DeliveryOptions(max_wait_ms=5),
            integrity=IntegrityOptions(mac_key=b"k" * 32),
        )
        stack = AuditMiddleware(app(), config)
        with TestClient(stack) as client:
            client.post("/orders/7")
        stored = [json.loads(line) for line in path.read_text().splitlines()]
        chained = [e for e in stored if e.get("kind") == "http"]
        assert chained
        assert "mac" in chained[0]["integrity"]
        for event in chained:
            check_typed(event, AuditEvent, "stored")
