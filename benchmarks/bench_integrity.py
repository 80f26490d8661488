"""Integrity costs: verification vs. merely parsing, and chaining vs. plain encoding.

Run: ``python benchmarks/bench_integrity.py`` (about 30 s).  Prints medians of
interleaved rounds and the ratios DESIGN §11 budgets (verify <= 3x an orjson parse).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
from auditmw.sinks.base import PlainEncoder

EVENTS = 50_000
ENCODED = 10_000
ROUNDS = 5
MAC_KEY = b"\x01" * 32


def make_event(i: int) -> dict[str, Any]:
    """An event shaped like the pipeline's metadata-level HTTP event (~1 KB stored)."""
    return {
        "schema_version": "1.0",
        "event_id": f"0192f5b2-7c1e-7a3b-9d4e-{i:012x}",
        "time": "2026-11-30T03:59:00.123456Z",
        "end_time": "2026-11-30T03:59:00.125456Z",
        "duration_us": 2000,
        "kind": "http",
        "action": "orders.update",
        "operation": "update",
        "outcome": "success",
        "severity": "info",
        "actor": {
            "id": f"user-{i % 100}",
            "type": "user",
            "name": "Ada",
            "roles": ["admin"],
            "scopes": ["orders:write"],
            "auth": {"method": "jwt", "verified": True, "issuer": "https://idp.example.com/"},
        },
        "source": {"ip": "203.0.113.7", "port": 51234, "user_agent": "Mozilla/5.0 (X11)"},
        "request": {
            "id": f"req-{i}",
            "method": "PUT",
            "path": f"/orders/{i}",
            "route": "/orders/{order_id}",
            "scheme": "https",
            "host": "api.example.com",
            "protocol": "HTTP/1.1",
            "bytes": 128,
            "headers": {"content-type": "application/json"},
        },
        "response": {"status_code": 200, "bytes": 512},
        "resource": {"type": "orders", "id": str(i), "route_params": {"order_id": str(i)}},
        "service": {"name": "orders-api", "version": "1.2.3", "instance": "host-1/1234"},
        "trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
        "policy": {"id": "default", "hash": "sha256:" + "ab" * 32, "rule": "default"},
    }


def parse_only(path: Path) -> None:
    """The baseline: read the file and parse every line with orjson."""
    loads = orjson.loads
    with path.open("rb") as handle:
        for line in handle:
            loads(line)


def encode_all(encoder: Any, events: list[dict[str, Any]], batch: int = 64) -> None:
    """Encode ``events`` in delivery-sized batches."""
    for start in range(0, len(events), batch):
        encoder.encode(events[start : start + batch])


def write_log(path: Path, options: IntegrityOptions, events: list[dict[str, Any]]) -> None:
    encoder = options.encoder_for("auditmw", "bench")
    with path.open("wb") as handle:
        for start in range(0, len(events), 1000):
            handle.write(encoder.encode(events[start : start + 1000]).payload())
        handle.write((encoder.finish() or encoder.encode([])).payload())


def parallel_rounds(
    tmp: Path, options: IntegrityOptions, registry: KeyRegistry, events: list[dict[str, Any]]
) -> tuple[float, float]:
    """Median times to verify two chains in two files with one and with two processes."""
    logs = tmp / "workers"
    logs.mkdir()
    for worker in range(2):
        write_log(logs / f"w{worker}.jsonl", options, events[: EVENTS // 2])
    one, two = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        verify_files([logs], keys=registry, mac_key=MAC_KEY)
        t1 = time.perf_counter()
        report = verify_files([logs], keys=registry, mac_key=MAC_KEY, jobs=2)
        t2 = time.perf_counter()
        assert report.clean
        one.append(t1 - t0)
        two.append(t2 - t1)
    return statistics.median(one), statistics.median(two)


def main() -> None:
    private, public, _ = generate_keypair()
    registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
    options = IntegrityOptions(signing_key=private, mac_key=MAC_KEY, checkpoint_every=1000)
    events = [make_event(i) for i in range(EVENTS)]
    parse, verify, plain, chain = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        write_log(path, options, events)
        size = path.stat().st_size
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            parse_only(path)
            t1 = time.perf_counter()
            report = verify_files([path], keys=registry, mac_key=MAC_KEY)
            t2 = time.perf_counter()
            assert report.clean, report.codes()[:5]
            encode_all(PlainEncoder("auditmw"), events[:ENCODED])
            t3 = time.perf_counter()
            encode_all(options.encoder_for("auditmw", "bench"), events[:ENCODED])
            t4 = time.perf_counter()
            parse.append(t1 - t0)
            verify.append(t2 - t1)
            plain.append((t3 - t2) / ENCODED)
            chain.append((t4 - t3) / ENCODED)
        one, two = parallel_rounds(Path(tmp), options, registry, events)
    p, v = statistics.median(parse), statistics.median(verify)
    e, c = statistics.median(plain), statistics.median(chain)
    print(f"log: {EVENTS:,} events, {size / 1e6:.1f} MB, MAC + Ed25519 every 1000 events")
    print(f"orjson parse only : {p:6.2f} s  ({EVENTS / p:,.0f} lines/s)")
    print(f"auditmw verify    : {v:6.2f} s  ({EVENTS / v:,.0f} lines/s)")
    print(f"verify / parse    : {v / p:6.2f}x   (budget <= 3x)")
    print(f"PlainEncoder      : {e * 1e6:6.2f} us/event")
    print(f"ChainEncoder      : {c * 1e6:6.2f} us/event (hash + MAC + checkpoints)")
    print(f"chain / plain     : {c / e:6.2f}x   (+{(c - e) * 1e6:.2f} us/event)")
    print(f"2 chains, 2 files : {one:6.2f} s with 1 process, {two:.2f} s with --jobs 2")


if __name__ == "__main__":
    main()
