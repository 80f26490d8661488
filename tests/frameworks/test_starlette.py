"""AuditMiddleware through real Starlette apps: transparency, outcomes, hostile input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from auditmw import AuditConfig, AuditMiddleware
from auditmw.sinks import MemorySink
from auditmw.testing import assert_audited, make_scope
from auditmw.types import Event, Message

AppFactory = Callable[..., Starlette]


class Boom(Exception):
    """The app's own exception, which must come back unchanged."""


async def orders(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["order_id"]})


async def boom(request: Request) -> Response:
    raise Boom("do not log this message")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(text)
    except WebSocketDisconnect:
        pass


async def ws_reject(websocket: WebSocket) -> None:
    await websocket.close(code=1008)


def routes(tmp_path: Path) -> list[Any]:
    static = tmp_path / "report.txt"
    static.write_bytes(b"x" * 10_000)

    async def file(request: Request) -> Response:
        return FileResponse(static)

    async def plain(request: Request) -> Response:
        return PlainTextResponse("hello")

    return [
        Route("/orders/{order_id:int}", orders, methods=["GET", "PUT", "HEAD"]),
        Route("/boom", boom),
        Route("/file", file),
        Route("/plain", plain),
        Mount("/v1", routes=[Route("/orders/{order_id:int}", orders)]),
        WebSocketRoute("/ws", ws_echo),
        WebSocketRoute("/ws-reject", ws_reject),
    ]


@pytest.fixture
def make_app(tmp_path: Path, audit_config: AuditConfig) -> AppFactory:
    """Build a fresh Starlette app behind AuditMiddleware."""

    def factory(**kwargs: Any) -> Starlette:
        middleware = [Middleware(AuditMiddleware, config=kwargs.pop("config", audit_config))]
        return Starlette(routes=routes(tmp_path), middleware=middleware, **kwargs)

    return factory


def http_events(sink: MemorySink) -> list[Event]:
    return [e for e in sink.events if e["kind"] in ("http", "websocket")]


class TestHTTP:
    def test_one_event_per_request_with_route_template(
        self, make_app: AppFactory, audit_events: list[Event]
    ) -> None:
        """Each request yields exactly one event, resource from the route template."""
        with TestClient(make_app()) as client:
            response = client.get("/orders/42")
        assert response.json() == {"id": 42}
        requests = [e for e in audit_events if e["kind"] == "http"]
        assert len(requests) == 1
        event = requests[0]
        assert event["request"]["route"] == "/orders/{order_id}"
        assert event["resource"] == {
            "type": "orders",
            "id": "42",
            "route_params": {"order_id": "42"},
        }
        assert event["action"] == "orders.read"
        assert response.headers["audit-id"] == event["event_id"]

    def test_lifespan_writes_started_and_stopped(
        self, make_app: AppFactory, jsonl_path: Path
    ) -> None:
        """Lifespan start and stop emit lifecycle events and flush the file sink."""
        with TestClient(make_app()) as client:
            client.get("/plain")
        kinds = [orjson.loads(line)["kind"] for line in jsonl_path.read_bytes().splitlines()]
        assert kinds == ["audit.started", "audit.policy_loaded", "http", "audit.stopped"]

    def test_exception_is_recorded_and_reraised_unchanged(
        self, make_app: AppFactory, audit_events: list[Event]
    ) -> None:
        """The app's exception propagates; the event says error, without the message."""
        with (
            TestClient(make_app(), raise_server_exceptions=True) as client,
            pytest.raises(Boom) as info,
        ):
            client.get("/boom")
        assert str(info.value) == "do not log this message"
        event = assert_audited(audit_events, kind="http", outcome="error")
        assert event["outcome_reason"] == "exception:Boom"
        assert event["response"]["status_code"] == 500
        assert b"do not log" not in orjson.dumps(event)

    @pytest.mark.anyio
    async def test_exception_object_is_the_same(self, audit_events: list[Event]) -> None:
        """The very same exception object (and traceback) comes back out."""
        original = Boom("x")

        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise original

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            raise AssertionError("nothing is sent")  # pragma: no cover

        with pytest.raises(Boom) as info:
            await AuditMiddleware(app, AuditConfig(service="s"))(make_scope("/"), receive, send)
        assert info.value is original
        assert_audited(audit_events, outcome="error", outcome_reason="exception:Boom")

    def test_head_passes_through(self, make_app: AppFactory, audit_events: list[Event]) -> None:
        """HEAD gets headers and no body; the event is a read."""
        with TestClient(make_app()) as client:
            response = client.head("/orders/1")
        assert response.status_code == 200
        assert response.content == b""
        assert_audited(audit_events, request__method="HEAD", operation="read", outcome="success")

    def test_file_response_is_untouched(
        self, make_app: AppFactory, audit_events: list[Event]
    ) -> None:
        """A FileResponse arrives byte for byte; the event counts the bytes."""
        with TestClient(make_app()) as client:
            response = client.get("/file")
        assert response.content == b"x" * 10_000
        assert response.headers["content-length"] == "10000"
        assert_audited(audit_events, request__path="/file", response__bytes=10_000)

    def test_mounted_route_template_includes_mount(
        self, make_app: AppFactory, audit_events: list[Event]
    ) -> None:
        """Routes inside a Mount are recorded with the mount prefix."""
        with TestClient(make_app()) as client:
            client.get("/v1/orders/3")
        assert_audited(audit_events, request__route="/v1/orders/{order_id}", resource__id="3")

    def test_not_found_has_no_route(self, make_app: AppFactory, audit_events: list[Event]) -> None:
        """A 404 has no route template and an 'unmatched' resource."""
        with TestClient(make_app()) as client:
            client.get("/nope/1")
        event = assert_audited(audit_events, kind="http", outcome="failure")
        assert "route" not in event["request"]
        assert event["resource"] == {"type": "unmatched"}

    def test_audit_id_header_configurable_and_off(self, tmp_path: Path) -> None:
        """The Audit-Id header can be renamed or disabled."""
        app = Starlette(routes=routes(tmp_path))
        renamed = AuditMiddleware(app, AuditConfig(service="s", audit_id_header="X-Audit"))
        off = AuditMiddleware(app, AuditConfig(service="s", audit_id_header=None))
        assert "x-audit" in TestClient(renamed).get("/plain").headers
        headers = TestClient(off).get("/plain").headers
        assert "x-audit" not in headers
        assert "audit-id" not in headers

    def test_framework_user_read_after_app(self, tmp_path: Path, audit_events: list[Event]) -> None:
        """scope['user'] set by AuthenticationMiddleware inside the audit middleware is seen."""

        class HeaderAuth(AuthenticationBackend):
            async def authenticate(
                self, conn: HTTPConnection
            ) -> tuple[AuthCredentials, SimpleUser] | None:
                name = conn.headers.get("x-user")
                return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None

        app = Starlette(
            routes=routes(tmp_path),
            middleware=[
                Middleware(AuditMiddleware, config=AuditConfig(service="s")),
                Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            ],
        )
        with TestClient(app) as client:
            client.get("/plain", headers={"x-user": "ada"})
            client.get("/plain")
        users = [e["actor"] for e in audit_events if e["kind"] == "http"]
        assert users[0]["id"] == "ada"
        assert users[0]["type"] == "user"
        assert users[0]["auth"] == {"method": "session", "verified": True}
        assert users[1]["type"] == "anonymous"


