"""End to end: the demo app under a real uvicorn process, driven over loopback by httpx."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import orjson
import pytest

from auditmw.types import Event

from .conftest import Server, free_port, run_server

pytestmark = pytest.mark.e2e


def read_events(path: Path, *, want: int, kind: str = "http", timeout: float = 10) -> list[Event]:
    """Wait until the file holds ``want`` events of ``kind``; return them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_bytes().splitlines() if path.exists() else []
        events = [orjson.loads(line) for line in lines]
        matching = [e for e in events if e["kind"] == kind]
        if len(matching) >= want or time.monotonic() > deadline:
            return matching
        time.sleep(0.05)


class TestUvicorn:
    def test_requests_are_audited_with_ids_and_outcomes(
        self, demo_server: tuple[Server, Path]
    ) -> None:
        """Anonymous, user, failing and missing requests each produce one event."""
        server, log = demo_server
        with httpx.Client(base_url=server.base_url) as client:
            ok = client.get("/orders/1")
            user = client.put("/orders/1", params={"qty": 3}, headers={"x-demo-user": "ada"})
            missing = client.get("/orders/999")
            denied = client.delete("/orders/1", headers={"x-demo-user": "mallory"})
            failed = client.post("/orders/1/fail")
        assert [r.status_code for r in (ok, user, missing, denied, failed)] == [
            200,
            200,
            404,
            403,
            500,
        ]
        events = read_events(log, want=6)  # the readiness probe on /health is audited too
        by_id = {e["event_id"]: e for e in events}
        for response in (ok, user, missing, denied):
            assert response.headers["audit-id"] in by_id
        assert by_id[user.headers["audit-id"]]["actor"]["id"] == "ada"
        assert by_id[user.headers["audit-id"]]["action"] == "orders.update"
        assert by_id[denied.headers["audit-id"]]["outcome"] == "denied"
        errors = [e for e in events if e["outcome"] == "error"]
        assert len(errors) == 1
        assert errors[0]["outcome_reason"] == "exception:RuntimeError"
        assert all(e["source"]["ip"] == "127.0.0.1" for e in events)

    def test_stream_reaches_client_before_generator_finishes(
        self, demo_server: tuple[Server, Path]
    ) -> None:
        """The first chunk arrives while the generator still waits; nothing is buffered."""
        server, log = demo_server
        with (
            httpx.Client(base_url=server.base_url, timeout=10) as client,
            client.stream("GET", "/held-stream") as response,
        ):
            chunks = response.iter_raw()
            assert next(chunks) == b"first\n"  # would time out if buffered
            client.post("/release")
            assert b"".join(chunks) == b"second\n"
        events = read_events(log, want=3)
        stream = next(e for e in events if e["request"]["path"] == "/held-stream")
        assert stream["outcome"] == "success"
        assert stream["response"]["bytes"] == len(b"first\nsecond\n")

    def test_client_disconnect_mid_stream(self, demo_server: tuple[Server, Path]) -> None:
        """A client that closes the connection mid-stream gives an 'aborted' event."""
        server, log = demo_server
        with (
            httpx.Client(base_url=server.base_url, timeout=10) as client,
            client.stream("GET", "/stream", params={"count": 100000}) as response,
        ):
            next(response.iter_raw())
        events = read_events(log, want=2)
        stream = [e for e in events if e["request"]["path"] == "/stream"]
        assert stream, events
        assert stream[0]["outcome"] == "aborted"

    def test_fifty_concurrent_requests(self, demo_server: tuple[Server, Path]) -> None:
        """50 requests in flight: exactly one event each, with its own user and request id."""
        server, log = demo_server

        async def main() -> list[httpx.Response]:
            responses: list[httpx.Response] = []
            limits = httpx.Limits(max_connections=50)
            async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as client:

                async def one(i: int) -> None:
                    headers = {"x-demo-user": f"user-{i}", "x-request-id": f"req-{i}"}
                    responses.append(
                        await client.get("/stream", params={"count": 3}, headers=headers)
                    )

                async with anyio.create_task_group() as tg:
                    for i in range(50):
                        tg.start_soon(one, i)
            return responses

        responses = anyio.run(main)
        assert all(r.status_code == 200 for r in responses)
        events = [e for e in read_events(log, want=51) if e["request"]["path"] == "/stream"]
        assert len(events) == 50
        for event in events:
            assert event["request"]["id"] == "req-" + event["actor"]["id"].removeprefix("user-")
        assert {r.headers["audit-id"] for r in responses} == {e["event_id"] for e in events}

    def test_shutdown_flushes_and_records_stop(self, demo_server: tuple[Server, Path]) -> None:
        """SIGTERM runs lifespan shutdown: every event is on disk, then audit.stopped."""
        server, log = demo_server
        with httpx.Client(base_url=server.base_url) as client:
            for _ in range(20):
                client.get("/orders/1")
        # uvicorn re-raises the signal after a graceful shutdown.
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log.read_text()
        records = [orjson.loads(line)["kind"] for line in log.read_bytes().splitlines()]
        # The demo chains its log: signed checkpoints open and close the chain.
        assert records[0] == records[-1] == "audit.checkpoint"
        kinds = [kind for kind in records if kind != "audit.checkpoint"]
        assert kinds[:2] == ["audit.started", "audit.policy_loaded"]
        assert kinds[-1] == "audit.stopped"
        assert kinds.count("http") == 21


