"""In-process ASGI overhead: auditmw against the bare app and the alternatives, side by side.

    python -m benchmarks.bench_asgi [--quick]

Each variant serves the same realistic request (six headers, including a real
HS256 bearer token and a browser user agent) by calling the Starlette app directly
as an ASGI callable.  The delivery thread's work is inside the timed region: each
round ends with ``auditor.flush()``, so serialization, chaining and file writes are
counted, not hidden in a thread; the CPU column is the whole process's CPU time
(all threads) per request.

Variants (GET ``/orders/42``): the bare app; a no-op pure-ASGI middleware (the
floor); a no-op Starlette ``BaseHTTPMiddleware``; ``asgi-correlation-id``;
OpenTelemetry ASGI instrumentation (SDK, in-memory exporter); the naive audit
(``benchmarks/naive.py``: a hand-written JSON line per request, JWT cached); auditmw in the
DESIGN §11 target configuration (metadata level, verified and cached JWT,
integrity chain with MACs and signed checkpoints, file sink, async delivery) and
variants of it (no identity, uncached JWT, file sink without ``fsync``).  A second group sends a POST with
a small JSON body that the app reads, to price the ``request`` level.  When this
auditmw has durable delivery (``DeliveryOptions(mode="durable")``), a third group
compares it with async delivery at 64 concurrent requests (group commit).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from auditmw import AuditConfig, AuditMiddleware, DeliveryOptions
from auditmw.identity import JWTResolver
from auditmw.integrity import IntegrityOptions, generate_keypair
from auditmw.sinks import FileSink
from auditmw.testing import make_scope
from benchmarks._harness import Section, full_table, interleave, results_data, timer, versions
from benchmarks.naive import NaiveAuditASGI

SECRET = b"benchmark-secret-" + b"k" * 47
#: The target configuration MACs every event and checkpoint (DESIGN §9, issue 18).
MAC_KEY = b"benchmark-mac-key-" + b"m" * 46
NOW = int(time.time())
CLAIMS = {"sub": "user-42", "name": "Ada", "roles": ["admin"], "iat": NOW, "exp": NOW + 86_400}
TOKEN = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
HEADERS = {
    "host": "api.example.com",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "accept": "application/json",
    "authorization": f"Bearer {TOKEN}",
    "x-request-id": "7d5c4b8e-2f7a-4c1b-9a57-3f1e2d6c8b90",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
}
BODY = b'{"qty": 2, "items": [1, 2, 3], "note": "leave at the door"}'
DURABLE = "mode" in {f.name for f in fields(DeliveryOptions)}
CLIENTS = 64
Flush = Callable[[], object]


async def order(request: Request) -> Response:
    if request.method == "POST":
        payload = await request.json()
        return JSONResponse({"id": request.path_params["order_id"], "qty": payload["qty"]})
    return PlainTextResponse("ok")


def bare_app() -> Starlette:
    """The application every variant wraps: one parameterised route."""
    return Starlette(routes=[Route("/orders/{order_id}", order, methods=["GET", "POST"])])


class NoOpMiddleware:
    """The floor: a pure-ASGI middleware that only forwards."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class NoOpBaseHTTP(BaseHTTPMiddleware):
    """Starlette's ``BaseHTTPMiddleware`` doing nothing: the cost of the pattern itself."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


def correlation_id_app() -> Any:
    from asgi_correlation_id import CorrelationIdMiddleware

    return CorrelationIdMiddleware(bare_app())


def otel_app() -> tuple[Any, Flush]:
    """OpenTelemetry ASGI instrumentation exporting to memory, synchronously."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryMiddleware(bare_app(), tracer_provider=provider), exporter.clear


def naive_app(tmp: Path) -> NaiveAuditASGI:
    """The hand-written audit line per request (``benchmarks/naive.py``): the lower bound."""
    return NaiveAuditASGI(bare_app(), tmp / "naive.jsonl", SECRET)


def audited(tmp: Path, name: str, **options: Any) -> tuple[AuditMiddleware, Flush]:
    """auditmw in the DESIGN §11 target configuration, with ``options`` overriding it."""
    settings: dict[str, Any] = {
        "service": "bench",
        "sinks": [FileSink(tmp / f"{name}.jsonl")],
        "resolvers": [JWTResolver(algorithms=["HS256"], secret=SECRET)],
        "integrity": IntegrityOptions(signing_key=generate_keypair()[0], mac_key=MAC_KEY),
        "delivery": DeliveryOptions(max_queue=100_000),
    }
    settings.update(options)
    app = AuditMiddleware(bare_app(), AuditConfig(**settings))
    return app, lambda: app.auditor.flush(30)


