"""The benchmarks' naive audit peer writes the line it claims to, for ASGI and WSGI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from benchmarks.naive import NaiveAuditWSGI

from auditmw.testing import make_scope
from benchmarks import bench_asgi, bench_wsgi


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_asgi_line_per_request(tmp_path: Path) -> None:
    """Each request through the ASGI twin appends one line with status and verified user."""
    app = bench_asgi.naive_app(tmp_path)
    scope = make_scope("/orders/42", headers=bench_asgi.HEADERS)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def serve() -> None:
        for _ in range(3):
            await app(dict(scope), receive, send)

    asyncio.run(serve())
    app.log.close()
    records = lines(tmp_path / "naive.jsonl")
    assert len(records) == 3
    assert {r["status"] for r in records} == {200}
    assert {r["user"] for r in records} == {"user-42"}
    assert records[0]["path"] == "/orders/42"
    assert records[0]["request_id"] == bench_asgi.HEADERS["x-request-id"]


def test_wsgi_line_per_request(tmp_path: Path) -> None:
    """The WSGI twin records the same fields around the Flask app."""
    app = NaiveAuditWSGI(bench_wsgi.bare_app(), tmp_path / "naive.jsonl", bench_asgi.SECRET)
    bench_wsgi.make_round(app, app.log.flush)(2)
    app.log.close()
    records = lines(tmp_path / "naive.jsonl")
    assert [(r["status"], r["user"], r["method"]) for r in records] == [(200, "user-42", "GET")] * 2


def test_forged_token_has_no_user(tmp_path: Path) -> None:
    """A token signed with another key is not trusted (the peer verifies, as auditmw does)."""
    app = NaiveAuditWSGI(bench_wsgi.bare_app(), tmp_path / "naive.jsonl", b"another-secret" * 4)
    bench_wsgi.make_round(app, app.log.flush)(1)
    app.log.close()
    assert lines(tmp_path / "naive.jsonl")[0]["user"] is None
