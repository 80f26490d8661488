"""Flatness (DESIGN §11): cost flat in uptime and in log size, memory bounded by configuration.

    python -m benchmarks.bench_flat [--quick]
    python -m benchmarks.bench_flat --uptime-only --requests 1000000   # RSS over 10^6 requests

All in one process, auditmw in the DESIGN §11 target configuration
(``bench_asgi.audited``: metadata level, verified and cached JWT, integrity chain,
file sink, async delivery), requests served in-process as in ``bench_asgi``.

1. Uptime: ``UPTIME_REQUESTS`` requests in ``SLICES`` consecutive slices, a bare-app
   slice before each auditmw slice (the noise reference).  Per variant, the median
   µs/request of the last 3 slices over the first 3; flat means auditmw's last/first
   is close to bare's.  The RSS change during each slice is charged to the variant
   that ran it, so the growth from slice 3 to the end is reported per variant.
2. Sink down: the same configuration with an ``HTTPSink`` to a closed localhost
   port and ``max_queue`` = each of ``BOUNDS``; ``DOWN_REQUESTS`` requests.  RSS must
   plateau at a level set by the bound, not by the traffic.  Then a server comes up
   on that port, the backlog drains, and the audit trail it received must account
   for every request: delivered ``http`` events + the counts of the
   ``audit.events_dropped`` events = requests served.
3. Log size: two auditors identical but for their log file; ``LOG_EVENTS`` chained
   events go through one's sink first (file sink events/s, first chunks against last
   chunks), then both serve requests in the same rounds, with the bare app: the
   big-log / small-log ratio per round.  ``verify_files`` time per event at
   ``VERIFY_EVENTS`` and 4x as many, in alternating rounds, with an orjson parse of
   each file as the reference.

Absolute times are for orientation only; the ratios are the result.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from auditmw import DeliveryOptions
from auditmw.integrity import IntegrityOptions, KeyRegistry, generate_keypair, verify_files
from auditmw.sinks.http import HTTPSink
from benchmarks._harness import versions
from benchmarks.bench_asgi import audited, bare_app, make_round
from benchmarks.bench_integrity import MAC_KEY, make_event, parse_only

UPTIME_REQUESTS = 180_000
SLICES = 18
PARTS = 5
DOWN_REQUESTS = 40_000
DOWN_SLICES = 10
BOUNDS = (2_000, 10_000)
LOG_EVENTS = 200_000
LOG_CHUNK = 25_000
LOG_SLICE = 2_000
LOG_ROUNDS = 7
VERIFY_EVENTS = 50_000

MIB = 1024 * 1024
Round = Callable[[int], int]


def rss() -> int:
    """Resident set size of this process in bytes (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def first_last(values: list[float]) -> float:
    """Median of the last 3 values over the median of the first 3."""
    return statistics.median(values[-3:]) / statistics.median(values[:3])


# -- 1. uptime ----------------------------------------------------------------------


@dataclass
class Slices:
    """Per-slice µs/request and the RSS change while the slice ran."""

    us: list[float] = field(default_factory=list)
    rss_delta: list[int] = field(default_factory=list)
    rss_after: list[int] = field(default_factory=list)

    def run(self, variant: Round, n: int, index: int) -> None:
        """Add ``n`` requests to slice ``index`` (a slice is run in alternating parts)."""
        if index == len(self.us):
            self.us.append(0.0)
            self.rss_delta.append(0)
            self.rss_after.append(0)
        before = rss()
        self.us[index] += variant(n) / 1000
        after = rss()
        self.rss_delta[index] += after - before
        self.rss_after[index] = after

    def growth_after(self, slice_index: int) -> float:
        """MiB gained while this variant ran, from the end of slice ``slice_index`` on."""
        return sum(self.rss_delta[slice_index:]) / MIB


def uptime(tmp: Path) -> list[str]:
    part = UPTIME_REQUESTS // SLICES
    app, flush = audited(tmp, "uptime")
    variants = {"bare": make_round(bare_app()), "auditmw": make_round(app, flush)}
    for variant in variants.values():
        variant(min(part, 2000))  # warm-up
    slices = {name: Slices() for name in variants}
    for index in range(SLICES):
        for _ in range(PARTS):
            for name, variant in variants.items():
                slices[name].run(variant, part // PARTS, index)
    app.auditor.close(30)
    bare, audit = slices["bare"], slices["auditmw"]
    for result in (bare, audit):
        result.us = [total / (part // PARTS * PARTS) for total in result.us]
    lines = [
        f"1. Uptime: {UPTIME_REQUESTS:,} requests per variant in {SLICES} slices of {part:,}, "
        f"each run as {PARTS} alternating bare / auditmw parts",
        "",
        "| slice | served | bare µs/req | auditmw µs/req | auditmw / bare | RSS MiB after |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i in range(SLICES):
        lines.append(
            f"| {i + 1} | {(i + 1) * part:,} | {bare.us[i]:.1f} | {audit.us[i]:.1f} "
            f"| {audit.us[i] / bare.us[i]:.3f} | {audit.rss_after[i] / MIB:.1f} |"
        )
    bare_ratio, audit_ratio = first_last(bare.us), first_last(audit.us)
    lines += [
        "",
        f"last 3 / first 3 slices (median µs/req): bare {bare_ratio:.3f}, "
        f"auditmw {audit_ratio:.3f}; auditmw relative to bare {audit_ratio / bare_ratio:.3f}",
        f"RSS growth from the end of slice 3 to the end of slice {SLICES}: "
        f"bare {bare.growth_after(3):+.1f} MiB, auditmw {audit.growth_after(3):+.1f} MiB "
        f"(over {(SLICES - 3) * part:,} requests each)",
    ]
    return lines


# -- 2. sink down -------------------------------------------------------------------


class DropCounter(logging.Handler):
    """Counts the drops auditmw logs as they happen (buffer full, backlog trimmed)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == "auditmw dropped %d events: buffer full":
            count = args[0]
        elif record.msg == "auditmw sink %s lost %d events: %s":
            count = args[1]
        else:
            return
        if isinstance(count, int):
            self.dropped += count


class Collector(BaseHTTPRequestHandler):
    """An NDJSON endpoint counting what it receives (set on the server instance)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        tally: dict[str, int] = self.server.tally  # type: ignore[attr-defined]
        with self.server.lock:  # type: ignore[attr-defined]
            for line in body.splitlines():
                event = orjson.loads(line)
                kind = event.get("kind", "")
                tally[kind] = tally.get(kind, 0) + 1
                if kind == "audit.events_dropped":
                    tally["dropped"] = tally.get("dropped", 0) + event["details"]["count"]
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_on(port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), Collector)
    server.daemon_threads = True
    server.tally = {}  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def sink_down(tmp: Path, bound: int, counter: DropCounter) -> list[str]:
    port = closed_port()
    options = DeliveryOptions(max_queue=bound, retry_initial=0.05, retry_max=0.5)
    sink = HTTPSink(f"http://127.0.0.1:{port}/", timeout=2.0)
    app, flush = audited(tmp, f"down-{bound}", sinks=[sink], delivery=options)
    delivery = app.auditor.delivery
    serve = make_round(app, flush)
    part = DOWN_REQUESTS // DOWN_SLICES
    counter.dropped = 0
    start = rss()
    began = time.monotonic()
    growth, absolute, held = [], [], []
    for _ in range(DOWN_SLICES):
        serve(part)
        absolute.append(rss() / MIB)
        growth.append(absolute[-1] - start / MIB)
        # Internal: events kept in memory for the sink (queue + the channel's backlog).
        held.append(len(delivery._queue) + sum(c.backlog_events for c in delivery._channels))
    dropped_logged = counter.dropped
    outage = time.monotonic() - began
    server = serve_on(port)  # the sink comes back
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(not c.idle for c in delivery._channels):
        time.sleep(0.05)
    app.auditor.close(30)
    server.shutdown()
    server.server_close()
    tally: dict[str, int] = server.tally  # type: ignore[attr-defined]
    served = DOWN_REQUESTS
    delivered, recorded = tally.get("http", 0), tally.get("dropped", 0)
    records = ", ".join(
        f"{kind.removeprefix('audit.')} {count}"
        for kind, count in sorted(tally.items())
        if kind.startswith("audit.")
    )
    half = DOWN_SLICES // 2
    # While the backlog fills (below the bound), RSS grows with the events held.
    full = next((i for i, h in enumerate(held) if h >= 0.95 * bound), 0)
    slope = ""
    if full > 0 and held[full] - held[0] >= bound / 4:
        kib = (absolute[full] - absolute[0]) * 1024 / (held[full] - held[0])
        slope = f"; while filling, ~{kib:.1f} KiB of RSS per event held"
    return [
        f"max_queue={bound:,}: {served:,} requests in {DOWN_SLICES} slices of {part:,}, "
        f"sink down throughout ({outage:.1f} s)",
        "  RSS MiB after each slice: " + " ".join(f"{a:.1f}" for a in absolute),
        "  events held in memory after each slice: " + " ".join(f"{h:,}" for h in held),
        f"  RSS growth: {growth[half - 1]:+.1f} MiB after {half * part:,} requests, "
        f"{growth[-1]:+.1f} MiB after {served:,} (second half of the traffic: "
        f"{growth[-1] - growth[half - 1]:+.1f} MiB); held at most {max(held):,} "
        f"events (bound {bound:,}){slope}",
        f"  sink back up: delivered {delivered:,} http events + {recorded:,} counted in "
        f"{tally.get('audit.events_dropped', 0)} audit.events_dropped events = "
        f"{delivered + recorded:,} of {served:,} served "
        f"({'all accounted for' if delivered + recorded == served else 'MISMATCH'}); "
        f"drops logged while down: {dropped_logged:,}",
        f"  audit.* records received: {records}",
    ]


# -- 3. log size --------------------------------------------------------------------


def log_size(tmp: Path) -> list[str]:
    small_app, small_flush = audited(tmp, "log-small")
    big_app, big_flush = audited(tmp, "log-big")
    variants = {
        "bare": make_round(bare_app()),
        "auditmw, small log": make_round(small_app, small_flush),
        "auditmw, big log": make_round(big_app, big_flush),
    }
    for variant in variants.values():
        variant(500)
    rates = []
    for start in range(0, LOG_EVENTS, LOG_CHUNK):
        events = [make_event(i) for i in range(start, min(LOG_EVENTS, start + LOG_CHUNK))]
        began = time.perf_counter()
        for event in events:
            big_app.auditor.submit(event)
        big_flush()
        rates.append(len(events) / (time.perf_counter() - began))
    us: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(LOG_ROUNDS):  # the order rotates between rounds
        for name in names[r % 3 :] + names[: r % 3]:
            us[name].append(variants[name](LOG_SLICE) / LOG_SLICE / 1000)
    small_app.auditor.close(30)
    big_app.auditor.close(30)
    files = {
        "bare": "—",
        "auditmw, small log": lines_and_size(tmp / "log-small.jsonl"),
        "auditmw, big log": lines_and_size(tmp / "log-big.jsonl"),
    }
    small_us, big_us = us["auditmw, small log"], us["auditmw, big log"]
    per_round = [big / small for small, big in zip(small_us, big_us, strict=True)]
    return [
        f"3. Log size: two auditors, identical but for their log file; {LOG_EVENTS:,} chained "
        f"events written through one's FileSink first, then {LOG_ROUNDS} rounds of "
        f"{LOG_SLICE:,} requests per variant, alternating (order rotating)",
        "",
        "| variant | log file at the end | µs/req (median) |",
        "|---|---:|---:|",
        *(f"| {name} | {files[name]} | {statistics.median(us[name]):.1f} |" for name in us),
        "",
        f"big log / small log, per round: median {statistics.median(per_round):.3f} "
        f"(min {min(per_round):.3f}, max {max(per_round):.3f})",
        f"file sink through delivery while the log grew, chunks of {LOG_CHUNK:,}: "
        f"{statistics.median(rates[:3]):,.0f} events/s (median of the first 3 chunks), "
        f"{statistics.median(rates[-3:]):,.0f} (last 3); last / first {first_last(rates):.3f}",
    ]


def lines_and_size(path: Path) -> str:
    with path.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return f"{lines:,} lines, {path.stat().st_size / MIB:.0f} MiB"


def write_chained(path: Path, options: IntegrityOptions, count: int) -> None:
    """A chained log of ``count`` events, generated and encoded in chunks."""
    encoder = options.encoder_for("auditmw", "bench")
    with path.open("wb") as handle:
        for start in range(0, count, 10_000):
            events = [make_event(i) for i in range(start, min(count, start + 10_000))]
            for first in range(0, len(events), 1000):
                handle.write(encoder.encode(events[first : first + 1000]).payload())
        handle.write((encoder.finish() or encoder.encode([])).payload())


def verify_scaling(tmp: Path) -> list[str]:
    """Verify time per event at N and 4N events; orjson parsing of each file as reference."""
    private, public, _ = generate_keypair()
    registry = KeyRegistry.from_mapping({"keys": [{"public_key": public.decode()}]})
    options = IntegrityOptions(signing_key=private, mac_key=MAC_KEY, checkpoint_every=1000)
    counts = (VERIFY_EVENTS, 4 * VERIFY_EVENTS)
    paths = {count: tmp / f"verify-{count}.jsonl" for count in counts}
    for count, path in paths.items():
        write_chained(path, options, count)
    verify: dict[int, list[float]] = {count: [] for count in counts}
    parse: dict[int, list[float]] = {count: [] for count in counts}
    for _ in range(2):  # rounds alternate the sizes, so both see the same machine state
        for count, path in paths.items():
            began = time.perf_counter()
            parse_only(path)
            parsed = time.perf_counter()
            report = verify_files([path], keys=registry, mac_key=MAC_KEY)
            verify[count].append((time.perf_counter() - parsed) / count)
            parse[count].append((parsed - began) / count)
            assert report.clean, report.codes()[:5]
    for path in paths.values():
        path.unlink()
    small, big = (min(verify[count]) for count in counts)
    ratio_small, ratio_big = (min(verify[c]) / min(parse[c]) for c in counts)
    return [
        f"verify_files per event (best of 2): {small * 1e6:.2f} µs at {counts[0]:,} events, "
        f"{big * 1e6:.2f} µs at {counts[1]:,} (4x / 1x {big / small:.3f}); as a multiple of "
        f"an orjson parse of the same file: {ratio_small:.2f}x and {ratio_big:.2f}x",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 20 s)")
    parser.add_argument("--uptime-only", action="store_true", help="run section 1 only")
    parser.add_argument("--requests", type=int, help="requests per variant in section 1")
    args = parser.parse_args()
    if args.quick:
        apply_quick()
    if args.requests:
        globals()["UPTIME_REQUESTS"] = args.requests
    counter = DropCounter()
    delivery_log = logging.getLogger("auditmw.delivery")
    delivery_log.addHandler(counter)  # also keeps the expected outage errors off stderr
    delivery_log.setLevel(logging.INFO)
    began = time.perf_counter()
    print(versions("starlette", "orjson", "auditmw"))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print("\n".join(uptime(tmp)))
        if args.uptime_only:
            print(f"\n({time.perf_counter() - began:.0f} s)")
            return
        print()
        print("2. Sink down: HTTPSink to a closed localhost port (async delivery, no spool)")
        for bound in BOUNDS:
            print("\n".join(sink_down(tmp, bound, counter)))
        print()
        print("\n".join(log_size(tmp)))
        print("\n".join(verify_scaling(tmp)))
    print(f"\n({time.perf_counter() - began:.0f} s)")


def apply_quick() -> None:
    """The sizes the suite's quick mode uses (one list, in ``_components.SCRIPTS``)."""
    from benchmarks._components import SCRIPTS

    globals().update(SCRIPTS["bench_flat"][1])


if __name__ == "__main__":
    main()
