"""In-process WSGI overhead: bare Flask app vs a no-op WSGI middleware vs auditmw.

    python -m benchmarks.bench_wsgi [--quick]

Each variant serves the same realistic request (six headers, including a bearer
token and a browser user agent) by calling the WSGI app directly with a prepared
environ, consuming the response iterable and closing it, as a server does.  The
delivery thread's work is inside the timed region: each round ends with
``auditor.flush()``, so serialization and file writes are counted.

Variants: the bare Flask app; a no-op WSGI middleware (the floor); auditmw's WSGI
shell around the Flask app (no route template); the Flask extension (``Audit``:
shell plus the teardown hook reading the route, view args and user).
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
from auditmw.sinks import FileSink
from auditmw.testing import make_environ
from auditmw.wsgi import AuditWSGIMiddleware
from benchmarks._harness import interleave, table, timer, versions

HEADERS = {
    "Host": "api.example.com",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Accept": "application/json",
    "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl",
    "X-Request-ID": "req-0123456789",
    "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
}
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


def config(tmp: Path, name: str) -> AuditConfig:
    return AuditConfig(
        service="bench",
        sinks=[FileSink(tmp / f"{name}.jsonl", fsync="never")],
        delivery=DeliveryOptions(max_queue=100_000),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 10 s)")
    args = parser.parse_args()
    n, rounds = (1000, 7) if args.quick else (2000, 11)
    tmp = Path(tempfile.mkdtemp())
    shell = AuditWSGIMiddleware(bare_app(), config(tmp, "shell"))
    extended = bare_app()
    Audit(extended, config=config(tmp, "flask"))
    flask_auditor = Audit.auditor(extended)
    variants = {
        "bare Flask": make_round(bare_app()),
        "no-op middleware": make_round(NoOpMiddleware(bare_app())),
        "auditmw WSGI shell (file sink)": make_round(shell, lambda: shell.auditor.flush(30)),
        "auditmw Flask extension (file sink)": make_round(
            extended, lambda: flask_auditor.flush(30)
        ),
    }
    results = interleave(variants, n=n, rounds=rounds)
    print(versions("flask", "werkzeug", "orjson", "auditmw"))
    print(f"{rounds} interleaved rounds of {n} requests\n")
    print(table(results, "bare Flask"))
    shell.auditor.close()
    flask_auditor.close()


if __name__ == "__main__":
    main()
