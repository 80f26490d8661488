"""Instructions per request of one part of the target ASGI variant at a time (callgrind).

    python -m benchmarks.callgrind_parts [--parts app,nosink,noid,nochain,encode,...] [--n 500]

The whole-request figure of :mod:`benchmarks.callgrind` says how much auditmw costs,
not where.  Every part runs that module's target configuration (MAC on every event,
checkpoints by count only).  Each part here is counted the same way (a run of ``n`` and one of
``2n``, the difference over ``n``, every thread included), so that parts subtract:

- ``bare``: the bare app; ``target``: the target variant (as ``benchmarks.callgrind``);
- ``nosink``: the target variant without sinks (events built and queued, never encoded);
- ``noid``: ``nosink`` without the JWT resolver;
- ``shell``: ``noid`` with a pipeline that builds no event (the shell and the auditor alone);
- ``nochain``: the target variant with plain lines (no integrity chain);
- ``encode``: the chain encoder alone over the target's event (serialize, chain, MAC,
  checkpoints with their Merkle roots), in batches of 512 as the worker sees them;
- ``build``: ``Pipeline.process`` alone over the target's exchange;
- ``flask-shell``: the Flask extension without sinks, resolvers or events (the WSGI
  shell, the Flask hooks and the auditor over ``flask-bare`` of :mod:`benchmarks.callgrind`);
- ``wsgi-app``: a minimal WSGI app (a list body) served as :mod:`benchmarks.bench_wsgi`
  serves Flask; ``wsgi-shell``: the same app in the WSGI shell, building no event, so
  that ``wsgi-shell`` minus ``wsgi-app`` is what the shell alone costs;
  ``wsgi-app-iter`` and ``wsgi-shell-iter``: the same with the body Flask returns (a
  generator in werkzeug's ``ClosingIterator``).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import callgrind as cg

PARTS = ("bare", "target", "nosink", "noid", "nochain", "shell", "encode", "build")
WSGI_PARTS = ("flask-shell", "wsgi-app", "wsgi-shell", "wsgi-app-iter", "wsgi-shell-iter")


def _minimal_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"ok"]


def _body() -> Iterator[bytes]:
    yield b"ok"


def _iterating_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    from werkzeug.wsgi import ClosingIterator

    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return ClosingIterator(_body(), _no_op)


def _no_op() -> None:
    pass


def _wsgi_runner(part: str, tmp: Path) -> Callable[[int], object]:
    from auditmw import AuditConfig
    from auditmw.auditor import Auditor
    from auditmw.contrib.flask import Audit
    from auditmw.http.wsgi import AuditWSGIMiddleware
    from benchmarks import bench_wsgi as w

    app = _iterating_app if part.endswith("-iter") else _minimal_app
    if part.startswith("wsgi-app"):
        return w.make_round(app)
    config = AuditConfig(service="bench", sinks=[], resolvers=[], delivery=cg.QUIET)
    if part == "flask-shell":
        app = w.bare_app()
        Audit(app, config=config)
        auditor = Audit.auditor(app)
        auditor.pipeline.process = lambda exchange: None  # type: ignore[method-assign]
        return w.make_round(app, lambda: auditor.flush(30))
    auditor = Auditor(config)
    auditor.pipeline.process = lambda exchange: None  # type: ignore[method-assign]
    return w.make_round(AuditWSGIMiddleware(app, auditor=auditor))


def _captured(tmp: Path) -> tuple[Any, Any]:
    """The target app's auditor, and one exchange and event of the benchmark request."""
    from auditmw.core.event import Exchange
    from benchmarks import bench_asgi as b

    app, _flush = b.audited(tmp, "parts", sinks=[], delivery=cg.QUIET, integrity=cg._integrity())
    seen: list[Exchange] = []
    process = app.auditor.pipeline.process

    def keep(exchange: Exchange) -> Any:
        seen.append(exchange)
        return process(exchange)

    app.auditor.pipeline.process = keep  # type: ignore[method-assign]
    b.make_round(app)(1)
    app.auditor.pipeline.process = process  # type: ignore[method-assign]
    return app.auditor, seen[0]


def _runner(part: str, tmp: Path) -> Callable[[int], object]:
    from benchmarks import bench_asgi as b

    if part in WSGI_PARTS:
        return _wsgi_runner(part, tmp)
    if part in ("bare", "target"):
        return cg._asgi(part, tmp)
    if part == "nosink":
        return b.make_round(*b.audited(tmp, part, sinks=[], delivery=cg.QUIET))
    if part == "noid":
        return b.make_round(*b.audited(tmp, part, sinks=[], resolvers=[], delivery=cg.QUIET))
    if part == "nochain":
        return b.make_round(*b.audited(tmp, part, integrity=None, delivery=cg.QUIET))
    if part == "shell":
        app, flush = b.audited(tmp, part, sinks=[], resolvers=[], delivery=cg.QUIET)
        app.auditor.pipeline.process = lambda exchange: None  # type: ignore[method-assign]
        return b.make_round(app, flush)
    auditor, exchange = _captured(tmp)
    if part == "build":
        process = auditor.pipeline.process

        def build(n: int) -> None:
            for _ in range(n):
                process(exchange)  # not kept: a growing list would make the collector's work count

        return build
    event = auditor.pipeline.process(exchange)
    encoder = auditor.config.integrity.encoder_for("auditmw", "parts")

    def encode(n: int) -> None:
        for start in range(0, n, 512):
            encoder.encode([event] * min(512, n - start))

    return encode


def child(part: str, n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="auditmw-cgp-"))
    try:
        run = _runner(part, tmp)
        run(cg.WARMUP)
        gc.collect()
        gc.freeze()
        run(n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind_parts")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.n)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    print("| part | instructions/request |\n|---|---:|")
    for part in (p.strip() for p in args.parts.split(",") if p.strip()):
        if part not in PARTS + WSGI_PARTS:
            known = ", ".join(PARTS + WSGI_PARTS)
            parser.error(f"unknown part {part!r}; choose from {known}")
        ir = (_count(part, 2 * args.n) - _count(part, args.n)) / args.n
        print(f"| {part} | {ir / 1000:,.1f}k |", flush=True)
    return 0


def _count(part: str, n: int) -> int:
    import os
    import subprocess

    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               "-m", "benchmarks.callgrind_parts", "--child", part, "--n", str(n)]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, cwd=cg.ROOT, env=env, capture_output=True, timeout=1800, check=False)  # fmt: skip
    found = cg.COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
    return int(found.group(1))


if __name__ == "__main__":
    raise SystemExit(main())
