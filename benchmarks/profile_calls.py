"""Deterministic call counts per request of the target variant, every thread included.

    python -m benchmarks.profile_calls [--wsgi] [--n 2000] [--top 40] [--sort tottime]
        [--match auditmw/http]

Callgrind counts the interpreter's instructions but cannot say which Python function
spent them; ``cProfile`` can, with exact call counts.  This driver serves the
benchmark's GET request ``n`` times through the target configuration (with the
delivery of :mod:`benchmarks.callgrind`: woken by the final flush only), the ASGI
app or, with ``--wsgi``, the Flask app of ``flask-target``, with one
profiler on the request thread and one on each delivery thread, merges them and
prints the functions by call count and own time.  Call counts divided by ``n`` are
the per-request figures to compare between trees; times are only a guide (the
profiler's own overhead inflates small functions).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import pstats
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.callgrind import QUIET, WARMUP, _integrity


def _target(tmp: Path, *, wsgi: bool) -> tuple[Callable[[int], int], Callable[[], None]]:
    """The target variant's request round and its auditor's ``close``."""
    if not wsgi:
        from benchmarks.bench_asgi import audited, make_round

        app, flush = audited(tmp, "calls", delivery=QUIET, integrity=_integrity())
        return make_round(app, flush), app.auditor.close
    from auditmw.contrib.flask import Audit
    from benchmarks import bench_wsgi

    flask_app = bench_wsgi.bare_app()
    target = bench_wsgi.config(tmp, "calls", target=True)
    Audit(flask_app, config=dataclasses.replace(target, delivery=QUIET, integrity=_integrity()))
    auditor = Audit.auditor(flask_app)
    return bench_wsgi.make_round(flask_app, lambda: auditor.flush(30)), auditor.close


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_calls")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--wsgi", action="store_true", help="the Flask (WSGI) target variant")
    parser.add_argument("--match", help="list only functions whose file:line(name) matches")
    args = parser.parse_args(argv)
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as name:
        serve, close = _target(Path(name), wsgi=args.wsgi)
        serve(WARMUP)
        gc.collect()
        gc.freeze()
        main_profile = cProfile.Profile()
        for profile in profiles:
            profile.clear()
        main_profile.enable()
        serve(args.n)
        main_profile.disable()
        close()
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        profile.create_stats()
        if profile.stats:
            stats.add(profile)
    restrictions: list[str | int] = [args.match] if args.match else []
    stats.sort_stats(args.sort).print_stats(*restrictions, args.top)
    total: Any = stats.total_calls  # type: ignore[attr-defined]
    print(f"function calls per request: {total / args.n:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
