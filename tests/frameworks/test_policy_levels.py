"""Each policy level's effect on real requests through a FastAPI app."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from auditmw.asgi import AuditMiddleware
from auditmw.config import AuditConfig
from auditmw.policy import Policy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from auditmw.types import Event


POLICY: dict[str, Any] = {
    "id": "levels",
    "headers": ["content-type"],
    "rules": [
        {"id": "probe", "methods": ["GET"], "paths": ["/health"], "level": "none"},
        {"id": "quiet-login", "paths": ["/login"], "level": "none"},
        {
            "id": "place",
            "methods": ["POST"],
            "routes": ["/orders"],
            "level": "request",
            "action": "orders.place",
            "headers": ["x-reason", "authorization"],
        },
        {
            "id": "full",
            "routes": ["/orders/{order_id}"],
            "level": "request_response",
            "resource": {"type": "order", "id": "{order_id}"},
            "max_body_bytes": 64,
        },
        {"id": "stream", "routes": ["/stream"], "level": "request_response"},
    ],
}


def build_app(first_seen: threading.Event | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/login")
    async def login() -> Response:
        return JSONResponse({"error": "bad credentials"}, status_code=401)

    @app.post("/notes")
    async def notes(request: Request) -> dict[str, Any]:
        return {"echo": await request.json()}

    @app.post("/orders")
    async def place(request: Request) -> dict[str, Any]:
        return {"echo": await request.json()}

    @app.put("/orders/{order_id}")
    async def update(order_id: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"id": order_id, "qty": body["qty"], "access_token": "eyJabcd.eyJefgh.sig"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first,"
            if first_seen is not None:
                # Wait until the client holds the first chunk: proves it was not held back.
                for _ in range(500):
                    if first_seen.is_set():
                        break
                    await asyncio.sleep(0.01)
                yield b"second" if first_seen.is_set() else b"late"
            else:
                yield b"second"

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(policy: dict[str, Any] = POLICY) -> httpx.AsyncClient:
        config = AuditConfig(service="orders-api", policy=Policy(policy))
        transport = httpx.ASGITransport(AuditMiddleware(build_app(), config))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def http_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "http"]


@pytest.mark.anyio
class TestLevels:
    """none, metadata, request, request_response on real requests."""

    async def test_none(
        self, client_factory: Callable[..., httpx.AsyncClient], audit_events: list[Event]
    ) -> None:
        """A ``none`` rule records nothing."""
        assert (await client_factory().get("/health")).status_code == 200
        assert http_events(audit_events) == []

    async def test_floor(
        self, client_factory: Callable[..., httpx.AsyncClient], audit_events: list[Event]
    ) -> None:
        """A 401 under a ``none`` rule is still recorded (the floor)."""
        assert (await client_factory().post("/login", json={"password": "pw"})).status_code == 401
        (event,) = http_events(audit_events)
        assert event["outcome"] == "denied"
        assert event["policy"]["rule"] == "quiet-login"
        assert "body" not in event["request"]

    async def test_metadata(
        self, client_factory: Callable[..., httpx.AsyncClient], audit_events: list[Event]
    ) -> None:
        """The default ``metadata`` level records no body; the app still reads it."""
        response = await client_factory().post("/notes", json={"text": "hello"})
        assert response.json() == {"echo": {"text": "hello"}}
        (event,) = http_events(audit_events)
        assert event["policy"] == {"id": "levels", "hash": Policy(POLICY).hash, "rule": "default"}
        assert "body" not in event["request"]
        assert event["request"]["headers"] == {"content-type": "application/json"}

    async def test_request(
        self, client_factory: Callable[..., httpx.AsyncClient], audit_events: list[Event]
    ) -> None:
        """``request`` adds the redacted request body; the app sees the original."""
        payload = {"item": "book", "qty": 2, "card": {"password": "hunter2"}}
        response = await client_factory().post(
            "/orders",
            json=payload,
            headers={"x-reason": "restock", "authorization": "Bearer abc"},
        )
        assert response.json() == {"echo": payload}
        (event,) = http_events(audit_events)
        assert event["action"] == "orders.place"
        assert event["policy"]["rule"] == "place"
        assert event["request"]["body"]["json"] == {"item": "book", "qty": 2, "card": {}}
        assert event["request"]["body"]["size"] == len(response.request.content)
        assert event["request"]["headers"] == {"x-reason": "restock"}
        assert event["redactions"] == ["/request/body/json/card/password"]
        assert "body" not in event["response"]

    async def test_request_response(
        self, client_factory: Callable[..., httpx.AsyncClient], audit_events: list[Event]
    ) -> None:
        """``request_response`` adds the redacted response body; rule resource applies."""
        response = await client_factory().put("/orders/42", json={"qty": 3})
        assert response.json()["access_token"] == "eyJabcd.eyJefgh.sig"
        (event,) = http_events(audit_events)
        assert event["resource"] == {
            "type": "order",
            "id": "42",
            "route_params": {"order_id": "42"},
        }
        assert event["request"]["body"]["json"] == {"qty": 3}
        assert event["response"]["body"]["json"] == {"id": "42", "qty": 3}
        assert event["response"]["body"]["content_type"] == "application/json"
        assert event["redactions"] == ["/response/body/json/access_token"]

    async def test_cap(
        self, client_factory: Callable[..., httpx.AsyncClient], audit_events: list[Event]
    ) -> None:
        """A body over the rule's cap is marked truncated with its original size."""
        await client_factory().put("/orders/7", json={"qty": 1, "note": "x" * 200})
        (event,) = http_events(audit_events)
        body = event["request"]["body"]
        assert body["truncated"] is True
        assert body["size"] > 200
        assert "json" not in body

    async def test_streamed_response_recorded(
        self, client_factory: Callable[..., httpx.AsyncClient], audit_events: list[Event]
    ) -> None:
        """A streamed response is recorded in full at ``request_response``."""
        assert (await client_factory().get("/stream")).text == "first,second"
        (event,) = http_events(audit_events)
        body = event["response"]["body"]
        assert body["size"] == len(b"first,second")
        assert body["content_type"].startswith("text/plain")
        assert body["content"] == "omitted"  # no redaction key: no digest at all
        assert "sha256" not in body


@pytest.fixture
def served() -> Iterator[tuple[str, threading.Event]]:
    """A real uvicorn server in a thread, on 127.0.0.1 and a free port."""
    first_seen = threading.Event()
    config = AuditConfig(service="orders-api", policy=Policy(POLICY))
    app = AuditMiddleware(build_app(first_seen), config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="error", lifespan="off", ws="none", http="h11")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", first_seen
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class TestStreaming:
    """Body capture never holds a stream back."""

    def test_first_chunk_before_generator_finishes(
        self, served: tuple[str, threading.Event], audit_events: list[Event]
    ) -> None:
        """The client gets the first chunk while the generator still waits for it."""
        url, first_seen = served
        chunks: list[bytes] = []
        with httpx.Client() as client, client.stream("GET", f"{url}/stream") as response:
            for chunk in response.iter_raw():
                if chunk:
                    chunks.append(chunk)
                    first_seen.set()
        assert b"".join(chunks) == b"first,second"
        assert len(chunks) >= 2
        deadline = time.monotonic() + 5
        while not http_events(audit_events) and time.monotonic() < deadline:
            time.sleep(0.01)
        (event,) = http_events(audit_events)
        assert event["response"]["body"]["size"] == len(b"first,second")
