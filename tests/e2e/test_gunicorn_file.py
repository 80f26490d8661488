"""Four gunicorn workers append to one rotating JSONL file under load: no torn or lost line."""

from __future__ import annotations

import gzip
import textwrap
from typing import TYPE_CHECKING

import anyio
import httpx
import orjson
import pytest

from auditmw.sinks.file import rotated_files

from .conftest import free_port, run_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

APP = textwrap.dedent(
    """
    import os
    from auditmw.asgi import AuditMiddleware
    from auditmw.config import AuditConfig
    from auditmw.sinks.file import FileSink

    async def endpoint(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sink = FileSink(os.environ["AUDIT_LOG"], rotate_bytes=16_000, fsync="never", max_files=1000)
    app = AuditMiddleware(endpoint, AuditConfig("gunicorn-file", sinks=[sink]))
    """
)


TOTAL = 600  # responses to receive: enough to rotate the 16 kB file many times
HANG_GUARD = 120  # seconds; reached only when the server stops answering


async def load(base_url: str, total: int = TOTAL, clients: int = 24) -> list[str]:
    """Hit the server from ``clients`` tasks until ``total`` responses arrived; return their ids.

    Driven by a count, not a duration, so a slow machine sends as much as a fast one.
    """
    received: list[str] = []
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(_client, base_url, received, total)
    return received


async def _client(base_url: str, received: list[str], total: int) -> None:
    # No keep-alive: each request is a new connection, so every worker gets a share.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        while len(received) < total:
            response = await http.get("/items/1")
            received.append(response.headers["audit-id"])


def read_all(path: Path) -> list[bytes]:
    lines: list[bytes] = []
    for part in [*rotated_files(path), path]:
        data = part.read_bytes()
        data = gzip.decompress(data) if part.name.endswith(".gz") else data
        assert not data or data.endswith(b"\n"), f"{part.name} ends with a partial line"
        lines.extend(data.splitlines())
    return lines


class TestGunicornFile:
    def test_four_workers_one_rotating_file(self, tmp_path: Path) -> None:
        """Every received Audit-Id is stored exactly once; every line parses; files rotate."""
        (tmp_path / "gunapp.py").write_text(APP)
        log = tmp_path / "audit.jsonl"
        port = free_port()
        args = ["gunicorn", "gunapp:app", "-w", "4", "-k", "uvicorn.workers.UvicornWorker"]
        args += ["-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "--graceful-timeout", "10"]
        with run_server(args, port, env={"AUDIT_LOG": str(log)}, cwd=tmp_path) as server:
            received = anyio.run(load, server.base_url)
            assert server.stop() == 0  # graceful: every worker drains its buffer
        events = [orjson.loads(line) for line in read_all(log)]  # a torn line would not parse
        ids = [e["event_id"] for e in events if e["kind"] == "http"]
        assert len(ids) == len(set(ids))
        assert set(received) <= set(ids)
        assert len(received) >= TOTAL
        assert len(rotated_files(log)) >= 3
        instances = {e["service"]["instance"] for e in events if e["kind"] == "http"}
        # The kernel spreads connections over the workers; how evenly depends on load.
        assert len(instances) >= 2
        assert sum(e["kind"] == "audit.stopped" for e in events) == 4
