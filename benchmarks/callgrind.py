"""Instructions per request, counted by ``valgrind --tool=callgrind``: the noise-free figure.

    python -m benchmarks.callgrind [--variants bare,noop,correlation-id,target,...] [--n 1000]

Wall and CPU times on a shared machine drift by tens of percent within an hour;
instruction counts do not.  Each variant is run twice in a fresh process under
callgrind, serving ``warm-up + n`` and ``warm-up + 2n`` requests (the ASGI and WSGI
requests of ``bench_asgi`` / ``bench_wsgi``, the delivery thread drained inside the
count).  The difference of the two totals divided by ``n`` is the cost of one
request, start-up and warm-up cancelled out.  Counts include every thread.

Counted runs use a fixed ``PYTHONHASHSEED``, ``gc.freeze()`` after the warm-up and
delivery that wakes only on the final flush (never on a timer),
so that the figure does not move with how many objects start-up happened to create
(a full collection walks them all).  Without valgrind on ``PATH`` the command says
so and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditmw import DeliveryOptions
from benchmarks.naive import NaiveAuditWSGI

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 200
# The delivery threads wake on the flush that ends each run, never on a timer: under
# valgrind a timer fires a machine-load-dependent number of times, which made the
# count of a run vary by 5%.  The delivery work is still counted, in full batches.
QUIET = DeliveryOptions(max_queue=100_000, max_wait_ms=3_600_000)
# Likewise checkpoints come by count only (every 1000 events, as in the target
# configuration), never by the clock: a heartbeat checkpoint (an Ed25519 signature and
# a Merkle root) falls due only when a loaded machine slows valgrind past the interval.
QUIET_INTERVAL_S = 10**9


def _integrity() -> Any:
    from auditmw.integrity import IntegrityOptions, generate_keypair
    from benchmarks.bench_asgi import MAC_KEY

    return IntegrityOptions(
        signing_key=generate_keypair()[0], mac_key=MAC_KEY, checkpoint_interval_s=QUIET_INTERVAL_S
    )


COLLECTED = re.compile(rb"Collected : (\d+)")


def _asgi(variant: str, tmp: Path) -> Callable[[int], int]:
    from benchmarks import bench_asgi as b

    apps: dict[str, Callable[[], tuple[Any, Any]]] = {
        "bare": lambda: (b.bare_app(), None),
        "noop": lambda: (b.NoOpMiddleware(b.bare_app()), None),
        "correlation-id": lambda: (b.correlation_id_app(), None),
        "naive": lambda: _naive(b.naive_app(tmp)),
        "target": lambda: b.audited(tmp, "target", delivery=QUIET, integrity=_integrity()),
        "target-no-identity": lambda: b.audited(
            tmp, "noid", resolvers=[], delivery=QUIET, integrity=_integrity()
        ),
    }
    app, flush = apps[variant]()
    return b.make_round(app, flush)


def _naive(app: Any) -> tuple[Any, Any]:
    return app, app.log.flush


def _wsgi(variant: str, tmp: Path) -> Callable[[int], int]:
    from auditmw.contrib.flask import Audit
    from benchmarks import bench_asgi as b
    from benchmarks import bench_wsgi as w

    app = w.bare_app()
    if variant == "flask-bare":
        return w.make_round(app)
    if variant == "flask-naive":
        naive = NaiveAuditWSGI(app, tmp / "naive.jsonl", b.SECRET)
        return w.make_round(naive, naive.log.flush)
    target = w.config(tmp, "target", target=True)
    Audit(app, config=dataclasses.replace(target, delivery=QUIET, integrity=_integrity()))
    auditor = Audit.auditor(app)
    return w.make_round(app, lambda: auditor.flush(30))


ASGI = ("bare", "noop", "correlation-id", "naive", "target", "target-no-identity")
WSGI = ("flask-bare", "flask-naive", "flask-target")
VARIANTS = ASGI + WSGI


def child(variant: str, n: int) -> None:
    """Serve ``WARMUP`` then ``n`` requests of ``variant`` (run under callgrind)."""
    tmp = Path(tempfile.mkdtemp(prefix="auditmw-cg-"))
    try:
        run = _wsgi(variant, tmp) if variant.startswith("flask-") else _asgi(variant, tmp)
        run(WARMUP)
        # Start-up objects (modules, apps) leave the collector's reach: a full
        # collection then costs the same in every tree, and the count measures
        # the request, not how much code happened to be imported before it.
        gc.collect()
        gc.freeze()
        run(n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def count(variant: str, n: int) -> int:
    """Return the instructions callgrind collected for one child run."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.callgrind",
        "--child",
        variant,
        "--n",
        str(n),
    ]
    # A fixed hash seed: str hashing, and so dict and set layouts, repeat from run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, timeout=1800, check=False
    )
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"callgrind run of {variant!r} failed:\n{tail}")
    return int(found.group(1))


def per_request(variant: str, n: int) -> float:
    """Instructions per request: the difference of an ``n`` and a ``2n`` run, over ``n``."""
    return (count(variant, 2 * n) - count(variant, n)) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.callgrind", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--variants", default="bare,noop,correlation-id,target,flask-bare,flask-target"
    )
    parser.add_argument("--n", type=int, default=1000, help="requests per counted run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.n)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    figures = {variant: per_request(variant, args.n) for variant in chosen}
    print(table(figures))
    return 0


def table(figures: dict[str, float]) -> str:
    """Render ``figures`` as Markdown, each ratio against the bare app of its kind."""
    lines = [
        "| variant | instructions/request | ratio to the bare app of its kind |",
        "|---|---:|---:|",
    ]
    for variant, ir in figures.items():
        base = figures.get("flask-bare" if variant.startswith("flask-") else "bare")
        ratio = f"{ir / base:.2f}" if base else "—"
        lines.append(f"| {variant} | {ir / 1000:,.1f}k | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
