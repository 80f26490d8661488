"""Encryption at rest: FileSink throughput encrypted vs unencrypted.

    python benchmarks/bench_crypto.py [--quick]

Each round appends the same batches of realistic canonical events (~700 bytes) to a
fresh file, with ``fsync="never"`` so the disk does not hide the CPU cost, through
a plain :class:`~auditmw.sinks.FileSink` and one with ``encryption=Keyring``
(AES-256-GCM per batch, base64 framing).  Variants run interleaved; the ratio is
the per-round median of encrypted time over plain time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from auditmw.crypto import Keyring
from auditmw.sinks.base import Batch
from auditmw.sinks.file import FileSink

#: One timed round: runs ``n`` batches, returns elapsed nanoseconds.
Round = Callable[[int], int]

EVENT: dict[str, Any] = {
    "schema_version": "1.0",
    "event_id": "01938f0e-7b3a-7c11-9a2e-4d5f6a7b8c9d",
    "time": "2026-11-30T04:45:00.123456Z",
    "kind": "http",
    "action": "orders.update",
    "outcome": "success",
    "actor": {"id": "user-42", "type": "user", "auth": {"method": "jwt", "verified": True}},
    "resource": {"type": "order", "id": "42"},
    "http": {"method": "PUT", "route": "/orders/{order_id}", "status": 200},
    "source": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126"},
    "service": {"name": "orders-api", "version": "1.4.2", "environment": "prod"},
    "integrity": {"chain_id": "01938f0e-0000-7000-8000-000000000000", "seq": 1, "prev": "0" * 64},
}


def make_batch(size: int) -> Batch:
    events = [dict(EVENT, event_id=f"{EVENT['event_id'][:-4]}{i:04d}") for i in range(size)]
    return Batch(events, [orjson.dumps(e) for e in events])


def variant(directory: Path, name: str, batch: Batch, keyring: Keyring | None) -> Round:
    counter = iter(range(1_000_000))

    def run(n: int) -> int:
        path = directory / f"{name}-{next(counter)}.jsonl"
        sink = FileSink(path, fsync="never", encryption=keyring)
        start = time.perf_counter_ns()
        for _ in range(n):
            sink.emit(batch)
        sink.close()
        elapsed = time.perf_counter_ns() - start
        path.unlink()
        return elapsed

    return run


def interleave(plain: Round, encrypted: Round, n: int, rounds: int) -> list[tuple[int, int]]:
    """Time both variants once per round, alternating which goes first, after a warm-up."""
    plain(n // 4)
    encrypted(n // 4)
    out = []
    for r in range(rounds):
        if r % 2:
            e, p = encrypted(n), plain(n)
        else:
            p, e = plain(n), encrypted(n)
        out.append((p, e))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n = (5, 200) if args.quick else (15, 400)
    keyring = Keyring.generate("bench")
    found = ", ".join(f"{pkg} {metadata.version(pkg)}" for pkg in ("cryptography", "orjson"))
    print(
        f"Python {sys.version.split()[0]} on {platform.machine()}; {found}; {n} batches x {rounds} rounds"
    )
    print(
        "| events/batch | plain µs/batch | encrypted µs/batch | plain MB/s | encrypted MB/s "
        "| encrypted / plain time (median, min-max) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1, 16, 128):
            batch = make_batch(size)
            timings = interleave(
                variant(Path(tmp), "plain", batch, None),
                variant(Path(tmp), "enc", batch, keyring),
                n,
                rounds,
            )
            per_round = [e / p for p, e in timings]
            median, low, high = statistics.median(per_round), min(per_round), max(per_round)
            megabytes = len(batch.payload()) * n / 1e6
            plain = megabytes / (statistics.median(p for p, _ in timings) / 1e9)
            encrypted = megabytes / (statistics.median(e for _, e in timings) / 1e9)
            p_us = statistics.median(p for p, _ in timings) / n / 1000
            e_us = statistics.median(e for _, e in timings) / n / 1000
            print(
                f"| {size} | {p_us:.1f} | {e_us:.1f} | {plain:,.0f} | {encrypted:,.0f} | "
                f"{median:.2f} ({low:.2f}-{high:.2f}) |"
            )


if __name__ == "__main__":
    main()