class TestHostileInput:
    def test_hostile_request_stays_one_valid_json_line(
        self, make_app: AppFactory, jsonl_path: Path
    ) -> None:
        """Non-UTF-8 header bytes, a 64 KiB header and a newline path give one valid line."""
        scope = make_scope(
            '/orders/1\n{"forged": true}',
            headers=[("user-agent", "ua"), ("x-big", "B" * 65536)],
        )
        scope["headers"].append((b"referer", b"\xff\xfe\x00\x1b[31m"))
        scope["headers"][1] = (b"user-agent", b"Mozilla \xc0\xaf " + b"A" * 65536)
        app = make_app()
        messages: list[Message] = []

        async def run() -> None:
            async def receive() -> Message:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: Message) -> None:
                messages.append(message)

            await app(scope, receive, send)

        anyio.run(run)
        lines = _flush_lines(app, jsonl_path)
        assert len(lines) == 1 + 2  # started, policy_loaded, http
        event = orjson.loads(lines[-1])
        assert event["request"]["path"].startswith("/orders/1\n")
        assert len(event["source"]["user_agent"]) == 512
        assert event["source"]["user_agent"].startswith("Mozilla \\xc0\\xaf ")
        assert "/source/user_agent" in event["truncated"]


def _flush_lines(app: Starlette, path: Path) -> list[bytes]:
    """Flush the auditor of ``app`` and return the JSONL file's lines."""
    auditor = _auditor(app)
    assert auditor.flush(5)
    return path.read_bytes().splitlines()


def _auditor(app: Starlette) -> Any:
    stack: Any = app.middleware_stack
    while stack is not None and not isinstance(stack, AuditMiddleware):
        stack = getattr(stack, "app", None)
    assert isinstance(stack, AuditMiddleware)
    return stack.auditor