def make_round(app: Any, flush: Flush | None = None, *, post: bool = False) -> Callable[[int], int]:
    """A timed round: ``n`` requests through ``app``, then drain the delivery thread."""
    method, body = ("POST", BODY) if post else ("GET", b"")
    headers = dict(HEADERS)
    if post:
        headers.update({"content-type": "application/json", "content-length": str(len(body))})
    scope = make_scope("/orders/42", method=method, headers=headers)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def serve(n: int) -> None:
        for _ in range(n):
            await app(dict(scope, state={}), receive, send)

    loop = asyncio.new_event_loop()

    def run(n: int) -> int:
        start = timer()
        loop.run_until_complete(serve(n))
        if flush is not None:
            flush()
        return timer() - start

    return run


TARGET = "auditmw (metadata, JWT cached, chain, file)"
NAIVE = "naive audit (hand-written JSON line, JWT cached)"
#: the pipelines of auditmw variants in this run, for the native builder's counts
PIPELINES: dict[str, Any] = {}


def builder_counts(pipelines: dict[str, Any]) -> str:
    """One line per auditmw variant: how many events the C builder built, how many fell back.

    The native core builds the common request's event in one C call and leaves the rest to
    the Python code (issue 18: "count how often"); on the Python core every event is Python's.
    """
    lines = []
    for name, pipeline in pipelines.items():
        built, fallbacks = pipeline.native_built, pipeline.native_fallbacks
        if pipeline.native_build is None:
            lines.append(f"- {name}: pure-Python core, every event built by the Python code")
        else:
            lines.append(
                f"- {name}: {built} events built in C, {fallbacks} by the Python code "
                "(the first request of each route and rule fills the caches)"
            )
    return "Event builder per auditmw variant:\n\n" + "\n".join(lines) + "\n"


def get_variants(tmp: Path) -> tuple[dict[str, Callable[[int], int]], list[Callable[..., object]]]:
    """The GET group: every alternative and auditmw variant; returns rounds and closers."""
    otel, otel_flush = otel_app()
    target, target_flush = audited(tmp, "target")
    no_identity, no_identity_flush = audited(tmp, "noid", resolvers=[])
    uncached_jwt = JWTResolver(algorithms=["HS256"], secret=SECRET, cache_size=0)
    uncached, uncached_flush = audited(tmp, "uncached", resolvers=[uncached_jwt])
    nosync, nosync_flush = audited(
        tmp, "nosync", sinks=[FileSink(tmp / "nosync.jsonl", fsync="never")]
    )
    naive = naive_app(tmp)
    PIPELINES.update(
        {TARGET: target.auditor.pipeline, "auditmw, no identity": no_identity.auditor.pipeline}
    )
    variants = {
        "bare": make_round(bare_app()),
        "no-op pure-ASGI middleware": make_round(NoOpMiddleware(bare_app())),
        "no-op BaseHTTPMiddleware": make_round(NoOpBaseHTTP(bare_app())),
        "asgi-correlation-id": make_round(correlation_id_app()),
        "OpenTelemetry ASGI (in-memory exporter)": make_round(otel, otel_flush),
        NAIVE: make_round(naive, naive.log.flush),
        TARGET: make_round(target, target_flush),
        "auditmw, file sink without fsync": make_round(nosync, nosync_flush),
        "auditmw, no identity": make_round(no_identity, no_identity_flush),
        "auditmw, JWT verified every request (cache off)": make_round(uncached, uncached_flush),
    }
    closers: list[Callable[..., object]] = [
        target.auditor.close,
        no_identity.auditor.close,
        uncached.auditor.close,
        naive.log.close,
    ]
    return variants, closers


