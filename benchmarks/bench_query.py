"""Evidence tools on a generated, chained and signed log of N events.

    python benchmarks/bench_query.py [--events 20000] [--rounds 3] [--html report.html]

Builds the log through the real pipeline (Auditor, FileSink, ChainEncoder with an
Ed25519 key and a MAC key), with request times spread over 8 hours, then times, in
interleaved rounds (medians):

* baseline: read every line and ``orjson.loads`` it;
* ``query`` with a filter (denied events), streaming;
* ``verify`` alone;
* ``report`` (verify + summarize + render);
* ``audit-ready``.

Ratios are against the baseline.  ``--html`` keeps the report (docs/img/report.png
is a screenshot of one made with --events 5000).
"""

from __future__ import annotations

import argparse
import math
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from auditmw import AuditConfig, DeliveryOptions
from auditmw.auditor import Auditor
from auditmw.event import Headers
from auditmw.evidence import EventFilter, check_readiness, query_events, render_report
from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
from auditmw.sinks import FileSink

USERS = ["ada", "grace", "linus", "ken", "barbara", "svc-billing", None, None]
ROUTES = [
    ("GET", "/orders/{order_id}", 200),
    ("PUT", "/orders/{order_id}", 200),
    ("DELETE", "/orders/{order_id}", 403),
    ("POST", "/orders/{order_id}/refund", 201),
    ("GET", "/orders/{order_id}", 404),
    ("POST", "/admin/users/{order_id}", 500),
]


class User:
    """A framework user (like Starlette's SimpleUser)."""

    is_authenticated = True

    def __init__(self, name: str) -> None:
        self.username = name


def make_log(directory: Path, events: int) -> tuple[Path, KeyRegistry, bytes]:
    """Write a chained, signed log of ``events`` requests; return it and its keys."""
    private_pem, public_pem, key_id = generate_keypair()
    mac = secrets.token_bytes(32)
    log = directory / "audit.jsonl"
    config = AuditConfig(
        service="orders-api",
        sinks=[FileSink(str(log))],
        delivery=DeliveryOptions(max_wait_ms=20, max_queue=events + 100),
        integrity=IntegrityOptions(signing_key=private_pem, mac_key=mac, checkpoint_every=1000),
    )
    auditor = Auditor(config)
    auditor.start()
    span = 8 * 3600 * 10**9
    start = time.time_ns() - span
    for i in range(events):
        method, route, status = ROUTES[(i * 7) % len(ROUTES) if i % 5 else 0]
        order = str(i % 97)
        exchange = auditor.new_exchange(
            "http", method, route.replace("{order_id}", order), Headers([]),
            client=("203.0.113.7", 50000),
        )  # fmt: skip
        exchange.route, exchange.path_params = route, {"order_id": order}
        # Traffic in waves: times bunch up where the sine's slope is low.
        share = i / events
        exchange.start_ns = start + int(span * (share + math.sin(6 * math.pi * share) / 25))
        exchange.end_ns = exchange.start_ns + 2_000_000
        exchange.status = status
        name = USERS[i % len(USERS)]
        exchange.user = User(name) if name else None
        auditor.record(exchange)
    auditor.close()
    registry = KeyRegistry.from_file(_write(directory / "k.pub", public_pem))
    assert key_id
    return log, registry, mac


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _time(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--html", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log, keys, mac = make_log(Path(tmp), args.events)
        size = log.stat().st_size
        print(f"{args.events} events, {size / 1e6:.1f} MB at {log}")

        def baseline() -> None:
            with log.open("rb") as handle:
                for line in handle:
                    orjson.loads(line)

        cases: dict[str, Callable[[], Any]] = {
            "baseline (read + parse)": baseline,
            "query --outcome denied": lambda: sum(
                1 for _ in query_events([log], EventFilter(outcome="denied"))
            ),
            "verify": lambda: verify_files([log], keys=keys, mac_key=mac),
            "report": lambda: render_report([log], keys=keys, mac_key=mac),
            "audit-ready": lambda: check_readiness([log], policy=None, keys=keys, mac_key=mac),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, func in cases.items():
                times[name].append(_time(func))
        base = statistics.median(times["baseline (read + parse)"])
        for name, values in times.items():
            median = statistics.median(values)
            rate = args.events / median / 1000
            print(
                f"{name:<26} {median * 1000:8.1f} ms  {rate:8.1f} k events/s  x{median / base:5.1f}"
            )
        if args.html:
            report = render_report([log], keys=keys, mac_key=mac)
            args.html.write_text(report.html)
            print(f"report: {report.verdict.title}, written to {args.html}")


if __name__ == "__main__":
    main()