class TestStreaming:
    @pytest.mark.anyio
    async def test_first_chunk_arrives_before_generator_finishes(
        self, audit_events: list[Event]
    ) -> None:
        """The middleware forwards each chunk at once: the generator waits for the client."""
        first_seen = anyio.Event()

        async def stream() -> AsyncIterator[bytes]:
            yield b"first,"
            with anyio.fail_after(5):  # deadlocks here if the middleware buffered
                await first_seen.wait()
            yield b"second"

        async def endpoint(request: Request) -> Response:
            return StreamingResponse(stream())

        app = AuditMiddleware(Starlette(routes=[Route("/s", endpoint)]), AuditConfig(service="s"))
        chunks: list[bytes] = []

        async def receive() -> Message:
            await anyio.sleep_forever()
            raise AssertionError  # pragma: no cover

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                chunks.append(message["body"])
                first_seen.set()

        await app(make_scope("/s"), receive, send)
        assert chunks == [b"first,", b"second"]
        assert_audited(audit_events, kind="http", outcome="success", response__bytes=12)

    @pytest.mark.anyio
    @pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
    async def test_client_disconnect_mid_stream_is_aborted(
        self, spec_version: str, audit_events: list[Event]
    ) -> None:
        """A client that goes away mid-stream yields an 'aborted' event.

        ASGI < 2.4 servers announce it with ``http.disconnect``; 2.4 servers make
        ``send`` raise ``OSError`` (Starlette turns it into ``ClientDisconnect``).
        """

        class Endless:
            # An iterator object, not an async generator: Starlette does not aclose()
            # the stream it abandons, and trio warns about unclosed generators.
            def __aiter__(self) -> Endless:
                return self

            async def __anext__(self) -> bytes:
                await anyio.sleep(0.01)
                return b"tick"

        async def endpoint(request: Request) -> Response:
            return StreamingResponse(Endless())

        app = AuditMiddleware(Starlette(routes=[Route("/s", endpoint)]), AuditConfig(service="s"))
        sent = anyio.Event()
        chunks = 0

        async def receive() -> Message:
            await sent.wait()
            if spec_version == "2.4":
                await anyio.sleep_forever()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal chunks
            if message["type"] == "http.response.body":
                chunks += 1
                sent.set()
                if spec_version == "2.4" and chunks > 2:
                    raise OSError("connection reset")

        scope = make_scope("/s")
        scope["asgi"]["spec_version"] = spec_version
        with anyio.fail_after(5):
            raised: str | None
            try:
                await app(scope, receive, send)
            except Exception as exc:  # Starlette's ClientDisconnect propagates to the server
                raised = type(exc).__name__
            else:
                raised = None
        assert raised == ("ClientDisconnect" if spec_version == "2.4" else None)
        event = assert_audited(audit_events, kind="http", outcome="aborted")
        assert event["outcome_reason"] == "client_disconnected"
        assert event["response"]["status_code"] == 200

    @pytest.mark.anyio
    async def test_concurrent_requests_keep_their_own_identity(
        self, audit_events: list[Event]
    ) -> None:
        """50 requests in flight at once: one event each, never mixed up."""

        async def endpoint(request: Request) -> Response:
            await anyio.sleep(0.05)
            return PlainTextResponse(request.headers["x-user"])

        class HeaderAuth(AuthenticationBackend):
            async def authenticate(
                self, conn: HTTPConnection
            ) -> tuple[AuthCredentials, SimpleUser]:
                return AuthCredentials(["authenticated"]), SimpleUser(conn.headers["x-user"])

        app = Starlette(
            routes=[Route("/who", endpoint)],
            middleware=[
                Middleware(AuditMiddleware, config=AuditConfig(service="s")),
                Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            ],
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def one(i: int) -> None:
                headers = {"x-user": f"user-{i}", "x-request-id": f"req-{i}"}
                response = await client.get("/who", headers=headers)
                assert response.text == f"user-{i}"

            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(one, i)
        events = [e for e in audit_events if e["kind"] == "http"]
        assert len(events) == 50
        assert len({e["event_id"] for e in events}) == 50
        for event in events:
            assert event["request"]["id"] == "req-" + event["actor"]["id"].removeprefix("user-")


class TestWebSocket:
    def test_accepted_session(self, make_app: AppFactory, audit_events: list[Event]) -> None:
        """An accepted session is one event with message counts and close code."""
        with TestClient(make_app()) as client, client.websocket_connect("/ws") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
            ws.send_text("again")
            assert ws.receive_text() == "again"
        event = assert_audited(audit_events, kind="websocket")
        assert event["websocket"] == {
            "close_code": 1000,
            "messages_received": 2,
            "messages_sent": 2,
        }
        assert event["outcome"] == "success"
        assert event["response"]["status_code"] == 101
        assert event["request"]["route"] == "/ws"

    def test_rejected_session(self, make_app: AppFactory, audit_events: list[Event]) -> None:
        """A session closed before accept is a denial."""
        with (
            TestClient(make_app()) as client,
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect("/ws-reject"),
        ):
            pass  # pragma: no cover
        event = assert_audited(audit_events, kind="websocket")
        assert (event["outcome"], event["response"]["status_code"]) == ("denied", 403)
        assert event["websocket"]["close_code"] == 1008


class TestOtherScopes:
    @pytest.mark.anyio
    async def test_unknown_scope_type_passes_through(self) -> None:
        """Scope types auditmw does not know are handed to the app untouched."""
        seen: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["type"])

        await AuditMiddleware(app, AuditConfig(service="s"))({"type": "custom"}, None, None)  # type: ignore[arg-type]
        assert seen == ["custom"]

    def test_missing_config_is_a_clear_error(self) -> None:
        """Without config or auditor the middleware names what to pass."""
        with pytest.raises(ValueError, match=r"config=AuditConfig"):
            AuditMiddleware(Starlette())