def post_variants(tmp: Path) -> tuple[dict[str, Callable[[int], int]], list[Callable[..., object]]]:
    """The POST group: a small JSON body read by the app, at metadata and request level."""
    metadata, metadata_flush = audited(tmp, "post-metadata")
    request, request_flush = audited(tmp, "post-request", policy={"default_level": "request"})
    variants = {
        "bare (POST JSON)": make_round(bare_app(), post=True),
        "auditmw metadata level (POST JSON)": make_round(metadata, metadata_flush, post=True),
        "auditmw request level, body captured (POST JSON)": make_round(
            request, request_flush, post=True
        ),
    }
    return variants, [metadata.auditor.close, request.auditor.close]


def make_concurrent_round(app: Any, flush: Flush, clients: int) -> Callable[[int], int]:
    """A timed round: ``n`` requests, ``clients`` at a time (concurrent on one event loop)."""
    scope = make_scope("/orders/42", headers=HEADERS)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def serve(n: int) -> None:
        for _ in range(max(1, n // clients)):
            await asyncio.gather(
                *(app(dict(scope, state={}), receive, send) for _ in range(clients))
            )

    loop = asyncio.new_event_loop()

    def run(n: int) -> int:
        start = timer()
        loop.run_until_complete(serve(n))
        flush()
        return timer() - start

    return run


def durable_variants(
    tmp: Path, clients: int
) -> tuple[dict[str, Callable[[int], int]], list[Callable[..., object]]]:
    """Async against durable delivery (group commit) with ``clients`` concurrent requests."""
    durable_options: dict[str, Any] = {"max_queue": 100_000, "mode": "durable"}
    async_app, async_flush = audited(tmp, "group-async")
    durable_app, durable_flush = audited(
        tmp, "group-durable", delivery=DeliveryOptions(**durable_options)
    )
    variants = {
        f"auditmw async delivery, {clients} concurrent": make_concurrent_round(
            async_app, async_flush, clients
        ),
        f"auditmw durable delivery, {clients} concurrent": make_concurrent_round(
            durable_app, durable_flush, clients
        ),
    }
    return variants, [async_app.auditor.close, durable_app.auditor.close]


def run(*, quick: bool, n: int | None = None, rounds: int | None = None) -> Section:
    """Measure both groups in interleaved rounds and return the report section."""
    n = n or (2000 if quick else 5000)
    rounds = rounds or (5 if quick else 11)
    slices = 2 if quick else 5
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        get, close_get = get_variants(tmp)
        post, close_post = post_variants(tmp)
        group, close_group = durable_variants(tmp, CLIENTS) if DURABLE else ({}, [])
        try:
            get_results = interleave(get, n=n, rounds=rounds, slices=slices)
            post_results = interleave(post, n=n, rounds=rounds, slices=slices)
            # Durable requests wait for an fsync: fewer of them, so the part stays short.
            group_n = max(CLIENTS, n // 4)
            group_results = interleave(group, n=group_n, rounds=rounds) if group else {}
        finally:
            for close in close_get + close_post + close_group:
                close()
    markdown = (
        f"{rounds} rounds of {n} requests per variant, each round alternating variants "
        f"in slices of {n // slices} (ABCABC...), after one warm-up round; "
        "wall time includes draining the delivery thread at the end of each round.\n\n"
        f"{full_table(get_results, 'bare')}\n\n"
        f"POST with a {len(BODY)}-byte JSON body read by the app:\n\n"
        f"{full_table(post_results, 'bare (POST JSON)')}\n\n"
        f"{builder_counts(PIPELINES)}"
    )
    if group_results:
        base = next(iter(group_results))
        markdown += (
            f"\nDurable delivery (group commit) against async delivery, {CLIENTS} concurrent "
            f"requests on one event loop, {group_n} requests per round:\n\n"
            f"{full_table(group_results, base)}\n"
        )
    section = Section("asgi", "In-process ASGI (Starlette)", markdown)
    section.data = {
        "n": n,
        "rounds": rounds,
        "get": results_data(get_results, "bare"),
        "post": results_data(post_results, "bare (POST JSON)"),
    }
    if group_results:
        section.data["durable"] = results_data(group_results, next(iter(group_results)))
    if not DURABLE:
        section.notes.append(
            "durable delivery skipped: this auditmw's DeliveryOptions has no `mode` "
            "(the sinks branch adds it)"
        )
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 20 s)")
    args = parser.parse_args()
    section = run(quick=args.quick)
    print(versions("starlette", "asgi-correlation-id", "opentelemetry-sdk", "orjson", "auditmw"))
    print(section.render())


if __name__ == "__main__":
    main()
