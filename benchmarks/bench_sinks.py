"""Sink throughput and the cost of durable mode, measured in one run.

Usage: ``python benchmarks/bench_sinks.py``  (about 30-50 s)

Part 1 — events/s per sink through the delivery thread (submit N events, flush),
3 interleaved rounds, median.  Network sinks talk to real local servers (a thread
HTTP server, a thread TCP syslog reader, and PostgreSQL / NATS when reachable).

Part 2 — an in-process ASGI app behind AuditMiddleware with a FileSink (fsync per
batch): requests/s in durable mode vs async mode at 1, 16 and 64 concurrent
clients, printed as ratios (durable / async).  Async mode's drain (flush) is inside
the timed region, so both modes pay for their writes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from auditmw.asgi import AuditMiddleware
from auditmw.config import AuditConfig, DeliveryOptions
from auditmw.delivery import Delivery
from auditmw.pipeline import Pipeline
from auditmw.sinks.file import FileSink
from auditmw.sinks.http import HTTPSink
from auditmw.sinks.otlp import OTLPSink
from auditmw.sinks.syslog import SyslogSink
from auditmw.testing import make_scope

EVENTS = 10_000
ROUNDS = 3


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Sink200(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def http_server() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink200)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def tcp_reader() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def drain(conn: socket.socket) -> None:
        while conn.recv(1 << 16):
            pass

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def event(n: int) -> dict[str, Any]:
    from auditmw.canonical import new_event_id

    return {
        "schema_version": "1.0",
        "event_id": new_event_id(),
        "time": "2026-11-30T03:59:00.123456Z",
        "end_time": "2026-11-30T03:59:00.125456Z",
        "duration_us": 2000,
        "kind": "http",
        "action": "orders.read",
        "operation": "read",
        "outcome": "success",
        "severity": "info",
        "actor": {"id": "user-42", "type": "user", "auth": {"method": "jwt", "verified": True}},
        "source": {"ip": "203.0.113.7", "port": 51234, "user_agent": "bench/1.0"},
        "request": {
            "id": f"req-{n}",
            "method": "GET",
            "path": "/orders/42",
            "route": "/orders/{id}",
            "scheme": "https",
            "host": "api.example.com",
            "protocol": "HTTP/1.1",
            "bytes": 0,
        },
        "response": {"status_code": 200, "bytes": 512},
        "resource": {"type": "orders", "id": "42"},
        "service": {"name": "bench", "instance": "host/1"},
    }


def sink_factories(tmp: Path) -> dict[str, Any]:
    url = http_server()
    syslog_port = tcp_reader()
    factories: dict[str, Any] = {
        "file fsync=batch": lambda: FileSink(tmp / "a.jsonl", fsync="batch"),
        "file fsync=never": lambda: FileSink(tmp / "b.jsonl", fsync="never"),
        "file rotating 1MB": lambda: FileSink(
            tmp / "c.jsonl", rotate_bytes=1 << 20, compress=False
        ),
        "http ndjson": lambda: HTTPSink(url),
        "otlp": lambda: OTLPSink(url, service_name="bench"),
        "syslog tcp": lambda: SyslogSink("127.0.0.1", syslog_port),
    }
    if reachable(5432):
        from auditmw.sinks.postgres import PostgresSink

        table = f"bench_{os.getpid()}"
        factories["postgres"] = lambda: PostgresSink(
            "host=127.0.0.1 user=postgres dbname=test", table=table
        )
    if reachable(4222):
        from auditmw.sinks.nats import NATSSink

        stream = f"BENCH{os.getpid()}"
        factories["nats jetstream"] = lambda: NATSSink(
            subject=f"bench.{stream}", stream=stream, create_stream=True
        )
    return factories


def sink_rate(factory: Any, events: list[dict[str, Any]]) -> float:
    lifecycle = Pipeline(AuditConfig("bench")).lifecycle
    delivery = Delivery([factory()], DeliveryOptions(max_queue=EVENTS * 2), lifecycle=lifecycle)
    delivery.submit(event(0))
    delivery.flush(10)  # connect before timing
    start = time.perf_counter()
    for item in events:
        delivery.submit(item)
    delivery.flush(60)
    elapsed = time.perf_counter() - start
    delivery.close(10)
    return len(events) / elapsed


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def drive(app: AuditMiddleware, clients: int, per_client: int) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    async def client() -> None:
        for _ in range(per_client):
            await app(make_scope("/orders/1"), receive, send)

    await asyncio.gather(*(client() for _ in range(clients)))


def app_rate(mode: str, clients: int, tmp: Path) -> float:
    sink = FileSink(tmp / f"{mode}-{clients}.jsonl", fsync="batch")
    options = DeliveryOptions(mode=mode, max_queue=100_000)  # type: ignore[arg-type]
    app = AuditMiddleware(endpoint, AuditConfig("bench", sinks=[sink], delivery=options))
    total = 3200 if clients > 1 else 600
    asyncio.run(drive(app, clients, 5))  # warm up
    app.auditor.flush(10)
    start = time.perf_counter()
    asyncio.run(drive(app, clients, total // clients))
    app.auditor.flush(30)
    elapsed = time.perf_counter() - start
    app.auditor.close(10)
    return (total // clients) * clients / elapsed


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        factories = sink_factories(tmp)
        rates: dict[str, list[float]] = {name: [] for name in factories}
        for _ in range(ROUNDS):
            for name, factory in factories.items():
                rates[name].append(sink_rate(factory, [event(i) for i in range(EVENTS)]))
        print(f"Part 1: events/s per sink ({EVENTS} events, median of {ROUNDS} interleaved rounds)")
        base = statistics.median(rates["file fsync=batch"])
        for name, values in rates.items():
            median = statistics.median(values)
            print(
                f"  {name:20s} {median:>10,.0f} events/s   ({median / base:5.2f}x file fsync=batch)"
            )

        print("\nPart 2: in-process ASGI, FileSink fsync=batch: durable / async requests/s")
        for clients in (1, 16, 64):
            ratios, durable_rates, async_rates = [], [], []
            for _ in range(ROUNDS):
                a = app_rate("async", clients, tmp)
                d = app_rate("durable", clients, tmp)
                async_rates.append(a)
                durable_rates.append(d)
                ratios.append(d / a)
            print(
                f"  {clients:3d} clients: async {statistics.median(async_rates):8,.0f} req/s, "
                f"durable {statistics.median(durable_rates):8,.0f} req/s, "
                f"ratio {statistics.median(ratios):.2f}"
            )
    cleanup()
    return 0


def cleanup() -> None:
    if reachable(5432):
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS bench_{os.getpid()}")
    if reachable(4222):
        import nats

        async def drop() -> None:
            nc = await nats.connect("nats://127.0.0.1:4222")
            try:
                await nc.jetstream().delete_stream(f"BENCH{os.getpid()}")
            finally:
                await nc.close()

        asyncio.run(drop())


if __name__ == "__main__":
    sys.exit(main())
