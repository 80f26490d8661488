"""In-process ASGI overhead: bare Starlette app vs a no-op pure-ASGI middleware vs auditmw.

    python benchmarks/bench_asgi.py [--quick]

Each variant serves the same realistic request (six headers, including a bearer
token and a browser user agent) by calling the ASGI app directly.  The delivery
thread's work is inside the timed region: each round ends with ``auditor.flush()``,
so serialization and file writes are counted, not hidden in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from auditmw import AuditConfig, AuditMiddleware, DeliveryOptions
from auditmw.sinks import FileSink
from auditmw.testing import make_scope
from benchmarks._harness import interleave, table, timer, versions

HEADERS = {
    "host": "api.example.com",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "accept": "application/json",
    "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl",
    "x-request-id": "req-0123456789",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
}


async def order(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/orders/{order_id}", order)])


class NoOpMiddleware:
    """The floor: a pure-ASGI middleware that only forwards."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def make_round(app: Any, flush: Any = None) -> Any:
    scope = make_scope("/orders/42", headers=HEADERS)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def serve(n: int) -> None:
        for _ in range(n):
            await app(dict(scope), receive, send)

    loop = asyncio.new_event_loop()

    def run(n: int) -> int:
        start = timer()
        loop.run_until_complete(serve(n))
        if flush is not None:
            flush()
        return timer() - start

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 10 s)")
    args = parser.parse_args()
    n, rounds = (1000, 7) if args.quick else (3000, 15)
    tmp = Path(tempfile.mkdtemp())
    config = AuditConfig(
        service="bench",
        sinks=[FileSink(tmp / "audit.jsonl", fsync="never")],
        delivery=DeliveryOptions(max_queue=100_000),
    )
    audited = AuditMiddleware(bare_app(), config)
    variants = {
        "bare": make_round(bare_app()),
        "no-op middleware": make_round(NoOpMiddleware(bare_app())),
        "auditmw (metadata, file sink)": make_round(audited, lambda: audited.auditor.flush(30)),
    }
    results = interleave(variants, n=n, rounds=rounds)
    print(versions("starlette", "orjson", "auditmw"))
    print(f"{rounds} interleaved rounds of {n} requests\n")
    print(table(results, "bare"))
    audited.auditor.close()


if __name__ == "__main__":
    main()
