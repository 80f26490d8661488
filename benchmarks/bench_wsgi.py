"""In-process WSGI overhead: bare Flask app vs a no-op WSGI middleware vs auditmw.

    python -m benchmarks.bench_wsgi [--quick]

Each variant serves the same realistic request (six headers, including a bearer
token and a browser user agent) by calling the WSGI app directly with a prepared
environ, consuming the response iterable and closing it, as a server does.  The
delivery thread's work is inside the timed region: each round ends with
``auditor.flush()``, so serialization and file writes are counted.

Variants: the bare Flask app; a no-op WSGI middleware (the floor); OpenTelemetry
WSGI instrumentation (SDK, in-memory exporter); the naive audit (``benchmarks/naive.py``:
a hand-written JSON line per request, JWT cached); auditmw's WSGI shell around the
Flask app (no route template); the Flask extension (``Audit``: shell plus the
teardown hook reading the route, view args and user); the Flask extension in the
DESIGN §11 target configuration (verified and cached HS256 JWT, integrity chain).
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask

from auditmw import AuditConfig, DeliveryOptions
from auditmw.contrib.flask import Audit
from auditmw.identity import JWTResolver
from auditmw.integrity import IntegrityOptions, generate_keypair
from auditmw.sinks import FileSink
from auditmw.testing import make_environ
from auditmw.wsgi import AuditWSGIMiddleware
from benchmarks._harness import Section, full_table, interleave, results_data, timer, versions
from benchmarks.bench_asgi import HEADERS as ASGI_HEADERS
from benchmarks.bench_asgi import MAC_KEY, SECRET, builder_counts
from benchmarks.naive import NaiveAuditWSGI

# The same request as the ASGI benchmark (a real HS256 bearer token), WSGI-cased.
HEADERS = {"-".join(p.capitalize() for p in k.split("-")): v for k, v in ASGI_HEADERS.items()}
WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def bare_app() -> Flask:
    app = Flask("bench")

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> str:
        return "ok"

    return app


class NoOpMiddleware:
    """The floor: a WSGI middleware that only forwards."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def make_round(app: WSGIApp, flush: Callable[[], object] | None = None) -> Callable[[int], int]:
    template = make_environ("/orders/42", headers=HEADERS)

    def run(n: int) -> int:
        start = timer()
        for _ in range(n):
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO()
            result = app(environ, start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if flush is not None:
            flush()
        return timer() - start

    return run


def config(tmp: Path, name: str, *, target: bool = False) -> AuditConfig:
    if not target:
        return AuditConfig(
            service="bench",
            sinks=[FileSink(tmp / f"{name}.jsonl", fsync="never")],
            delivery=DeliveryOptions(max_queue=100_000),
        )
    return AuditConfig(
        service="bench",
        sinks=[FileSink(tmp / f"{name}.jsonl")],
        resolvers=[JWTResolver(algorithms=["HS256"], secret=SECRET)],
        integrity=IntegrityOptions(signing_key=generate_keypair()[0], mac_key=MAC_KEY),
        delivery=DeliveryOptions(max_queue=100_000),
    )


def otel_app() -> tuple[WSGIApp, Callable[[], object]]:
    """OpenTelemetry WSGI instrumentation exporting to memory, synchronously."""
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = OpenTelemetryMiddleware(bare_app(), tracer_provider=provider)
    return app, exporter.clear


def run(*, quick: bool, n: int | None = None, rounds: int | None = None) -> Section:
    """Measure every variant in interleaved rounds and return the report section."""
    n = n or (2000 if quick else 4000)
    rounds = rounds or (5 if quick else 11)
    slices = 2 if quick else 5
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        shell = AuditWSGIMiddleware(bare_app(), config(tmp, "shell"))
        extended, target = bare_app(), bare_app()
        Audit(extended, config=config(tmp, "flask"))
        Audit(target, config=config(tmp, "target", target=True))
        flask_auditor, target_auditor = Audit.auditor(extended), Audit.auditor(target)
        otel, otel_flush = otel_app()
        naive = NaiveAuditWSGI(bare_app(), tmp / "naive.jsonl", SECRET)
        variants = {
            "bare Flask": make_round(bare_app()),
            "no-op middleware": make_round(NoOpMiddleware(bare_app())),
            "OpenTelemetry WSGI (in-memory exporter)": make_round(otel, otel_flush),
            "naive audit (hand-written JSON line, JWT cached)": make_round(naive, naive.log.flush),
            "auditmw WSGI shell (file sink)": make_round(shell, lambda: shell.auditor.flush(30)),
            "auditmw Flask extension (file sink)": make_round(
                extended, lambda: flask_auditor.flush(30)
            ),
            "auditmw Flask extension (JWT cached, chain, file)": make_round(
                target, lambda: target_auditor.flush(30)
            ),
        }
        try:
            results = interleave(variants, n=n, rounds=rounds, slices=slices)
        finally:
            for auditor in (shell.auditor, flask_auditor, target_auditor):
                auditor.close()
            naive.log.close()
    markdown = (
        f"{rounds} rounds of {n} requests per variant, each round alternating variants "
        f"in slices of {n // slices} (ABCABC...), after one warm-up round; "
        "the first two auditmw rows write plain events without identity, the last one is "
        "the DESIGN §11 target configuration.\n\n"
        f"{full_table(results, 'bare Flask')}\n\n"
        f"{builder_counts({'auditmw Flask extension (target)': target_auditor.pipeline})}"
    )
    section = Section("wsgi", "In-process WSGI (Flask)", markdown)
    section.data = {"n": n, "rounds": rounds, **results_data(results, "bare Flask")}
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 10 s)")
    args = parser.parse_args()
    section = run(quick=args.quick)
    print(versions("flask", "werkzeug", "opentelemetry-sdk", "orjson", "auditmw"))
    print(section.render())


if __name__ == "__main__":
    main()
