"""Durable mode survives SIGKILL: every response a client received has its event on disk."""

from __future__ import annotations

import signal
import textwrap
from typing import TYPE_CHECKING

import anyio
import httpx
import orjson
import pytest

from .conftest import free_port, run_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

APP = textwrap.dedent(
    """
    import os
    from auditmw.asgi import AuditMiddleware
    from auditmw.config import AuditConfig, DeliveryOptions
    from auditmw.sinks.file import FileSink

    async def endpoint(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = AuditConfig(
        "durable-kill",
        sinks=[FileSink(os.environ["AUDIT_LOG"], fsync="batch")],
        delivery=DeliveryOptions(mode="durable", durable_timeout=5),
    )
    app = AuditMiddleware(endpoint, config)
    """
)


KILL_AFTER = 60  # acknowledged responses before the kill
HANG_GUARD = 120  # seconds; reached only when the server stops answering


async def hammer(base_url: str, kill: object, clients: int = 24) -> list[str]:
    """Send requests from ``clients`` tasks; kill the server after ``KILL_AFTER`` answers.

    Driven by counts, not time: the kill comes once that many responses (with their
    Audit-Ids) were received, however slow the machine.  Returns the Audit-Ids received.
    """
    received: list[str] = []
    dead = anyio.Event()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            while not dead.is_set():
                try:
                    response = await http.get("/orders/1")
                except httpx.HTTPError:
                    if dead.is_set():
                        return
                    continue
                if response.status_code == 200:
                    received.append(response.headers["audit-id"])
                if len(received) >= KILL_AFTER and not dead.is_set():
                    assert callable(kill)
                    kill()
                    dead.set()

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(client)
    return received


class TestDurableKill:
    def test_sigkill_loses_no_acknowledged_event(self, tmp_path: Path) -> None:
        """SIGKILL under load: each received Audit-Id is on disk; at most the last line is torn."""
        (tmp_path / "killapp.py").write_text(APP)
        log = tmp_path / "audit.jsonl"
        port = free_port()
        args = ["uvicorn", "killapp:app", "--app-dir", str(tmp_path), "--port", str(port)]
        args += ["--no-access-log", "--log-level", "warning"]
        with run_server(args, port, env={"AUDIT_LOG": str(log)}, cwd=tmp_path) as server:
            killed = lambda: server.process.send_signal(signal.SIGKILL)  # noqa: E731
            received = anyio.run(hammer, server.base_url, killed)
            server.process.wait(10)
        assert len(received) >= KILL_AFTER
        lines = log.read_bytes().split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # a file ending in "\n" leaves b"" here
        stored = {orjson.loads(line)["event_id"] for line in complete}
        if tail:
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(tail)  # only the very last line may be incomplete
        missing = [audit_id for audit_id in received if audit_id not in stored]
        assert missing == []