SHELL_APP = """
import os

from fastapi import FastAPI, Request

from auditmw import AuditConfig, AuditMiddleware
from auditmw.sinks import FileSink

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.get("/items/{item_id}")
async def item(item_id: str) -> dict[str, str]:
    return {"id": item_id}


app = AuditMiddleware(
    app, AuditConfig(service="shells", sinks=[FileSink(os.environ["AUDITMW_DEMO_LOG"])])
)
"""


@pytest.fixture
def shell_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Server, Path]]:
    """A small FastAPI app under uvicorn; ``request.param`` adds uvicorn arguments."""
    (tmp_path / "shellapp.py").write_text(SHELL_APP)
    port = free_port()
    audit_log = tmp_path / "audit.jsonl"
    extra: list[str] = getattr(request, "param", [])
    args = ["uvicorn", "shellapp:app", "--app-dir", str(tmp_path), "--port", str(port)]
    args += ["--no-access-log", *extra]
    env = {"AUDITMW_DEMO_LOG": str(audit_log)}
    with run_server(args, port, env=env, cwd=tmp_path) as server:
        yield server, audit_log


class TestUvicornShells:
    def test_half_upload_then_close_is_aborted(self, shell_server: tuple[Server, Path]) -> None:
        """A real socket sends half the announced body and closes: one 'aborted' event."""
        server, log = shell_server
        port = int(server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100
            )
        # The timeout is only a hang guard: the wait ends as soon as both events are in.
        events = [
            e for e in read_events(log, want=2, timeout=60) if e["request"]["path"] == "/upload"
        ]
        assert len(events) == 1, events
        (event,) = events
        assert event["outcome"] == "aborted"
        assert event["outcome_reason"] == "client_disconnected"
        assert event["severity"] == "low"
        assert "exception" not in event["outcome_reason"]

    @pytest.mark.parametrize("shell_server", [["--root-path", "/api/v1"]], indirect=True)
    def test_server_root_path_route_and_path_share_a_base(
        self, shell_server: tuple[Server, Path]
    ) -> None:
        """uvicorn --root-path: path and route are both relative to the root path."""
        server, log = shell_server
        # The proxy in front strips /api/v1; uvicorn puts it back into scope["path"].
        assert httpx.get(server.base_url + "/items/7").status_code == 200
        events = [e for e in read_events(log, want=2, timeout=60) if e["request"].get("route")]
        (event,) = [e for e in events if "items" in e["request"]["path"]]
        assert event["request"]["route"] == "/items/{item_id}"
        assert event["request"]["path"] == "/items/7"
        assert event["request"]["root_path"] == "/api/v1"
        assert event["resource"]["id"] == "7"
