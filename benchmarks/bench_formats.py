"""Exporter cost per event, as a ratio to canonical serialization (``auditmw.canonical.dumps``).

Each exporter is timed as the delivery thread runs it: ``dumps(export(event))``.  The
baseline is ``dumps(event)``, the work done for the native ``auditmw`` format.  Rounds
are interleaved and medians reported, so the ratios come from one run on one machine.

Run: ``python benchmarks/bench_formats.py`` (about 10 s).
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

from auditmw.canonical import dumps
from auditmw.formats import Exporter, get_exporter

if TYPE_CHECKING:
    from collections.abc import Callable

ROUNDS = 15
EVENTS_PER_ROUND = 2000


def _event(bodies: bool) -> dict[str, Any]:
    event: dict[str, Any] = {
        "schema_version": "1.0",
        "event_id": "0192f5b2-7c1e-7a3b-9d4e-1f2a3b4c5d6e",
        "time": "2026-11-30T03:59:00.123456Z",
        "end_time": "2026-11-30T03:59:00.125456Z",
        "duration_us": 2000,
        "kind": "http",
        "action": "orders.update",
        "operation": "update",
        "outcome": "success",
        "severity": "info",
        "actor": {
            "id": "user-42",
            "type": "user",
            "name": "Ada",
            "roles": ["admin"],
            "session_id": "jti-1",
            "auth": {"method": "jwt", "verified": True, "issuer": "https://idp.example.com/"},
        },
        "source": {"ip": "203.0.113.7", "port": 51234, "user_agent": "Mozilla/5.0 (X11)"},
        "request": {
            "id": "req-abc",
            "method": "PUT",
            "path": "/orders/42",
            "route": "/orders/{order_id}",
            "scheme": "https",
            "host": "api.example.com",
            "protocol": "HTTP/1.1",
            "bytes": 128,
        },
        "response": {"status_code": 200, "bytes": 512},
        "resource": {"type": "orders", "id": "42", "route_params": {"order_id": "42"}},
        "service": {"name": "orders-api", "version": "1.2.3", "instance": "host-1/1234"},
        "trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
        "policy": {"id": "default", "hash": "sha256:" + "0" * 64, "rule": "default"},
        "integrity": {"chain_id": "c1", "seq": 1, "prev": "a" * 64, "hash": "b" * 64},
    }
    if bodies:
        event["request"]["body"] = {
            "content_type": "application/json",
            "size": 12,
            "sha256": "c" * 64,
            "json": {"qty": 2, "items": [1, 2, 3]},
        }
        event["response"]["body"] = {
            "content_type": "application/json",
            "size": 40,
            "sha256": "d" * 64,
            "json": {"id": "42", "status": "ok"},
        }
    return event


def _time(func: Callable[[dict[str, Any]], Any], events: list[dict[str, Any]]) -> float:
    start = time.perf_counter_ns()
    for event in events:
        func(event)
    return (time.perf_counter_ns() - start) / len(events)


def _stored(export: Exporter) -> Callable[[dict[str, Any]], bytes]:
    def run(event: dict[str, Any]) -> bytes:
        return dumps(export(event))

    return run


def _run(label: str, event: dict[str, Any]) -> None:
    events = [
        dict(event, event_id=f"{i:08d}-0000-7000-8000-000000000000")
        for i in range(EVENTS_PER_ROUND)
    ]
    cases: dict[str, Callable[[dict[str, Any]], Any]] = {"canonical": dumps}
    for name in ("ocsf", "ecs", "otel", "cloudevents"):
        export = get_exporter(name)
        cases[name] = _stored(export)
        cases[f"{name} (export only)"] = export
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, func in cases.items():  # interleaved: every case in every round
            samples[name].append(_time(func, events))
    base = statistics.median(samples["canonical"])
    print(f"\n{label}: median ns/event over {ROUNDS} rounds of {EVENTS_PER_ROUND} events")
    print(f"{'case':28} {'ns/event':>10} {'x canonical':>12}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:28} {median:10.0f} {median / base:12.2f}")


def main() -> None:
    """Print the exporter cost ratios for a metadata-level and a body-capturing event."""
    _run("metadata-level event", _event(bodies=False))
    _run("event with request/response bodies", _event(bodies=True))


if __name__ == "__main__":
    main()
